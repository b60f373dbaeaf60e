CREATE OR REPLACE TABLE `raw.items` (order_id INT64, price FLOAT64, currency STRING, note STRING) AS
SELECT 1, 2.5, 'EUR', 'x'
