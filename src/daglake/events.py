"""What a run reports as it goes. Core code never prints; observers render or store events."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
RUNNING = "running"
SUCCESS = "success"
SKIPPED = "skipped"  # a seed whose tables already exist
WARNED = "warned"  # a warn-severity check that found failing rows: reported, not blocking
FAILED = "failed"
UPSTREAM_FAILED = "upstream_failed"
NOT_STARTED = "not_started"  # left unstarted by --fail-fast or an interrupt

DONE_STATES = (SUCCESS, SKIPPED, WARNED, FAILED, UPSTREAM_FAILED, NOT_STARTED)
OK_STATES = (SUCCESS, SKIPPED, WARNED)


@dataclass
class Attempt:
    """One try of a task; a task retried twice has three."""

    number: int
    started_at: float
    state: str = RUNNING
    duration: float | None = None
    rows: int | None = None
    error: str | None = None
    location: str | None = None
    log_path: str | None = None
    check: dict[str, Any] | None = None  # a check task's result: passed, failing, sample
    job_ids: list[str] = field(default_factory=list)  # the engine's jobs (BigQuery), in order

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "started_at": self.started_at,
            "duration": _rounded(self.duration),
            "rows": self.rows,
            "error": self.error,
            "location": self.location,
            "log_path": self.log_path,
            "check": self.check,
            "job_ids": self.job_ids,
        }


@dataclass
class TaskRun:
    name: str
    path: str
    state: str = PENDING
    kind: str = "sql"  # sql | seed | python | check
    started_at: float | None = None  # wall clock, seconds since the epoch
    duration: float | None = None
    rows: int | None = None
    error: str | None = None
    location: str | None = None
    reason: str | None = None  # why skipped / blocked / reused
    attempts: list[Attempt] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # what the task counted (ctx.metric)
    check: dict[str, Any] | None = None  # the latest result when the task is a check

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "state": self.state,
            "started_at": self.started_at,
            "duration": _rounded(self.duration),
            "rows": self.rows,
            "error": self.error,
            "location": self.location,
            "reason": self.reason,
            "attempts": [a.as_dict() for a in self.attempts],
            "metrics": self.metrics,
            "check": self.check,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass
class Plan:
    """The tasks to run in their start order, and groups that can run side by side."""

    order: list[str]
    groups: list[list[str]]
    workers: int
    priority: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # where the engine differs from the SQL's dialect


@dataclass
class RunSummary:
    run_id: str
    project: str
    engine: str
    tasks: dict[str, TaskRun] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    duration: float = 0.0
    dry_run: bool = False
    logical_date: str = ""
    warnings: list[str] = field(default_factory=list)
    estimate: dict[str, Any] | None = None  # a dry run on an engine that prices queries (BigQuery)

    @property
    def state(self) -> str:
        """``success`` only when every task succeeded or was skipped on purpose."""
        if self.dry_run:
            return "dry_run"
        if all(t.state in OK_STATES for t in self.tasks.values()):
            return SUCCESS
        return FAILED

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for task in self.tasks.values():
            result[task.state] = result.get(task.state, 0) + 1
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "project": self.project,
            "engine": self.engine,
            "state": self.state,
            "dry_run": self.dry_run,
            "logical_date": self.logical_date,
            "started_at": self.started_at,
            "duration": round(self.duration, 6),
            "counts": self.counts(),
            "warnings": self.warnings,
            "tasks": [t.as_dict() for t in self.tasks.values()],
            **({"estimate": self.estimate} if self.estimate is not None else {}),
        }


class RunObserver:
    """Receives a run's events; subclasses override what they care about. Called from the
    runner's main thread, so implementations need no locking."""

    def run_started(self, summary: RunSummary, plan: Plan) -> None:
        pass

    def task_started(self, task: TaskRun) -> None:
        pass

    def task_finished(self, task: TaskRun) -> None:
        pass

    def settle(self) -> None:
        """The scheduler is about to start the tasks it just reported started: what was
        reported so far must be durable now (a reader starts only after its inputs' ends are
        recorded). Called once per scheduling round, so reports can be written together."""

    def run_finished(self, summary: RunSummary) -> None:
        pass


class Observers(RunObserver):
    """Fans every event out to several observers."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers

    def run_started(self, summary: RunSummary, plan: Plan) -> None:
        for o in self.observers:
            o.run_started(summary, plan)

    def task_started(self, task: TaskRun) -> None:
        for o in self.observers:
            o.task_started(task)

    def task_finished(self, task: TaskRun) -> None:
        for o in self.observers:
            o.task_finished(task)

    def settle(self) -> None:
        for o in self.observers:
            o.settle()

    def run_finished(self, summary: RunSummary) -> None:
        """Every observer hears the end, even when one fails to (the state database's disk is
        full): the first failure is raised after."""
        failure: BaseException | None = None
        for o in self.observers:
            try:
                o.run_finished(summary)
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


Progress = Callable[[str], None]  # one line for whoever watches: the CLI prints it on stderr
SLOW = 1.0  # seconds of silence after which slow work says what it is doing


@contextmanager
def said_if_slow(progress: Progress | None, message: str) -> Iterator[None]:
    """Tell ``progress`` ``message`` if the ``with`` block is still running after ``SLOW``
    seconds (parsing an 8 MB file), and nothing when it is quick."""
    if progress is None:
        yield
        return
    watch = _watch()
    token = watch.add(time.monotonic() + SLOW, progress, message)
    try:
        yield
    finally:
        watch.remove(token)


class _Watch:
    """One thread for every ``said_if_slow`` of the process: a thread started per parsed file
    cost more than parsing it (2 s of a 1,000-file first run). Deadlines only grow (``SLOW`` is
    one delay), so the thread is woken only when it had nothing to wait for."""

    def __init__(self) -> None:
        import os

        self._condition = threading.Condition()
        self._pending: dict[int, tuple[float, Progress, str]] = {}
        self._next = 0
        self._idle = True
        self.pid = os.getpid()
        threading.Thread(target=self._loop, name="daglake-said-if-slow", daemon=True).start()

    def add(self, deadline: float, progress: Progress, message: str) -> int:
        with self._condition:
            self._next += 1
            self._pending[self._next] = (deadline, progress, message)
            if self._idle:
                self._condition.notify()
            return self._next

    def remove(self, token: int) -> None:
        with self._condition:
            self._pending.pop(token, None)

    def _loop(self) -> None:
        while True:
            due: list[tuple[Progress, str]] = []
            with self._condition:
                if not self._pending:
                    self._idle = True
                    self._condition.wait()
                    self._idle = False
                    continue
                now = time.monotonic()
                for token, (deadline, progress, message) in list(self._pending.items()):
                    if deadline <= now:
                        del self._pending[token]
                        due.append((progress, message))
                if not due:
                    self._condition.wait(min(d for d, _, _ in self._pending.values()) - now)
                    continue
            for progress, message in due:
                with contextlib.suppress(Exception):  # a listener's failure is not the work's
                    progress(message)


_WATCH: list[_Watch] = []
_WATCH_LOCK = threading.Lock()


def _watch() -> _Watch:
    import os

    with _WATCH_LOCK:
        if not _WATCH or _WATCH[0].pid != os.getpid():  # a forked child has not the thread
            _WATCH[:] = [_Watch()]
        return _WATCH[0]
