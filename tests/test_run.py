"""Runs on real DuckDB, in process: states, atomicity, seeds, selection, locking."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from daglake.errors import RunInProgressError, UsageError, ValidationError
from daglake.events import RunObserver, TaskRun
from daglake.lock import RunLock
from daglake.runner import RunOptions, run
from tests.conftest import ProjectFactory

PROJECT = {
    "db_init/items.sql": """
        CREATE OR REPLACE TABLE `raw.items` (id INT64, name STRING, price NUMERIC) AS
        SELECT 1, 'shoe', 10.5 UNION ALL SELECT 2, 'hat', 3.25;
    """,
    "res/tmp/names.sql": "SELECT id, UPPER(name) AS name FROM `raw.items`",
    "res/tmp/prices.sql": "SELECT id, price * 2 AS double_price FROM raw.items",
    "res/final/products.sql": """
        SELECT n.id, n.name, ARRAY_AGG(STRUCT(p.double_price AS price)) AS prices
        FROM tmp.names n JOIN `proj.tmp.prices` p USING (id)
        GROUP BY 1, 2
    """,
    "res/other/lonely.sql": "SELECT 42 AS answer",
}


def query(root: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def states(summary: object) -> dict[str, str]:
    return {name: t.state for name, t in summary.tasks.items()}  # type: ignore[attr-defined]


def test_run_builds_every_table(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    summary = run(root)
    assert summary.state == "success"
    assert set(states(summary).values()) == {"success"}
    assert summary.tasks["final.products"].rows == 2
    assert query(root, "SELECT id, name, prices FROM final.products ORDER BY id") == [
        (1, "SHOE", [{"price": 21}]),
        (2, "HAT", [{"price": 6.5}]),
    ]


def test_seeds_run_only_when_their_table_is_missing(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    run(root)
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb")) as con:
        con.execute("INSERT INTO raw.items VALUES (3, 'sock', 1)")
    summary = run(root)
    assert summary.tasks["raw.items"].state == "skipped"
    assert query(root, "SELECT count(*) FROM final.products") == [(3,)]
    summary = run(root, RunOptions(full_refresh=True))
    assert summary.tasks["raw.items"].state == "success"
    assert query(root, "SELECT count(*) FROM final.products") == [(2,)]


def test_a_failed_task_keeps_its_previous_table_and_blocks_downstream(
    make_project: ProjectFactory,
) -> None:
    root = make_project(PROJECT)
    run(root)
    (root / "res/tmp/prices.sql").write_text(
        "CREATE OR REPLACE TABLE tmp.prices AS SELECT id, 0 AS double_price FROM raw.items;\n"
        "SELECT no_such_column FROM raw.items"
    )
    summary = run(root)
    assert summary.state == "failed"
    assert states(summary) == {
        "raw.items": "skipped",
        "tmp.prices": "failed",
        "tmp.names": "skipped",  # unchanged: only what changed runs
        "final.products": "upstream_failed",
        "other.lonely": "skipped",
    }
    failed = summary.tasks["tmp.prices"]
    assert failed.location == "res/tmp/prices.sql:2"
    assert "no_such_column" in (failed.error or "")
    # the first statement's replacement was rolled back with the second's failure
    assert query(root, "SELECT sum(double_price) FROM tmp.prices") == [(27.5,)]


def test_upstream_failed_and_independent_branches(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT | {"res/tmp/names.sql": "SELECT missing_col FROM raw.items"})
    summary = run(root)
    assert states(summary) == {
        "raw.items": "success",
        "tmp.names": "failed",
        "tmp.prices": "success",
        "final.products": "upstream_failed",
        "other.lonely": "success",
    }
    assert summary.tasks["final.products"].reason == "upstream task tmp.names failed"


def test_selection_runs_only_what_is_named(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    assert set(run(root, RunOptions(select=["+tmp.names"])).tasks) == {"raw.items", "tmp.names"}
    run(root)
    assert set(run(root, RunOptions(select=["+tmp.names"])).tasks) == {"raw.items", "tmp.names"}
    assert set(run(root, RunOptions(select=["tmp.names+"])).tasks) == {"tmp.names", "final.products"}
    assert set(run(root, RunOptions(select=["res/tmp/*"])).tasks) == {"tmp.names", "tmp.prices"}
    assert set(run(root, RunOptions(exclude=["+tmp.prices"])).tasks) == {
        "tmp.names",
        "final.products",
        "other.lonely",
    }
    with pytest.raises(UsageError, match="matches no task"):
        run(root, RunOptions(select=["tmp.ghost"]))


def test_selecting_a_task_whose_upstream_was_never_built(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    with pytest.raises(ValidationError) as caught:
        run(root, RunOptions(select=["final.products"]))
    assert [str(p) for p in caught.value.problems] == [
        "res/final/products.sql:2:6: tmp.names has not been built and its task tmp.names is not "
        "selected (select +final.products to build it first)",
        "res/final/products.sql:2:23: tmp.prices has not been built and its task tmp.prices is not "
        "selected (select +final.products to build it first)",
    ]


def test_dry_run_touches_nothing(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    summary = run(root, RunOptions(dry_run=True))
    assert summary.dry_run
    assert set(states(summary).values()) == {"pending"}
    assert not (root / ".daglake").exists()


def test_a_second_run_is_refused_while_one_holds_the_lock(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    with RunLock(root / ".daglake") as lock:
        lock.acquire("20260101T000000-abcdef")
        with pytest.raises(RunInProgressError, match="run 20260101T000000-abcdef"):
            run(root)
    assert run(root).state == "success"


def test_observers_see_every_task_start_and_finish(make_project: ProjectFactory) -> None:
    class Recorder(RunObserver):
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []

        def task_started(self, task: TaskRun) -> None:
            self.events.append(("start", task.name))

        def task_finished(self, task: TaskRun) -> None:
            self.events.append((task.state, task.name))

    recorder = Recorder()
    run(make_project(PROJECT), observer=recorder)
    names = [name for _, name in recorder.events]
    assert len(recorder.events) == 10
    assert names.index("final.products") > names.index("tmp.names")
    assert recorder.events[-1] in {("success", "final.products"), ("success", "other.lonely")}


def test_an_engine_error_points_at_the_line_naming_the_culprit(make_project: ProjectFactory) -> None:
    root = make_project(
        PROJECT
        | {"res/tmp/names.sql": "-- names\nSELECT\n  id,\n  nmae AS name -- typo\nFROM raw.items"}
    )
    summary = run(root)
    failed = summary.tasks["tmp.names"]
    assert failed.state == "failed"
    assert failed.location == "res/tmp/names.sql:4"
    assert 'Referenced column "nmae" not found' in (failed.error or "")


def test_translation_warnings_name_the_file_and_line(make_project: ProjectFactory) -> None:
    root = make_project(
        PROJECT | {"res/tmp/hashed.sql": "-- fingerprints\nSELECT FARM_FINGERPRINT(name) AS h FROM raw.items"}
    )
    summary = run(root)
    assert summary.state == "success"
    assert len(summary.warnings) == 1
    assert summary.warnings[0].startswith("res/tmp/hashed.sql:2: ")
    assert "FARM_FINGERPRINT" in summary.warnings[0]
    again = run(root)  # served from the parse cache, warnings included
    assert again.warnings == summary.warnings
