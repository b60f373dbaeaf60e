"""Run history, retries, resume and logical dates, against SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from daglake.config import RetryPolicy
from daglake.events import RunObserver, TaskRun
from daglake.history import list_runs, run_details, task_logs
from daglake.runner import RunOptions, retry, run
from daglake.state import StateStore
from daglake.state.schema import LATEST
from tests.conftest import ProjectFactory
from tests.postgres import new_database

PROJECT = {
    "daglake.toml": "[run]\nretries = 0\nretry_delay = 0\n",
    "db_init/items.sql": """
        CREATE OR REPLACE TABLE `raw.items` (id INT64, name STRING) AS
        SELECT 1, 'shoe' UNION ALL SELECT 2, 'hat' UNION ALL SELECT 3, 'sock';
    """,
    "res/tmp/names.sql": "SELECT id, UPPER(name) AS name FROM raw.items",
    "res/tmp/ids.sql": "SELECT id FROM raw.items WHERE id > 1",
    "res/final/products.sql": "SELECT n.id, n.name FROM tmp.names n JOIN tmp.ids USING (id)",
    "res/final/summary.sql": "SELECT COUNT(*) AS n, @ds AS day, @run_id AS run FROM final.products",
}


class Started(RunObserver):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def task_started(self, task: TaskRun) -> None:
        self.names.add(task.name)


def warehouse(root: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_policy_backs_off_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(retries=5, delay=1.0, backoff=2.0, max_delay=5.0)
    assert [policy.wait(n, 0.999999) for n in (1, 2, 3, 4)] == pytest.approx([1, 2, 4, 5], rel=1e-5)
    assert [policy.wait(n, 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]


def test_a_task_that_fails_twice_then_succeeds_shows_three_attempts(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, state_backend: str
) -> None:
    root = make_project(PROJECT | {"daglake.toml": '[tasks."tmp/names.sql"]\nretries = 2\nretry_delay = 0\n'})
    monkeypatch.setenv("DAGLAKE_INJECT_FAILURES", "tmp.names=2")
    summary = run(root)
    assert summary.state == "success"
    names = summary.tasks["tmp.names"]
    assert [a.state for a in names.attempts] == ["failed", "failed", "success"]
    stored = {t.name: t for t in run_details(root, summary.run_id).tasks}["tmp.names"]
    assert stored.state == "success"
    assert [(a.number, a.state) for a in stored.attempts] == [(1, "failed"), (2, "failed"), (3, "success")]
    assert "injected failure" in (stored.attempts[0].error or "")
    logs = task_logs(root, summary.run_id, "tmp.names")
    assert [n for n, _ in logs] == [1, 2, 3]
    assert "injected failure" in logs[0][1]
    assert "CREATE OR REPLACE TABLE tmp.names AS" in logs[2][1]
    assert "succeeded in" in logs[2][1]


def test_retries_exhausted_fail_the_task(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, state_backend: str
) -> None:
    root = make_project(PROJECT | {"daglake.toml": "[run]\nretries = 1\nretry_delay = 0\n"})
    monkeypatch.setenv("DAGLAKE_INJECT_FAILURES", "tmp.ids=5")
    summary = run(root)
    assert summary.state == "failed"
    assert [a.state for a in summary.tasks["tmp.ids"].attempts] == ["failed", "failed"]
    assert summary.tasks["final.products"].state == "upstream_failed"
    record = run_details(root, summary.run_id).record
    assert record.state == "failed"
    assert record.counts == {"success": 2, "failed": 1, "upstream_failed": 2}


def test_retry_redoes_only_what_failed_in_the_same_run(
    make_project: ProjectFactory, state_backend: str
) -> None:
    root = make_project(PROJECT | {"res/tmp/ids.sql": "SELECT idd FROM raw.items"})
    first = run(root, RunOptions(logical_date="2024-03-01"))
    assert first.state == "failed"
    (root / "res/tmp/ids.sql").write_text("SELECT id FROM raw.items WHERE id > 1")
    started = Started()
    resumed = retry(root, observer=started)
    assert resumed.run_id == first.run_id
    assert resumed.state == "success"
    assert started.names == {"tmp.ids", "final.products", "final.summary"}
    assert [a.state for a in resumed.tasks["tmp.ids"].attempts] == ["failed", "success"]
    assert warehouse(root, "SELECT n, day FROM final.summary") == [(2, dt.date(2024, 3, 1))]
    history = list_runs(root)
    assert len(history) == 1
    assert history[0].state == "success"
    assert history[0].logical_date == "2024-03-01"
    stored = {t.name: (t.state, len(t.attempts)) for t in run_details(root, first.run_id).tasks}
    assert stored == {
        "raw.items": ("success", 1),  # kept from the first try of the run, not redone
        "tmp.names": ("success", 1),
        "tmp.ids": ("success", 2),
        "final.products": ("success", 1),
        "final.summary": ("success", 1),
    }


def test_retry_of_a_successful_run_does_nothing(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    first = run(root)
    started = Started()
    again = retry(root, first.run_id, observer=started)
    assert again.state == "success"
    assert started.names == set()
    assert {n: (t.state, len(t.attempts)) for n, t in again.tasks.items()} == {
        name: ("success", 1) for name in ("raw.items", "tmp.names", "tmp.ids", "final.products", "final.summary")
    }


def test_the_logical_date_reaches_sql_and_reruns_replace_it(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        PROJECT
        | {
            "res/final/daily.sql": """
                CREATE TABLE IF NOT EXISTS final.daily (day DATE, n INT64);
                DELETE FROM final.daily WHERE day = @ds;
                INSERT INTO final.daily SELECT @ds, COUNT(*) FROM tmp.names;
            """
        }
    )
    for day in ("2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"):
        assert run(root, RunOptions(logical_date=day)).state == "success"
    assert warehouse(root, "SELECT day, n FROM final.daily ORDER BY day") == [
        (dt.date(2024, 1, 1), 3),
        (dt.date(2024, 1, 2), 3),
    ]
    [(run_id,)] = warehouse(root, "SELECT run FROM final.summary")
    assert run_id == list_runs(root, limit=1)[0].id


def test_history_lists_latest_first(make_project: ProjectFactory, state_backend: str) -> None:
    root = make_project(PROJECT)
    ids = [run(root, RunOptions(logical_date=f"2024-01-0{d}")).run_id for d in (1, 2, 3)]
    listed = list_runs(root)
    assert [r.id for r in listed] == ids[::-1]
    assert [r.logical_date for r in listed] == ["2024-01-03", "2024-01-02", "2024-01-01"]
    assert all(r.duration is not None and r.duration > 0 for r in listed)


def test_durations_from_history_order_the_next_run(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    run(root)
    from daglake.project import load_project
    from daglake.runner import open_state

    store = open_state(load_project(root))
    try:
        durations = store.last_durations("project")
    finally:
        store.close()
    assert set(durations) == {"raw.items", "tmp.names", "tmp.ids", "final.products", "final.summary"}


def _open_and_list(url: str) -> int:
    store = StateStore(url)
    try:
        return len(store.list_runs("p"))
    finally:
        store.close()


def _open_in_rounds(urls: list[str], threads: int, barrier: Any) -> list[str]:
    """One process of the hammer: for each fresh database, ``threads`` openers at once."""
    from concurrent.futures import ThreadPoolExecutor

    errors = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for url in urls:
            barrier.wait(timeout=60)
            for future in [pool.submit(_open_and_list, url) for _ in range(threads)]:
                try:
                    assert future.result() == 0
                except Exception as exc:
                    errors.append(f"{url}: {exc}")
    return errors


def test_opening_a_new_state_database_from_many_processes_and_threads_at_once(
    tmp_path: Path, state_backend: str, request: pytest.FixtureRequest
) -> None:
    """A run, the API and a scheduler starting on a new project all open the state database:
    exactly one creates the tables, and none fails ("table runs already exists", or SQLite's
    "database is locked" from a WAL switch racing the migration)."""
    import multiprocessing

    processes, threads, rounds = 4, 4, 15
    if state_backend == "sqlite":
        urls = [f"sqlite:///{tmp_path / f'round{n}.db'}" for n in range(rounds)]
    else:
        server = request.getfixturevalue("postgres_server")
        urls = [new_database(server) for _ in range(rounds)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(processes)
    with context.Pool(processes) as pool:
        results = pool.starmap(_open_in_rounds, [(urls, threads, barrier)] * processes)
    assert [e for errors in results for e in errors] == []


def test_nothing_touches_a_new_sqlite_state_file_before_the_opening_lock_is_held(tmp_path: Path) -> None:
    """The mechanism behind the test above, deterministically: while another opener holds the
    lock, a second one waits without creating (or switching to WAL) the database file."""
    import fcntl
    import threading

    from daglake.state import state_url

    url = state_url(tmp_path, None)
    database = tmp_path / ".daglake" / "state.db"
    lock_path = Path(f"{database}.lock")
    with open(lock_path, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        opened: list[int] = []
        opener = threading.Thread(target=lambda: opened.append(_open_and_list(url)))
        opener.start()
        _wait_until_blocked_on(lock_path)
        assert not database.exists(), "the database was opened before the lock was held"
    opener.join(timeout=30)
    assert opened == [0]
    assert database.exists()


def _wait_until_blocked_on(path: Path, timeout: float = 30) -> None:
    """Until some thread waits for ``path``'s flock: the kernel lists it in /proc/locks as
    ``->``, with the file's inode (no sleeping for luck: we read what the kernel says)."""
    inode = f":{path.stat().st_ino} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()):
            return
        time.sleep(0.001)
    raise AssertionError(f"nothing waited for the lock on {path}")


