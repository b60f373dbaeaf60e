SELECT * FROM tmp.selfish
