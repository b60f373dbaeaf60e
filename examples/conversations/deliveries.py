"""Ingestion: files dropped in ``input/`` are landed as delivered, then typed into ``raw``;
every record that fails validation goes to ``quarantine`` with its reason and position.

A file is recognised by its name (``customer_courier_chat_messages*`` or ``orders*``, ending in
``.json``, ``.jsonl`` or ``.ndjson``, optionally ``.gz``). A file delivered again with the same
content is landed once and ingested once, so re-running a month adds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import daglake
from daglake.context import TaskContext
from daglake.lake import Rule, ingest_json, lake_table, land_and_pending
from daglake.lake.ingest import write_empty

INPUT = "input"
JSON_FILE = re.compile(r"\.(json|jsonl|ndjson)(\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """One kind of delivered file and how its records are typed and validated."""

    name: str  # the landing source and the raw/quarantine table name
    schema: dict[str, str]
    rules: tuple[Rule, ...] = ()

    @property
    def raw(self) -> str:
        return f"raw.{self.name}"

    @property
    def quarantine(self) -> str:
        return f"quarantine.{self.name}"

    def delivered(self, project_root: Path) -> list[Path]:
        """This source's files in ``input/``."""
        folder = project_root / INPUT
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file()
            and p.name.startswith(self.name)
            and JSON_FILE.search(p.name)
        )


MESSAGES = Source(
    "customer_courier_chat_messages",
    {
        "senderAppType": "STRING",
        "customerId": "INT64",
        "fromId": "INT64",
        "toId": "INT64",
        "chatStartedByMessage": "BOOL",
        "orderId": "INT64",
        "orderStage": "STRING",
        "courierId": "INT64",
        "messageSentTime": "TIMESTAMP",
    },
    (
        Rule(
            "sender is neither the courier nor the customer", "from_id IN (courier_id, customer_id)"
        ),
    ),
)
ORDERS = Source("orders", {"orderId": "INT64", "cityCode": "STRING"})


def ingest(ctx: TaskContext, source: Source) -> None:
    delivered = source.delivered(ctx.project_root)
    files = land_and_pending(
        ctx, source.name, delivered, table=source.raw, quarantine=source.quarantine
    )
    if files:
        ingest_json(
            ctx,
            files,
            table=source.raw,
            quarantine=source.quarantine,
            schema=source.schema,
            rules=source.rules,
        )
    elif not lake_table(ctx.lake.root, source.raw).exists():
        write_empty(ctx, table=source.raw, schema=source.schema)


@daglake.task([MESSAGES.raw, MESSAGES.quarantine], zone="raw")
def customer_courier_chat_messages(ctx: TaskContext) -> None:
    ingest(ctx, MESSAGES)


@daglake.task([ORDERS.raw, ORDERS.quarantine], zone="raw")
def orders(ctx: TaskContext) -> None:
    ingest(ctx, ORDERS)
