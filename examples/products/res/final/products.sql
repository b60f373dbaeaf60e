-- The product catalogue for the web shop and merchandising: one row per product, its
-- category, supplier and sales figures, and its variants nested with price, stock and sales.
WITH variant_rollup AS (
  SELECT
    product_id,
    COUNT(*) AS variant_count,
    MIN(list_price) AS min_list_price,
    MAX(list_price) AS max_list_price,
    SUM(stock_on_hand) AS stock_on_hand,
    COUNTIF(NOT is_in_stock) AS variants_out_of_stock,
    LOGICAL_OR(is_in_stock) AS is_in_stock,
    SUM(units_sold) AS units_sold,
    SUM(net_revenue) AS net_revenue,
    SUM(cost_of_goods_sold) AS cost_of_goods_sold,
    ARRAY_AGG(
      STRUCT(
        variant_id,
        sku,
        color,
        size,
        list_price,
        unit_cost_eur,
        stock_on_hand,
        warehouses,
        units_sold,
        net_revenue,
        is_in_stock
      )
      ORDER BY variant_id
    ) AS variants
  FROM `tmp.variants`
  GROUP BY 1
)

SELECT
  p.id AS product_id,
  p.sku,
  p.name,
  p.brand,
  c.category_name AS category,
  c.department_name AS department,
  c.path AS category_path,
  STRUCT(
    s.supplier_id AS id,
    s.supplier_name AS name,
    s.country,
    s.lead_time_days
  ) AS supplier,
  p.launched_on,
  p.is_discontinued,
  IFNULL(v.variant_count, 0) AS variant_count,
  v.min_list_price,
  v.max_list_price,
  IFNULL(v.stock_on_hand, 0) AS stock_on_hand,
  IFNULL(v.variants_out_of_stock, 0) AS variants_out_of_stock,
  IFNULL(v.is_in_stock, FALSE) AS is_in_stock,
  IFNULL(v.units_sold, 0) AS units_sold,
  IFNULL(v.net_revenue, 0) AS net_revenue,
  ROUND(v.net_revenue - v.cost_of_goods_sold, 2) AS gross_margin,
  ROUND(SAFE_DIVIDE(v.net_revenue - v.cost_of_goods_sold, v.net_revenue) * 100, 1) AS gross_margin_pct,
  RANK() OVER (PARTITION BY p.category_id ORDER BY IFNULL(v.net_revenue, 0) DESC) AS revenue_rank_in_category,
  IFNULL(v.variants, []) AS variants
FROM `raw.products` AS p
LEFT JOIN variant_rollup AS v ON v.product_id = p.id
LEFT JOIN `tmp.category_tree` AS c ON c.category_id = p.category_id
LEFT JOIN `tmp.supplier_summary` AS s ON s.supplier_id = p.supplier_id
