SELECT order_id, ARRAY_AGG(STRUCT(i.price, i.currency)) AS items
FROM `raw.items` AS i
WHERE i.note IS NOT NULL
GROUP BY order_id
