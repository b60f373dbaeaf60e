-- table: curated.customer_courier_conversations
-- Each order's courier and customer counts add up to its distinct valid messages in raw.
WITH messages AS (
  SELECT DISTINCT
    order_id, sender_app_type, customer_id, from_id, to_id, chat_started_by_message,
    order_stage, courier_id, message_sent_time
  FROM raw.customer_courier_chat_messages
),
per_order AS (
  SELECT order_id, COUNT(*) AS messages
  FROM messages
  GROUP BY order_id
)
SELECT c.order_id, c.num_messages_courier, c.num_messages_customer, p.messages
FROM curated.customer_courier_conversations AS c
LEFT JOIN per_order AS p USING (order_id)
WHERE p.messages IS NULL
  OR c.num_messages_courier + c.num_messages_customer != p.messages
