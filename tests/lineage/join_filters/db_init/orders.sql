CREATE OR REPLACE TABLE `raw.orders` (id INT64, customer_id INT64, amount NUMERIC, status STRING) AS
SELECT 1, 10, 5.0, 'paid'
