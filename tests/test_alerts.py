"""Alerts (SPEC §11) from real runs on DuckDB to a real HTTP server on 127.0.0.1 in a thread,
and to a shell command: the body, retries after a 500, a webhook that never answers, and a
failing alert shown in the run but never failing it."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daglake.orchestration import alerts
from daglake.orchestration.alerts import read_alerts
from daglake.runner import RunOptions, run
from tests.api_support import wait_for
from tests.conftest import ProjectFactory
from tests.test_serve_schedule import TOKEN, TestClient


class Hook:
    """A webhook that answers the statuses it is given in turn (then 200), or never answers."""

    def __init__(self, statuses: list[int], *, silent: bool = False) -> None:
        self.bodies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.statuses, self.silent, self.release = statuses, silent, threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.bodies.put(body)
                if hook.silent:
                    hook.release.wait(30)
                    return
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "FIRST_BACKOFF", 0.01)


def failing_project(make_project: ProjectFactory, alert_lines: str) -> Path:
    return make_project(
        {
            "daglake.toml": f'[project]\nname = "alerting"\n\n[alerts]\n{alert_lines}\nui_url = "http://ui.example:8181"\n',
            "res/tmp/good.sql": "SELECT 1 AS id",
            "res/tmp/bad.sql": "SELECT id,\n  no_such_column\nFROM tmp.good",
            "res/final/report.sql": "SELECT count(*) AS n FROM tmp.bad",
        }
    )


def outcomes(root: Path, run_id: str) -> list[dict[str, Any]]:
    return wait_for(lambda: read_alerts(root, run_id), "the alert outcome", timeout=30)


def serving(root: Path) -> TestClient:
    from daglake.api.app import create_app

    return TestClient(create_app(root, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def hook_factory() -> Iterator[list[Hook]]:
    made: list[Hook] = []
    yield made
    for hook in made:
        hook.close()


def test_the_webhook_gets_the_runs_failure_after_a_first_500(
    make_project: ProjectFactory, hook_factory: list[Hook], quick_backoff: None
) -> None:
    hook = Hook([500])
    hook_factory.append(hook)
    root = failing_project(make_project, f'webhook = "{hook.url}"\nretries = 2')
    summary = run(root, RunOptions(logical_date="2026-02-01", trigger="schedule"))
    assert summary.state == "failed"
    first, second = hook.bodies.get(timeout=30), hook.bodies.get(timeout=30)
    assert first == second
    assert {k: first[k] for k in ("run_id", "project", "state", "logical_date", "trigger")} == {
        "run_id": summary.run_id,
        "project": "alerting",
        "state": "failed",
        "logical_date": "2026-02-01",
        "trigger": "schedule",
    }
    assert first["url"] == f"http://ui.example:8181/#run={summary.run_id}"
    failed = {t["task"]: t for t in first["failed_tasks"]}
    assert set(failed) == {"tmp.bad", "final.report"}
    assert failed["tmp.bad"]["state"] == "failed"
    assert failed["tmp.bad"]["location"].startswith("res/tmp/bad.sql:2")
    assert "no_such_column" in failed["tmp.bad"]["error"]
    assert failed["final.report"]["state"] == "upstream_failed"
    [outcome] = outcomes(root, summary.run_id)
    assert (outcome["channel"], outcome["state"], outcome["attempts"]) == ("webhook", "delivered", 2)


def test_a_webhook_that_never_answers_does_not_delay_the_run_and_is_shown_as_failed(
    make_project: ProjectFactory, hook_factory: list[Hook], quick_backoff: None
) -> None:
    hook = Hook([], silent=True)
    hook_factory.append(hook)
    root = failing_project(make_project, f'webhook = "{hook.url}"\nretries = 1\ntimeout = 2')
    began = time.monotonic()
    summary = run(root)
    took = time.monotonic() - began
    assert summary.state == "failed"  # the task's failure, not the alert's
    assert took < 2.0, f"the run waited {took:.1f} s for its alert"
    hook.bodies.get(timeout=30)  # the alert was sent, in the background
    [outcome] = outcomes(root, summary.run_id)
    assert (outcome["state"], outcome["attempts"]) == ("failed", 2)
    assert "timed out" in outcome["error"]


def test_the_command_gets_the_body_on_stdin_and_a_failing_one_is_shown_in_the_run(
    make_project: ProjectFactory, quick_backoff: None, tmp_path: Path
) -> None:
    received = tmp_path / "received.json"
    root = make_project(
        {
            "daglake.toml": (
                '[project]\nname = "alerting"\n\n[alerts]\non = ["success"]\nretries = 1\n'
                f"command = \"cat > '{received}' && echo 'pager is down' >&2 && exit 3\"\n"
            ),
            "res/tmp/good.sql": "SELECT 1 AS id",
        }
    )
    summary = run(root)
    assert summary.state == "success"  # a failing alert never fails the run
    [outcome] = outcomes(root, summary.run_id)
    assert (outcome["channel"], outcome["state"], outcome["attempts"]) == ("command", "failed", 2)
    assert outcome["error"] == "RuntimeError: exit status 3 pager is down"
    body = json.loads(received.read_text(encoding="utf-8"))
    assert (body["run_id"], body["state"], body["failed_tasks"]) == (summary.run_id, "success", [])
    with serving(root) as client:  # GET /runs/{id} shows it with the run, which stays a success
        shown = client.get(f"/runs/{summary.run_id}").json()
    assert shown["state"] == "success"
    assert [(a["channel"], a["state"]) for a in shown["alerts"]] == [("command", "failed")]
