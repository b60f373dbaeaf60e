SELECT 1 AS a,
  'café' AS b -- café
