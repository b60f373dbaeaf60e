"""Audit before publish (SPEC §4): a table's error-severity checks run on its new version before
anyone can read it; a failure keeps the previous version, keeps the new one as the candidate
(``daglake show TABLE --candidate``) and blocks the readers. The same on every engine."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from daglake.lake.tables import CRASH_AT_ENV
from tests.bigquery_emulator import Emulator, bigquery_target, read_table
from tests.spark_support import daglake_in_process, spark_target
from tests.test_cli_e2e import COMMAND, Result, daglake

CONFIG = """[project]
name = "audit"
dialect = "bigquery"

[checks."{table}"]
not_null = ["city"]
unique = ["id"]
expression = ["amount >= 0"]
warn = ["expression"]
"""
LAKE = '\n[tasks."res/staging/orders.sql"]\nzone = "staging"\npartition_by = ["city"]\n'
GOOD = [(1, "PAR", 10), (2, "LYO", 20)]
NULL_CITY = [(1, "PAR", 11), (2, None, 21), (3, "LYO", 31)]  # fails not_null(city): an error
NEGATIVE = [(1, "PAR", 12), (2, "LYO", -5)]  # fails expression(amount >= 0): a warning


def _orders_sql(rows: list[tuple[int, str | None, int]]) -> str:
    def city(value: str | None) -> str:
        return "CAST(NULL AS STRING)" if value is None else f"'{value}'"

    structs = ", ".join(f"STRUCT({i} AS id, {city(c)} AS city, {a} AS amount)" for i, c, a in rows)
    return f"SELECT id, city, amount FROM UNNEST([{structs}])\n"


def _project(root: Path, table: str = "tmp.orders") -> Path:
    dataset = table.split(".")[0]
    (root / "res" / dataset).mkdir(parents=True)
    (root / "res" / "final").mkdir(parents=True)
    config = CONFIG.format(table=table) + (LAKE if dataset == "staging" else "")
    (root / "daglake.toml").write_text(config, encoding="utf-8")
    (root / "res" / "final" / "report.sql").write_text(
        f"SELECT city, SUM(amount) AS total FROM {table} GROUP BY city\n", encoding="utf-8"
    )
    _deliver(root, GOOD, table)
    return root


def _deliver(root: Path, rows: list[tuple[int, str | None, int]], table: str = "tmp.orders") -> None:
    dataset, name = table.split(".")
    (root / "res" / dataset / f"{name}.sql").write_text(_orders_sql(rows), encoding="utf-8")


def _states(result: Result) -> dict[str, dict[str, Any]]:
    summary = json.loads(result.out)
    return {task["name"]: task for task in summary["tasks"]}


def _rows(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((int(r["id"]), r["city"], int(r["amount"])) for r in found)


Run = Callable[..., Result]


def _audit_keeps_the_previous_version(root: Path, run: Run, rows: Callable[[str], list[tuple[Any, ...]]], table: str) -> None:
    """The scenario every engine must pass: good, refused, warned, good again."""
    first = run("run", root, "--json")
    assert first.code == 0, first.output
    assert rows(table) == GOOD

    _deliver(root, NULL_CITY, table)
    refused = run("run", root, "--json")
    assert refused.code == 1, refused.output
    states = _states(refused)
    assert states[table]["state"] == "failed"
    assert "not published" in states[table]["error"] and "not_null(city)" in states[table]["error"]
    assert states["final.report"]["state"] == "upstream_failed"
    assert rows(table) == GOOD  # readers still see the previous version, row for row
    shown = run("show", table, root, "--candidate", "-n", "10")
    assert shown.code == 0, shown.output
    assert "31" in shown.out and "NULL" in shown.out  # the refused rows: amount 31, the NULL city

    _deliver(root, NEGATIVE, table)  # only a warning fails: published anyway
    warned = run("run", root, "--json")
    assert warned.code == 0, warned.output
    assert rows(table) == sorted(NEGATIVE)
    assert _states(warned)["final.report"]["state"] == "success"
    gone = run("show", table, root, "--candidate")
    assert gone.code == 2 and "has no candidate" in gone.err  # dropped by the successful build


def test_duckdb_keeps_the_previous_warehouse_table(tmp_path: Path) -> None:
    root = _project(tmp_path / "audit")
    _audit_keeps_the_previous_version(root, daglake, lambda t: _rows(read_table(root, t)), "tmp.orders")


def test_checks_of_an_unchanged_table_are_not_run_again(tmp_path: Path) -> None:
    """An unchanged table is not audited again, and its check tasks are skipped; a changed one
    is audited once, its check tasks reusing the audit's results."""
    root = _project(tmp_path / "audit")
    first = daglake("run", root, "--json")
    assert first.code == 0, first.output
    checks = {name for name, task in _states(first).items() if task["kind"] == "check"}
    assert len(checks) == 3 and all(_states(first)[c]["state"] == "success" for c in checks)

    again = _states(daglake("run", root, "--json"))
    assert {c: again[c]["state"] for c in checks} == dict.fromkeys(checks, "skipped")
    assert all(again[c]["reason"].startswith("unchanged since run ") for c in checks)
    logs = list((root / ".daglake" / "logs").rglob("*.log"))
    audited = [p for p in logs if "-- audit " in p.read_text(encoding="utf-8")]
    assert len(audited) == 1  # the first run's only

    _deliver(root, NULL_CITY)
    refused = _states(daglake("run", root, "--json"))
    assert refused["tmp.orders"]["state"] == "failed"
    states = {c.split(": ")[1]: refused[c]["state"] for c in checks}  # the audited ones ran, once
    assert states == {"not_null(city)": "failed", "unique(id)": "success", "expression(amount >= 0)": "upstream_failed"}


