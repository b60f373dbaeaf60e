-- table: tmp.stock_levels
-- Stock per variant must equal the sum of its per-warehouse stock: any row here is a bug.
SELECT s.variant_id, s.on_hand, SUM(w.on_hand) AS by_warehouse
FROM tmp.stock_levels AS s, UNNEST(s.warehouses) AS w
GROUP BY 1, 2
HAVING s.on_hand <> SUM(w.on_hand)
