"""kill -9 at random moments, and overlapping runs: nothing half-written, nothing stuck."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from daglake.history import list_runs, run_details

LAYERS, WIDTH = 8, 25  # 200 tasks
TRIALS = 20
DAGLAKE = [sys.executable, "-m", "daglake"]


def write_project(root: Path) -> list[str]:
    """Tasks in layers; each reads two of the layer before and does a little real work."""
    tables = []
    root.mkdir(parents=True)
    (root / "daglake.toml").write_text('[project]\ndialect = "duckdb"\n[run]\nworkers = 4\n')
    rng = random.Random(7)
    for layer in range(LAYERS):
        folder = root / f"l{layer}"
        folder.mkdir()
        for i in range(WIDTH):
            if layer == 0:
                sql = f"SELECT range AS id, range % {i + 3} AS k FROM range({5_000 + 500 * i})"
            else:
                a, b = rng.sample(range(WIDTH), 2)
                sql = (
                    f"SELECT id, k FROM l{layer - 1}.t{a} WHERE id % 3 <> {i % 3}\n"
                    f"UNION ALL SELECT id + 1, k FROM l{layer - 1}.t{b} WHERE id % 5 = {i % 5}"
                )
            (folder / f"t{i}.sql").write_text(sql)
            tables.append(f"l{layer}.t{i}")
    return tables


def fingerprints(root: Path, tables: list[str]) -> dict[str, tuple[int, int]]:
    """Row count and a checksum of every table that exists."""
    path = root / ".daglake" / "warehouse.duckdb"
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        existing = {f"{s}.{n}" for s, n in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        return {
            t: tuple(con.execute(f"SELECT count(*), coalesce(sum(hash(id, k)), 0) FROM {t}").fetchone())  # type: ignore[misc]
            for t in tables
            if t in existing
        }


def daglake(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DAGLAKE, *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload, no-any-return]


def wait_for_run_record(root: Path, timeout: float = 60) -> str:
    """Block until the run has recorded itself in the state database (then tasks may start)."""
    deadline = time.monotonic() + timeout
    path = root / ".daglake" / "state.db"
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with sqlite3.connect(path, timeout=1) as con:
                    row = con.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
                if row:
                    return str(row[0])
            except sqlite3.OperationalError:
                pass  # tables not created yet
        time.sleep(0.005)
    raise AssertionError("the run never recorded itself")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, tuple[int, int]], float]:
    root = tmp_path_factory.mktemp("crash") / "clean"
    tables = write_project(root)
    result = daglake("run", root, "--json")
    assert result.returncode == 0, result.stderr
    elapsed = float(json.loads(result.stdout)["duration"])  # from the first task to the last
    expected = fingerprints(root, tables)
    assert len(expected) == len(tables)
    return root, tables, expected, elapsed


def test_kill_9_at_random_moments_then_retry(
    reference: tuple[Path, list[str], dict[str, tuple[int, int]], float], tmp_path: Path
) -> None:
    clean, tables, expected, elapsed = reference
    rng = random.Random(20261121)
    killed_midway = 0
    for trial in range(TRIALS):
        root = tmp_path / f"trial{trial}"
        shutil.copytree(clean, root, ignore=shutil.ignore_patterns(".daglake"))
        process = subprocess.Popen([*DAGLAKE, "run", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run_id = wait_for_run_record(root)
            time.sleep(rng.uniform(0, elapsed))
        finally:
            finished_by_itself = process.poll() is not None
            process.send_signal(signal.SIGKILL)
            process.wait()
        found = fingerprints(root, tables)
        assert {t: found[t] for t in found} == {t: expected[t] for t in found}, f"trial {trial}: a table is incomplete"
        killed_midway += 0 < len(found) < len(tables)

        [(listed, state)] = [(r.id, r.state) for r in list_runs(root)]
        assert listed == run_id
        task_states = {t.state for t in run_details(root, run_id).tasks}
        if finished_by_itself:
            assert (process.returncode, state, task_states) == (0, "success", {"success"})
        elif state == "success":  # killed between recording its end and exiting
            assert (len(found), task_states) == (len(tables), {"success"}), f"trial {trial}"
        else:  # killed midway: a later process finds the dead run
            assert state == "failed", f"trial {trial}"
        resumed = daglake("retry", "-p", root, "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["run_id"] == run_id
        assert fingerprints(root, tables) == expected, f"trial {trial}: retry differs from a clean run"
        assert [(r.id, r.state) for r in list_runs(root)] == [(run_id, "success")]
    assert killed_midway >= TRIALS // 4, "too few kills landed while tasks were running"


def test_two_runs_at_once_exactly_one_runs(
    reference: tuple[Path, list[str], dict[str, tuple[int, int]], float], tmp_path: Path
) -> None:
    clean, tables, expected, _ = reference
    root = tmp_path / "twice"
    shutil.copytree(clean, root, ignore=shutil.ignore_patterns(".daglake"))
    first = subprocess.Popen([*DAGLAKE, "run", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = wait_for_run_record(root)
    second = daglake("run", root)
    assert second.returncode == 2
    assert f"another run is in progress on this project (run {run_id}, pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    runs = json.loads(daglake("runs", "-p", root, "--json").stdout)
    assert [(r["run_id"], r["state"]) for r in runs] == [(run_id, "success")]
    assert fingerprints(root, tables) == expected


def test_simultaneous_starts_one_wins(
    reference: tuple[Path, list[str], dict[str, tuple[int, int]], float], tmp_path: Path
) -> None:
    clean, tables, expected, _ = reference
    root = tmp_path / "race"
    shutil.copytree(clean, root, ignore=shutil.ignore_patterns(".daglake"))
    processes = [
        subprocess.Popen([*DAGLAKE, "run", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "another run is in progress" in loser
    runs = json.loads(daglake("runs", "-p", root, "--json").stdout)
    assert [r["state"] for r in runs] == ["success"]
    assert fingerprints(root, tables) == expected
    assert os.path.exists(root / ".daglake" / "run.lock")


# --- kill -9 at chosen moments: the history tells what finished, retry redoes the rest ---------

GATED_TASK = '''
"""Test hook: at the gate named by DAGLAKE_TEST_GATE, say so and wait for the file ``release``."""
import os
import time

import daglake


def gate(ctx):
    root = ctx.project_root
    if ctx.task == os.environ.get("DAGLAKE_TEST_GATE") and not (root / "release").exists():
        (root / "reached.tmp").write_text(ctx.run_id)
        (root / "reached.tmp").rename(root / "reached")
        deadline = time.monotonic() + 120
        while not (root / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return ctx.sql("SELECT 1 AS done")


@daglake.task("gate.early", inputs=["raw.seed_a"])
def early(ctx):
    return gate(ctx)


@daglake.task("gate.middle", inputs=["l1.a", "l1.b"])
def middle(ctx):
    return gate(ctx)


@daglake.task("gate.late", inputs=["l2.c", "gate.middle"])
def late(ctx):
    return gate(ctx)
'''
GATES = ("gate.early", "gate.middle", "gate.late")
GATED_SQL = {
    "db_init/seed_a.sql": "CREATE OR REPLACE TABLE raw.seed_a AS SELECT range AS id FROM range(100)",
    "db_init/seed_b.sql": "CREATE OR REPLACE TABLE raw.seed_b AS SELECT range AS id FROM range(50)",
    "res/l1/a.sql": "SELECT id FROM raw.seed_a WHERE id % 2 = 0",
    "res/l1/b.sql": "SELECT id FROM raw.seed_b",
    "res/l1/side.sql": "SELECT id FROM raw.seed_b WHERE id < 10",
    "res/l2/c.sql": "SELECT a.id FROM l1.a AS a JOIN l1.b AS b ON a.id = b.id",
    "res/l3/after_early.sql": "SELECT done FROM gate.early",
    "res/l3/final.sql": "SELECT c.id FROM l2.c AS c CROSS JOIN gate.late AS g",
}


def write_gated_project(root: Path) -> None:
    """Seeds, SQL layers and three Python gate tasks at different depths of the graph."""
    for relative, text in GATED_SQL.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    (root / "res" / "gates.py").write_text(GATED_TASK)
    (root / "daglake.toml").write_text('[project]\nname = "gated"\ndialect = "duckdb"\n[run]\nworkers = 2\n')


UPSTREAM = {  # what each gate reads, transitively: all finished (and recorded) when it starts
    "gate.early": {"raw.seed_a"},
    "gate.middle": {"l1.a", "l1.b", "raw.seed_a", "raw.seed_b"},
    "gate.late": {"l2.c", "gate.middle", "l1.a", "l1.b", "raw.seed_a", "raw.seed_b"},
}


def recorded(root: Path, run_id: str) -> dict[str, tuple[str, int]]:
    """Each task's state and number of recorded attempts, straight from the state database."""
    with sqlite3.connect(root / ".daglake" / "state.db") as con:
        states = dict(con.execute("SELECT task, state FROM task_runs WHERE run_id = ?", (run_id,)).fetchall())
        tries = dict(con.execute("SELECT task, count(*) FROM attempts WHERE run_id = ? GROUP BY task", (run_id,)).fetchall())
    return {task: (state, int(tries.get(task, 0))) for task, state in states.items()}


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("full_refresh", [False, True], ids=["run", "full_refresh"])
def test_kill_9_at_a_gate_records_what_finished_and_retry_redoes_only_the_rest(
    tmp_path: Path, gate: str, full_refresh: bool
) -> None:
    root = tmp_path / "gated"
    write_gated_project(root)
    env = {**os.environ, "DAGLAKE_TEST_GATE": gate}
    if full_refresh:  # seeds built once, so a full refresh is what reloads them
        (root / "release").touch()
        assert daglake("run", root, env=env).returncode == 0
        (root / "release").unlink()
    args = ["run", str(root), *(["--full-refresh"] if full_refresh else [])]
    process = subprocess.Popen([*DAGLAKE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (root / "reached").exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the run never reached its gate"
            time.sleep(0.01)
        run_id = (root / "reached").read_text()
        alive = recorded(root, run_id)  # read while the run is alive and held at the gate
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.stderr is not None
        process.stderr.close()

    was_finished = {t for t, (state, _) in alive.items() if state in ("success", "skipped")}
    assert UPSTREAM[gate] <= was_finished, alive  # every task the gate read was recorded as finished
    # other branches go on while the gate holds, so what they finish before the kill lands is read after it
    at_kill = recorded(root, run_id)
    finished = {t for t, (state, _) in at_kill.items() if state in ("success", "skipped")}
    assert was_finished <= finished, (alive, at_kill)  # nothing recorded is lost
    assert at_kill[gate][0] in ("running", "pending")
    assert all(at_kill[t][1] == 1 for t in finished if at_kill[t][0] == "success"), at_kill

    shown = json.loads(daglake("runs", "-p", root, run_id, "--json").stdout)
    assert shown["state"] == "failed"  # the dead run is not left running
    states = {t["name"]: t["state"] for t in shown["tasks"]}
    assert {t for t, s in states.items() if s in ("success", "skipped")} == finished
    assert states[gate] == "failed"

    (root / "release").touch()
    resumed = daglake("retry", "-p", root, run_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    after = recorded(root, run_id)
    assert set(after) == set(at_kill) and {s for s, _ in after.values()} <= {"success", "skipped"}
    ran = {t for t in after if after[t][1] > at_kill[t][1] or (after[t][0] != at_kill[t][0])}
    assert ran == set(at_kill) - finished, (at_kill, after)  # exactly what had not finished
    summary = json.loads(resumed.stdout)
    assert summary["run_id"] == run_id and summary["state"] == "success"
