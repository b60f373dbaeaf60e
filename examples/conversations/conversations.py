"""``curated.customer_courier_conversations``: one row per order, rebuilt incrementally.

Each run finds the raw files (``ingest_date``/``source_file`` partitions) not yet folded into
the table, which ``curated.customer_courier_conversations_batches`` lists, and recomputes
exactly the orders they touch — orders with new messages, and orders with events whose city
may have changed through new ``orders`` records — from every event of those orders ever
received. The table is partitioned by ``city_code`` and a write replaces whole partitions, so
every partition holding a touched order (before or after) is rewritten: its untouched rows are
carried over from the current table. A first run, a run that finds either output missing,
and ``--full-refresh`` (once daglake passes it to Python tasks) recompute every order. Either
way the table equals a recomputation over all events ever received.
"""

from __future__ import annotations

from string import Template

import daglake
from daglake.context import TaskContext
from daglake.lake import lake_table
from daglake.lake.tables import quote_literal

TABLE = "curated.customer_courier_conversations"
BATCHES = "curated.customer_courier_conversations_batches"
MESSAGES = "raw.customer_courier_chat_messages"
ORDERS = "raw.orders"
COLUMNS = (
    "order_id",
    "city_code",
    "first_courier_message",
    "first_customer_message",
    "num_messages_courier",
    "num_messages_customer",
    "first_message_by",
    "conversation_started_at",
    "first_responsetime_delay_seconds",
    "last_message_time",
    "last_message_order_stage",
)

# Every raw file and its record count, for the batches table.
RAW_FILES = f"""
SELECT 'customer_courier_chat_messages' AS source, CAST(ingest_date AS DATE) AS ingest_date,
       source_file, count(*) AS records
FROM {MESSAGES} GROUP BY ALL
UNION ALL
SELECT 'orders', CAST(ingest_date AS DATE), source_file, count(*) FROM {ORDERS} GROUP BY ALL
"""

# Exact duplicates count once; a message is the courier's when fromId = courierId, otherwise the
# customer's (ingestion quarantined every other sender). The struct minimum picks the earliest
# message, on a tie the one with chatStartedByMessage, then 'courier' before 'customer'; the
# struct maximum picks the latest message, on a tie the greatest stage. An order's city comes
# from the latest run's orders records (greatest ingest_date); when that run's records disagree
# (two files, or two lines), the greatest city code in string order, whatever the files are
# called (checks/orders_with_two_cities.sql warns). $selected picks the orders being
# (re)computed.
CONVERSATIONS = f"""
WITH conversation_messages AS (SELECT * FROM {MESSAGES} WHERE $selected),
conversation_orders AS (SELECT * FROM {ORDERS} WHERE $selected),
events AS (
    SELECT DISTINCT * EXCLUDE (ingest_date, source_file, source_position)
    FROM conversation_messages
),
messages AS (
    SELECT
        order_id,
        message_sent_time AS sent,
        order_stage,
        chat_started_by_message,
        CASE WHEN from_id = courier_id THEN 'courier' ELSE 'customer' END AS sender
    FROM events
),
per_order AS (
    SELECT
        order_id,
        min(sent) FILTER (WHERE sender = 'courier') AS first_courier_message,
        min(sent) FILTER (WHERE sender = 'customer') AS first_customer_message,
        count(*) FILTER (WHERE sender = 'courier') AS num_messages_courier,
        count(*) FILTER (WHERE sender = 'customer') AS num_messages_customer,
        min({{'sent': sent, 'not_starter': NOT chat_started_by_message, 'sender': sender}}).sender
            AS first_message_by,
        min(sent) AS conversation_started_at,
        max(sent) AS last_message_time,
        max({{'sent': sent, 'stage': order_stage}}).stage AS last_message_order_stage
    FROM messages
    GROUP BY order_id
),
cities AS (
    SELECT
        order_id,
        max({{'ingest_date': ingest_date, 'city_code': city_code}}).city_code AS city_code
    FROM conversation_orders
    GROUP BY order_id
)
SELECT
    order_id,
    cities.city_code,
    first_courier_message,
    first_customer_message,
    num_messages_courier,
    num_messages_customer,
    first_message_by,
    conversation_started_at,
    (
        epoch_us(
            CASE first_message_by
                WHEN 'courier' THEN first_customer_message
                ELSE first_courier_message
            END
        ) - epoch_us(conversation_started_at)
    ) // 1000000 AS first_responsetime_delay_seconds,
    last_message_time,
    last_message_order_stage
FROM per_order LEFT JOIN cities USING (order_id)
"""
ALL_ORDERS = "TRUE"
TOUCHED_ORDERS = "order_id IN (SELECT order_id FROM conversation_touched)"


