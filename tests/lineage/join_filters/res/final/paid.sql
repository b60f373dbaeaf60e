-- join keys and the WHERE are filters, not sources; a union branch adds its own
SELECT o.id, c.country, o.amount
FROM `raw.orders` AS o
JOIN `raw.customers` AS c ON o.customer_id = c.id
WHERE o.status = 'paid'
UNION ALL
SELECT id, 'unknown', amount FROM `raw.orders` WHERE customer_id IS NULL
