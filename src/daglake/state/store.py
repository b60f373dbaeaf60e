"""Run history in SQLite (``.daglake/state.db``, by default) or PostgreSQL."""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daglake.events import PENDING, RUNNING, Attempt, TaskRun
from daglake.state.database import Database, open_database
from daglake.state.schema import migrate

STATE_FILE = "state.db"
STATE_URL_ENV = "DAGLAKE_STATE_URL"


@dataclass
class RunRecord:
    id: str
    project: str
    logical_date: str
    selection: dict[str, Any]
    state: str
    trigger: str = "cli"
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    pid: int | None = None
    host: str | None = None
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "project": self.project,
            "logical_date": self.logical_date,
            "selection": self.selection,
            "state": self.state,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "error": self.error,
            "counts": self.counts,
        }


def state_url(root: Path, configured: str | None) -> str:
    """``DAGLAKE_STATE_URL``, else ``[state] url``, else SQLite in the project's ``.daglake/``."""
    url = os.environ.get(STATE_URL_ENV) or configured
    if url:
        return url
    path = root / ".daglake" / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@functools.cache
def _insert(table: str, names: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{name}"' for name in names)  # "trigger" is a keyword in SQLite
    return f"INSERT INTO {table} ({quoted}) VALUES ({', '.join(f':{name}' for name in names)})"


def insert(table: str, columns: Iterable[str]) -> str:
    """``INSERT INTO table (…) VALUES (:…)``, the row's keys as parameters."""
    return _insert(table, tuple(columns))


def in_list(prefix: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """``(:p0, :p1, …)`` and its parameters, for ``column IN …``."""
    params = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{name}" for name in params) + ")", params


_RUN_COLUMNS = ("id", "project", "logical_date", "selection", "state", "trigger", "started_at", "ended_at", "pid", "host", "error")
_TASK_COLUMNS = ("run_id", "task", "path", "state", "attempts", "started_at", "ended_at", "duration", "rows", "error", "location", "reason", "metrics")
_ATTEMPT_COLUMNS = ("run_id", "task", "number", "state", "started_at", "ended_at", "duration", "rows", "error", "location", "log_path", "job_ids")
_CHECK_COLUMNS = ("run_id", "name", "table_name", "kind", "severity", "passed", "failing", "sample", "error", "checked_at")
_UPDATE_TASK = "UPDATE task_runs SET " + ", ".join(
    f"{name} = :{name}" for name in _TASK_COLUMNS if name not in ("run_id", "task", "path")
) + " WHERE run_id = :run_id AND task = :task"


class StateStore:
    """A small interface over the metadata tables; every write is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database: Database = open_database(url, migrate)

    def close(self) -> None:
        self.database.close()

    # -- writing a run ---------------------------------------------------------------------

    def begin_run(self, record: RunRecord, tasks: Iterable[TaskRun]) -> None:
        record.pid = record.pid or os.getpid()
        record.host = record.host or socket.gethostname()
        with self.database.transaction():
            self.database.execute(insert("runs", _RUN_COLUMNS), _run_row(record))
            self.database.execute_many(insert("task_runs", _TASK_COLUMNS), [_task_row(record.id, t) for t in tasks])

    def reopen_run(self, run_id: str, tasks: Iterable[TaskRun]) -> None:
        """Mark a run running again for ``daglake retry``, resetting the tasks it will redo."""
        database = self.database
        with database.transaction():
            database.execute(
                "UPDATE runs SET state = :state, ended_at = NULL, error = NULL, pid = :pid, host = :host WHERE id = :id",
                {"state": RUNNING, "pid": os.getpid(), "host": socket.gethostname(), "id": run_id},
            )
            existing = {r["task"] for r in database.query("SELECT task FROM task_runs WHERE run_id = :run_id", {"run_id": run_id})}
            tasks = list(tasks)
            self._update_tasks(run_id, [t for t in tasks if t.name in existing])
            database.execute_many(insert("task_runs", _TASK_COLUMNS), [_task_row(run_id, t) for t in tasks if t.name not in existing])

    def save_tasks(self, run_id: str, tasks: list[TaskRun], new_attempts: list[tuple[str, Attempt]], project: str) -> None:
        """One transaction for a batch of task changes and finished attempts."""
        if not tasks and not new_attempts:
            return
        database = self.database
        with database.transaction():
            self._update_tasks(run_id, tasks)
            database.execute_many(insert("attempts", _ATTEMPT_COLUMNS), [_attempt_row(run_id, name, a) for name, a in new_attempts])
            checked = [_check_row(run_id, t) for t in tasks if t.check is not None and t.state not in ("running", "pending")]
            database.execute_many("DELETE FROM check_results WHERE run_id = :run_id AND name = :name", checked)
            database.execute_many(insert("check_results", _CHECK_COLUMNS), checked)
            succeeded = [
                {
                    "project": project,
                    "task": t.name,
                    "last_duration": t.duration,
                    "last_success_at": (t.started_at or 0) + (t.duration or 0),
                }
                for t in tasks
                if t.state == "success" and t.duration is not None
            ]
            database.execute_many("DELETE FROM task_stats WHERE project = :project AND task = :task", succeeded)
            database.execute_many(insert("task_stats", ("project", "task", "last_duration", "last_success_at")), succeeded)

    def _update_tasks(self, run_id: str, tasks: list[TaskRun]) -> None:
        self.database.execute_many(_UPDATE_TASK, [_task_row(run_id, t) for t in tasks])

    def finish_run(self, run_id: str, state: str, error: str | None = None) -> None:
        with self.database.transaction():
            self.database.execute(
                "UPDATE runs SET state = :state, ended_at = :ended_at, error = :error WHERE id = :id",
                {"state": state, "ended_at": time.time(), "error": error, "id": run_id},
            )

    def mark_dead_runs(self, project: str, reason: str) -> list[str]:
        """Runs left ``running`` by a process that died: failed, with their unfinished tasks.

        Call only while holding the project's run lock, which proves no live process owns them.
        """
        database = self.database
        with database.transaction():
            found = database.query("SELECT id FROM runs WHERE project = :project AND state = :state", {"project": project, "state": RUNNING})
            dead = [r["id"] for r in found]
            if not dead:
                return []
            now = time.time()
            database.execute_many(
                "UPDATE runs SET state = 'failed', ended_at = :now, error = :reason WHERE id = :id",
                [{"now": now, "reason": reason, "id": run_id} for run_id in dead],
            )
            database.execute_many(
                "UPDATE task_runs SET state = 'failed', error = :reason, ended_at = :now"
                " WHERE run_id = :id AND state = :running",
                [{"now": now, "reason": reason, "id": run_id, "running": RUNNING} for run_id in dead],
            )
        return dead

    # -- reading ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self.database.query("SELECT * FROM runs WHERE id = :id", {"id": run_id})
        return self._with_counts([_record(rows[0])])[0] if rows else None

    def latest_run(self, project: str) -> RunRecord | None:
        found = self.list_runs(project, limit=1)
        return found[0] if found else None

    def list_runs(self, project: str, limit: int = 20) -> list[RunRecord]:
        rows = self.database.query(
            f"SELECT * FROM runs WHERE project = :project ORDER BY started_at DESC, id DESC LIMIT {int(limit)}",
            {"project": project},
        )
        return self._with_counts([_record(r) for r in rows])

    def _with_counts(self, records: list[RunRecord]) -> list[RunRecord]:
        if not records:
            return records
        by_id = {r.id: r for r in records}
        ids, params = in_list("run", by_id)
        query = f"SELECT run_id, state, count(*) AS n FROM task_runs WHERE run_id IN {ids} GROUP BY run_id, state"
        for row in self.database.query(query, params):
            by_id[row["run_id"]].counts[row["state"]] = int(row["n"])
        return records

    def task_runs(self, run_id: str) -> list[TaskRun]:
        database, params = self.database, {"run_id": run_id}
        rows = database.query("SELECT * FROM task_runs WHERE run_id = :run_id ORDER BY started_at, task", params)
        tried = database.query("SELECT * FROM attempts WHERE run_id = :run_id ORDER BY task, number", params)
        tries: dict[str, list[Attempt]] = {}
        for row in tried:
            tries.setdefault(row["task"], []).append(
                Attempt(
                    number=row["number"],
                    started_at=row["started_at"],
                    state=row["state"],
                    duration=row["duration"],
                    rows=row["rows"],
                    error=row["error"],
                    location=row["location"],
                    log_path=row["log_path"],
                    job_ids=json.loads(row["job_ids"]) if row["job_ids"] else [],
                )
            )
        checks = {
            row["name"]: {
                "name": row["name"],
                "table": row["table_name"],
                "kind": row["kind"],
                "severity": row["severity"],
                "passed": bool(row["passed"]),
                "failing": row["failing"],
                "sample": json.loads(row["sample"]),
                "error": row["error"],
            }
            for row in database.query("SELECT * FROM check_results WHERE run_id = :run_id", params)
        }
        return [
            TaskRun(
                name=row["task"],
                path=row["path"],
                state=row["state"],
                started_at=row["started_at"],
                duration=row["duration"],
                rows=row["rows"],
                error=row["error"],
                location=row["location"],
                reason=row["reason"],
                attempts=tries.get(row["task"], []),
                metrics=json.loads(row["metrics"]) if row["metrics"] else {},
                check=checks.get(row["task"]),
                kind="check" if row["task"] in checks else "sql",
            )
            for row in rows
        ]

    def last_durations(self, project: str) -> dict[str, float]:
        rows = self.database.query("SELECT task, last_duration FROM task_stats WHERE project = :project", {"project": project})
        return {row["task"]: float(row["last_duration"]) for row in rows}


def _run_row(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "project": record.project,
        "logical_date": record.logical_date,
        "selection": json.dumps(record.selection, sort_keys=True),
        "state": record.state,
        "trigger": record.trigger,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "pid": record.pid,
        "host": record.host,
        "error": record.error,
    }


def _record(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"],
        project=row["project"],
        logical_date=row["logical_date"],
        selection=json.loads(row["selection"]),
        state=row["state"],
        trigger=row["trigger"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        pid=row["pid"],
        host=row["host"],
        error=row["error"],
    )


def _task_row(run_id: str, task: TaskRun) -> dict[str, Any]:
    ended = None
    if task.started_at is not None and task.duration is not None:
        ended = task.started_at + task.duration
    return {
        "run_id": run_id,
        "task": task.name,
        "path": task.path,
        "state": task.state or PENDING,
        "attempts": len(task.attempts),
        "started_at": task.started_at,
        "ended_at": ended,
        "duration": task.duration,
        "rows": task.rows,
        "error": task.error,
        "location": task.location,
        "reason": task.reason,
        "metrics": json.dumps(task.metrics) if task.metrics else None,
    }


def _check_row(run_id: str, task: TaskRun) -> dict[str, Any]:
    result = task.check or {}
    return {
        "run_id": run_id,
        "name": task.name,
        "table_name": result.get("table", ""),
        "kind": result.get("kind", ""),
        "severity": result.get("severity", "error"),
        "passed": bool(result.get("passed")),
        "failing": int(result.get("failing") or 0),
        "sample": json.dumps(result.get("sample", []), default=str),
        "error": result.get("error"),
        "checked_at": time.time(),
    }


def _attempt_row(run_id: str, task: str, attempt: Attempt) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task": task,
        "number": attempt.number,
        "state": attempt.state,
        "started_at": attempt.started_at,
        "ended_at": None if attempt.duration is None else attempt.started_at + attempt.duration,
        "duration": attempt.duration,
        "rows": attempt.rows,
        "error": attempt.error,
        "location": attempt.location,
        "log_path": attempt.log_path,
        "job_ids": json.dumps(attempt.job_ids) if attempt.job_ids else None,
    }
