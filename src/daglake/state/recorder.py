"""Writes a run's events to the state store as they happen, one small transaction each."""

from __future__ import annotations

from daglake.events import SKIPPED, Attempt, Plan, RunObserver, RunSummary, TaskRun
from daglake.state.store import RunRecord, StateStore


class StateRecorder(RunObserver):
    """The run record is written before any task starts (so a crash leaves a run to retry),
    and each task's start and end are committed when reported. The executor starts a task's
    readers only after its end is reported, so after ``kill -9`` every finished task is
    recorded as finished, every task that was running as running (a later process marks it
    failed), and ``retry`` redoes exactly the rest. (In WAL mode with ``synchronous=NORMAL`` a
    commit is a write to the log, not an fsync: tens of microseconds.)

    A skipped task's end is the exception: it did nothing, so it is written with the next
    write that did something (or the run's end), in one transaction. A crash before then
    leaves it ``pending``, and ``retry`` decides it again: unchanged, it is skipped again. An
    unchanged run of 1,000 tasks spent a sixth of its time committing skips one by one."""

    def __init__(self, store: StateStore, record: RunRecord, *, resumed: bool = False) -> None:
        self.store = store
        self.record = record
        self.resumed = resumed
        self._saved_attempts: dict[str, int] = {}
        self._skipped: list[TaskRun] = []

    def run_started(self, summary: RunSummary, plan: Plan) -> None:
        redo = [summary.tasks[name] for name in plan.order]
        for task in summary.tasks.values():
            self._saved_attempts[task.name] = len(task.attempts)
        if self.resumed:
            self.store.reopen_run(self.record.id, redo)
        else:
            self.store.begin_run(self.record, summary.tasks.values())

    def task_started(self, task: TaskRun) -> None:
        self._save([task], [])

    def task_finished(self, task: TaskRun) -> None:
        saved = self._saved_attempts.get(task.name, 0)
        attempts: list[tuple[str, Attempt]] = [(task.name, a) for a in task.attempts[saved:]]
        self._saved_attempts[task.name] = len(task.attempts)
        if task.state == SKIPPED and not attempts:
            self._skipped.append(task)
            return
        self._save([task], attempts)

    def run_finished(self, summary: RunSummary) -> None:
        self._save([], [])
        self.store.finish_run(self.record.id, summary.state)

    def _save(self, tasks: list[TaskRun], attempts: list[tuple[str, Attempt]]) -> None:
        """``tasks`` and the skipped tasks waiting to be written, in one transaction."""
        waiting, self._skipped = self._skipped, []
        self.store.save_tasks(self.record.id, [*waiting, *tasks], attempts, self.record.project)
