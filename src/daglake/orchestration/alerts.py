"""Alerts when a run ends (``[alerts]``): a JSON POST to a webhook and/or a shell command
given the same JSON on stdin.

Sent from a thread of their own after the run has ended, each attempt bounded by
``timeout``, retried with backoff: an alert never blocks or fails the run. What became of
each one is written to ``.daglake/alerts/<run_id>.json``, which the API shows in the run.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from daglake.config import AlertSettings
from daglake.events import FAILED, UPSTREAM_FAILED, RunSummary

log = logging.getLogger("daglake.alerts")
ALERTS_DIR = "alerts"
FIRST_BACKOFF = 0.5  # seconds before the first retry; doubled each time


def alert_body(summary: RunSummary, trigger: str, ui_url: str) -> dict[str, Any]:
    """What an alert says: enough to know what broke and where without opening anything."""
    failed = [
        {"task": t.name, "state": t.state, "error": t.error or t.reason, "location": t.location or t.path}
        for t in summary.tasks.values()
        if t.state in (FAILED, UPSTREAM_FAILED)
    ]
    return {
        "run_id": summary.run_id,
        "project": summary.project,
        "state": summary.state,
        "logical_date": summary.logical_date,
        "trigger": trigger,
        "duration": round(summary.duration, 3),
        "failed_tasks": failed,
        "url": f"{ui_url.rstrip('/')}/#run={summary.run_id}",
    }


def wanted(settings: AlertSettings, state: str) -> bool:
    if settings.webhook is None and settings.command is None:
        return False
    return ("success" if state == "success" else "failure") in settings.on


def dispatch(root: Path, settings: AlertSettings, summary: RunSummary, trigger: str) -> threading.Thread | None:
    """Send the run's alerts in the background; the thread, so a caller may wait for it."""
    if summary.dry_run or not wanted(settings, summary.state):
        return None
    body = alert_body(summary, trigger, settings.ui_url)
    thread = threading.Thread(
        target=deliver, args=(root, settings, body), name=f"daglake-alerts-{summary.run_id}"
    )
    thread.start()
    return thread


def deliver(root: Path, settings: AlertSettings, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Try each channel up to ``1 + retries`` times; the outcomes, also written beside the state."""
    data = json.dumps(body).encode()
    outcomes = []
    channels = [("webhook", settings.webhook), ("command", settings.command)]
    for channel, target in channels:
        if target is None:
            continue
        send = _post if channel == "webhook" else _command
        outcome: dict[str, Any] = {"channel": channel, "target": target, "state": "failed", "attempts": 0}
        for attempt in range(settings.retries + 1):
            if attempt:
                time.sleep(FIRST_BACKOFF * 2 ** (attempt - 1))
            outcome["attempts"] = attempt + 1
            try:
                send(target, data, settings.timeout)
            except Exception as exc:  # any failure to deliver is recorded, never raised
                outcome["error"] = f"{type(exc).__name__}: {exc}"
                continue
            outcome["state"], outcome["error"] = "delivered", None
            break
        if outcome["state"] == "failed":
            log.warning("alert for run %s by %s failed: %s", body["run_id"], channel, outcome["error"])
        outcomes.append(outcome)
    _save(root, body["run_id"], outcomes)
    return outcomes


def _post(url: str, data: bytes, timeout: float) -> None:
    import urllib.request

    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "daglake"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def _command(command: str, data: bytes, timeout: float) -> None:
    done = subprocess.run(command, shell=True, input=data, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"exit status {done.returncode} {tail[0]}".strip())


def _save(root: Path, run_id: str, outcomes: list[dict[str, Any]]) -> None:
    folder = root / ".daglake" / ALERTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{run_id}.tmp"
    temporary.write_text(json.dumps(outcomes, indent=2), encoding="utf-8")
    temporary.replace(folder / f"{run_id}.json")


def read_alerts(root: Path, run_id: str) -> list[dict[str, Any]] | None:
    """The alerts sent for a run; None when none were (or they are still being sent)."""
    path = root / ".daglake" / ALERTS_DIR / f"{run_id}.json"
    try:
        found: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found
