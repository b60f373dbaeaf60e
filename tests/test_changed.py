"""Only what changed runs (SPEC §4), through the real ``daglake`` command on DuckDB: a project
of a chain (raw.events → tmp.a → tmp.b → tmp.c), a diamond (raw.users → tmp.left, tmp.right →
final.joined), a task reading a table daglake did not build (ext.outside) and one calling
CURRENT_DATE."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from daglake.sql.analysis import analyze
from tests.api_support import daglake_command, start_server

FILES = {
    "daglake.toml": '[project]\nname = "changed"\ndialect = "bigquery"\n',
    "db_init/events.sql": "CREATE OR REPLACE TABLE raw.events AS SELECT 1 AS id, 'a' AS kind UNION ALL SELECT 2, 'b'",
    "db_init/users.sql": "CREATE OR REPLACE TABLE raw.users AS SELECT 1 AS id UNION ALL SELECT 2",
    "res/tmp/a.sql": "SELECT id, kind FROM raw.events",
    "res/tmp/b.sql": "SELECT id FROM tmp.a",
    "res/tmp/c.sql": "SELECT count(*) AS n FROM tmp.b",
    "res/tmp/left.sql": "SELECT id FROM raw.users",
    "res/tmp/right.sql": "SELECT id FROM raw.users",
    "res/final/joined.sql": "SELECT l.id FROM tmp.left AS l JOIN tmp.right AS r USING (id)",
    "res/tmp/ext.sql": "SELECT count(*) AS n FROM ext.outside",
    "res/tmp/today.sql": "SELECT CURRENT_DATE() AS d, count(*) AS n FROM tmp.c",
}
VOLATILE = {"tmp.today"}


def _project(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    _warehouse(root, "CREATE SCHEMA ext; CREATE TABLE ext.outside AS SELECT 1 AS x")
    return root


def _warehouse(root: Path, sql: str) -> None:
    (root / ".daglake").mkdir(exist_ok=True)
    connection = duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"))
    try:
        connection.execute(sql)
    finally:
        connection.close()


def daglake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*daglake_command(), *args], cwd=root, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def run(root: Path, *args: str) -> dict[str, Any]:
    done = daglake(root, "run", "--json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def ran(summary: dict[str, Any]) -> set[str]:
    """The tasks that ran (every other task was skipped)."""
    states = {t["name"]: t["state"] for t in summary["tasks"]}
    assert set(states.values()) <= {"success", "skipped"}, states
    return {name for name, state in states.items() if state == "success"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = _project(tmp_path / "p")
    first = run(root)
    assert ran(first) == {t["name"] for t in first["tasks"]}
    return root


def test_an_unchanged_rerun_skips_every_task_but_volatile_ones(project: Path) -> None:
    summary = run(project)
    assert ran(summary) == VOLATILE
    reasons = {t["name"]: t["reason"] for t in summary["tasks"]}
    assert reasons["tmp.b"].startswith("unchanged since run ")
    assert reasons["raw.events"].startswith("seed tables exist")
    assert summary["counts"] == {"skipped": len(FILES) - 2, "success": 1}
    shown = daglake(project, "runs", summary["run_id"])
    assert "unchanged since run" in shown.stdout
    # skipped ends are written together with the next write, not one commit each: all stored
    stored = json.loads(daglake(project, "runs", summary["run_id"], "--json").stdout)
    assert {t["name"]: t["state"] for t in stored["tasks"]} == {t["name"]: t["state"] for t in summary["tasks"]}


def test_a_changed_file_runs_it_and_its_downstream_only(project: Path) -> None:
    (project / "res/tmp/b.sql").write_text("SELECT id, id * 2 AS twice FROM tmp.a\n")
    assert ran(run(project)) == {"tmp.b", "tmp.c"} | VOLATILE
    assert ran(run(project)) == VOLATILE


def test_whitespace_and_comment_edits_run_nothing(project: Path) -> None:
    (project / "res/tmp/a.sql").write_text("-- the events\nselect   id,\n    kind  /* all */\nFROM raw.events\n")
    assert ran(run(project)) == VOLATILE


def test_a_diamond_reruns_its_tip_once_for_one_side(project: Path) -> None:
    (project / "res/tmp/left.sql").write_text("SELECT id FROM raw.users WHERE id > 0\n")
    assert ran(run(project)) == {"tmp.left", "final.joined"} | VOLATILE


def test_a_source_changed_behind_daglakes_back_is_detected_and_explained(project: Path) -> None:
    _warehouse(project, "INSERT INTO ext.outside VALUES (2)")
    done = daglake(project, "run", "--explain")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith(("run ", "skip "))}
    assert lines["tmp.ext"].split()[0] == "run" and "input ext.outside changed" in lines["tmp.ext"]
    assert "volatile: calls CURRENT_DATE" in lines["tmp.today"]
    assert lines["tmp.a"].split()[0] == "skip"
    explained = json.loads(daglake(project, "run", "--explain", "--json").stdout)
    actions = {t["task"]: t["action"] for t in explained["tasks"]}
    assert {t for t, a in actions.items() if a == "run"} == {"tmp.ext"} | VOLATILE
    assert ran(run(project)) == {"tmp.ext"} | VOLATILE  # --explain ran nothing
    assert ran(run(project)) == VOLATILE


def test_explain_names_the_changed_file_and_input(project: Path) -> None:
    (project / "res/tmp/a.sql").write_text("SELECT id, upper(kind) AS kind FROM raw.events\n")
    explained = json.loads(daglake(project, "run", "--explain", "--json").stdout)
    reasons = {t["task"]: t["reason"] for t in explained["tasks"] if t["action"] == "run"}
    assert reasons == {
        "tmp.a": "res/tmp/a.sql changed",
        "tmp.b": "input tmp.a changed",
        "tmp.c": "input tmp.b changed",
        "tmp.today": "volatile: calls CURRENT_DATE",
    }


def test_force_and_full_refresh_override(project: Path) -> None:
    assert ran(run(project, "--force", "tmp.a")) == {"tmp.a"} | VOLATILE
    assert ran(run(project, "--force", "tmp.left+")) == {"tmp.left", "final.joined"} | VOLATILE
    everything = run(project, "--full-refresh")
    assert ran(everything) == {t["name"] for t in everything["tasks"]}


def test_a_dropped_table_is_rebuilt(project: Path) -> None:
    _warehouse(project, "DROP TABLE tmp.c")
    assert ran(run(project)) == {"tmp.c"} | VOLATILE


def test_an_api_append_runs_exactly_the_readers_of_that_table(project: Path) -> None:
    server = start_server(project)
    try:
        with server.client() as client:
            response = client.post("/events", params={"id": "3", "kind": "c"})
            assert response.status_code == 201, response.text
            summary = client.post("/run", params={"wait": "true"}).json()
            assert ran(summary) == {"tmp.a", "tmp.b", "tmp.c"} | VOLATILE
            again = client.post("/run", params={"wait": "true"}).json()
            assert ran(again) == VOLATILE
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT CURRENT_DATE() AS d", "calls CURRENT_DATE"),
        ("SELECT RAND() AS r", "calls RAND"),
        ("SELECT @run_id AS r", "reads @run_id"),
        ("SELECT GENERATE_UUID() AS u", "calls UUID"),
        ("SELECT a FROM t WHERE d = @ds", None),
        ("SELECT 'CURRENT_DATE()' AS a -- RAND()", None),
    ],
)
def test_volatile_sql_is_found_in_the_projects_dialect(sql: str, reason: str | None) -> None:
    analysis, _ = analyze(sql, "bigquery", "tmp.x")
    assert analysis.volatile == reason


def test_the_normal_form_ignores_layout_and_comments_only() -> None:
    def normal(sql: str) -> str | None:
        return analyze(sql, "bigquery", "tmp.x")[0].normal

    base = normal("SELECT a FROM t WHERE d = @ds")
    assert normal("-- x\nselect  a\n  from t /* y */ where d=@ds") == base
    assert normal("SELECT a FROM t WHERE d = @ds AND a > 1") != base
    assert normal("SELECT 'a  b' AS a FROM t") != normal("SELECT 'a b' AS a FROM t")
    assert normal("SELECT 'select' AS a FROM t") != normal("SELECT 'SELECT' AS a FROM t")  # data keeps its case
    assert normal("SELECT `A` FROM t") != normal("SELECT `a` FROM t")
    assert normal("SELECT a FROM t WHERE d = @ds") == normal("Select a From t Where d = @ds")  # keywords do not


PRODUCTS = Path(__file__).parent.parent / "examples" / "products"
_IMPORTS_AFTER_RUN = """
import sys
from daglake.cli import main
sys.argv = ["daglake", "run", sys.argv[1], "--json"]
try:
    main()
