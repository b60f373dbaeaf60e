-- One row per supplier: what we buy from them and at what average cost.
SELECT
  s.id AS supplier_id,
  s.name AS supplier_name,
  s.country,
  s.lead_time_days,
  s.is_active,
  COUNT(DISTINCT i.product_id) AS products,
  COUNT(DISTINCT i.variant_id) AS variants,
  ROUND(AVG(pp.unit_cost_eur), 2) AS avg_unit_cost_eur,
  MAX(pp.valid_from) AS last_price_change_on,
  STRING_AGG(DISTINCT pp.currency, ', ') AS currencies
FROM `raw.suppliers` AS s
LEFT JOIN `tmp.inventory_items` AS i ON i.supplier_id = s.id
LEFT JOIN `tmp.item_purchase_prices` AS pp ON pp.variant_id = i.variant_id
GROUP BY 1, 2, 3, 4, 5
