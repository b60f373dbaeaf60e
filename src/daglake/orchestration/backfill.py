"""``daglake backfill``: every interval of the schedule in ``[start, end)``, in order, one run
each with trigger ``backfill``.

Re-issued, it skips the intervals that already have a successful run (any trigger) for their
logical date and runs the others again, failed ones included. Ctrl-C stops after the
interval's current task: the run ends, is recorded, and no further interval starts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daglake.errors import UsageError
from daglake.events import RunObserver
from daglake.orchestration.schedule import Interval, Schedule, project_schedule

SKIPPED_DONE = "already_successful"


@dataclass
class IntervalOutcome:
    interval: Interval
    run_id: str | None
    state: str  # success, failed, interrupted, already_successful, not_started

    def as_dict(self) -> dict[str, Any]:
        return self.interval.as_dict() | {"run_id": self.run_id, "state": self.state}


def parse_day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date in the form YYYY-MM-DD") from None


def backfill_schedule(config: Any) -> Schedule:
    """The project's schedule, or a daily one when it has none (a backfill is still by day)."""
    return project_schedule(config) or Schedule("@daily", getattr(config, "timezone", "UTC"))


def backfill(
    path: str | Path,
    start: dt.date,
    end: dt.date,
    *,
    observer: Callable[[Interval], RunObserver] = lambda interval: RunObserver(),
    progress: Callable[[IntervalOutcome, int, int], Any] = lambda outcome, number, total: None,
    patient: bool = False,
) -> list[IntervalOutcome]:
    """Run the intervals of ``[start, end)`` not yet successful; one outcome per interval.
    ``patient`` (the API's background backfill): an interval that finds another run going (a
    scheduled one, say) waits for it instead of ending the backfill."""
    from daglake.project import load_project
    from daglake.runner import RunOptions, new_run_id, open_state

    project = load_project(path, write_cache=False)
    intervals = backfill_schedule(project.config).between(start, end)
    store = open_state(project)
    try:
        done = _successful_dates(store, project.config.name)
    finally:
        store.close()
    outcomes = [
        IntervalOutcome(i, done[i.logical_date], SKIPPED_DONE)
        if i.logical_date in done
        else IntervalOutcome(i, None, "not_started")
        for i in intervals
    ]
    for number, outcome in enumerate(outcomes, start=1):
        if outcome.state == SKIPPED_DONE:
            progress(outcome, number, len(outcomes))
            continue
        interrupted = False
        run_id = new_run_id()  # known before the run, so an interrupted one is still named
        options = RunOptions(logical_date=outcome.interval.logical_date, trigger="backfill", run_id=run_id)
        try:
            summary = _run_when_free(path, options, observer(outcome.interval), patient)
        except KeyboardInterrupt:
            interrupted = True
            summary = None
            outcome.run_id, outcome.state = run_id, "interrupted"
        if summary is not None:
            outcome.run_id, outcome.state = summary.run_id, summary.state
        progress(outcome, number, len(outcomes))
        if interrupted:
            raise BackfillInterrupted(outcomes)
    return outcomes


def _run_when_free(path: str | Path, options: Any, observer: RunObserver, patient: bool) -> Any:
    import time

    from daglake.errors import RunInProgressError
    from daglake.runner import run

    while True:
        try:
            return run(path, options, observer)
        except RunInProgressError:
            if not patient:
                raise
            time.sleep(0.5)  # the other run holds the lock; look again


class BackfillInterrupted(KeyboardInterrupt):
    """Ctrl-C during a backfill: the outcomes so far, the rest ``not_started``."""

    def __init__(self, outcomes: list[IntervalOutcome]) -> None:
        super().__init__("backfill interrupted")
        self.outcomes = outcomes


def _successful_dates(store: Any, project: str) -> dict[str, str]:
    """Logical date -> id of a successful run of it."""
    found: dict[str, str] = {}
    for record in store.list_runs(project, limit=100_000):
        if record.state == "success" and record.logical_date not in found:
            found[record.logical_date] = record.id
    return found
