SELECT * FROM `tmp.everything` WHERE amount > 0
