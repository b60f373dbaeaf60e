"""The run's side of "only what changed runs": the decisions for a run's tasks from the state
and the engine, the builds recorded as tasks succeed, and ``daglake run --explain``."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.events import SUCCESS, WARNED, RunObserver, RunSummary, TaskRun
from daglake.fingerprint import RUN, SKIP, Decider, Decision, Inputs, decide

if TYPE_CHECKING:
    from daglake.engine_settings import EngineSettings
    from daglake.runner import RunOptions, Session
    from daglake.state import StateStore

FLUSH_INTERVAL = 1.0  # seconds: a build lost to a crash only makes its task run once more


def engine_key(settings: EngineSettings) -> str:
    """The engine and where it writes: a build on one target says nothing of another's tables,
    and a change of credentials, limits or retries says nothing of any table."""
    identity = json.dumps(settings.identity(), sort_keys=True, default=str)
    return f"{settings.engine}:{hashlib.blake2b(identity.encode(), digest_size=6).hexdigest()}"


def decisions_for(
    session: Session, order: list[str], store: StateStore | None, logical_date: str, run_id: str, options: RunOptions
) -> dict[str, Decision]:
    """Run or skip, for each task of ``order`` at once; ``store`` None: nothing was built yet."""
    return decide(session.project, order, _inputs(session, store, logical_date, run_id, options))


def decider_for(
    session: Session, order: list[str], store: StateStore, logical_date: str, run_id: str, options: RunOptions
) -> Decider:
    """What decides each task of a run as it is about to start."""
    return Decider(session.project, set(order), _inputs(session, store, logical_date, run_id, options))


def _inputs(session: Session, store: StateStore | None, logical_date: str, run_id: str, options: RunOptions) -> Inputs:
    from daglake.state.builds import last_builds, table_versions_of

    assert session.engine is not None
    engine, project = session.engine, session.project
    key = engine_key(engine.settings)
    builds = last_builds(store, project.config.name, key) if store is not None else {}
    appends = table_versions_of(store, project.config.name) if store is not None else {}
    forced: set[str] = set()
    if options.force:
        from daglake.errors import UsageError
        from daglake.graph.selection import select

        try:
            forced = select(project, session.dag, options.force, [])
        except UsageError as exc:  # the selector's message names --select: this one is --force
            raise UsageError(str(exc).replace("--select/--exclude", "--force", 1)) from None
    return Inputs(
        builds=builds,
        appends=appends,
        existing=session.existing,
        source_versions=engine.source_versions,
        engine=key,
        logical_date=logical_date,
        run_id=run_id,
        full_refresh=options.full_refresh,
        forced=forced,
    )


class BuildRecorder(RunObserver):
    """Records the fingerprint of every task that succeeds, in batches and at the end."""

    def __init__(self, store: StateStore, project: str, engine: str, decisions: Mapping[str, Decision], run_id: str) -> None:
        self.store, self.project, self.engine = store, project, engine
        self.decisions, self.run_id = decisions, run_id
        self._pending: list[Any] = []
        self._last = time.monotonic()

    def task_finished(self, task: TaskRun) -> None:
        from daglake.state.builds import Build

        decision = self.decisions.get(task.name)
        if decision is None or task.state not in (SUCCESS, WARNED):
            return
        finished = (task.started_at or time.time()) + (task.duration or 0.0)
        self._pending.append(Build(task.name, decision.fingerprint, self.run_id, finished, decision.parts))
        if time.monotonic() - self._last >= FLUSH_INTERVAL:
            self.flush()

    def run_finished(self, summary: RunSummary) -> None:
        self.flush()

    def flush(self) -> None:
        from daglake.state.builds import save_builds

        pending, self._pending = self._pending, []
        save_builds(self.store, self.project, self.engine, pending)
        self._last = time.monotonic()


@dataclass
class Explanation:
    """What ``daglake run --explain`` prints: each task's decision, in start order."""

    project: str
    engine: str
    logical_date: str
    tasks: list[tuple[str, str, Decision]] = field(default_factory=list)  # name, path, decision

    def counts(self) -> dict[str, int]:
        found = {RUN: 0, SKIP: 0}
        for _, _, decision in self.tasks:
            found[decision.action] += 1
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "engine": self.engine,
            "logical_date": self.logical_date,
            "counts": self.counts(),
            "tasks": [{"path": path, **decision.as_dict()} for _, path, decision in self.tasks],
        }


def explain(path: str | Path, options: RunOptions) -> Explanation:
    """Why each selected task would run or be skipped; runs nothing, writes no state."""
    from daglake.runner import RunOptions, Session, _logical_date, _plan, new_run_id

    quiet = RunOptions(**{**vars(options), "dry_run": True})  # a read-only look: no cache written
    with Session(path, quiet, read_only=True) as session:
        assert session.engine is not None
        logical_date = _logical_date(options.logical_date)
        plan = _plan(session, session.chosen, {})
        store = _existing_state(session)
        try:
            decisions = decisions_for(session, plan.order, store, logical_date, new_run_id(), options)
        finally:
            if store is not None:
                store.close()
        result = Explanation(session.project.config.name, session.engine.name, logical_date)
        for name in plan.order:
            result.tasks.append((name, session.project.tasks[name].path, decisions[name]))
        return result


def _existing_state(session: Session) -> StateStore | None:
    """The state database, unless there is none yet (an explanation creates nothing)."""
    import os

    from daglake.runner import open_state
    from daglake.state.store import STATE_FILE, STATE_URL_ENV

    project = session.project
    if not (os.environ.get(STATE_URL_ENV) or project.config.state_url) and not (project.state_dir / STATE_FILE).exists():
        return None
    return open_state(project)
