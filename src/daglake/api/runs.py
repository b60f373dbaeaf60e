"""Runs started over HTTP: the CLI's runner, state and run lock, on a background thread.

The run lock is taken before answering, so ``POST /run`` says at once, and truthfully, whether
the run starts: a second request, or a run of the CLI, gets 409 naming the run that holds it.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.api.errors import ApiError, from_daglake
from daglake.api.events import EventFeed, FeedObserver
from daglake.errors import DaglakeError, RunInProgressError
from daglake.events import RunSummary
from daglake.lock import RunLock

if TYPE_CHECKING:
    from daglake.runner import RunOptions
    from daglake.state import StateStore

log = logging.getLogger("daglake.api")
KEEP_OUTCOMES = 50


@dataclass
class ActiveRun:
    run_id: str
    observer: FeedObserver
    outcome: Future[RunSummary] = field(default_factory=Future)
    answered: threading.Event = field(default_factory=threading.Event)

    def go(self) -> None:
        """Let the run begin: its first second (parsing the project) holds the GIL, and the
        202 should not wait for it."""
        self.answered.set()

    def wait_planned(self, timeout: float) -> None:
        """Block until the run has chosen its tasks, or ended before it could (a selector
        matching nothing), or ``timeout`` seconds."""
        self.outcome.add_done_callback(lambda _ended: self.observer.planned.set())
        self.observer.planned.wait(timeout)

    @property
    def summary(self) -> RunSummary | None:
        """The live summary, once the run has been planned."""
        return self.observer.summary


class RunManager:
    def __init__(self, root: Path, feed: EventFeed) -> None:
        self.root = root
        self.feed = feed
        self._lock = threading.Lock()
        self._current: ActiveRun | None = None
        self._finished: dict[str, ActiveRun] = {}  # recent runs, for those refused before recording

    @property
    def current(self) -> ActiveRun | None:
        with self._lock:
            active = self._current
        return active if active is not None and not active.outcome.done() else None

    def get(self, run_id: str) -> ActiveRun | None:
        with self._lock:
            if self._current is not None and self._current.run_id == run_id:
                return self._current
            return self._finished.get(run_id)

    def start(
        self,
        *,
        logical_date: str | None = None,
        trigger: str = "api",
        select: list[str] | None = None,
        exclude: list[str] | None = None,
        full_refresh: bool = False,
    ) -> ActiveRun:
        """Take the run lock and start the run; :class:`ApiError` 409 when one is going."""
        from daglake.runner import RunOptions, new_run_id

        with self._lock:
            if self._current is not None and not self._current.outcome.done():
                raise _in_progress(self._current.run_id, "a run started over HTTP")
            run_id = new_run_id()
            lock = RunLock(self.root / ".daglake")
            try:
                lock.acquire(run_id)
            except RunInProgressError as exc:
                raise from_daglake(exc) from None
            active = ActiveRun(run_id, FeedObserver(self.feed))
            options = RunOptions(
                trigger=trigger,
                run_id=run_id,
                logical_date=logical_date,
                select=list(select or []),
                exclude=list(exclude or []),
                full_refresh=full_refresh,
            )
            thread = threading.Thread(
                target=self._run, args=(active, lock, options), name=f"daglake-run-{run_id}", daemon=False
            )
            self._current = active
            try:
                thread.start()
            except BaseException:
                lock.release()
                self._current = None
                raise
        return active

    def reap(self, store: StateStore, project: str) -> None:
        """Mark failed the runs left ``running`` by a process that died (``kill -9``), as the
        CLI's history does: only when no run holds the lock. Under this manager's lock, so
        it never makes a ``POST /run`` of this server find the run lock taken."""
        from daglake.lock import holder
        from daglake.runner import DEAD_RUN

        state_dir = self.root / ".daglake"
        with self._lock:
            if (self._current is not None and not self._current.outcome.done()) or holder(state_dir):
                return
            lock = RunLock(state_dir)
            try:
                lock.acquire("history")
            except RunInProgressError:
                return
            try:
                store.mark_dead_runs(project, DEAD_RUN)
            finally:
                lock.release()

    def _run(self, active: ActiveRun, lock: RunLock, options: RunOptions) -> None:
        from daglake.runner import run

        active.answered.wait(timeout=1.0)
        summary: RunSummary | None = None
        failure: BaseException | None = None
        try:
            summary = run(self.root, options, active.observer, lock=lock)
        except DaglakeError as exc:
            self._refused(active, exc.as_dict()["error"])
            failure = exc
        except BaseException as exc:
            log.error("run %s failed", active.run_id, exc_info=exc)
            self._refused(active, {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
            failure = exc
        finally:
            lock.release()
            with self._lock:
                self._finished[active.run_id] = active
                while len(self._finished) > KEEP_OUTCOMES:
                    del self._finished[next(iter(self._finished))]
        # the outcome only once the lock is free: whoever waits on it may start the next run
        if failure is not None:
            active.outcome.set_exception(failure)
        else:
            assert summary is not None
            active.outcome.set_result(summary)

    def _refused(self, active: ActiveRun, error: Any) -> None:
        """A run that ended before or outside the runner's own events still tells the feed."""
        summary = active.summary  # a run that failed on the way (its state database's disk full) has one
        counts = summary.counts() if summary is not None else {}
        self.feed.publish("run", {"run_id": active.run_id, "state": "failed", "counts": counts, "error": error})


def _in_progress(run_id: str, what: str) -> ApiError:
    return ApiError(
        409,
        "run_in_progress",
        f"{what} is in progress (run {run_id}); wait for it to finish",
        run_id=run_id,
    )


def outcome_error(active: ActiveRun) -> dict[str, Any] | None:
    """How a finished run that never produced a summary failed, as the API shows it."""
    if not active.outcome.done() or active.outcome.exception() is None:
        return None
    exc = active.outcome.exception()
    if isinstance(exc, DaglakeError):
        return from_daglake(exc).as_dict()["error"]  # type: ignore[no-any-return]
    return {"code": "internal_error", "message": "the run failed unexpectedly (see the server log)"}
