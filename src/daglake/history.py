"""Reading run history: past runs, their tasks and attempts, and task logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from daglake.errors import RunInProgressError, UsageError
from daglake.events import TaskRun
from daglake.lock import RunLock
from daglake.project import Project, load_project
from daglake.state import RunRecord, StateStore


@dataclass
class RunDetails:
    record: RunRecord
    tasks: list[TaskRun]


@contextmanager
def open_history(path: str | Path) -> Iterator[tuple[Project, StateStore]]:
    """The project and its state store, with runs of dead processes already marked failed."""
    from daglake.runner import DEAD_RUN, open_state

    project = load_project(path, write_cache=False)
    store = open_state(project)
    try:
        with suppress(RunInProgressError), RunLock(project.state_dir) as lock:
            lock.acquire("history")  # free only when no live process runs: reap dead runs
            store.mark_dead_runs(project.config.name, DEAD_RUN)
        yield project, store
    finally:
        store.close()


def list_runs(path: str | Path, limit: int = 20) -> list[RunRecord]:
    with open_history(path) as (project, store):
        return store.list_runs(project.config.name, limit)


def run_details(path: str | Path, run_id: str | None) -> RunDetails:
    with open_history(path) as (project, store):
        record = store.get_run(run_id) if run_id else store.latest_run(project.config.name)
        if record is None or record.project != project.config.name:
            raise UsageError(f"no run {run_id} in this project" if run_id else "no runs yet")
        return RunDetails(record, store.task_runs(record.id))


def task_logs(path: str | Path, run_id: str, task: str) -> list[tuple[int, str]]:
    """``(attempt number, log text)`` for every attempt of ``task`` in ``run_id``."""
    details = run_details(path, run_id)
    found = next((t for t in details.tasks if t.name == task or t.path == task), None)
    if found is None:
        raise UsageError(f"run {details.record.id} has no task {task}")
    root = Path(path)
    logs = []
    for attempt in found.attempts:
        if attempt.log_path is None:
            continue
        try:
            text = (root / attempt.log_path).read_text(encoding="utf-8")
        except OSError:
            text = f"(log {attempt.log_path} is missing)\n"
        logs.append((attempt.number, text))
    if not logs:
        raise UsageError(f"task {found.name} has no logs in run {details.record.id} (state {found.state})")
    return logs
