"""What finding the version of a table daglake did not build costs on each engine ("only what
changed runs", SPEC §4): ``Engine.source_versions`` timed on tables of growing size.

- DuckDB: ``count(*)`` and ``sum(hash(row))``, one scan.
- BigQuery (the emulator): a ``tables.get`` per table for last-modified time and row count
  (what real BigQuery is asked), and apart the content query only the emulator gets.
- Spark (``local[2]``): a version folder's name and file listing (what daglake's tables get),
  and apart the content fingerprint (``count(*)``, ``sum(xxhash64(*))``) other tables get.

Each figure is the median of ``--repeat`` calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import REPO_DIR, machine, table

sys.path.insert(0, str(REPO_DIR))


def seconds(value: float) -> str:
    return f"{value * 1000:.2f} ms" if value < 0.01 else f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def timed(call: Callable[[], Any], repeat: int) -> float:
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def three_columns(rows: int) -> str:
    return f"SELECT x, CAST(x AS STRING) AS s, x * 1.5 AS f FROM UNNEST(GENERATE_ARRAY(1, {rows})) AS x"


def duckdb_rows(sizes: list[int], repeat: int, scratch: Path) -> list[list[object]]:
    from daglake.engine_settings import DuckDBSettings
    from daglake.engines.duckdb import DuckDBEngine

    found: list[list[object]] = []
    with DuckDBEngine(DuckDBSettings(path=str(scratch / "w.duckdb")), scratch) as engine:
        engine.create_schemas({"ext"})
        for rows in sizes:
            engine.fetch(f"CREATE OR REPLACE TABLE ext.t{rows} AS SELECT range AS x, range::VARCHAR AS s, range * 1.5 AS f FROM range({rows})")
            found.append(["duckdb: count + sum(hash), one scan", f"{rows:,}", seconds(timed(lambda r=rows: engine.source_versions([f"ext.t{r}"]), repeat))])
    return found


def bigquery_rows(sizes: list[int], tables: list[int], repeat: int, scratch: Path) -> list[list[object]]:
    from tests.bigquery_emulator import PROJECT, emulator_python, start_emulator

    from daglake.engine_settings import BigQuerySettings
    from daglake.engines.bigquery import BigQueryEngine
    from daglake.engines.bigquery_versions import content_versions, metadata_versions

    emulator = start_emulator(emulator_python(), scratch / "emulator.log")
    found: list[list[object]] = []
    try:
        settings = BigQuerySettings(project=PROJECT, api_endpoint=emulator.url, dataset_prefix="b_", retry_deadline=20)
        with BigQueryEngine(settings, scratch) as engine:
            engine.create_schemas({"ext"})
            for rows in sizes:
                engine.fetch(f"CREATE OR REPLACE TABLE ext.t{rows} AS {three_columns(rows)}")
                names = [f"ext.t{rows}"]
                meta = timed(lambda n=names: metadata_versions(engine, n), repeat)
                content = timed(lambda n=names: content_versions(engine, dict.fromkeys(n, "v")), repeat)
                found.append(["bigquery: tables.get (1 table)", f"{rows:,}", seconds(meta)])
                found.append(["emulator only: content query", f"{rows:,}", seconds(content)])
            for count in tables:
                for index in range(count):
                    engine.fetch(f"CREATE OR REPLACE TABLE ext.n{index} AS SELECT 1 AS x")
                names = [f"ext.n{index}" for index in range(count)]
                meta = timed(lambda n=names: metadata_versions(engine, n), repeat)
                content = timed(lambda n=names: content_versions(engine, dict.fromkeys(n, "v")), repeat)
                found.append([f"bigquery: tables.get ({count} tables, 8 at a time)", "1 each", seconds(meta)])
                found.append([f"emulator only: content query ({count} tables, one job)", "1 each", seconds(content)])
    finally:
        emulator.stop()
    return found


def spark_rows(sizes: list[int], repeat: int, scratch: Path) -> list[list[object]]:
    from daglake.engine_settings import SparkSettings
    from daglake.engines.spark import SparkEngine
    from daglake.engines.spark_tables import content_versions, folder_version, register
    from daglake.lake.tables import new_version, publish

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {"spark.sql.shuffle.partitions": "2", "spark.sql.adaptive.enabled": "false"}
    engine = SparkEngine(SparkSettings(master="local[2]", conf=conf), scratch)
    spark = engine.spark
    found: list[list[object]] = []
    for rows in sizes:
        table = engine.warehouse.table(f"ext.t{rows}")
        version = new_version(table)
        frame = spark.range(rows).selectExpr("id AS x", "CAST(id AS STRING) AS s", "id * 1.5 AS f")
        frame.write.mode("append").parquet(str(version))
        publish(table, version)
        register(spark, table)
        files = sum(1 for _ in table.current_version().rglob("*.parquet"))  # type: ignore[union-attr]
        listing = timed(lambda t=table: folder_version(t.current_version()), repeat)
        content = timed(lambda t=table: content_versions(spark, [t.qualified]), repeat)
        found.append([f"spark: version folder + listing ({files} files)", f"{rows:,}", seconds(listing)])
        found.append(["spark: content fingerprint, one scan", f"{rows:,}", seconds(content)])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000,10000000", help="table sizes, comma separated")
    parser.add_argument("--emulator-rows", default="10000,100000", help="table sizes on the emulator")
    parser.add_argument("--tables", default="10,100", help="how many one-row tables at once on the emulator")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-bigquery", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.rows.split(",")]
    print(machine(), flush=True)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="daglake-versions-") as scratch:
        rows += duckdb_rows(sizes, args.repeat, Path(scratch))
        if not args.skip_bigquery:
            emulator_sizes = [int(s) for s in args.emulator_rows.split(",")]
            tables = [int(s) for s in args.tables.split(",")]
            rows += bigquery_rows(emulator_sizes, tables, args.repeat, Path(scratch))
        if not args.skip_spark:
            rows += spark_rows(sizes, args.repeat, Path(scratch))
    print(table(["source version", "rows", "median"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
