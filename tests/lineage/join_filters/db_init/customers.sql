CREATE OR REPLACE TABLE `raw.customers` (id INT64, country STRING) AS
SELECT 10, 'FR'
