"""The loop of ``daglake serve`` that starts due scheduled runs.

It remembers the start of the last interval it started in ``.daglake/schedule.json``, so a
server restarted after downtime knows what it missed: with ``catchup`` it runs every missed
interval in order, without it only the latest. A run in progress (from HTTP, the CLI or the
schedule itself) delays the next interval, never overlaps it (``max_active_runs = 1``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from daglake.orchestration.schedule import Clock, Interval, Schedule

if TYPE_CHECKING:
    from daglake.api.runs import ActiveRun, RunManager

log = logging.getLogger("daglake.schedule")
MEMORY_FILE = "schedule.json"
IDLE_SECONDS = 30.0  # the longest wait between looks at the clock


class ScheduledRuns:
    def __init__(self, root: Path, schedule: Schedule, runs: RunManager, clock: Clock | None = None) -> None:
        self.root = root
        self.schedule = schedule
        self.runs = runs
        self.clock = clock or Clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._blocked = False  # an interval is due but a run is going: look again soon

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="daglake-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = None
            try:
                started = self.tick()
            except Exception:  # the schedule must survive one bad start; the log says why
                log.exception("scheduled run could not start")
            if started is not None and self.schedule.due(self.clock.now(), self.last_started()):
                self._wait_for(started)  # catching up: the next missed interval starts when this run ends
                continue
            if self._blocked:  # a run is going: it ends in real time, whatever the schedule's clock says
                self._stop.wait(1.0)
                continue
            self.clock.wait(self._seconds_to_next(), self._stop)

    def _wait_for(self, active: ActiveRun) -> None:
        while not self._stop.is_set():
            try:
                active.outcome.exception(timeout=0.5)
                return
            except TimeoutError:
                continue

    def tick(self) -> ActiveRun | None:
        """Start the oldest due interval if no run is going; the run started, if any."""
        from daglake.api.errors import ApiError

        now = self.clock.now()
        last = self.last_started()
        due = self.schedule.due(now, last)
        if not due:
            return None
        interval = due[0]
        self._blocked = True
        try:
            active = self.runs.start(logical_date=interval.logical_date, trigger="schedule")
        except ApiError as exc:
            if exc.status == 409:
                return None  # a run is going: this interval waits for it
            raise
        self._blocked = False
        self._remember(interval)
        active.go()
        return active

    def _seconds_to_next(self) -> float:
        now = self.clock.now()
        upcoming = self.schedule.upcoming(now, 1)
        if not upcoming:
            return IDLE_SECONDS
        wait = (upcoming[0].end - self.schedule.local(now)).total_seconds()
        return max(0.5, min(IDLE_SECONDS, wait))

    def last_started(self) -> dt.datetime | None:
        path = self.root / ".daglake" / MEMORY_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("cron") != self.schedule.cron:
                return None  # a new schedule starts afresh
            return dt.datetime.fromisoformat(data["last_start"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _remember(self, interval: Interval) -> None:
        path = self.root / ".daglake" / MEMORY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"cron": self.schedule.cron, "last_start": interval.start.isoformat()}
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body), encoding="utf-8")
        temporary.replace(path)
