"""The courier-chat example as shipped, run with ``--engine spark`` and with DuckDB on the same
generated deliveries (duplicates, late events, orders without a city, invalid records of every
kind): the same curated table, batches, raw rows, quarantine and check outcomes. The monthly
late-event batches and re-runs on Spark are tests/test_conversations_incremental.py's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from daglake.examples.conversations.generate import main as generate
from tests.conversations_support import (
    MESSAGES,
    ORDERS,
    conversations,
    copy_example,
    lake,
    quarantined,
)
from tests.spark_support import daglake_in_process

RAW_MESSAGES = "raw.customer_courier_chat_messages"
BATCHES = "curated.customer_courier_conversations_batches"


def tables(project: Path) -> dict[str, Any]:
    """What a run leaves in the lake, as sets of rows (the run's id and time apart)."""
    return {
        "conversations": conversations(project),
        "batches": set(lake(project, BATCHES, "SELECT source, ingest_date, source_file, records FROM t")),
        "raw messages": set(lake(project, RAW_MESSAGES)),
        "raw orders": set(lake(project, "raw.orders")),
        "quarantine": (quarantined(project, MESSAGES), quarantined(project, ORDERS)),
    }


def test_the_example_gives_the_same_tables_on_duckdb_and_spark(spark: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert generate(f"--messages 400 --months 1 --seed 11 --out {data} --bad-share 0.05".split()) == 0
    [month] = list(data.iterdir())
    found: dict[str, dict[str, Any]] = {}
    states: dict[str, dict[str, str]] = {}
    for engine in ("duckdb", "spark"):
        project = copy_example(tmp_path / engine)
        for path in month.iterdir():
            shutil.copy(path, project / "input" / path.name)
        result = daglake_in_process("run", project, "--engine", engine, "--date", f"{month.name}-28", "--json")
        assert result.code == 0, result.output
        states[engine] = {t["name"]: t["state"] for t in result.json()["tasks"]}
        found[engine] = tables(project)
    assert states["spark"] == states["duckdb"]
    assert set(states["duckdb"].values()) == {"success", "warned"}  # orders without a city warn
    for name, rows in found["duckdb"].items():
        assert rows, name
        assert found["spark"][name] == rows, name
