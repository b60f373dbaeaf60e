SELECT 1 AS a
  /* to do
FROM tmp.variants
