"""One folder of hostile deliveries, one expected result: the same raw rows, the same quarantine
reasons and the same file and position for every bad record on DuckDB and on Spark.

``tests/fixtures/ingest_golden/input/`` holds wrong JSON types, blank and whitespace lines, a
truncated line, a byte order mark, integers beyond INT64 and UINT64, objects and arrays where
scalars belong, times RFC 3339 accepts and refuses, keys given twice (the first value counts),
a line that is not UTF-8, CRLF endings, JSON arrays (one opening with a byte order mark), a good, a truncated and a not-really-gzip ``.gz`` and an empty file.
``expected.json`` is what both engines must give (regenerate it with ``DAGLAKE_GOLDEN=write``
on DuckDB, then read the diff: it is the contract)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from daglake.runner import RunOptions, run
from tests.conftest import ProjectFactory
from tests.spark_support import spark_target

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "ingest_golden"

PIPELINE = '''
import daglake
from daglake.lake import Rule, ingest_json, land_and_pending

SCHEMA = {"orderId": "INT64", "fromId": "INT64", "courierId": "INT64", "customerId": "INT64",
          "sent": "TIMESTAMP", "text": "STRING", "urgent": "BOOL", "amount": "NUMERIC",
          "score": "FLOAT64", "day": "DATE"}


@daglake.task(["raw.messages", "quarantine.messages"], zone="raw")
def messages(ctx):
    delivered = sorted((ctx.project_root / "input").iterdir())
    files = land_and_pending(ctx, "chat", delivered, table="raw.messages", quarantine="quarantine.messages")
    ingest_json(
        ctx, files, table="raw.messages", quarantine="quarantine.messages", schema=SCHEMA,
        optional=["text", "amount", "score", "day"],
        rules=[Rule("sender is neither the courier nor the customer", "from_id IN (courier_id, customer_id)")],
    )
'''

RAW = """
SELECT source_file, source_position, order_id, from_id, courier_id, customer_id,
       strftime(sent, '%Y-%m-%d %H:%M:%S.%f') AS sent, text, urgent, CAST(amount AS VARCHAR) AS amount,
       score, CAST(day AS VARCHAR) AS day
FROM read_parquet('{lake}/raw/messages/**/*.parquet', hive_partitioning = true)
ORDER BY source_file, source_position
"""
QUARANTINE = """
SELECT source_file, source_position, reason, record
FROM read_parquet('{lake}/quarantine/messages/**/*.parquet', hive_partitioning = true)
ORDER BY source_file, source_position
"""


def _rows(lake: Path, sql: str) -> list[list[Any]]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return [list(row) for row in con.execute(sql.format(lake=lake)).fetchall()]


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_both_engines_give_the_golden_result(engine: str, make_project: ProjectFactory, request: pytest.FixtureRequest) -> None:
    root = make_project({"pipeline.py": PIPELINE})
    shutil.copytree(GOLDEN / "input", root / "input")
    options = RunOptions(logical_date="2024-01-31")
    if engine == "spark":
        request.getfixturevalue("spark")
        spark_target(root)
        options = RunOptions(logical_date="2024-01-31", target="spark")
    summary = run(root, options)
    task = summary.tasks["raw.messages"]
    assert summary.state == "success", task.error
    assert summary.engine == engine
    found = {
        "metrics": task.metrics,
        "raw": _rows(root / "lake", RAW),
        "quarantine": _rows(root / "lake", QUARANTINE),
    }
    expected_path = GOLDEN / "expected.json"
    if engine == "duckdb" and os.environ.get("DAGLAKE_GOLDEN") == "write":
        expected_path.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert found["quarantine"] == expected["quarantine"]
    assert found["metrics"] == expected["metrics"]
    assert found["quarantine"] == expected["quarantine"]
    assert found["raw"] == expected["raw"]
    metrics = expected["metrics"]
    assert metrics["input"] == metrics["accepted"] + metrics["quarantined"]
    assert metrics["accepted"] == len(expected["raw"]) and metrics["quarantined"] == len(expected["quarantine"])


def test_spark_line_numbers_are_exact_across_splits(spark: Any, tmp_path: Path) -> None:
    """A file read in many splits (1 kB each, several per task): every line keeps its number,
    blank lines counted, a line cut by a split boundary read once, by the split it starts in."""
    from daglake.engines.spark_json import _numbered_lines

    lines = [("" if n % 7 == 0 else json.dumps({"n": n, "pad": "x" * (n % 50)})) for n in range(1, 2001)]
    path = tmp_path / "big.jsonl"
    path.write_text("\r\n".join(lines[:1000]) + "\r\n" + "\n".join(lines[1000:]) + "\n", encoding="utf-8")
    before = {k: spark.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")}
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1024")
    spark.conf.set("spark.sql.files.openCostInBytes", "0")
    try:
        assert spark.read.text(str(path)).rdd.getNumPartitions() > 20
        frame = _numbered_lines(spark, {3: path})
        assert frame.rdd.getNumPartitions() > 20  # typed where it was read, not in one task
        found = sorted((r.source_position, r.record) for r in frame.collect())
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)
    assert found == list(enumerate(lines, start=1))
