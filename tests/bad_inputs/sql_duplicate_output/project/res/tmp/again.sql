CREATE OR REPLACE TABLE tmp.variants AS SELECT 1 AS variant_id;
