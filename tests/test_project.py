"""Discovery and validation on small projects written by each test."""

from __future__ import annotations

from pathlib import Path

import pytest

from daglake.errors import ValidationError
from daglake.graph.dag import DAG
from daglake.project import load_project
from daglake.project.validate import problems
from daglake.runner import RunOptions, validate
from tests.conftest import ProjectFactory

SEED = "CREATE OR REPLACE TABLE `raw.items` (id INT64, name STRING) AS SELECT 1, 'a';\n"


def messages(root: Path, **options: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        validate(root, RunOptions(**options))  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_tasks_are_named_by_their_output(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "db_init/items.sql": SEED,
            "res/tmp/variants.sql": "SELECT * FROM raw.items",
            "res/final/products.sql": "CREATE OR REPLACE TABLE final.products AS SELECT * FROM tmp.variants",
            "top.sql": "SELECT 1 AS x",
        }
    )
    project = load_project(root)
    assert sorted(project.tasks) == ["final.products", "project.top", "raw.items", "tmp.variants"]
    assert project.tasks["raw.items"].is_seed
    assert not project.tasks["tmp.variants"].is_seed
    assert project.dependencies() == {
        "raw.items": set(),
        "tmp.variants": {"raw.items"},
        "final.products": {"tmp.variants"},
        "project.top": set(),
    }


def test_hidden_state_and_excluded_folders_hold_no_tasks(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "daglake.toml": '[project]\nexclude = ["scratch", "res/tmp/old_*.sql"]\n',
            "res/tmp/a.sql": "SELECT 1 AS x",
            "res/tmp/old_b.sql": "SELECT 2 AS x",
            "scratch/c.sql": "SELECT nonsense FROM",
            ".hidden/d.sql": "SELECT nonsense FROM",
            ".daglake/e.sql": "SELECT nonsense FROM",
        }
    )
    project = load_project(root)
    assert list(project.tasks) == ["tmp.a"]
    assert project.problems == []


def test_configured_seed_folders(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "daglake.toml": '[project]\nseeds = ["fixtures"]\n',
            "fixtures/items.sql": SEED,
            "db_init/other.sql": "CREATE TABLE raw.other AS SELECT 1 AS x",
        }
    )
    project = load_project(root)
    assert project.tasks["raw.items"].is_seed
    assert not project.tasks["raw.other"].is_seed


def test_explicit_dependencies_from_toml_and_json(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(
        {
            "daglake.toml": '[tasks."tmp/b.sql"]\ndepends_on = ["res/tmp/a.sql"]\n',
            "deps.json": '{"tmp/c.sql": ["tmp.b", "tmp/a.sql"]}',
            "res/tmp/a.sql": "SELECT 1 AS x",
            "res/tmp/b.sql": "SELECT 2 AS x",
            "res/tmp/c.sql": "SELECT 3 AS x",
        }
    )
    monkeypatch.chdir(root)  # --deps is relative to the current folder
    project = load_project(root, deps_file="deps.json")
    assert project.problems == []
    assert project.dependencies() == {"tmp.a": set(), "tmp.b": {"tmp.a"}, "tmp.c": {"tmp.a", "tmp.b"}}


def test_every_problem_is_reported_at_once_with_its_location(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "daglake.toml": '[project]\ndialect = "bigquery"\ncolour = "blue"\n\n[tasks."tmp/a.sql"]\ndepends_on = ["tmp/nope.sql"]\n',
            "res/tmp/a.sql": "SELECT * FROM tmp.b",
            "res/tmp/b.sql": "-- reads a\nSELECT *\nFROM tmp.a",
            "res/tmp/broken.sql": "SELECT 1;\n\nSELECT FROM WHERE",
            "res/tmp/dup1.sql": "CREATE TABLE final.x AS SELECT 1 AS v",
            "res/tmp/dup2.sql": "-- again\nCREATE TABLE final.x AS SELECT 2 AS v",
            "res/tmp/reads_missing.sql": "SELECT *\n  FROM `raw.absent`",
        }
    )
    assert messages(root) == [
        "daglake.toml:3: unknown key 'colour' in [project] "
        "(known: catchup, checks, dependencies_file, dialect, exclude, max_active_runs, name, schedule, seeds, start_date, timezone)",
        "daglake.toml:6: unknown task 'tmp/nope.sql' in dependencies of res/tmp/a.sql",
        "res/tmp/a.sql:1: dependency cycle: tmp.a (res/tmp/a.sql) → tmp.b (res/tmp/b.sql) → tmp.a",
        "res/tmp/broken.sql:3:13: SQL syntax error: expected a table name but got 'WHERE'",
        "res/tmp/dup2.sql:2: table final.x is written by two tasks: also by res/tmp/dup1.sql:1",
        "res/tmp/reads_missing.sql:2:8: table raw.absent does not exist and no task creates it "
        "(create it, add a seed script, or declare it under [sources] in daglake.toml)",
    ]


def test_missing_sources_name_the_reading_line(make_project: ProjectFactory) -> None:
    root = make_project({"res/tmp/a.sql": "SELECT *\n  FROM `raw.absent`\n  JOIN raw.here USING (id)"})
    found = messages(root)
    assert len(found) == 2
    assert found[0].startswith("res/tmp/a.sql:2:8: table raw.absent does not exist and no task creates it")
    assert found[1].startswith("res/tmp/a.sql:3:8: table raw.here does not exist")


def test_declared_sources_are_not_missing(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "daglake.toml": '[sources]\n"raw.absent" = "loaded by the ingestion job"\n',
            "res/tmp/a.sql": "SELECT * FROM raw.absent",
        }
    )
    assert validate(root).tasks.keys() == {"tmp.a"}


