-- id becomes x, then y, then z; amount is doubled on the way
WITH a AS (
  SELECT id AS x, amount FROM `raw.t`
),
b AS (
  SELECT x AS y, amount * 2 AS doubled FROM a
)
SELECT y AS z, doubled FROM b
