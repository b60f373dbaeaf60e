SELECT 1 AS a,
  2 AS b,
  'abc AS c
FROM tmp.variants