finally:
    heavy = ("sqlglot", "sqlalchemy", "pydantic", "duckdb", "yaml", "daglake.sql.translate", "daglake.sql.parse")
    print("IMPORTED", ",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def test_an_unchanged_run_imports_neither_sqlglot_nor_sqlalchemy_nor_duckdb(tmp_path: Path) -> None:
    """Start fast (issue 14): a re-run with nothing changed reads every parse, check verdict
    and fingerprint from the caches and the state, and the warehouse's tables from its stamp,
    so the heavy libraries stay unimported (duckdb itself is ~65 ms)."""
    import shutil
    import sys

    root = tmp_path / "products"
    shutil.copytree(PRODUCTS, root, ignore=shutil.ignore_patterns(".daglake", "*.duckdb"))

    def imported() -> tuple[dict[str, Any], str]:
        done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER_RUN, str(root)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), done.stderr.rsplit("IMPORTED ", 1)[1].strip()

    _, heavy = imported()
    assert "sqlglot" in heavy and "duckdb" in heavy  # the first run parses and builds
    second, heavy = imported()
    assert {t["state"] for t in second["tasks"]} == {"skipped"}
    assert heavy == "duckdb"  # it reads the source versions the first run's writes changed
    third, heavy = imported()
    assert {t["state"] for t in third["tasks"]} == {"skipped"}
    assert heavy == ""  # the versions read by a run that wrote nothing are in the stamp


def test_an_unchanged_run_leaves_the_warehouse_closed_until_a_task_must_run(tmp_path: Path) -> None:
    """The warehouse's stamp (its file as the last run closed it, its tables, the source
    versions read): an unchanged run takes them from it and never opens the file, so it even
    runs while another process holds the file; a write behind daglake's back changes the file,
    and the next run opens it, sees the new source version and runs its reader."""
    root = tmp_path / "p"
    for name in ("daglake.toml", "db_init/events.sql", "res/tmp/a.sql", "res/tmp/b.sql", "res/tmp/ext.sql"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(FILES[name] + "\n", encoding="utf-8")
    _warehouse(root, "CREATE SCHEMA ext; CREATE TABLE ext.outside AS SELECT 1 AS x")
    assert ran(run(root)) == {"raw.events", "tmp.a", "tmp.b", "tmp.ext"}
    assert ran(run(root)) == set()  # opened: the first run wrote, so the sources are read again
    holder = duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"))  # another process would wait for it
    try:
        summary = run(root)
        assert ran(summary) == set() and len(summary["tasks"]) == 4
    finally:
        holder.close()
    _warehouse(root, "INSERT INTO ext.outside VALUES (2)")
    assert ran(run(root)) == {"tmp.ext"}
    assert ran(run(root)) == set()
