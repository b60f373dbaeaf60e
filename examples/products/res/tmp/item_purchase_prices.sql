-- Current purchase price of each variant, converted to EUR, and how much it moved
-- compared with the previous price of the same variant.
WITH fx AS (
  SELECT 'EUR' AS currency, NUMERIC '1' AS eur_rate
  UNION ALL SELECT 'USD', NUMERIC '0.92'
  UNION ALL SELECT 'SEK', NUMERIC '0.087'
),

price_history AS (
  SELECT
    pp.variant_id,
    pp.supplier_id,
    pp.currency,
    pp.unit_cost,
    ROUND(pp.unit_cost * fx.eur_rate, 2) AS unit_cost_eur,
    pp.valid_from,
    LAG(pp.unit_cost) OVER (PARTITION BY pp.variant_id ORDER BY pp.valid_from) AS previous_unit_cost,
    COUNT(*) OVER (PARTITION BY pp.variant_id) AS price_versions
  FROM `my-project.raw.purchase_prices` AS pp
  JOIN fx USING (currency)
)

SELECT
  variant_id,
  supplier_id,
  currency,
  unit_cost,
  unit_cost_eur,
  valid_from,
  previous_unit_cost,
  ROUND(SAFE_DIVIDE(unit_cost - previous_unit_cost, previous_unit_cost) * 100, 1) AS cost_change_pct,
  price_versions - 1 AS price_changes
FROM price_history
QUALIFY ROW_NUMBER() OVER (PARTITION BY variant_id ORDER BY valid_from DESC) = 1
