SELECT id FROM `tmp.wide`
