SELECT x FROM tmp.cyc_a
