-- table: raw.orders
-- severity: warn
-- Orders that the latest run's orders records give different cities (two files of one
-- delivery, or two lines of one file): the table takes the greatest city code, whatever the
-- files are called. One row per record of such an order: its city and the file it came from.
WITH latest AS (
  SELECT order_id, city_code, source_file, source_position
  FROM raw.orders
  WHERE ingest_date = (SELECT max(ingest_date) FROM raw.orders)
)
SELECT order_id, city_code, source_file, source_position
FROM latest
WHERE order_id IN (
  SELECT order_id FROM latest GROUP BY order_id HAVING count(DISTINCT city_code) > 1
)
ORDER BY order_id, city_code, source_file, source_position