FIXTURES = Path(__file__).parent / "fixtures" / "state"


def _restore(dump: str, database: Path) -> str:
    """A state file as daglake's SQLAlchemy store left it (``sqlite3 .dump`` in tests/fixtures)."""
    with sqlite3.connect(database) as con:
        con.executescript((FIXTURES / dump).read_text())
    con.close()
    return f"sqlite:///{database}"


def _version(database: Path) -> int:
    with sqlite3.connect(database) as con:
        version = con.execute("SELECT version FROM daglake_schema").fetchone()[0]
    con.close()
    return int(version)


def test_an_older_state_database_is_migrated(tmp_path: Path) -> None:
    url = _restore("sqlalchemy_v1.sql", tmp_path / "state.db")
    store = StateStore(url)
    try:
        assert [r.id for r in store.list_runs("p")] == ["old"]
        assert store.last_durations("p") == {}
    finally:
        store.close()
    assert _version(tmp_path / "state.db") == LATEST


def test_a_state_file_written_through_sqlalchemy_opens_unchanged(tmp_path: Path) -> None:
    """SQLite state is written with the standard library's ``sqlite3`` now; a file the
    SQLAlchemy store wrote reads the same, and takes new runs."""
    from daglake.state.builds import last_builds, table_versions_of

    url = _restore("sqlalchemy_v5.sql", tmp_path / "state.db")
    store = StateStore(url)
    try:
        (record,) = store.list_runs("p")
        assert (record.id, record.state, record.selection, record.counts) == ("r1", "success", {"select": ["a"]}, {"success": 2})
        tasks = {t.name: t for t in store.task_runs("r1")}
        assert tasks["s.a"].rows == 3 and tasks["s.a"].attempts[0].log_path == "logs/r1/a.log"
        assert tasks["s.a: not_null(id)"].check is not None and tasks["s.a: not_null(id)"].check["passed"] is True
        assert store.last_durations("p") == {"s.a": 0.25, "s.a: not_null(id)": 0.01}
        assert last_builds(store, "p", "duckdb")["s.a"].parts == {"code": "abc"}
        assert table_versions_of(store, "p") == {"raw.orders": 1}
    finally:
        store.close()
    assert _version(tmp_path / "state.db") == LATEST


