"""The spark engine as users meet it: the products example gives DuckDB's rows, BigQuery SQL
that sqlglot alone translates wrongly gives BigQuery's results on Spark and on DuckDB, Spark's
errors are one line at the file's line, Python tasks get the SparkSession."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daglake.engine_settings import DuckDBSettings, SparkSettings
from daglake.engines.base import Engine
from daglake.engines.duckdb import DuckDBEngine
from daglake.engines.spark import SparkEngine
from daglake.sql.translate import translate_query
from tests.bigquery_emulator import comparable_rows, read_table
from tests.postgres import free_port
from tests.spark_support import daglake_in_process, spark_target
from tests.test_cli_e2e import BUILT_ROWS, SEED_ROWS, copy_example, daglake


def test_the_products_example_gives_the_same_rows_on_duckdb_and_spark(spark: Any, tmp_path: Path) -> None:
    root = copy_example(tmp_path, checks=True)
    spark_target(root)
    assert daglake("run", root).code == 0
    on_spark = daglake_in_process("run", root, "--target", "spark", "--json")
    assert on_spark.code == 0, on_spark.output
    assert {t["state"] for t in on_spark.json()["tasks"]} == {"success"}  # the checks pass too
    for table in [*SEED_ROWS, *BUILT_ROWS]:
        duck, sparked = read_table(root, table), read_table(root, table, target="spark")
        assert list(duck[0]) == list(sparked[0]), table  # the same columns, in the same order
        assert comparable_rows(duck) == comparable_rows(sparked), table
    link = root / ".daglake/spark-warehouse/final/products"
    assert link.is_symlink() and link.readlink().name.startswith(".products.v")  # published by one rename


# (BigQuery SQL, the rows BigQuery gives): sqlglot's own translation to Spark differs in each
TRANSLATION_CASES = {
    "array_agg keeps its order": (
        "SELECT ARRAY_AGG(x ORDER BY k DESC) AS xs, ARRAY_AGG(x ORDER BY k LIMIT 2) AS first_two\n"
        "FROM UNNEST([STRUCT(1 AS k, 'a' AS x), STRUCT(3 AS k, 'c' AS x), STRUCT(2 AS k, 'b' AS x)])",
        [(["c", "b", "a"], ["a", "b"])],
    ),
    "weeks start on Sunday": (
        "SELECT DATE_TRUNC(DATE '2024-03-06', WEEK) AS wednesday, DATE_TRUNC(DATE '2024-03-03', WEEK) AS sunday,\n"
        "DATE_TRUNC(DATE '2024-03-06', WEEK(MONDAY)) AS monday_week, DATE_TRUNC(DATE '2024-03-06', ISOWEEK) AS iso,\n"
        "DATE_TRUNC(DATE '2024-03-06', WEEK(THURSDAY)) AS thursday_week",
        [(dt.date(2024, 3, 3), dt.date(2024, 3, 3), dt.date(2024, 3, 4), dt.date(2024, 3, 4), dt.date(2024, 2, 29))],
    ),
    "unnest of structs gives their fields as columns": (
        "SELECT u.a, b FROM UNNEST([STRUCT(1 AS a, 'x' AS b), STRUCT(2 AS a, 'y' AS b)]) AS u ORDER BY a",
        [(1, "x"), (2, "y")],
    ),
    "timestamps are read in UTC": (
        "SELECT EXTRACT(HOUR FROM TIMESTAMP '2024-01-01 23:30:00+00') AS hour,\n"
        "DATE(TIMESTAMP '2024-01-01 23:30:00+00') AS utc_day, DATE(TIMESTAMP '2024-01-01 23:30:00+00', 'Europe/Paris') AS paris_day,\n"
        "UNIX_SECONDS(TIMESTAMP '1970-01-02 00:00:00+00') AS seconds",
        [(23, dt.date(2024, 1, 1), dt.date(2024, 1, 2), 86400)],
    ),
    "@ds is a parameter": (
        "SELECT @ds AS ds, DATE_ADD(@ds, INTERVAL 1 MONTH) AS next_month",
        [(dt.date(2024, 2, 29), dt.date(2024, 3, 29))],
    ),
}


@pytest.fixture(scope="module")
def engines(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    root = tmp_path_factory.mktemp("translation")
    opened: dict[str, Engine] = {
        "duckdb": DuckDBEngine(DuckDBSettings(path=":memory:"), root),
        "spark": SparkEngine(SparkSettings(master="local[2]"), root),
    }
    for engine in opened.values():
        engine.set_variables({"ds": dt.date(2024, 2, 29)})
    yield opened
    for engine in opened.values():
        engine.close()


@pytest.mark.parametrize("case", list(TRANSLATION_CASES))
@pytest.mark.parametrize("name", ["duckdb", "spark"])
def test_bigquery_sql_gives_bigquery_results(engines: dict[str, Engine], name: str, case: str) -> None:
    sql, expected = TRANSLATION_CASES[case]
    engine = engines[name]
    _, rows = engine.fetch(translate_query(sql, "bigquery", engine.dialect))
    assert [tuple(row) for row in rows] == expected


def test_a_spark_sql_error_is_its_first_line_at_the_file_line(spark: Any, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    spark_target(root)
    (root / "res/tmp/broken.sql").write_text("-- reads a column that is not there\nSELECT\n  id,\n  no_such_column\nFROM `raw.products`\n")
    result = daglake_in_process("run", root, "--target", "spark", "--select", "+tmp.broken", "--select", "+tmp.stock_levels", "--json")
    assert result.code == 1
    tasks = {t["name"]: t for t in result.json()["tasks"]}
    broken = tasks["tmp.broken"]
    assert broken["location"] == "res/tmp/broken.sql:4"
    assert broken["error"].startswith("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name `no_such_column` cannot be resolved")
    assert "\n" not in broken["error"] and "org.apache" not in broken["error"] and "SQLSTATE" not in broken["error"]
    assert tasks["tmp.stock_levels"]["state"] == "success"  # another branch finishes
    assert "tmp.broken" not in {t.qualified for t in SparkEngine(SparkSettings(), root).warehouse.tables()}


def test_an_unreachable_master_is_one_clear_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    port = free_port()
    config = root / "daglake.toml"
    config.write_text(config.read_text() + f'\n[engine.spark]\nmaster = "spark://127.0.0.1:{port}"\n')
    result = daglake("run", root, "--engine", "spark")
    assert result.code == 2, result.output
    assert result.err_lines() == [f"error: engine.spark.master = 'spark://127.0.0.1:{port}': cannot reach 127.0.0.1:{port} (Connection refused)"]


PYTHON_TASK = '''
import daglake


@daglake.task("tmp.brands", inputs=["raw.products"])
def brands(ctx):
    from pyspark.sql import SparkSession

    assert isinstance(ctx.native, SparkSession)
    frame = ctx.table("raw.products").groupBy("brand").count()
    ctx.write("tmp.brands", frame)


@daglake.task("tmp.brand_names", inputs=["raw.products"])
def brand_names(ctx):
    return ctx.sql("SELECT DISTINCT brand FROM `raw.products` WHERE @ds > DATE '2000-01-01'")
'''


def test_python_tasks_get_the_spark_session_and_write_through_it(spark: Any, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    spark_target(root)
    (root / "res/tmp/brands.py").write_text(PYTHON_TASK)
    result = daglake_in_process("run", root, "--target", "spark", "--select", "+tmp.brands", "--select", "+tmp.brand_names", "--json")
    assert result.code == 0, result.output
    brands = {row["brand"]: row["count"] for row in read_table(root, "tmp.brands", target="spark")}
    assert brands["Alpina"] == 3 and sum(brands.values()) == SEED_ROWS["raw.products"]
    assert len(read_table(root, "tmp.brand_names", target="spark")) == len(brands)


def test_ddl_becomes_version_writes_and_delete_is_refused(spark: Any, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    spark_target(root)
    (root / "res/tmp/ledger.sql").write_text(
        "CREATE OR REPLACE TABLE tmp.ledger (id INT64, what STRING);\n"
        "INSERT INTO tmp.ledger SELECT 1, 'first';\n"
        "INSERT INTO tmp.ledger SELECT id + 1, 'second' FROM tmp.ledger;\n"
    )
    (root / "res/tmp/purge.sql").write_text("-- Parquet tables cannot delete rows\nDELETE FROM tmp.ledger WHERE id = 1;\n")
    result = daglake_in_process("run", root, "--target", "spark", "--select", "+res/tmp/purge.sql", "--json")
    tasks = {t["name"]: t for t in result.json()["tasks"]}
    assert tasks["tmp.ledger"]["state"] == "success", tasks["tmp.ledger"]["error"]
    rows = sorted((r["id"], r["what"]) for r in read_table(root, "tmp.ledger", target="spark"))
    assert rows == [(1, "first"), (2, "second")]
    [purge] = [t for name, t in tasks.items() if name != "tmp.ledger"]  # a DELETE is named by its file
    assert purge["state"] == "failed"
    assert purge["error"].startswith("DELETE is not available on the spark engine's Parquet tables")


TEMP_TABLE_TASKS = '''
import threading

import daglake

both_hold_theirs = threading.Barrier(2, timeout=120)  # the two tasks overlap, whatever the engine


def pick(ctx, condition):
    first = ctx.temp_table("picked", f"SELECT id, brand FROM `raw.products` WHERE {condition}")
    both_hold_theirs.wait()
    kept = ctx.temp_table("picked", "SELECT id, brand FROM picked WHERE id > 2")  # reads the earlier one
    [(counted,)] = ctx.fetch("SELECT COUNT(*) FROM picked AS p WHERE p.id > 2")
    both_hold_theirs.wait()
    assert kept == counted, (kept, counted)
    ctx.write(ctx.outputs[0], f"SELECT id, brand, {first} AS first_rows, {counted} AS counted FROM picked")


@daglake.task("tmp.even_products", inputs=["raw.products"])
def even_products(ctx):
    pick(ctx, "MOD(id, 2) = 0")


@daglake.task("tmp.odd_products", inputs=["raw.products"])
def odd_products(ctx):
    pick(ctx, "MOD(id, 2) = 1")


@daglake.task("tmp.after_picking", inputs=["tmp.even_products", "tmp.odd_products"])
def after_picking(ctx):
    """On a worker that ran one of the two: their temporary tables are gone."""
    if hasattr(ctx.native, "catalog"):  # a SparkSession
        left = [t.name for t in ctx.native.catalog.listTables() if t.isTemporary]
    else:
        left = [r[0] for r in ctx.native.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()]
    return ctx.sql(f"SELECT {len(left)} AS temp_tables_left")
'''


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_temp_tables_are_each_tasks_own_and_dropped_when_it_ends(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    root = copy_example(tmp_path)
    (root / "res/tmp/picked.py").write_text(TEMP_TABLE_TASKS)
    target = []
    if engine == "spark":
        request.getfixturevalue("spark")
        spark_target(root)
        target = ["--target", "spark"]
    selected = ["--select", "+tmp.after_picking"]
    result = daglake_in_process("run", root, *target, *selected, "--workers", "2", "--json")
    assert result.code == 0, result.output
    on = "spark" if engine == "spark" else None
    ids = {
        parity: sorted((r["id"], r["first_rows"], r["counted"]) for r in read_table(root, f"tmp.{parity}_products", target=on))
        for parity in ("even", "odd")
    }
    products = sorted(r["id"] for r in read_table(root, "raw.products", target=on))
    evens, odds = [i for i in products if i % 2 == 0], [i for i in products if i % 2 == 1]
    assert [i for i, _, _ in ids["even"]] == [i for i in evens if i > 2]
    assert [i for i, _, _ in ids["odd"]] == [i for i in odds if i > 2]
    assert {(f, c) for _, f, c in ids["even"]} == {(len(evens), len([i for i in evens if i > 2]))}
    assert read_table(root, "tmp.after_picking", target=on) == [{"temp_tables_left": 0}]
