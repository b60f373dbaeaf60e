"""Schedule arithmetic, engine-neutral and clock-injectable: which intervals a cron schedule
has, which are due at a given moment, and which a backfill covers.

Like Airflow's data intervals, a run covers ``[start, end)`` and starts once ``end`` has
passed; its logical date is ``start``. Times are computed in the schedule's time zone, so
``0 3 * * *`` in Europe/Paris stays 03:00 local across DST changes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from daglake.errors import UsageError


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    end: dt.datetime

    @property
    def logical_date(self) -> str:
        """The date a run of this interval gets (``@ds`` in SQL)."""
        return self.start.date().isoformat()

    def as_dict(self) -> dict[str, str]:
        return {"logical_date": self.logical_date, "start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = "UTC"
    start_date: dt.datetime | None = None  # naive means in ``timezone``
    catchup: bool = False
    max_active_runs: int = 1

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in the schedule's zone (naive moments are taken as already in it)."""
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self.zone)
        return moment.astimezone(self.zone)

    def fires_after(self, moment: dt.datetime) -> Iterator[dt.datetime]:
        """Fire times strictly after ``moment``, in the schedule's zone."""
        from croniter import croniter

        cron = croniter(self.cron, self.local(moment))
        while True:
            yield self.local(cron.get_next(dt.datetime))

    def fire_at_or_before(self, moment: dt.datetime) -> dt.datetime:
        from croniter import croniter

        after = self.local(moment).replace(microsecond=0) + dt.timedelta(seconds=1)
        return self.local(croniter(self.cron, after).get_prev(dt.datetime))

    def interval_ending(self, end: dt.datetime) -> Interval:
        from croniter import croniter

        return Interval(self.local(croniter(self.cron, end).get_prev(dt.datetime)), end)

    def intervals_from(self, start: dt.datetime) -> Iterator[Interval]:
        """Intervals whose start is at or after ``start``, in order."""
        fires = self.fires_after(self.local(start) - dt.timedelta(microseconds=1))
        begin = next(fires)
        for end in fires:
            yield Interval(begin, end)
            begin = end

    def first_start(self) -> dt.datetime | None:
        return None if self.start_date is None else self.local(self.start_date)

    def latest_complete(self, now: dt.datetime) -> Interval | None:
        """The last interval that has ended by ``now`` (and begins at or after start_date)."""
        interval = self.interval_ending(self.fire_at_or_before(now))
        first = self.first_start()
        return None if first is not None and interval.start < first else interval

    def due(self, now: dt.datetime, last_start: dt.datetime | None) -> list[Interval]:
        """The intervals to run at ``now``, oldest first, given the start of the last interval
        already started (None: never). Without catch-up, only the latest one."""
        latest = self.latest_complete(now)
        if latest is None or (last_start is not None and latest.start <= self.local(last_start)):
            return []
        if not self.catchup:
            return [latest]
        if last_start is not None:
            begin = next(self.fires_after(self.local(last_start)))
        else:
            begin = self.first_start() or latest.start
        found = []
        for interval in self.intervals_from(begin):
            if interval.start > latest.start:
                break
            found.append(interval)
        return found

    def upcoming(self, now: dt.datetime, count: int) -> list[Interval]:
        """The next ``count`` intervals to start after ``now`` (the ones not yet ended)."""
        found: list[Interval] = []
        first = self.first_start()
        begin = self.fire_at_or_before(now)
        if first is not None and begin < first:
            begin = first
        for interval in self.intervals_from(begin):
            if len(found) == count:
                break
            if interval.end > self.local(now):
                found.append(interval)
        return found

    def between(self, start: dt.date, end: dt.date) -> list[Interval]:
        """The intervals whose start lies in ``[start, end)``: what a backfill runs."""
        if end <= start:
            raise UsageError(f"--end {end} must be after --start {start}")
        begin = dt.datetime.combine(start, dt.time(), self.zone)
        stop = dt.datetime.combine(end, dt.time(), self.zone)
        found = []
        for interval in self.intervals_from(begin):
            if interval.start >= stop:
                break
            found.append(interval)
        dates = [i.logical_date for i in found]
        if len(set(dates)) != len(dates):
            raise UsageError(
                f"schedule '{self.cron}' has several intervals a day; a backfill runs one per logical date"
            )
        return found


class Clock:
    """The real time; the scheduler loop asks it for now and waits on it."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


class ManualClock(Clock):
    """A clock a test moves: ``wait`` returns as soon as it is advanced (or stopped), also when
    it moved after the waiting thread last read it (else that advance would be missed)."""

    def __init__(self, now: dt.datetime) -> None:
        self._now = now
        self._moved = threading.Condition()
        self._seen = threading.local()  # per thread: the time it last read

    def now(self) -> dt.datetime:
        with self._moved:
            self._seen.now = self._now
            return self._now

    def advance(self, **delta: float) -> None:
        with self._moved:
            self._now += dt.timedelta(**delta)
            self._moved.notify_all()

    def wait(self, seconds: float, stop: threading.Event) -> None:
        with self._moved:
            start = getattr(self._seen, "now", self._now)
            deadline = time.monotonic() + 60
            while self._now == start and not stop.is_set() and time.monotonic() < deadline:
                self._moved.wait(0.05)


def project_schedule(config: object) -> Schedule | None:
    """The schedule of a :class:`daglake.config.ProjectConfig`, or None when it has none."""
    cron = getattr(config, "schedule", None)
    if cron is None:
        return None
    return Schedule(
        cron=cron,
        timezone=getattr(config, "timezone", "UTC"),
        start_date=getattr(config, "start_date", None),
        catchup=getattr(config, "catchup", False),
        max_active_runs=getattr(config, "max_active_runs", 1),
    )
