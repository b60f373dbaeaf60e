"""Python tasks beside SQL tasks: discovery, inference, materialization, atomicity, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from daglake.errors import ValidationError
from daglake.project import load_project
from daglake.runner import RunOptions, run
from tests.conftest import ProjectFactory

SEED = """
    CREATE OR REPLACE TABLE `raw.items` (id INT64, name STRING, price FLOAT64) AS
    SELECT 1, 'shoe', 10.0 UNION ALL SELECT 2, 'hat', 4.0 UNION ALL SELECT 3, 'sock', 1.5;
"""

TASKS = '''
import daglake
import pyarrow as pa


@daglake.task("staging.prices", inputs=["raw.items"])
def prices(ctx):
    """Returns Arrow; reads through the DuckDB handle."""
    rows = ctx.con.execute("SELECT id, price FROM raw.items ORDER BY id").fetchall()
    ctx.log.info("read %d items", len(rows))
    return pa.table({"id": [r[0] for r in rows], "doubled": [r[1] * 2 for r in rows]})


@daglake.task("staging.expensive")
def expensive(ctx):
    """Inputs inferred from the literal SQL; returns a DuckDB relation."""
    return ctx.sql("SELECT id FROM staging.prices WHERE doubled > 5")


@daglake.task("staging.as_pandas")
def as_pandas(ctx):
    frame = ctx.table("staging.expensive").df()
    frame["day"] = ctx.ds
    return frame


@daglake.task("staging.as_polars")
def as_polars(ctx):
    import polars as pl

    return pl.DataFrame({"run": [ctx.run_id], "n": [len(ctx.table("raw.items").fetchall())]})


@daglake.task(["staging.a", "staging.b"])
def two_outputs(ctx):
    ctx.write("staging.a", "SELECT 1 AS x")
    ctx.write("staging.b", ctx.sql("SELECT 2 AS x"))
'''


def query(root: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_python_and_sql_tasks_depend_on_each_other(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "db_init/items.sql": SEED,
            "pipeline/tasks.py": TASKS,
            "res/final/report.sql": "SELECT e.id, p.doubled FROM staging.expensive e JOIN staging.prices p USING (id)",
        }
    )
    project = load_project(root)
    assert project.problems == []
    deps = project.dependencies()
    assert deps["staging.prices"] == {"raw.items"}
    assert deps["staging.expensive"] == {"staging.prices"}
    assert deps["staging.as_pandas"] == {"staging.expensive"}
    assert deps["final.report"] == {"staging.expensive", "staging.prices"}
    assert project.tasks["staging.prices"].kind == "python"

    summary = run(root, RunOptions(logical_date="2024-05-01"))
    assert summary.state == "success", {n: t.error for n, t in summary.tasks.items()}
    assert summary.tasks["staging.prices"].rows == 3
    assert query(root, "SELECT * FROM final.report ORDER BY id") == [(1, 20.0), (2, 8.0)]
    assert query(root, "SELECT id, day FROM staging.as_pandas ORDER BY id") == [
        (1, "2024-05-01"),
        (2, "2024-05-01"),
    ]
    assert query(root, "SELECT run, n FROM staging.as_polars") == [(summary.run_id, 3)]
    assert query(root, "SELECT x FROM staging.a UNION ALL SELECT x FROM staging.b ORDER BY 1") == [(1,), (2,)]
    log = (root / summary.tasks["staging.prices"].attempts[0].log_path).read_text()  # type: ignore[operator]
    assert "INFO read 3 items" in log


def test_a_python_task_that_raises_changes_nothing(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "db_init/items.sql": SEED,
            "tasks.py": '''
import os
import daglake


@daglake.task(["staging.first", "staging.second"], inputs=["raw.items"])
def both(ctx):
    ctx.write("staging.first", "SELECT 'new' AS v")
    if os.environ.get("BREAK_IT"):
        raise RuntimeError("broke midway")
    ctx.write("staging.second", "SELECT 'new' AS v")
''',
        }
    )
    assert run(root).state == "success"
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb")) as con:
        con.execute("UPDATE staging.first SET v = 'old'")
    import os

    os.environ["BREAK_IT"] = "1"
    try:  # forced: the environment is not in the task's fingerprint
        summary = run(root, RunOptions(force=["staging.first"]))
    finally:
        del os.environ["BREAK_IT"]
    failed = summary.tasks["staging.first"]
    assert failed.state == "failed"
    assert failed.error == "RuntimeError: broke midway"
    assert failed.location == "tasks.py:9"
    assert query(root, "SELECT v FROM staging.first") == [("old",)]


def test_import_errors_are_reported_with_their_line(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "a.py": "import daglake\n\nx = 1\nraise ValueError('bad config')\n",
            "b.py": "import daglake\n\ndef broken(:\n    pass\n",
            "c.py": "import daglake\n\n@daglake.task('curated.x', zone='staging')\ndef x(ctx):\n    pass\n",
            "plain.py": "print('not a task file, never imported')\n",
        }
    )
    project = load_project(root)
    assert [str(p) for p in sorted(project.problems)] == [
        "a.py:4: cannot import: ValueError: bad config",
        "b.py:3:12: Python syntax error: invalid syntax",
        "c.py:3: cannot import: TypeError: outputs of a task in zone 'staging' must be "
        "staging.<table> (or quarantine.<table>): curated.x",
    ]
    with pytest.raises(ValidationError):
        run(root)


def test_python_task_options_reach_the_run(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(
        {
            "tasks.py": '''
import daglake


@daglake.task("staging.flaky", retries=2, retry_delay=0, tags=["nightly"])
def flaky(ctx):
    ctx.metric("seen", 7)
    return ctx.sql("SELECT 1 AS x")
''',
        }
    )
    monkeypatch.setenv("DAGLAKE_INJECT_FAILURES", "staging.flaky=2")
    project = load_project(root)
    assert project.tasks["staging.flaky"].tags == ["nightly"]
    summary = run(root, RunOptions(select=["tag:nightly"]))
    flaky = summary.tasks["staging.flaky"]
    assert [a.state for a in flaky.attempts] == ["failed", "failed", "success"]
    assert flaky.metrics == {"seen": 7}


PORTABLE = '''
import daglake


@daglake.task("staging.portable", inputs=["raw.items"])
def portable(ctx):
    # BigQuery's dialect (the project's): SAFE_DIVIDE, UNNEST of an array literal, @ds
    ctx.write("staging.portable", """
        SELECT i.id, SAFE_DIVIDE(i.price, n) AS share, CAST(@ds AS DATE) AS day
        FROM `raw.items` AS i CROSS JOIN UNNEST([2, 0]) AS n
    """)


@daglake.task("staging.counted", inputs=["staging.portable"])
def counted(ctx):
    rows = ctx.sql("SELECT COUNTIF(share IS NULL) AS nulls, COUNT(*) AS n FROM staging.portable").fetchall()
    assert ctx.native is ctx.con
    ctx.native.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")  # the engine's own handle
    return ctx.sql("SELECT %d AS nulls, %d AS n, (SELECT x FROM scratch) AS x" % rows[0])
'''


def test_ctx_sql_and_write_take_the_projects_dialect_and_native_is_the_engines_handle(
    make_project: ProjectFactory,
) -> None:
    root = make_project({"db_init/items.sql": SEED, "tasks.py": PORTABLE})
    summary = run(root, RunOptions(logical_date="2024-05-01"))
    assert summary.state == "success", {n: t.error for n, t in summary.tasks.items()}
    assert query(root, "SELECT id, share, day::VARCHAR FROM staging.portable ORDER BY id, share NULLS FIRST") == [
        (1, None, "2024-05-01"),
        (1, 5.0, "2024-05-01"),
        (2, None, "2024-05-01"),
        (2, 2.0, "2024-05-01"),
        (3, None, "2024-05-01"),
        (3, 0.75, "2024-05-01"),
    ]
    assert query(root, "SELECT nulls, n, x FROM staging.counted") == [(3, 6, 1)]


def test_ctx_sql_that_is_not_the_projects_dialect_fails_at_its_line(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "db_init/items.sql": SEED,
            "tasks.py": "import daglake\n\n\n@daglake.task('staging.bad')\ndef bad(ctx):\n"
            "    return ctx.sql('SELECT FROM WHERE (')\n",
        }
    )
    summary = run(root, RunOptions())
    task = summary.tasks["staging.bad"]
    assert task.state == "failed"
    assert task.location == "tasks.py:6"
    assert "not bigquery SQL" in (task.error or "")


def daglake_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``daglake`` command in ``root``."""
    script = Path(sys.executable).with_name("daglake")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]
    return subprocess.run([*command, *args], cwd=root, capture_output=True, text=True, timeout=120, check=False)


