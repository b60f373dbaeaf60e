"""Writes a run's events to the state store, batching task updates into few transactions."""

from __future__ import annotations

import time

from daglake.events import Attempt, Plan, RunObserver, RunSummary, TaskRun
from daglake.state.store import RunRecord, StateStore

FLUSH_INTERVAL = 0.2  # seconds; a crash loses at most this much progress, which retry redoes


class StateRecorder(RunObserver):
    """The run record is written before any task starts (so a crash leaves a run to retry);
    task changes are flushed together at most every ``FLUSH_INTERVAL`` and at the end."""

    def __init__(self, store: StateStore, record: RunRecord, *, resumed: bool = False) -> None:
        self.store = store
        self.record = record
        self.resumed = resumed
        self._pending: dict[str, TaskRun] = {}
        self._attempts: list[tuple[str, Attempt]] = []
        self._saved_attempts: dict[str, int] = {}
        self._last_flush = time.monotonic()

    def run_started(self, summary: RunSummary, plan: Plan) -> None:
        redo = [summary.tasks[name] for name in plan.order]
        for task in summary.tasks.values():
            self._saved_attempts[task.name] = len(task.attempts)
        if self.resumed:
            self.store.reopen_run(self.record.id, redo)
        else:
            self.store.begin_run(self.record, summary.tasks.values())

    def task_started(self, task: TaskRun) -> None:
        self._pending[task.name] = task
        self._maybe_flush()

    def task_finished(self, task: TaskRun) -> None:
        self._pending[task.name] = task
        saved = self._saved_attempts.get(task.name, 0)
        self._attempts.extend((task.name, a) for a in task.attempts[saved:])
        self._saved_attempts[task.name] = len(task.attempts)
        self._maybe_flush()

    def run_finished(self, summary: RunSummary) -> None:
        self.flush()
        self.store.finish_run(self.record.id, summary.state)

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        tasks, attempts = list(self._pending.values()), self._attempts
        self._pending, self._attempts = {}, []
        self.store.save_tasks(self.record.id, tasks, attempts, self.record.project)
        self._last_flush = time.monotonic()
