"""Every kind of check (SPEC §8) run on Spark against the warehouse of tests/test_checks.py,
copied into Spark's versioned Parquet tables: each passes or fails as it does on DuckDB, with
the same count and sample."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pytest

from daglake.checks import CheckResult, CheckSpec, run_check
from daglake.engine_settings import SparkSettings
from daglake.engines.base import Output
from daglake.engines.spark import SparkEngine
from daglake.engines.spark_tables import SparkWrites, as_frame
from tests.conftest import ProjectFactory
from tests.test_checks import CASES, NOW, WAREHOUSE, declared, one, sorted_json

EVENTS = "CREATE TABLE final.events AS SELECT TIMESTAMPTZ '2024-01-01 06:00:00+00' AS at, DATE '2024-01-01' AS day"


@pytest.fixture(scope="module")
def engine(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkEngine]:
    """A Spark warehouse holding test_checks.py's tables (and final.events), written as a task
    writes them."""
    root = tmp_path_factory.mktemp("spark_checks")
    spark_engine = SparkEngine(SparkSettings(master="local[2]"), root)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(WAREHOUSE)
        con.execute(EVENTS)
        names = [f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()]
        writes = SparkWrites(spark_engine.spark, spark_engine.warehouse)
        for name in names:
            writes.write(Output(name), as_frame(spark_engine.spark, con.sql(f"SELECT * FROM {name}").to_arrow_table()))
        writes.publish()
    yield spark_engine
    spark_engine.close()


def on_spark(engine: SparkEngine, spec: CheckSpec, now: datetime = NOW) -> CheckResult:
    return run_check(spec, engine.fetch, engine.dialect, now=now)


def utc_text(rows: list[dict[str, Any]], columns: set[str]) -> list[dict[str, Any]]:
    """``columns`` of ``rows``, times as UTC text without an offset (DuckDB's naive TIMESTAMP
    and Spark's zoned one show the same instant)."""
    shown = [{k: row[k].removesuffix("+00:00") if isinstance(row[k], str) else row[k] for k in columns} for row in rows]
    return sorted(shown, key=sorted_json)


@pytest.mark.parametrize(("declaration", "failing", "sample"), CASES)
def test_each_kind_passes_or_fails_on_spark_as_on_duckdb(
    make_project: ProjectFactory, engine: SparkEngine, declaration: str, failing: int, sample: list[dict[str, Any]]
) -> None:
    result = on_spark(engine, one(make_project, declaration))
    assert result.error is None
    assert (result.passed, result.failing) == (failing == 0, failing)
    columns: set[str] = set().union(*sample)
    assert utc_text(result.sample, columns) == utc_text(sample, columns)


def test_freshness_of_a_date_and_a_timestamp_column_on_spark(make_project: ProjectFactory, engine: SparkEngine) -> None:
    """Spark's UNIX_SECONDS refuses a DATE: the check casts the column to TIMESTAMP first."""
    for column, fresh_until in (("at", "2024-01-02 18:00"), ("day", "2024-01-02 12:00")):
        spec = one(make_project, f'freshness = {{ column = "{column}", max_age = "1d12h" }}', "final.events")
        fresh = on_spark(engine, spec, datetime.fromisoformat(fresh_until + "+00:00"))
        assert (fresh.error, fresh.passed) == (None, True)
        late = on_spark(engine, spec, datetime.fromisoformat(fresh_until + ":01+00:00"))
        assert (late.error, late.passed, late.failing) == (None, False, 1)
    empty = on_spark(engine, one(make_project, 'freshness = { column = "updated_at", max_age = "1w" }', "final.empty"))
    assert (empty.passed, empty.sample) == (False, [{"latest": None, "cutoff": "2023-12-26T12:00:00+00:00", "max_age": "1w"}])


def test_sql_check_files_on_spark(make_project: ProjectFactory, engine: SparkEngine) -> None:
    specs, problems = declared(
        make_project,
        {
            "checks/margins.sql": "SELECT product_id, margin_pct\nFROM `final.products`\nWHERE SAFE_CAST(margin_pct AS INT64) > 100\n",
            "checks/suppliers.sql": "-- table: final.products\nSELECT s.id FROM raw.suppliers AS s\n"
            "LEFT JOIN final.products AS p ON p.supplier_id = s.id\nWHERE p.supplier_id IS NULL AND s.id IS NOT NULL\n",
        },
    )
    assert problems == []
    margins, suppliers = sorted(specs, key=lambda s: s.name)
    failed = on_spark(engine, margins)
    assert (failed.error, failed.failing, failed.sample) == (None, 1, [{"product_id": 3, "margin_pct": 150.0}])
    assert on_spark(engine, suppliers).passed


def test_a_check_that_cannot_run_on_spark_fails_with_sparks_first_line(make_project: ProjectFactory, engine: SparkEngine) -> None:
    result = on_spark(engine, one(make_project, 'not_null = ["no_such_column"]'))
    assert not result.passed and result.error is not None
    assert result.error.startswith("[UNRESOLVED_COLUMN") and "\n" not in result.error
