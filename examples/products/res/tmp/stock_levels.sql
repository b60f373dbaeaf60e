-- Stock on hand per variant, in total and per warehouse, from the movement ledger.
WITH signed_movements AS (
  SELECT
    variant_id,
    warehouse,
    CASE movement_type
      WHEN 'receipt' THEN quantity
      WHEN 'return' THEN quantity
      WHEN 'transfer_in' THEN quantity
      WHEN 'shipment' THEN -quantity
      WHEN 'transfer_out' THEN -quantity
      WHEN 'adjustment' THEN quantity  -- adjustments carry their own sign
    END AS delta,
    movement_type,
    moved_at
  FROM `raw.stock_movements`
),

by_warehouse AS (
  SELECT
    variant_id,
    warehouse,
    SUM(delta) AS on_hand,
    MAX(IF(movement_type = 'receipt', moved_at, NULL)) AS last_receipt_at,
    MAX(moved_at) AS last_movement_at
  FROM signed_movements
  GROUP BY 1, 2
)

SELECT
  variant_id,
  SUM(on_hand) AS on_hand,
  ARRAY_AGG(STRUCT(warehouse, on_hand) ORDER BY warehouse) AS warehouses,
  MAX(last_receipt_at) AS last_receipt_at,
  MAX(last_movement_at) AS last_movement_at
FROM by_warehouse
GROUP BY 1
