SELECT o.order_id, line.currency
FROM `tmp.orders` AS o, UNNEST(o.items) AS line