def test_sqlite3_and_sqlalchemy_make_the_same_tables(tmp_path: Path) -> None:
    """The schema ``sqlite3`` creates is the one SQLAlchemy created: same columns, types,
    keys and indexes; and the SQLAlchemy path (a driver in the URL) opens what sqlite3 made."""
    made = tmp_path / "new.db"
    StateStore(f"sqlite:///{made}").close()
    old = tmp_path / "old.db"
    _restore("sqlalchemy_v5.sql", old)

    def shape(path: Path) -> dict[str, Any]:
        with sqlite3.connect(path) as con:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            found = {t: con.execute(f'PRAGMA table_info("{t}")').fetchall() for t in tables}
            found["indexes"] = con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' ORDER BY name").fetchall()
        con.close()
        return found

    assert shape(made) == shape(old)
    store = StateStore(f"sqlite+pysqlite:///{made}")
    try:
        assert store.list_runs("p") == []
    finally:
        store.close()


EXAMPLE = Path(__file__).parent.parent / "examples" / "products"


def table_rows(root: Path, table: str) -> list[tuple[object, ...]]:
    return warehouse(root, f"SELECT * FROM {table} ORDER BY ALL")


def test_resume_the_example_after_fixing_a_broken_branch(tmp_path: Path) -> None:
    import shutil

    clean, broken = tmp_path / "clean", tmp_path / "broken"
    for root in (clean, broken):
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".daglake"))
    assert run(clean).state == "success"

    sql = broken / "res/tmp/stock_levels.sql"
    original = sql.read_text()
    # a type error the engine finds at run time (a bad name would be caught before the run)
    sql.write_text(original.replace("movement_type,\n    moved_at", "movement_type,\n    moved_at / 0", 1))
    first = run(broken)
    assert first.state == "failed"
    assert first.tasks["tmp.stock_levels"].state == "failed"
    blocked = {n for n, t in first.tasks.items() if t.state == "upstream_failed"}
    assert {n for n in blocked if first.tasks[n].kind != "check"} == {"tmp.variants", "final.products"}

    sql.write_text(original)
    started = Started()
    resumed = retry(broken, observer=started)
    assert resumed.state == "success"
    assert started.names == {"tmp.stock_levels"} | blocked  # blocked checks included
    for table in ("tmp.stock_levels", "tmp.variants", "final.products"):
        assert table_rows(broken, table) == table_rows(clean, table)