def conversations_of(selected: str) -> str:
    """The table's rows for the orders that the condition ``selected`` picks."""
    return Template(CONVERSATIONS).substitute(selected=selected)


def exists(ctx: TaskContext, table: str) -> bool:
    return lake_table(ctx.lake.root, table).exists()


@daglake.task(
    [TABLE, BATCHES], zone="curated", partition_by=["city_code"], inputs=[MESSAGES, ORDERS]
)
def customer_courier_conversations(ctx: TaskContext) -> None:
    """Temporary tables (``ctx.temp_table``) hold the files and orders of this run; the SQL is
    the project's dialect, so the task runs as it is on DuckDB and on Spark."""
    incremental = exists(ctx, TABLE) and exists(ctx, BATCHES) and not ctx.full_refresh
    unprocessed = (
        f"ANTI JOIN {BATCHES} USING (source, ingest_date, source_file)" if incremental else ""
    )
    new_files = ctx.temp_table(
        "conversation_files", f"SELECT * FROM ({RAW_FILES}) {unprocessed}"
    )
    ctx.metric("new_files", new_files)
    if incremental and new_files == 0:
        ctx.log.info("no raw file arrived since the last run: the table is up to date")
        recomputed = 0
    else:
        recomputed = rebuild_touched(ctx) if incremental else rebuild_all(ctx)
        record_batches(ctx, incremental)
    ctx.metric("orders_recomputed", recomputed)


def rebuild_all(ctx: TaskContext) -> int:
    ctx.log.info("recomputing every order from all raw events")
    sql = f"SELECT {', '.join(COLUMNS)} FROM ({conversations_of(ALL_ORDERS)})"
    return ctx.write(TABLE, sql, mode="replace") or 0


def rebuild_touched(ctx: TaskContext) -> int:
    """Recompute the orders the new files touch and rewrite the partitions they were or are in."""
    columns = ", ".join(COLUMNS)
    touched = ctx.temp_table(
        "conversation_touched",
        f"""
        SELECT DISTINCT order_id FROM {MESSAGES} m
        SEMI JOIN conversation_files f
            ON f.source = 'customer_courier_chat_messages'
            AND m.ingest_date = f.ingest_date AND m.source_file = f.source_file
        UNION
        SELECT order_id FROM {ORDERS} o
        SEMI JOIN conversation_files f
            ON f.source = 'orders' AND o.ingest_date = f.ingest_date AND o.source_file = f.source_file
        SEMI JOIN {TABLE} USING (order_id)
        """,
    )
    ctx.log.info("recomputing %d orders touched by new events or new orders records", touched)
    if touched == 0:
        return 0
    ctx.temp_table(
        "conversation_recomputed", f"SELECT {columns} FROM ({conversations_of(TOUCHED_ORDERS)})"
    )
    rewritten = ctx.temp_table(
        "conversation_partitions",
        f"""
        SELECT DISTINCT city_code FROM {TABLE} SEMI JOIN conversation_touched USING (order_id)
        UNION
        SELECT DISTINCT city_code FROM conversation_recomputed
        """,
    )
    # A partition whose every order moved to another city would be left as it is by a
    # partition overwrite (the new data holds none of its rows): rewrite the whole table then.
    emptied = ctx.fetch(f"""
        SELECT count(*) FROM (
            SELECT t.city_code FROM {TABLE} t LEFT JOIN conversation_touched c ON t.order_id = c.order_id
            GROUP BY t.city_code HAVING bool_and(c.order_id IS NOT NULL)
        ) p
        ANTI JOIN conversation_recomputed r ON p.city_code IS NOT DISTINCT FROM r.city_code
    """)[0][0]
    kept = f"SELECT {columns} FROM {TABLE} t ANTI JOIN conversation_touched USING (order_id)"
    if emptied:
        mode = "replace"
    else:
        mode = "overwrite_partitions"
        kept += (
            " SEMI JOIN conversation_partitions p ON t.city_code IS NOT DISTINCT FROM p.city_code"
        )
    ctx.log.info("rewriting %s", "the whole table" if emptied else f"{rewritten} partitions")
    ctx.metric("partitions_rewritten", rewritten)
    ctx.write(TABLE, f"{kept} UNION ALL SELECT {columns} FROM conversation_recomputed", mode=mode)
    return touched


def record_batches(ctx: TaskContext, incremental: bool) -> None:
    """List the raw files the table now reflects; written after the table, so a crash between
    the two only makes the next run recompute the same orders again."""
    earlier = f"SELECT * FROM {BATCHES} UNION ALL " if incremental else ""
    ctx.write(
        BATCHES,
        f"{earlier}SELECT source, ingest_date, source_file, records, "
        f"{quote_literal(ctx.run_id)} AS run_id, now() AS processed_at FROM conversation_files",
        partition_by=[],
        mode="replace",
    )
