SELECT x FROM tmp.cyc_b