def test_only_the_newest_runs_keep_their_logs(tmp_path: Path) -> None:
    from daglake.logs import LOGS_DIR, prune

    for index in range(5):
        (tmp_path / LOGS_DIR / f"2024010{index}T000000-abcdef").mkdir(parents=True)
    assert prune(tmp_path, keep=2) == [f"2024010{i}T000000-abcdef" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / LOGS_DIR).iterdir()) == [
        "20240103T000000-abcdef",
        "20240104T000000-abcdef",
    ]


FLAKY_PYTHON = '''
from pathlib import Path

import daglake
import pyarrow as pa

CALLS = Path(__file__).with_name("calls.txt")


@daglake.task("staging.flaky")
def flaky(ctx):
    """Fails for real on its first {fails} calls (as a dropped connection would), then works."""
    calls = int(CALLS.read_text()) if CALLS.exists() else 0
    CALLS.write_text(str(calls + 1))
    if calls < {fails}:
        raise ConnectionError(f"the source hung up (call {{calls + 1}})")
    return pa.table({{"calls": [calls + 1]}})
'''


def test_a_python_task_failing_on_its_first_call_succeeds_on_retry(make_project: ProjectFactory) -> None:
    root = make_project({"daglake.toml": "[run]\nretries = 1\nretry_delay = 0\n", "flaky.py": FLAKY_PYTHON.format(fails=1)})
    summary = run(root)
    assert summary.state == "success"
    attempts = summary.tasks["staging.flaky"].attempts
    assert [a.state for a in attempts] == ["failed", "success"]
    assert attempts[0].error == "ConnectionError: the source hung up (call 1)"
    assert attempts[0].location is not None and attempts[0].location.startswith("flaky.py:")
    assert warehouse(root, "SELECT calls FROM staging.flaky") == [(2,)]


def test_retries_wait_out_a_real_exponential_backoff(make_project: ProjectFactory) -> None:
    """delay 0.2 s, backoff 2: with jitter the waits are in [0.1, 0.2] s, then [0.2, 0.4] s."""
    config = "[run]\nretries = 2\nretry_delay = 0.2\nretry_backoff = 2\n"
    root = make_project({"daglake.toml": config, "flaky.py": FLAKY_PYTHON.format(fails=2)})
    summary = run(root)
    assert summary.state == "success"
    attempts = summary.tasks["staging.flaky"].attempts
    assert [a.state for a in attempts] == ["failed", "failed", "success"]
    waits = [b.started_at - (a.started_at + (a.duration or 0)) for a, b in itertools.pairwise(attempts)]
    assert 0.1 <= waits[0] < 0.2 + 0.1
    assert 0.2 <= waits[1] < 0.4 + 0.1


def test_a_sql_task_retried_after_another_process_creates_what_it_reads(tmp_path: Path) -> None:
    """The first attempt fails for real (the file is not there); the moment its log says so,
    another process writes the table; the retry, after its backoff, reads it."""
    import subprocess
    import sys

    root = tmp_path / "late"
    (root / "res").mkdir(parents=True)
    (root / "daglake.toml").write_text('[project]\ndialect = "duckdb"\n[run]\nretries = 1\nretry_delay = 3\n')
    (root / "res/late.sql").write_text("SELECT id, id * 2 AS doubled FROM read_parquet('incoming/late.parquet')")
    process = subprocess.Popen(
        [sys.executable, "-m", "daglake", "run", "--json"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first_log = _wait_for_log(root, "res.late.1.log", "failed after")
        assert "incoming/late.parquet" in first_log
        (root / "incoming").mkdir()
        writer = (
            "import duckdb, os; duckdb.sql(\"COPY (SELECT range AS id FROM range(3)) TO 'incoming/.late.tmp' (FORMAT parquet)\");"
            " os.replace('incoming/.late.tmp', 'incoming/late.parquet')"
        )
        subprocess.run([sys.executable, "-c", writer], cwd=root, check=True, timeout=60)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    [late] = [t for t in json.loads(out)["tasks"] if t["name"] == "res.late"]
    assert [a["state"] for a in late["attempts"]] == ["failed", "success"]
    assert warehouse(root, "SELECT id, doubled FROM res.late ORDER BY id") == [(0, 0), (1, 2), (2, 4)]


def _wait_for_log(root: Path, name: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (root / ".daglake" / "logs").glob(f"*/{name}"):
            content = path.read_text()
            if text in content:
                return content
        time.sleep(0.005)
    raise AssertionError(f"no {name} saying {text!r}")
