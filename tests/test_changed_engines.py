"""Only what changed runs (SPEC §4) on BigQuery (the emulator) and Spark (local mode): the
project of tests/test_changed.py, its scenarios in one sequence per engine, since a first run
there costs seconds. A source daglake did not build is changed behind its back the way a user
would: DML through BigQuery's client, ``INSERT INTO`` through Spark's catalog. Then what each
engine's source versions rest on: a Spark catalog table's content, the emulator's metadata gap,
and builds keyed by where an engine's tables are."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tests.bigquery_emulator import PROJECT, Emulator, bigquery_target
from tests.spark_support import daglake_in_process, spark_target
from tests.test_changed import FILES, VOLATILE, ran
from tests.test_cli_e2e import Result, daglake

Cli = Callable[..., Result]


def _files(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    return root


def _run(cli: Cli, root: Path, *args: str) -> dict[str, Any]:
    done = cli("run", root, "--json", *args)
    assert done.code == 0, done.output
    summary: dict[str, Any] = json.loads(done.out)
    return summary


def _explained(cli: Cli, root: Path) -> dict[str, tuple[str, str]]:
    done = cli("run", root, "--explain", "--json")
    assert done.code == 0, done.output
    return {t["task"]: (t["action"], t["reason"]) for t in json.loads(done.out)["tasks"]}


def _only_what_changed_runs(cli: Cli, root: Path, change_source: Callable[[], None]) -> None:
    """What every engine must do: a first run builds all; an unchanged re-run skips all but
    the CURRENT_DATE task; a changed file runs it and its downstream; a source changed behind
    daglake's back runs its reader, which ``--explain`` names without running anything."""
    first = _run(cli, root)
    assert ran(first) == {t["name"] for t in first["tasks"]}

    again = _run(cli, root)
    assert ran(again) == VOLATILE
    reasons = {t["name"]: t["reason"] for t in again["tasks"]}
    assert reasons["tmp.ext"] == f"unchanged since run {first['run_id']}"

    (root / "res/tmp/b.sql").write_text("SELECT id, id * 2 AS twice FROM tmp.a\n")
    assert ran(_run(cli, root)) == {"tmp.b", "tmp.c"} | VOLATILE

    change_source()
    explained = _explained(cli, root)
    assert {t for t, (action, _) in explained.items() if action == "run"} == {"tmp.ext"} | VOLATILE
    assert explained["tmp.ext"][1] == "input ext.outside changed"
    assert explained["tmp.today"][1] == "volatile: calls CURRENT_DATE"
    assert explained["tmp.a"] == ("skip", f"unchanged since run {first['run_id']}")
    assert ran(_run(cli, root)) == {"tmp.ext"} | VOLATILE  # --explain ran nothing
    assert ran(_run(cli, root)) == VOLATILE


def _client(emulator: Emulator) -> bigquery.Client:
    options = ClientOptions(api_endpoint=emulator.url)
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), client_options=options)  # type: ignore[no-untyped-call]


def test_only_what_changed_runs_on_bigquery(bq_emulator: Emulator, tmp_path: Path) -> None:
    from tests.api_support import start_server

    root = _files(tmp_path / "p")
    prefix = bq_emulator.prefix()
    bigquery_target(root, bq_emulator.url, prefix)
    client = _client(bq_emulator)
    client.create_dataset(f"{prefix}ext")
    client.query(f"CREATE TABLE `{prefix}ext.outside` AS SELECT 1 AS x").result()

    def on_bigquery(*args: object) -> Result:
        return daglake(*args, "--target", "emu") if args[0] == "run" else daglake(*args)

    def insert() -> None:  # DML: the emulator's metadata does not follow it, the content does
        client.query(f"INSERT INTO `{prefix}ext.outside` VALUES (2)").result()

    _only_what_changed_runs(on_bigquery, root, insert)

    server = start_server(root, "--target", "emu")  # an append rebuilds the readers of its table
    try:
        with server.client() as api:
            assert api.post("/events", params={"id": "3", "kind": "c"}).status_code == 201
            assert ran(api.post("/run", params={"wait": "true"}).json()) == {"tmp.a", "tmp.b", "tmp.c"} | VOLATILE
            assert ran(api.post("/run", params={"wait": "true"}).json()) == VOLATILE
    finally:
        server.stop()


def test_only_what_changed_runs_on_spark(spark: Any, tmp_path: Path) -> None:
    from daglake.engines.spark_tables import Warehouse
    from daglake.lake.tables import new_version, publish

    root = _files(tmp_path / "p")
    spark_target(root)
    outside = Warehouse(root / ".daglake" / "spark-warehouse").table("ext.outside")  # another tool's table
    version = new_version(outside)
    pq.write_table(pa.table({"x": pa.array([1], pa.int64())}), version / "part-0.parquet")
    publish(outside, version)

    def on_spark(*args: object) -> Result:
        return daglake_in_process(*args, "--target", "spark") if args[0] == "run" else daglake_in_process(*args)

    def insert() -> None:  # into the published folder, through the table daglake registered
        spark.sql("INSERT INTO ext.outside VALUES (2)").collect()

    _only_what_changed_runs(on_spark, root, insert)


