-- Sales per variant: completed units and revenue, returns, and the variant's share of
-- its product's revenue.
SELECT
  s.variant_id,
  i.product_id,
  COUNT(DISTINCT IF(s.status = 'completed', s.order_id, NULL)) AS orders,
  SUM(IF(s.status = 'completed', s.quantity, 0)) AS units_sold,
  SUM(IF(s.status = 'returned', s.quantity, 0)) AS units_returned,
  COUNTIF(s.status = 'returned') AS returned_lines,
  SUM(IF(s.status = 'completed', s.net_amount, 0)) AS net_revenue,
  ROUND(
    SAFE_DIVIDE(
      SUM(IF(s.status = 'completed', s.net_amount, 0)),
      SUM(SUM(IF(s.status = 'completed', s.net_amount, 0))) OVER (PARTITION BY i.product_id)
    ) * 100,
    1
  ) AS pct_of_product_revenue,
  MIN(IF(s.status = 'completed', s.order_date, NULL)) AS first_sold_on,
  MAX(IF(s.status = 'completed', s.order_date, NULL)) AS last_sold_on
FROM `tmp.sales_lines` AS s
JOIN `tmp.inventory_items` AS i USING (variant_id)
GROUP BY 1, 2
