"""Shared by the courier-chat tests: a copy of the example project, monthly deliveries into
its ``input/`` folder, its lake tables read back, and an independent pure-Python computation
of what ``curated.customer_courier_conversations`` must hold."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from daglake.events import RunSummary
from daglake.runner import RunOptions, run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "conversations"
MESSAGES = "customer_courier_chat_messages"
ORDERS = "orders"
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
MESSAGE_TYPES: dict[str, type] = {
    "senderAppType": str,
    "customerId": int,
    "fromId": int,
    "toId": int,
    "chatStartedByMessage": bool,
    "orderId": int,
    "orderStage": str,
    "courierId": int,
    "messageSentTime": str,
}
ORDER_TYPES: dict[str, type] = {"orderId": int, "cityCode": str}

Row = tuple[Any, ...]


def copy_example(target: Path) -> Path:
    """The example project as shipped, without anything a local run left in it."""
    shutil.copytree(
        EXAMPLE, target, ignore=shutil.ignore_patterns("lake", ".daglake", "__pycache__")
    )
    for path in (target / "input").iterdir():
        if path.name != ".gitignore":
            path.unlink()
    return target


def deliver(project: Path, files: dict[str, list[str]]) -> None:
    """Replace the input folder's files: ``{file name: records as JSON texts}``; a ``.json``
    file is written as an array, ``.gz`` gzipped, anything else one record per line."""
    folder = project / "input"
    for path in folder.iterdir():
        if path.name != ".gitignore":
            path.unlink()
    for name, records in files.items():
        array = name.removesuffix(".gz").endswith(".json")
        text = (
            ("[\n" + ",\n".join(records) + "\n]\n") if array else "".join(r + "\n" for r in records)
        )
        data = text.encode()
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)


def run_pipeline(
    project: Path, date: str, *, full_refresh: bool = False, engine: str | None = None
) -> RunSummary:
    """A run that must succeed; ``engine="spark"`` is ``--engine spark`` (the process's shared
    SparkSession: take the ``spark`` fixture)."""
    summary = run(
        project, RunOptions(logical_date=date, full_refresh=full_refresh, engine=engine)
    )
    failed = {
        n: (t.state, t.error)
        for n, t in summary.tasks.items()
        if t.state not in ("success", "warned")
    }
    assert not failed, failed
    return summary


def lake(project: Path, table: str, sql: str = "SELECT * FROM t") -> list[Row]:
    zone, name = table.split(".")
    glob = project / "lake" / zone / name / "**" / "*.parquet"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"CREATE VIEW t AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
        )
        return con.execute(sql).fetchall()


def conversations(project: Path) -> set[Row]:
    return set(
        lake(
            project, "curated.customer_courier_conversations", f"SELECT {', '.join(COLUMNS)} FROM t"
        )
    )


def quarantined(project: Path, source: str) -> set[Row]:
    """``(ingest_date, source_file, source_position, reason)`` of every quarantined record."""
    return set(
        lake(
            project,
            f"quarantine.{source}",
            "SELECT ingest_date::VARCHAR, source_file, source_position, reason FROM t",
        )
    )


# -- the reference computation ---------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """One delivered file as the lake knows it: the run's date, its name and its records."""

    ingest_date: str
    file: str
    records: list[str]


def parse(text: str, types: dict[str, type]) -> dict[str, Any] | None:
    """The record if it is valid by the example's contract, else None; an independent reading
    of it (Python's json and datetime), not daglake's SQL."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    for name, kind in types.items():
        value = record.get(name)
        if value is None or type(value) is not kind:
            return None
    if "messageSentTime" in types:
        try:
            sent = dt.datetime.fromisoformat(record["messageSentTime"])
        except ValueError:
            return None
        record["messageSentTime"] = sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)
        if record["fromId"] not in (record["courierId"], record["customerId"]):
            return None
    return record


def invalid_positions(
    deliveries: Iterable[Delivered], types: dict[str, type]
) -> set[tuple[str, str, int]]:
    return {
        (d.ingest_date, d.file, position)
        for d in deliveries
        for position, text in enumerate(d.records, start=1)
        if parse(text, types) is None
    }


def expected_conversations(messages: Iterable[Delivered], orders: Iterable[Delivered]) -> set[Row]:
    """The table computed from scratch: one row per order with valid messages."""
    events: dict[int, set[tuple[Any, ...]]] = {}
    for delivery in messages:
        for text in delivery.records:
            record = parse(text, MESSAGE_TYPES)
            if record is not None:
                events.setdefault(record["orderId"], set()).add(
                    tuple(record[f] for f in MESSAGE_TYPES)
                )
    cities: dict[int, tuple[tuple[str, str], str]] = {}
    for delivery in orders:
        for text in delivery.records:
            record = parse(text, ORDER_TYPES)
            if record is None:
                continue
            received = (delivery.ingest_date, record["cityCode"])  # the latest run, then the greatest city
            known = cities.get(record["orderId"])
            if known is None or known[0] < received:
                cities[record["orderId"]] = (received, record["cityCode"])
    rows = set()
    for order_id, unique in events.items():
        messages_ = [
            (e[8], "courier" if e[2] == e[7] else "customer", e[4], e[6]) for e in unique
        ]  # (sent, sender, chat started, stage)
        by = {s: sorted(m[0] for m in messages_ if m[1] == s) for s in ("courier", "customer")}
        started, first_by, _, _ = min(messages_, key=lambda m: (m[0], not m[2], m[1]))
        last, _, _, last_stage = max(messages_, key=lambda m: (m[0], m[3]))
        other = by["customer" if first_by == "courier" else "courier"]
        rows.add(
            (
                order_id,
                cities[order_id][1] if order_id in cities else None,
                by["courier"][0] if by["courier"] else None,
                by["customer"][0] if by["customer"] else None,
                len(by["courier"]),
                len(by["customer"]),
                first_by,
                started,
                int((other[0] - started).total_seconds()) if other else None,
                last,
                last_stage,
            )
        )
    return rows