def test_invalid_toml_and_json_give_line_and_column(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(
        {
            "daglake.toml": '[project]\ndialect = "bigquery\n',
            "deps.json": '{\n  "tmp/a.sql": ["x",]\n}',
            "res/tmp/a.sql": "SELECT 1 AS x",
        }
    )
    monkeypatch.chdir(root)  # --deps is relative to the current folder
    found = messages(root, deps_file="deps.json")
    assert found[0].startswith("daglake.toml:2:20: invalid TOML: ")
    assert found[1].startswith("deps.json:2:21: invalid JSON: Expecting value")


def test_strict_reports_declared_versus_inferred(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(
        {
            "deps.json": '{"tmp/c.sql": ["tmp/a.sql"]}',
            "res/tmp/a.sql": "SELECT 1 AS x",
            "res/tmp/b.sql": "SELECT 2 AS x",
            "res/tmp/c.sql": "SELECT * FROM tmp.b",
        }
    )
    monkeypatch.chdir(root)  # --deps is relative to the current folder
    assert validate(root, RunOptions(deps_file="deps.json")).tasks
    assert messages(root, deps_file="deps.json", strict=True) == [
        "res/tmp/c.sql: declared dependency on tmp.a (res/tmp/a.sql) is not read by the SQL",
        "res/tmp/c.sql:1: reads tmp.b (res/tmp/b.sql) but its declared dependencies omit it",
    ]


def test_unknown_task_in_a_json_dependencies_file(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(
        {"deps.json": '{\n  "tmp/a.sql": [\n    "tmp/ghost.sql"\n  ]\n}', "res/tmp/a.sql": "SELECT 1 AS x"}
    )
    monkeypatch.chdir(root)  # --deps is relative to the current folder
    assert messages(root, deps_file="deps.json") == [
        "deps.json:3: unknown task 'tmp/ghost.sql' in dependencies of res/tmp/a.sql"
    ]


def test_parse_results_are_cached_by_content(make_project: ProjectFactory) -> None:
    root = make_project({"res/tmp/a.sql": "SELECT * FROM raw.x", "res/tmp/b.sql": "SELECT 1 AS y"})
    first = load_project(root)
    assert first.tasks["tmp.a"].parsed is not None
    second = load_project(root)
    assert second.tasks["tmp.a"].parsed is None  # served from .daglake/cache without sqlglot
    assert second.tasks["tmp.a"].analysis == first.tasks["tmp.a"].analysis
    (root / "res/tmp/a.sql").write_text("SELECT * FROM raw.z")
    third = load_project(root)
    assert third.tasks["tmp.a"].parsed is not None
    assert [r.table for r in third.tasks["tmp.a"].reads] == ["raw.z"]
    assert third.tasks["tmp.b"].parsed is None


def test_dag_of_a_project_with_a_self_referencing_file(make_project: ProjectFactory) -> None:
    root = make_project(
        {"res/final/c.sql": "CREATE TABLE IF NOT EXISTS final.c (n INT64);\nINSERT INTO final.c SELECT COUNT(*) FROM final.c"}
    )
    project = load_project(root)
    assert problems(project, DAG(project.dependencies()), set()) == []


def test_a_schedule_is_validated(make_project: ProjectFactory) -> None:
    assert load_project(make_project({"daglake.toml": '[project]\nschedule = "@monthly"\n'})).problems == []
    root = make_project({"daglake.toml": '[project]\nschedule = "every month"\n'})
    [problem] = load_project(root).problems
    assert str(problem).startswith("daglake.toml:2: schedule 'every month' is not a cron expression")


def test_the_shipped_duckdb_function_list_is_this_releases() -> None:
    """``duckdb_functions.txt`` is what a new connection of the installed DuckDB has: after
    an upgrade of DuckDB this fails until ``scripts/duckdb-functions.py`` writes it again."""
    from daglake.engines.duckdb import _builtin_functions, new_connection_functions

    assert _builtin_functions() == set(new_connection_functions()), "run scripts/duckdb-functions.py"


def test_duckdb_is_asked_about_the_calls_its_release_list_lacks(tmp_path: Path) -> None:
    from daglake.engine_settings import DuckDBSettings
    from daglake.engines import create_engine

    engine = create_engine(DuckDBSettings(path="warehouse.duckdb"), tmp_path)
    try:
        engine.fetch("CREATE MACRO add_one(x) AS x + 1")  # in DuckDB's list, not in the release's
        called = {"upper", "main.lower", "add_one", "no_such_function", "net.host"}
        assert engine.missing_functions(called) == {"no_such_function", "net.host"}
    finally:
        engine.close()


def test_a_function_the_engine_lacks_is_reported_at_every_validation(make_project: ProjectFactory) -> None:
    """The engine's function list is asked once and the answer remembered only when nothing
    was missing: a missing function is reported every time, and one added later too."""
    import json

    root = make_project({"db_init/items.sql": SEED, "res/tmp/names.sql": "SELECT UPPER(name) AS n FROM raw.items"})
    validate(root)
    validate(root)  # from the remembered answer
    cache = json.loads((root / ".daglake" / "cache" / "sql-analysis.json").read_text())
    assert [key for key in cache["latest"] if key.startswith("functions on duckdb ")]
    (root / "res" / "tmp" / "names.sql").write_text("SELECT NET.HOST(name) AS n FROM raw.items\n")
    for _ in range(2):
        assert messages(root) == ["res/tmp/names.sql:1: function NET.HOST does not exist on duckdb (the engine this project runs on)"]
    (root / "res" / "tmp" / "names.sql").write_text("SELECT UPPER(name) AS n FROM raw.items\n")
    validate(root)
