"""The history commands through the real CLI: ``runs RUN_ID``, ``logs``, ``catalog``, ``--debug``,
and parameters other than ``@ds``/``@run_id`` refused at validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ProjectFactory
from tests.test_cli_e2e import daglake

PROJECT = {
    "daglake.toml": "[run]\nretries = 1\nretry_delay = 0\n",
    "db_init/items.sql": "CREATE OR REPLACE TABLE `raw.items` (id INT64, name STRING) AS SELECT 1, 'shoe' UNION ALL SELECT 2, 'hat';",
    "res/tmp/names.sql": "SELECT id, UPPER(name) AS name FROM raw.items",
    "res/tmp/bad.sql": "SELECT id\nFROM raw.items\nWHERE nme = 'x'\n",
}


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("history") / "project"
    for relative, text in PROJECT.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    result = daglake("run", root, "--json")
    assert result.code == 1
    return root, result.json()["run_id"]


def test_runs_run_id_lists_every_task_with_attempts_and_the_error(failed_run: tuple[Path, str]) -> None:
    root, run_id = failed_run
    text = daglake("runs", run_id, "-p", root)
    assert text.code == 0
    assert f"run {run_id} (cli) logical date" in text.out
    assert 'res/tmp/bad.sql:3: Binder Error: Referenced column "nme" not found' in text.out
    detail = daglake("runs", run_id, "-p", root, "--json").json()
    assert (detail["run_id"], detail["state"], detail["counts"]) == (run_id, "failed", {"failed": 1, "success": 2})
    tasks = {t["name"]: t for t in detail["tasks"]}
    assert {n: (t["state"], len(t["attempts"])) for n, t in tasks.items()} == {
        "raw.items": ("success", 1),
        "tmp.names": ("success", 1),
        "tmp.bad": ("failed", 2),
    }
    assert tasks["tmp.bad"]["location"] == "res/tmp/bad.sql:3"


def test_logs_prints_every_attempt_of_a_task(failed_run: tuple[Path, str]) -> None:
    root, run_id = failed_run
    result = daglake("logs", run_id, "tmp.bad", "-p", root)
    assert result.code == 0
    attempts = result.out.split("===== attempt ")
    assert [a.split(" ", 1)[0] for a in attempts[1:]] == ["1", "2"]
    for number, text in enumerate(attempts[1:], start=1):
        assert f"task tmp.bad (res/tmp/bad.sql), run {run_id}, attempt {number}" in text
        assert "CREATE OR REPLACE TABLE tmp.bad AS SELECT id FROM raw.items WHERE nme = 'x';" in text
        assert "failed after" in text and "res/tmp/bad.sql:3: Binder Error" in text
    by_path = daglake("logs", run_id, "res/tmp/names.sql", "-p", root)
    assert by_path.code == 0 and "succeeded in" in by_path.out and "2 rows" in by_path.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "{run}", "tmp.nothing"], "error: run {run} has no task tmp.nothing"),
        (["logs", "20990101T000000-000000", "tmp.bad"], "error: no run 20990101T000000-000000 in this project"),
        (["catalog", "tmp.nothing"], "error: table tmp.nothing is not in the catalog (run the project first)"),
    ],
)
def test_history_mistakes_are_one_line_and_exit_2(failed_run: tuple[Path, str], args: list[str], message: str) -> None:
    root, run_id = failed_run
    result = daglake(*(a.format(run=run_id) for a in args), "-p", root)
    assert (result.code, result.err_lines()) == (2, [message.format(run=run_id)])


def test_debug_shows_the_traceback_of_the_same_mistake(failed_run: tuple[Path, str]) -> None:
    import subprocess

    from tests.test_cli_e2e import COMMAND

    root, _ = failed_run
    done = subprocess.run([*COMMAND, "--debug", "logs", "20990101T000000-000000", "tmp.bad", "-p", str(root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert "UsageError: no run 20990101T000000-000000 in this project" in done.stderr


def test_catalog_lists_the_built_tables_and_describes_one(failed_run: tuple[Path, str]) -> None:
    root, run_id = failed_run
    listed = daglake("catalog", "-p", root, "--json")
    assert listed.code == 0
    catalog = listed.json()
    assert sorted(catalog) == ["raw.items", "tmp.names"]  # the failed task built nothing
    names = catalog["tmp.names"]
    assert (names["rows"], names["task_path"], names["upstream"], names["last_run"]) == (2, "res/tmp/names.sql", ["raw.items"], run_id)
    assert [(c["name"], c["type"]) for c in names["schema"]] == [("id", "BIGINT"), ("name", "VARCHAR")]
    one = daglake("catalog", "tmp.names", "-p", root)
    assert one.code == 0
    assert "tmp.names (warehouse, table) at .daglake/warehouse.duckdb: 2 rows" in one.out
    assert "produced by res/tmp/names.sql" in one.out and "upstream: raw.items" in one.out


def test_a_parameter_other_than_ds_and_run_id_is_refused_at_validation(make_project: ProjectFactory) -> None:
    root = make_project({"res/tmp/a.sql": "SELECT 1 AS one,\n  @region AS r"})
    for command in ("validate", "run"):
        result = daglake(command, root)
        assert (result.code, result.err_lines()) == (
            2,
            ["res/tmp/a.sql:2: unknown parameter @region (known: @ds, @run_id)", "1 problem found"],
        ), command
    assert not (root / ".daglake" / "warehouse.duckdb").exists()
