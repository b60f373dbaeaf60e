-- Order lines that were not cancelled, with their net amount and local order date.
SELECT
  order_id,
  line_no,
  variant_id,
  DATE(ordered_at, 'Europe/Paris') AS order_date,
  status,
  quantity,
  unit_price,
  discount_amount,
  quantity * unit_price - discount_amount AS net_amount
FROM `raw.order_lines`
WHERE status != 'cancelled'
