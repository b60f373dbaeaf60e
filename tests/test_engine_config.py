"""Engines and targets in daglake.toml: one settings table per engine, named targets, ``${ENV}``
values, ``--engine``/``--target``; every mistake reported with its line."""

from __future__ import annotations

import pytest

from daglake.config import engine_settings, load_config
from daglake.engine_settings import BigQuerySettings, DuckDBSettings, SparkSettings
from daglake.engines import REGISTRY, create_engine
from daglake.errors import Problem, TaskError, UsageError
from tests.conftest import ProjectFactory
from tests.test_cli_e2e import daglake

CONFIG = """
[engine]
name = "duckdb"

[engine.duckdb]
path = ".daglake/main.duckdb"
threads = 2

[targets.dev]
[targets.dev.duckdb]
path = "${DAGLAKE_TEST_HOME}/dev.duckdb"
memory_limit = "1GB"
"""


def config_of(make_project: ProjectFactory, text: str) -> tuple[object, list[Problem]]:
    root = make_project({"daglake.toml": text})
    problems: list[Problem] = []
    return load_config(root, problems), problems


def test_each_engine_has_its_own_table_and_targets_layer_on_it(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLAKE_TEST_HOME", "/srv/me")
    monkeypatch.delenv("DAGLAKE_TARGET", raising=False)
    config, problems = config_of(make_project, CONFIG)
    assert problems == []
    assert engine_settings(config) == DuckDBSettings(path=".daglake/main.duckdb", threads=2)  # type: ignore[arg-type]
    assert engine_settings(config, target="dev") == DuckDBSettings(  # type: ignore[arg-type]
        path="/srv/me/dev.duckdb", threads=2, memory_limit="1GB"
    )
    monkeypatch.setenv("DAGLAKE_TARGET", "dev")
    assert engine_settings(config).path == "/srv/me/dev.duckdb"  # type: ignore[arg-type, attr-defined]


def test_round_one_short_form_is_duckdb_s(make_project: ProjectFactory) -> None:
    config, problems = config_of(make_project, '[engine]\npath = "w.duckdb"\nmemory_limit = "2GB"\n')
    assert problems == []
    assert engine_settings(config) == DuckDBSettings(path="w.duckdb", memory_limit="2GB")  # type: ignore[arg-type]


def test_every_mistake_in_engine_and_target_tables_has_its_line(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    text = (
        "[engine]\n"  # 1
        'name = "oracle"\n'  # 2
        "[engine.duckdb]\n"  # 3
        "threads = 0\n"  # 4
        "colour = 1\n"  # 5
        'path = "${NOT_SET_ANYWHERE}/w.duckdb"\n'  # 6
        "[targets.prod]\n"  # 7
        'engine = "nosuch"\n'  # 8
        "[targets.dev]\n"  # 9
        "region = 1\n"  # 10
    )
    _, problems = config_of(make_project, text)
    assert [str(p) for p in problems] == [
        "daglake.toml:2: unknown engine 'oracle' (known: duckdb, bigquery, spark)",
        "daglake.toml:4: engine.duckdb.threads must be at least 1",
        "daglake.toml:5: unknown key 'colour' for the duckdb engine (known: memory_limit, path, threads)",
        "daglake.toml:6: engine.duckdb.path reads the environment variable NOT_SET_ANYWHERE, which is not set",
        "daglake.toml:8: unknown engine 'nosuch' (known: duckdb, bigquery, spark)",
        "daglake.toml:10: unknown key 'region' in [targets.dev] (known: engine, duckdb, bigquery, spark)",
    ]


def test_bigquery_settings_validate_their_keys_before_any_client_is_imported() -> None:
    reported: list[tuple[str, str]] = []
    settings = BigQuerySettings.from_table(
        {"project": "acme", "dataset_prefix": "dev-x", "maximum_bytes_billed": -1, "price_per_tib": 5, "zone": "eu"},
        lambda key, message: reported.append((key, message)),
    )
    assert settings == BigQuerySettings(project="acme", price_per_tib=5)
    assert reported == [
        ("dataset_prefix", "dataset_prefix 'dev-x' may hold only letters, digits and underscores"),
        ("maximum_bytes_billed", "maximum_bytes_billed must be at least 0"),
        ("zone", "unknown key 'zone' for the bigquery engine (known: api_endpoint, credentials, dataset_prefix, "
         "location, maximum_bytes_billed, price_per_tib, project, retry_deadline)"),
    ]


def test_unknown_target_and_engine_with_target_are_usage_errors(make_project: ProjectFactory) -> None:
    config, _ = config_of(make_project, CONFIG)
    with pytest.raises(UsageError, match=r"unknown target 'prod' \(known: dev\)"):
        engine_settings(config, target="prod")
    with pytest.raises(UsageError, match="--engine and --target cannot be used together"):
        engine_settings(config, engine="duckdb", target="dev")
    with pytest.raises(UsageError, match=r"unknown engine 'oracle' \(available: duckdb, bigquery, spark\)"):
        engine_settings(config, engine="oracle")


def test_the_registry_opens_an_engine_from_its_settings(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    with create_engine(DuckDBSettings(path="w.duckdb", threads=1), root) as engine:
        assert engine.name == "duckdb"
        assert engine.fetch("SELECT current_setting('threads')") == (["current_setting('threads')"], [(1,)])
    assert (root / "w.duckdb").exists()
    assert set(REGISTRY) == {"duckdb", "bigquery", "spark"}
    assert REGISTRY["bigquery"].module == "daglake.engines.bigquery"  # imported only when opened
    assert REGISTRY["spark"].lake and not REGISTRY["bigquery"].lake


def test_spark_settings_are_checked_without_starting_spark(make_project: ProjectFactory) -> None:
    text = '[engine.spark]\nmaster = "locale"\nconf = { "spark.x" = [1] }\nwarehouse = 3\n'
    _, problems = config_of(make_project, text)
    assert [str(p) for p in problems] == [
        "daglake.toml:2: engine.spark.master 'locale' is not a Spark master URL (local[*], local[N], spark://host:port, sc://host:port, yarn, k8s://…)",
        "daglake.toml:3: engine.spark.conf values must be strings, numbers or booleans (spark.x is not)",
        "daglake.toml:4: engine.spark.warehouse must be a string",
    ]
    config, problems = config_of(make_project, '[engine.spark]\nmaster = "spark://10.0.0.1:7077"\nconf = { "spark.executor.memory" = "4g" }\n')
    assert problems == []
    assert engine_settings(config, engine="spark") == SparkSettings(master="spark://10.0.0.1:7077", conf={"spark.executor.memory": "4g"})  # type: ignore[arg-type]


def test_run_and_show_take_a_target_from_the_cli(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "daglake.toml": '[targets.other]\n[targets.other.duckdb]\npath = ".daglake/other.duckdb"\n',
            "res/tmp/one.sql": "SELECT 1 AS one",
        }
    )
    assert daglake("run", root, "--target", "other").code == 0
    assert (root / ".daglake" / "other.duckdb").exists()
    assert not (root / ".daglake" / "warehouse.duckdb").exists()
    shown = daglake("show", "tmp.one", root, "--target", "other")
    assert shown.code == 0 and "one" in shown.out
    refused = daglake("run", root, "--target", "nosuch")
    assert (refused.code, refused.err_lines()) == (2, ["error: unknown target 'nosuch' (known: other)"])
    missing = daglake("show", "tmp.one", root)  # the default warehouse was never built
    assert missing.code == 2 and "does not exist" in missing.err


def test_an_engine_error_is_structured_not_text_to_parse(tmp_path: object) -> None:
    """path, line and the name DuckDB complains about travel as fields; the run history's
    ``path:line`` is rendered from them."""
    from pathlib import Path

    from daglake.engines.base import EXECUTE, MATERIALIZE, Statement

    with create_engine(DuckDBSettings(path=":memory:"), Path(str(tmp_path))) as engine:
        engine.run_statements([Statement(MATERIALIZE, "SELECT 1 AS name", 1, "t")], {}, "res/t.sql")
        assert engine.fetch("SELECT name FROM t") == (["name"], [(1,)])  # the engine's own CTAS
        with pytest.raises(TaskError) as raised:
            engine.run_statements([Statement(EXECUTE, "CREATE TABLE u AS SELECT nme FROM t", 3, "u")], {}, "res/u.sql")
    error = raised.value
    assert (error.path, error.line, error.subject, error.location) == ("res/u.sql", 3, "nme", "res/u.sql:3")
    assert error.as_dict()["error"] == {"code": "task_failed", "message": error.message, "path": "res/u.sql", "line": 3}
    assert error.message.startswith('Binder Error: Referenced column "nme" not found') and "LINE" not in error.message
