-- One row per sellable item (product variant) with the product attributes it inherits.
SELECT
  v.id AS variant_id,
  v.product_id,
  p.sku AS product_sku,
  v.sku,
  p.name AS product_name,
  p.brand,
  p.category_id,
  p.supplier_id,
  v.color,
  v.size,
  SAFE_CAST(v.size AS INT64) AS shoe_size_eu,  -- NULL for S/M/L and one-size items
  v.list_price,
  v.weight_kg,
  p.is_discontinued
FROM `raw.product_variants` AS v
JOIN `my-project.raw.products` AS p
  ON p.id = v.product_id
