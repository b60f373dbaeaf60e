SELECT
  variant_id,
  no_such_column AS n
FROM tmp.variants
