-- table: curated.customer_courier_conversations
-- Reconciliation against raw, for the orders the latest batch of raw files touched (every
-- order on a full run; rows of other orders did not change and were checked when written):
-- each such order has a row, each row has events, and its courier and customer counts add
-- up to its distinct valid messages.
WITH latest_files AS (
  SELECT ingest_date, source_file
  FROM curated.customer_courier_conversations_batches
  WHERE source = 'customer_courier_chat_messages'
    AND run_id = (
      SELECT run_id FROM curated.customer_courier_conversations_batches
      ORDER BY processed_at DESC, run_id DESC
      LIMIT 1
    )
),
touched AS (
  SELECT DISTINCT m.order_id
  FROM raw.customer_courier_chat_messages AS m
  JOIN latest_files AS f
    ON m.ingest_date = f.ingest_date AND m.source_file = f.source_file
),
-- a message is its whole record: counting its distinct 64-bit hashes per order is exact
-- unless two different messages of one order collide (odds ~1e-18), and 2.5x cheaper than
-- DISTINCT over nine columns
per_order AS (
  SELECT order_id, COUNT(*) AS messages
  FROM (
    SELECT DISTINCT order_id, hash(
      sender_app_type, customer_id, from_id, to_id, chat_started_by_message,
      order_stage, courier_id, message_sent_time
    )
    FROM raw.customer_courier_chat_messages
    WHERE order_id IN (SELECT order_id FROM touched)
  )
  GROUP BY order_id
),
rows_of_touched AS (
  SELECT order_id, num_messages_courier, num_messages_customer
  FROM curated.customer_courier_conversations
  WHERE order_id IN (SELECT order_id FROM touched)
)
SELECT
  COALESCE(c.order_id, p.order_id) AS order_id,
  CASE
    WHEN c.order_id IS NULL THEN 'an order with events has no row'
    WHEN p.order_id IS NULL THEN 'a row has no events in raw'
    ELSE 'courier + customer messages differ from the distinct messages in raw'
  END AS problem,
  c.num_messages_courier,
  c.num_messages_customer,
  p.messages
FROM rows_of_touched AS c
FULL OUTER JOIN per_order AS p ON c.order_id = p.order_id
WHERE c.order_id IS NULL
  OR p.order_id IS NULL
  OR c.num_messages_courier + c.num_messages_customer != p.messages
