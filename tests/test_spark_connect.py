"""Spark Connect (``sc://``): the products example run through a local Connect server gives
DuckDB's rows; the CLI is a subprocess, a thin gRPC client with no JVM of its own, and the tables
it wrote are read back from the warehouse's Parquet (this process opens no Connect session, so
it has none left to release once the server stops)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import duckdb

from tests.bigquery_emulator import comparable_rows, read_table
from tests.spark_connect import spark_connect
from tests.test_cli_e2e import BUILT_ROWS, COMMAND, SEED_ROWS, Result, copy_example, daglake

__all__ = ["spark_connect"]  # the fixture


def daglake_on_connect(*args: object) -> Result:
    """The CLI through the server, given longer than ``daglake()``'s 120 s: the server's first
    queries compile its code on two busy cores."""
    proc = subprocess.run([*COMMAND, *(str(a) for a in args)], capture_output=True, text=True, timeout=600, check=False)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback (most recent call last)" not in result.output, result.output
    return result


def warehouse_rows(root: Path, table: str) -> list[dict[str, Any]]:
    """A Spark warehouse table's current version, read by DuckDB."""
    schema, name = table.split(".")
    files = root / ".daglake/spark-warehouse" / schema / name / "**" / "*.parquet"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        cursor = con.execute(f"SELECT * FROM read_parquet('{files}')")
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def test_the_products_example_gives_the_same_rows_through_spark_connect(spark_connect: str, tmp_path: Path) -> None:
    root = copy_example(tmp_path, checks=True)
    config = root / "daglake.toml"
    config.write_text(config.read_text(encoding="utf-8") + f'\n[targets.connect]\nengine = "spark"\n\n[targets.connect.spark]\nmaster = "{spark_connect}"\n', encoding="utf-8")
    assert daglake("run", root).code == 0
    on_connect = daglake_on_connect("run", root, "--target", "connect", "--json")
    assert on_connect.code == 0, on_connect.output
    assert "CANNOT_MODIFY_CONFIG" not in on_connect.err  # only runtime SQL settings are sent
    assert {t["state"] for t in on_connect.json()["tasks"]} == {"success"}  # the checks pass too
    for table in [*SEED_ROWS, *BUILT_ROWS]:
        duck, connected = read_table(root, table), warehouse_rows(root, table)
        assert list(duck[0]) == list(connected[0]), table
        assert comparable_rows(duck) == comparable_rows(connected), table
    link = root / ".daglake/spark-warehouse/final/products"
    assert link.is_symlink() and link.readlink().name.startswith(".products.v")