def test_builds_are_keyed_by_where_the_tables_are_not_by_how_they_are_reached() -> None:
    """A build on one target says nothing of another's tables; new credentials, limits,
    retries, threads or a Spark master say nothing of any table (nothing is rebuilt)."""
    from dataclasses import replace

    from daglake.changes import engine_key
    from daglake.engine_settings import (
        BigQuerySettings,
        DuckDBSettings,
        EngineSettings,
        SparkSettings,
    )

    same: list[tuple[EngineSettings, dict[str, Any]]] = [
        (BigQuerySettings(project="p"), {"credentials": "key.json", "retry_deadline": 5, "maximum_bytes_billed": 10, "price_per_tib": 1}),
        (DuckDBSettings(), {"threads": 2, "memory_limit": "1GB"}),
        (SparkSettings(), {"master": "spark://cluster:7077"}),
    ]
    for settings, changes in same:
        assert engine_key(replace(settings, **changes)) == engine_key(settings)
    other: list[tuple[EngineSettings, dict[str, Any]]] = [
        (BigQuerySettings(project="p"), {"project": "q"}),
        (BigQuerySettings(project="p"), {"dataset_prefix": "dev_"}),
        (BigQuerySettings(project="p"), {"api_endpoint": "http://127.0.0.1:9050"}),
        (DuckDBSettings(), {"path": "other.duckdb"}),
        (SparkSettings(), {"conf": {"spark.sql.ansi.enabled": "false"}}),
    ]
    for settings, changes in other:
        assert engine_key(replace(settings, **changes)) != engine_key(settings), changes
    assert engine_key(DuckDBSettings()).startswith("duckdb:")


def test_spark_fingerprints_a_catalog_table_outside_the_warehouse_by_its_content(spark: Any, tmp_path: Path) -> None:
    """A table of the session's catalog that is no daglake folder (a cluster's metastore): row
    count and the sum of row hashes, which an insert changes; an unknown table: None."""
    from daglake.engine_settings import SparkSettings
    from daglake.engines.spark import SparkEngine
    from tests.spark_support import TEST_CONF

    engine = SparkEngine(SparkSettings(master="local[2]", conf=TEST_CONF), tmp_path)
    assert engine.source_versions(["metastore.orders"]) == {"metastore.orders": None}  # no session: not looked for
    session = engine.spark
    session.sql("CREATE DATABASE metastore")
    session.sql("CREATE TABLE metastore.orders USING parquet AS SELECT 1 AS id, 'a' AS kind").collect()
    before = engine.source_versions(["metastore.orders", "metastore.nowhere"])
    assert before["metastore.nowhere"] is None and (before["metastore.orders"] or "").startswith("spark:1:")
    assert engine.source_versions(["metastore.orders"]) == {"metastore.orders": before["metastore.orders"]}
    session.sql("INSERT INTO metastore.orders VALUES (1, 'a')").collect()  # the same row again
    after = engine.source_versions(["metastore.orders"])["metastore.orders"]
    assert after is not None and after.startswith("spark:2:") and after != before["metastore.orders"]


def test_the_emulators_metadata_ignores_dml_so_its_versions_read_the_content(bq_emulator: Emulator, tmp_path: Path) -> None:
    """Why an emulator target adds a content fingerprint: bqemulator keeps a table's modified
    time and row count as created whatever DML follows (BigQuery updates both). When this
    fails, the emulator learnt it, and the content query can go."""
    from daglake.engine_settings import BigQuerySettings
    from daglake.engines.bigquery import BigQueryEngine
    from daglake.engines.bigquery_versions import metadata_versions

    prefix = bq_emulator.prefix()
    settings = BigQuerySettings(project=PROJECT, api_endpoint=bq_emulator.url, dataset_prefix=prefix, retry_deadline=20)
    with BigQueryEngine(settings, tmp_path) as engine:
        engine.create_schemas({"ext"})
        engine.fetch("CREATE TABLE ext.outside AS SELECT 1 AS x")
        names = ["ext.outside", "ext.nowhere"]
        metadata, versions = metadata_versions(engine, names), engine.source_versions(names)
        assert metadata["ext.nowhere"] is None and versions["ext.nowhere"] is None
        engine.fetch("INSERT INTO ext.outside VALUES (2)")
        assert metadata_versions(engine, names) == metadata  # the gap
        assert engine.source_versions(names)["ext.outside"] != versions["ext.outside"]
