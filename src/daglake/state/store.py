"""Run history in any SQLAlchemy database: SQLite in ``.daglake/state.db`` or PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from daglake.events import PENDING, RUNNING, Attempt, TaskRun
from daglake.state.schema import attempts, check_results, migrate, runs, task_runs, task_stats

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first: switching to WAL takes a lock too
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writing run
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process kill
    cursor.close()


MIGRATION_LOCK_KEY = 0x6461676C616B65  # "daglake": PostgreSQL's advisory lock for migrations


@contextmanager
def _opening_lock(engine: sa.Engine) -> Iterator[None]:
    """Serialize opening the state database: two runs, or a run and the API, starting on a
    new project must not both create its tables ("table runs already exists"), nor switch a
    new SQLite file to WAL while another connection migrates it ("database is locked": SQLite
    refuses that lock upgrade at once, without waiting). So the lock is taken before the first
    connection touches the file: a SQLite file is locked beside the database; PostgreSQL
    takes an advisory lock in the migrating transaction."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    from daglake.errors import UsageError

    try:
        handle = open(f"{database}.lock", "a")  # noqa: SIM115 - closed below, after the yield
    except OSError as exc:
        raise UsageError(f"cannot open the state database {database}: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield


class StateStore:
    """A small interface over the metadata tables; every write is one transaction."""

    def __init__(self, url: str) -> None:
        from daglake.errors import UsageError

        self.url = url
        try:
            self._engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise UsageError(f"state database URL {_safe(url)!r} is not usable: {exc}") from None
        if self._engine.dialect.name == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        try:
            with _opening_lock(self._engine):
                self._connection = self._engine.connect()  # the connect hook switches to WAL
                with self._connection.begin():
                    if self._engine.dialect.name == "postgresql":
                        self._connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    migrate(self._connection)
        except sa.exc.OperationalError as exc:
            raise UsageError(f"cannot open the state database {_safe(url)}: {exc.orig}") from None
        sa.event.listen(self._engine, "handle_error", self._refused)

    def _refused(self, context: sa.engine.ExceptionContext) -> None:
        """Once open, the machine refusing a write (a full disk, a file made read-only, the
        server gone) is one line naming the database, for whoever runs: a run fails with it."""
        if isinstance(context.sqlalchemy_exception, sa.exc.OperationalError):
            from daglake.errors import EnvironmentProblem

            cause = str(context.original_exception).splitlines()[0] or type(context.original_exception).__name__
            raise EnvironmentProblem(f"state database {_safe(self.url)}: {cause}")

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()

    @property
    def connection(self) -> sa.Connection:
        """The store's connection, for the tables other modules own (``state.builds``)."""
        return self._connection

    # -- writing a run ---------------------------------------------------------------------

    def begin_run(self, record: RunRecord, tasks: Iterable[TaskRun]) -> None:
        record.pid = record.pid or os.getpid()
        record.host = record.host or socket.gethostname()
        with self._connection.begin():
            self._connection.execute(runs.insert().values(**_run_row(record)))
            rows = [_task_row(record.id, t) for t in tasks]
            if rows:
                self._connection.execute(task_runs.insert(), rows)

    def reopen_run(self, run_id: str, tasks: Iterable[TaskRun]) -> None:
        """Mark a run running again for ``daglake retry``, resetting the tasks it will redo."""
        with self._connection.begin():
            self._connection.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(state=RUNNING, ended_at=None, error=None, pid=os.getpid(), host=socket.gethostname())
            )
            existing = {
                r[0]
                for r in self._connection.execute(
                    sa.select(task_runs.c.task).where(task_runs.c.run_id == run_id)
                )
            }
            tasks = list(tasks)
            self._update_tasks(run_id, [t for t in tasks if t.name in existing])
            new = [_task_row(run_id, t) for t in tasks if t.name not in existing]
            if new:
                self._connection.execute(task_runs.insert(), new)

    def save_tasks(self, run_id: str, tasks: list[TaskRun], new_attempts: list[tuple[str, Attempt]], project: str) -> None:
        """One transaction for a batch of task changes and finished attempts."""
        if not tasks and not new_attempts:
            return
        with self._connection.begin():
            self._update_tasks(run_id, tasks)
            if new_attempts:
                self._connection.execute(
                    attempts.insert(),
                    [_attempt_row(run_id, name, a) for name, a in new_attempts],
                )
            checked = [t for t in tasks if t.check is not None and t.state not in ("running", "pending")]
            if checked:
                self._connection.execute(
                    check_results.delete().where(
                        check_results.c.run_id == run_id,
                        check_results.c.name.in_([t.name for t in checked]),
                    )
                )
                self._connection.execute(check_results.insert(), [_check_row(run_id, t) for t in checked])
            succeeded = [t for t in tasks if t.state == "success" and t.duration is not None]
            if succeeded:
                names = [t.name for t in succeeded]
                self._connection.execute(
                    task_stats.delete().where(
                        task_stats.c.project == project, task_stats.c.task.in_(names)
                    )
                )
                self._connection.execute(
                    task_stats.insert(),
                    [
                        {
                            "project": project,
                            "task": t.name,
                            "last_duration": t.duration,
                            "last_success_at": (t.started_at or 0) + (t.duration or 0),
                        }
                        for t in succeeded
                    ],
                )

    def _update_tasks(self, run_id: str, tasks: list[TaskRun]) -> None:
        if not tasks:
            return
        statement = (
            task_runs.update()
            .where(task_runs.c.run_id == sa.bindparam("b_run"), task_runs.c.task == sa.bindparam("b_task"))
            .values(
                {
                    name: sa.bindparam(name)
                    for name in ("state", "attempts", "started_at", "ended_at", "duration", "rows", "error", "location", "reason", "metrics")
                }
            )
        )
        rows = []
        for task in tasks:
            row = _task_row(run_id, task)
            row["b_run"], row["b_task"] = row.pop("run_id"), row.pop("task")
            row.pop("path")
            rows.append(row)
        self._connection.execute(statement, rows)

    def finish_run(self, run_id: str, state: str, error: str | None = None) -> None:
        with self._connection.begin():
            self._connection.execute(
                runs.update().where(runs.c.id == run_id).values(state=state, ended_at=time.time(), error=error)
            )

    def mark_dead_runs(self, project: str, reason: str) -> list[str]:
        """Runs left ``running`` by a process that died: failed, with their unfinished tasks.

        Call only while holding the project's run lock, which proves no live process owns them.
        """
        with self._connection.begin():
            dead = [
                r[0]
                for r in self._connection.execute(
                    sa.select(runs.c.id).where(runs.c.project == project, runs.c.state == RUNNING)
                )
            ]
            if not dead:
                return []
            now = time.time()
            self._connection.execute(
                runs.update().where(runs.c.id.in_(dead)).values(state="failed", ended_at=now, error=reason)
            )
            self._connection.execute(
                task_runs.update()
                .where(task_runs.c.run_id.in_(dead), task_runs.c.state == RUNNING)
                .values(state="failed", error=reason, ended_at=now)
            )
        return dead

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """Reads end their implicit transaction, so the next write can begin its own."""
        try:
            yield self._connection
        finally:
            if self._connection.in_transaction():
                self._connection.rollback()

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._reading() as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            return None if row is None else self._with_counts([_record(row)])[0]

    def latest_run(self, project: str) -> RunRecord | None:
        found = self.list_runs(project, limit=1)
        return found[0] if found else None

    def list_runs(self, project: str, limit: int = 20) -> list[RunRecord]:
        with self._reading() as connection:
            rows = connection.execute(
                sa.select(runs)
                .where(runs.c.project == project)
                .order_by(runs.c.started_at.desc(), runs.c.id.desc())
                .limit(limit)
            ).mappings()
            return self._with_counts([_record(r) for r in rows])

    def _with_counts(self, records: list[RunRecord]) -> list[RunRecord]:
        if not records:
            return records
        by_id = {r.id: r for r in records}
        query = (
            sa.select(task_runs.c.run_id, task_runs.c.state, sa.func.count())
            .where(task_runs.c.run_id.in_(list(by_id)))
            .group_by(task_runs.c.run_id, task_runs.c.state)
        )
        for run_id, state, count in self._connection.execute(query):
            by_id[run_id].counts[state] = int(count)
        return records

    def task_runs(self, run_id: str) -> list[TaskRun]:
        with self._reading() as connection:
            rows = connection.execute(
                sa.select(task_runs)
                .where(task_runs.c.run_id == run_id)
                .order_by(task_runs.c.started_at, task_runs.c.task)
            ).mappings().all()
            tried = connection.execute(
                sa.select(attempts)
                .where(attempts.c.run_id == run_id)
                .order_by(attempts.c.task, attempts.c.number)
            ).mappings().all()
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
        with self._reading() as connection:
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
                for row in connection.execute(
                    sa.select(check_results).where(check_results.c.run_id == run_id)
                ).mappings()
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
        with self._reading() as connection:
            rows = connection.execute(
                sa.select(task_stats.c.task, task_stats.c.last_duration).where(
                    task_stats.c.project == project
                )
            ).all()
        return {task: float(duration) for task, duration in rows}


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


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show nothing of it that could be a secret
        return "<invalid URL>"
