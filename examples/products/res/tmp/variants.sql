-- One row per variant with its current cost, stock and sales: the grain of final.products.variants.
SELECT
  i.variant_id,
  i.product_id,
  i.sku,
  i.color,
  i.size,
  i.shoe_size_eu,
  i.list_price,
  i.weight_kg,
  pp.unit_cost_eur,
  pp.cost_change_pct,
  ROUND(i.list_price - pp.unit_cost_eur, 2) AS unit_margin_eur,
  IFNULL(st.on_hand, 0) AS stock_on_hand,
  st.warehouses,
  st.last_receipt_at,
  IFNULL(ps.units_sold, 0) AS units_sold,
  IFNULL(ps.units_returned, 0) AS units_returned,
  IFNULL(ps.net_revenue, 0) AS net_revenue,
  ps.last_sold_on,
  IFNULL(ps.units_sold, 0) * pp.unit_cost_eur AS cost_of_goods_sold,
  IFNULL(st.on_hand, 0) > 0 AS is_in_stock
FROM `tmp.inventory_items` AS i
LEFT JOIN `tmp.item_purchase_prices` AS pp USING (variant_id)
LEFT JOIN `tmp.stock_levels` AS st USING (variant_id)
LEFT JOIN `tmp.product_sales` AS ps USING (variant_id)