def _lake_rows(root: Path) -> list[tuple[Any, ...]]:
    glob = str(root / "lake" / "staging" / "orders" / "**" / "*.parquet")
    found = duckdb.sql(f"SELECT id, city, amount FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()
    return sorted((int(i), c, int(a)) for i, c, a in found)


def test_duckdb_keeps_the_previous_lake_version(tmp_path: Path) -> None:
    root = _project(tmp_path / "audit", "staging.orders")
    _audit_keeps_the_previous_version(root, daglake, lambda _: _lake_rows(root), "staging.orders")


@pytest.mark.parametrize("table", ["tmp.orders", "staging.orders"])
def test_kill_9_during_the_audit_leaves_the_previous_version(tmp_path: Path, table: str) -> None:
    root = _project(tmp_path / "audit", table)
    assert daglake("run", root).code == 0
    before = _lake_rows(root) if table.startswith("staging") else _rows(read_table(root, table))
    _deliver(root, NULL_CITY, table)
    killed = subprocess.run(
        [*COMMAND, "run", str(root)], env=os.environ | {CRASH_AT_ENV: "audit"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    after = _lake_rows(root) if table.startswith("staging") else _rows(read_table(root, table))
    assert after == before == GOOD
    _deliver(root, GOOD[:1], table)
    again = daglake("run", root)  # the next run is not held back by the killed one
    assert again.code == 0, again.output


def test_spark_keeps_the_previous_version(spark: Any, tmp_path: Path) -> None:
    root = _project(tmp_path / "audit")
    spark_target(root)

    def on_spark(*args: object) -> Result:
        return daglake_in_process(*args, "--target", "spark") if args[0] in ("run", "show") else daglake_in_process(*args)

    _audit_keeps_the_previous_version(root, on_spark, lambda t: _rows(read_table(root, t, target="spark")), "tmp.orders")


def test_bigquery_keeps_the_previous_version(bq_emulator: Emulator, tmp_path: Path) -> None:
    root = _project(tmp_path / "audit")
    bigquery_target(root, bq_emulator.url, bq_emulator.prefix())

    def on_bigquery(*args: object) -> Result:
        return daglake(*args, "--target", "emu")

    _audit_keeps_the_previous_version(root, on_bigquery, lambda t: _rows(read_table(root, t, target="emu")), "tmp.orders")