RETURNS = '''
import daglake
import pyarrow as pa


@daglake.task("staging.as_str")
def as_str(ctx):
    return "SELECT 1 AS x"


@daglake.task("staging.as_list")
def as_list(ctx):
    return [1, 2]


@daglake.task("staging.as_none")
def as_none(ctx):
    return None


@daglake.task(["staging.first", "staging.second"])
def first_only(ctx):
    return pa.table({"x": [1]})


@daglake.task("staging.native")
def native(ctx):
    ctx.native.execute("CREATE OR REPLACE TABLE staging.native AS SELECT 7 AS x")


@daglake.task("staging.reader")
def reader(ctx):
    return pa.table({"x": [1, 2]}).to_reader()
'''


def test_return_values_are_checked_before_anything_is_written(make_project: ProjectFactory) -> None:
    """A str is not run as SQL, a list is no table, None without writing is a failure naming the
    table: each at the task's def line, and none of their tables exists afterwards."""
    root = make_project({"tasks.py": RETURNS})
    result = daglake_cli(root, "run", ".", "--json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    tasks = {t["name"]: t for t in json.loads(result.stdout)["tasks"]}
    failed = {name: (t["location"], t["error"]) for name, t in tasks.items() if t["state"] == "failed"}
    assert failed == {
        "staging.as_str": (
            "tasks.py:6",
            "task staging.as_str returned a str, which is not run as SQL: return ctx.sql(query), "
            "a table (pyarrow, pandas, polars, a relation) or None after ctx.write",
        ),
        "staging.as_list": (
            "tasks.py:11",
            "task staging.as_list returned list; return a table (pyarrow, pandas, polars, a relation) "
            "or None after ctx.write",
        ),
        "staging.as_none": (
            "tasks.py:16",
            "task staging.as_none returned None without writing staging.as_none: return its table, "
            "or ctx.write('staging.as_none', data)",
        ),
        "staging.first": (
            "tasks.py:21",
            "task staging.first did not write staging.second: what it returns goes to staging.first, "
            "the other outputs need ctx.write('staging.second', data)",
        ),
    }
    assert tasks["staging.native"]["state"] == "success"  # written through the engine's handle
    assert tasks["staging.reader"]["rows"] == 2
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as con:
        built = {f"{s}.{t}" for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    assert built == {"staging.native", "staging.reader"}


def test_only_files_whose_syntax_tree_imports_daglake_are_imported(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "notes.py": "# run after daglake has built the warehouse\nimport sys\nsys.exit(3)\n",
            "words.py": 'TEXT = "import daglake"\nraise RuntimeError("never imported")\n',
            "broken_note.py": "# see daglake\ndef (:\n",
            "broken_task.py": "import os\nfrom daglake import task\n\nx = (\n",
            "late.py": "def later():\n    import daglake.pytasks\n\nraise SystemExit\n",
            "helper.py": "VALUE = 1 / 0\n",
            "uses_helper.py": "import daglake\nimport helper\n",
        }
    )
    result = daglake_cli(root, "validate", ".")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "broken_task.py:4:5: Python syntax error: '(' was never closed",
        "helper.py:1: cannot import: ZeroDivisionError: division by zero",
        'late.py:4: cannot import: it calls sys.exit at import (put that under `if __name__ == "__main__":`)',
        "3 problems found",
    ]
