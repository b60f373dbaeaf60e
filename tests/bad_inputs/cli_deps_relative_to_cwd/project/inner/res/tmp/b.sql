SELECT x FROM tmp.a
