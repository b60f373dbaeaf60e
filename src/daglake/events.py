"""What a run reports as it goes. Core code never prints; observers render or store events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
RUNNING = "running"
SUCCESS = "success"
SKIPPED = "skipped"  # a seed whose tables already exist
FAILED = "failed"
UPSTREAM_FAILED = "upstream_failed"
NOT_STARTED = "not_started"  # left unstarted by --fail-fast or an interrupt

DONE_STATES = (SUCCESS, SKIPPED, FAILED, UPSTREAM_FAILED, NOT_STARTED)


@dataclass
class TaskRun:
    name: str
    path: str
    state: str = PENDING
    started_at: float | None = None
    duration: float | None = None
    rows: int | None = None
    error: str | None = None
    location: str | None = None
    reason: str | None = None  # why skipped / blocked

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "state": self.state,
            "duration": None if self.duration is None else round(self.duration, 6),
            "rows": self.rows,
            "error": self.error,
            "location": self.location,
            "reason": self.reason,
        }


@dataclass
class Plan:
    """The tasks to run in their start order, and groups that can run side by side."""

    order: list[str]
    groups: list[list[str]]
    workers: int


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

    @property
    def state(self) -> str:
        states = {t.state for t in self.tasks.values()}
        if states & {FAILED, UPSTREAM_FAILED, NOT_STARTED}:
            return FAILED
        return SUCCESS

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
            "tasks": [t.as_dict() for t in self.tasks.values()],
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

    def run_finished(self, summary: RunSummary) -> None:
        for o in self.observers:
            o.run_finished(summary)
