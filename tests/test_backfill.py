"""Backfills (SPEC §11) on real DuckDB: six monthly intervals of a project whose SQL reads
``@ds``, one interval failing once through ``DAGLAKE_INJECT_FAILURES``; re-issued, only that
interval runs; the warehouse ends as if the months had been run one by one."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
from pathlib import Path

import duckdb
import pytest

from daglake.orchestration.backfill import backfill
from daglake.runner import RunOptions, run
from daglake.state import StateStore, state_url
from tests.api_support import daglake_command, wait_for

MONTHS = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01"]
FILES = {
    "daglake.toml": '[project]\nname = "monthly"\nschedule = "@monthly"\n',
    "res/tmp/month.sql": "SELECT CAST(@ds AS DATE) AS month, EXTRACT(month FROM CAST(@ds AS DATE)) AS number",
    # one month's rows replaced per run, the others kept: the order of runs must not matter
    "res/final/report.sql": (
        "CREATE TABLE IF NOT EXISTS `final.report` (month DATE, score INT64);\n"
        "DELETE FROM `final.report` WHERE month = CAST(@ds AS DATE);\n"
        "INSERT INTO `final.report` SELECT month, number * 10 FROM tmp.month;\n"
    ),
}


def write(root: Path) -> Path:
    for relative, text in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return root


def tables(root: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT * FROM final.report ORDER BY month").fetchall()


def runs_by_date(root: Path) -> dict[str, list[tuple[str, str]]]:
    store = StateStore(state_url(root, None))
    try:
        found: dict[str, list[tuple[str, str]]] = {}
        for record in reversed(store.list_runs("monthly", 100)):
            found.setdefault(record.logical_date, []).append((record.trigger, record.state))
        return found
    finally:
        store.close()


def test_a_backfill_reports_the_failed_month_and_reissued_runs_only_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path / "backfilled")
    monkeypatch.setenv("DAGLAKE_INJECT_FAILURES", "tmp.month@2026-03-01=1")
    first = backfill(root, dt.date(2026, 1, 1), dt.date(2026, 7, 1))
    assert [(o.interval.logical_date, o.state) for o in first] == [
        (month, "failed" if month == "2026-03-01" else "success") for month in MONTHS
    ]
    assert all(o.run_id for o in first)
    monkeypatch.delenv("DAGLAKE_INJECT_FAILURES")  # it failed once; now it would pass

    done = subprocess.run(
        [*daglake_command(), "backfill", str(root), "--start", "2026-01-01", "--end", "2026-07-01", "--json"],
        capture_output=True, text=True, timeout=120, check=False, env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(i["logical_date"], i["state"]) for i in listed] == [
        (month, "success" if month == "2026-03-01" else "already_successful") for month in MONTHS
    ]
    previous = {o.interval.logical_date: o.run_id for o in first}
    for interval in listed:  # the skipped ones name the run that made them, the retried one a new run
        same = interval["logical_date"] != "2026-03-01"
        assert (interval["run_id"] == previous[interval["logical_date"]]) is same
    history = runs_by_date(root)
    assert history["2026-03-01"] == [("backfill", "failed"), ("backfill", "success")]
    assert all(history[m] == [("backfill", "success")] for m in MONTHS if m != "2026-03-01")

    one_by_one = write(tmp_path / "by-hand")
    for month in MONTHS:
        assert run(one_by_one, RunOptions(logical_date=month)).state == "success"
    assert tables(root) == tables(one_by_one) == [(dt.date.fromisoformat(m), 10 * (n + 1)) for n, m in enumerate(MONTHS)]


GATE = '''
"""Holds the run while the file ``hold`` exists."""
import time

import daglake


@daglake.task("tmp.gate", inputs=["tmp.month"])
def gate(ctx):
    (ctx.project_root / "gate-reached").write_text(ctx.run_id)
    deadline = time.monotonic() + 60
    while (ctx.project_root / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return ctx.sql("SELECT CAST(@ds AS DATE) AS month")
'''


def test_ctrl_c_stops_a_backfill_after_the_current_task_without_a_traceback(tmp_path: Path) -> None:
    root = write(tmp_path / "interrupted")
    (root / "res/tmp/gate.py").write_text(GATE, encoding="utf-8")
    (root / "hold").touch()
    process = subprocess.Popen(
        [*daglake_command(), "backfill", str(root), "--start", "2026-01-01", "--end", "2026-07-01", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: (root / "gate-reached").exists(), "the first interval to reach tmp.gate", 60)
        process.send_signal(signal.SIGINT)
        (root / "hold").unlink()  # the current task may now finish
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "Traceback" not in err, err
    listed = json.loads(out)
    assert (listed[0]["logical_date"], listed[0]["state"]) == ("2026-01-01", "interrupted")
    assert [i["state"] for i in listed[1:]] == ["not_started"] * 5
    history = runs_by_date(root)
    assert list(history) == ["2026-01-01"]  # no later interval started
    assert StateStore(state_url(root, None)).get_run(listed[0]["run_id"]) is not None


def is_backfilled(run: dict[str, object]) -> bool:
    """A backfill run that has ended (the project's schedule also starts one of its own)."""
    return run["trigger"] == "backfill" and run["state"] != "running"


def test_post_backfill_needs_the_token_and_runs_the_intervals_in_the_background(tmp_path: Path) -> None:
    from daglake.api.app import create_app
    from tests.test_serve_schedule import TOKEN, TestClient

    root = write(tmp_path / "over-http")
    with TestClient(create_app(root, token=TOKEN)) as client:
        query = {"start": "2026-01-01", "end": "2026-04-01"}
        assert client.post("/backfill", params=query).status_code == 401
        accepted = client.post("/backfill", params=query, headers={"Authorization": f"Bearer {TOKEN}"})
        assert accepted.status_code == 202, accepted.text
        assert [i["logical_date"] for i in accepted.json()["intervals"]] == MONTHS[:3]
        ended = wait_for(
            lambda: len(r := [x for x in client.get("/runs").json()["runs"] if is_backfilled(x)]) == 3 and r,
            "the three backfill runs",
            60,
        )
    assert sorted((r["logical_date"], r["trigger"], r["state"]) for r in ended) == [
        (m, "backfill", "success") for m in MONTHS[:3]
    ]
