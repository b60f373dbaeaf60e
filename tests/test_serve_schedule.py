"""``daglake serve``'s scheduler (the app ``daglake serve`` runs, in process) on a tiny DuckDB
project with ``schedule = "* * * * *"``; time is a manual clock the test moves, never waited for."""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daglake.api.app import create_app
from daglake.orchestration.schedule import ManualClock
from tests.api_support import wait_for
from tests.conftest import ProjectFactory

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what is pinned
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "schedule-token-" + "x" * 20
START = dt.datetime(2026, 3, 1, 10, 0, 30, tzinfo=dt.UTC)
GATE = '''
"""Holds the run while the file ``hold`` exists, so a test can act while a run is going."""
import time

import daglake


@daglake.task("tmp.gate")
def gate(ctx):
    deadline = time.monotonic() + 60
    while (ctx.project_root / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return ctx.sql("SELECT CAST(@ds AS DATE) AS day")
'''


def project(make_project: ProjectFactory, *, catchup: bool = False) -> Path:
    return make_project(
        {
            "daglake.toml": f'[project]\nname = "tick"\nschedule = "* * * * *"\ncatchup = {str(catchup).lower()}\n',
            "res/final/days.sql": "SELECT CAST(@ds AS DATE) AS day, @run_id AS run",
            "res/tmp/gate.py": GATE,
        }
    )


@contextmanager
def serving(root: Path, clock: ManualClock) -> Iterator[TestClient]:
    app = create_app(root, token=TOKEN, clock=clock)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def finished_runs(client: TestClient, count: int) -> list[dict[str, Any]]:
    """The runs, oldest first, once ``count`` of them have ended."""

    def ended() -> list[dict[str, Any]] | None:
        runs = client.get("/runs").json()["runs"]
        done = [r for r in runs if r["state"] != "running"]
        return list(reversed(runs)) if len(done) >= count and len(runs) == len(done) else None

    return wait_for(ended, f"{count} finished runs", timeout=60)


def test_serve_starts_a_scheduled_run_by_itself_and_the_next_when_time_moves(make_project: ProjectFactory) -> None:
    root = project(make_project)
    clock = ManualClock(START)
    with serving(root, clock) as client:
        [first] = finished_runs(client, 1)
        assert (first["trigger"], first["logical_date"], first["state"]) == ("schedule", "2026-03-01", "success")
        assert client.get("/schedule").json()["next"][0]["start"] == "2026-03-01T10:00:00+00:00"
        clock.advance(seconds=60)
        runs = finished_runs(client, 2)
        assert [r["trigger"] for r in runs] == ["schedule", "schedule"]
        assert runs[1]["started_at"] >= runs[0]["ended_at"]
        assert client.app.state.daglake.scheduled.tick() is None  # nothing more is due (the clock stands)
    memory = (root / ".daglake" / "schedule.json").read_text(encoding="utf-8")
    assert '"last_start": "2026-03-01T10:00:00+00:00"' in memory


def test_a_run_in_progress_delays_the_next_interval_never_overlaps_it(make_project: ProjectFactory) -> None:
    root = project(make_project)
    clock = ManualClock(START)
    (root / "hold").touch()
    with serving(root, clock) as client:
        scheduled = client.app.state.daglake.scheduled
        held = wait_for(lambda: client.get("/runs").json()["runs"], "the first scheduled run")[0]
        assert held["state"] == "running"
        clock.advance(seconds=60)  # the next interval is due while the first run goes on
        assert scheduled.tick() is None
        assert [r["run_id"] for r in client.get("/runs").json()["runs"]] == [held["run_id"]]
        (root / "hold").unlink()
        wait_for(lambda: client.app.state.daglake.runs.current is None, "the held run to end")
        clock.advance(seconds=1)  # the scheduler looks again
        first, second = finished_runs(client, 2)
        assert first["run_id"] == held["run_id"]
        assert second["started_at"] >= first["ended_at"]
        assert second["trigger"] == "schedule"


def started_intervals(root: Path) -> str:
    return (root / ".daglake" / "schedule.json").read_text(encoding="utf-8")


def test_a_restart_after_downtime_without_catchup_runs_only_the_latest_interval(make_project: ProjectFactory) -> None:
    root = project(make_project, catchup=False)
    with serving(root, ManualClock(START)) as client:
        finished_runs(client, 1)
    later = ManualClock(START + dt.timedelta(minutes=5))
    with serving(root, later) as client:
        runs = finished_runs(client, 2)
        assert len(runs) == 2 and runs[1]["trigger"] == "schedule"
        assert client.app.state.daglake.scheduled.tick() is None
    assert '"last_start": "2026-03-01T10:04:00+00:00"' in started_intervals(root)


def test_a_restart_after_downtime_with_catchup_runs_every_missed_interval_in_order(make_project: ProjectFactory) -> None:
    root = project(make_project, catchup=True)
    with serving(root, ManualClock(START)) as client:
        finished_runs(client, 1)
    with serving(root, ManualClock(START + dt.timedelta(minutes=5))) as client:
        runs = finished_runs(client, 6)  # the first run and the five minutes missed
        assert [r["trigger"] for r in runs] == ["schedule"] * 6
        assert all(later["started_at"] >= earlier["ended_at"] for earlier, later in itertools.pairwise(runs))
        assert client.app.state.daglake.scheduled.tick() is None
    assert '"last_start": "2026-03-01T10:04:00+00:00"' in started_intervals(root)
