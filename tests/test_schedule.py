"""Schedule arithmetic (SPEC §11) with times given, never read from the wall clock: due
intervals, catch-up on and off, start_date, time zones across DST, month ends."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from daglake.errors import UsageError
from daglake.orchestration.schedule import Interval, ManualClock, Schedule

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else dt.datetime.fromisoformat(text)


def elapsed(interval: Interval) -> dt.timedelta:
    """Real time elapsed (subtracting in one zone gives wall-clock time)."""
    return interval.end.astimezone(UTC) - interval.start.astimezone(UTC)


def dates(intervals: list[Interval]) -> list[str]:
    return [i.logical_date for i in intervals]


def test_a_monthly_run_covers_the_previous_month_and_starts_when_it_ends() -> None:
    monthly = Schedule("@monthly")
    due = monthly.due(at("2026-03-15T10:00:00"), last_start=None)
    assert [(i.start, i.end) for i in due] == [(at("2026-02-01T00:00:00"), at("2026-03-01T00:00:00"))]
    assert dates(due) == ["2026-02-01"]
    # exactly at the boundary the interval that just ended is due
    assert dates(monthly.due(at("2026-03-01T00:00:00"), last_start=None)) == ["2026-02-01"]
    # nothing is due again until the next month ends
    assert monthly.due(at("2026-03-31T23:59:59"), last_start=at("2026-02-01T00:00:00")) == []
    assert dates(monthly.due(at("2026-04-01T00:00:00"), last_start=at("2026-02-01T00:00:00"))) == ["2026-03-01"]


def test_without_catchup_a_server_back_after_downtime_runs_only_the_latest_interval() -> None:
    monthly = Schedule("@monthly", start_date=dt.datetime(2025, 1, 1), catchup=False)
    assert dates(monthly.due(at("2026-03-15T00:00:00"), last_start=at("2025-10-01T00:00:00"))) == ["2026-02-01"]
    assert dates(monthly.due(at("2026-03-15T00:00:00"), last_start=None)) == ["2026-02-01"]


def test_with_catchup_every_missed_interval_is_due_in_order() -> None:
    monthly = Schedule("@monthly", start_date=dt.datetime(2025, 11, 1), catchup=True)
    now = at("2026-03-15T00:00:00")
    assert dates(monthly.due(now, last_start=None)) == ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01"]
    assert dates(monthly.due(now, last_start=at("2025-12-01T00:00:00"))) == ["2026-01-01", "2026-02-01"]
    assert monthly.due(now, last_start=at("2026-02-01T00:00:00")) == []


def test_nothing_is_due_before_start_date() -> None:
    daily = Schedule("@daily", start_date=dt.datetime(2026, 6, 1), catchup=True)
    assert daily.due(at("2026-05-20T12:00:00"), last_start=None) == []
    assert dates(daily.due(at("2026-06-02T00:00:01"), last_start=None)) == ["2026-06-01"]
    assert dates(daily.upcoming(at("2026-05-20T12:00:00"), 2)) == ["2026-06-01", "2026-06-02"]


def test_local_times_hold_across_daylight_saving_changes() -> None:
    paris = Schedule("0 3 * * *", timezone="Europe/Paris")
    spring = paris.between(dt.date(2026, 3, 28), dt.date(2026, 3, 31))
    assert [i.start.isoformat() for i in spring] == [
        "2026-03-28T03:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # the clocks went forward at 02:00 that night
        "2026-03-30T03:00:00+02:00",
    ]
    assert elapsed(spring[0]) == dt.timedelta(hours=23)
    autumn = paris.between(dt.date(2026, 10, 24), dt.date(2026, 10, 26))
    assert elapsed(autumn[0]) == dt.timedelta(hours=25)  # back at 03:00 on the 25th
    # the run for 2026-03-29 starts at 03:00 Paris time on the 30th, 01:00 UTC
    due = paris.due(at("2026-03-30T01:00:00"), last_start=None)
    assert dates(due) == ["2026-03-29"]
    assert paris.due(at("2026-03-30T00:59:59"), last_start=at("2026-03-28T02:00:00")) == []


def test_month_ends_are_the_last_day_whatever_its_number() -> None:
    month_end = Schedule("0 0 L * *")
    assert dates(month_end.between(dt.date(2026, 1, 1), dt.date(2026, 5, 1))) == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
    ]
    # a day 31 schedule skips the months without one
    assert dates(Schedule("0 0 31 * *").between(dt.date(2026, 1, 1), dt.date(2026, 6, 1))) == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
    ]


def test_a_backfill_covers_the_intervals_starting_in_start_to_end() -> None:
    monthly = Schedule("@monthly")
    assert dates(monthly.between(dt.date(2026, 1, 1), dt.date(2026, 7, 1))) == [
        f"2026-0{m}-01" for m in range(1, 7)
    ]
    assert dates(monthly.between(dt.date(2026, 1, 2), dt.date(2026, 3, 1))) == ["2026-02-01"]
    with pytest.raises(UsageError, match="must be after"):
        monthly.between(dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    with pytest.raises(UsageError, match="several intervals a day"):
        Schedule("*/10 * * * *").between(dt.date(2026, 3, 1), dt.date(2026, 3, 2))


def test_the_manual_clock_wakes_a_waiter_when_moved_not_before() -> None:
    clock = ManualClock(at("2026-01-01T00:00:00"))
    stop = threading.Event()
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: (clock.wait(3600, stop), woke.set()))
    waiter.start()
    assert not woke.wait(0.2)
    clock.advance(minutes=1)
    assert woke.wait(10)
    waiter.join()
    assert clock.now() == at("2026-01-01T00:01:00")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('timezone = "Mars/Olympus"', "daglake.toml:3: unknown time zone 'Mars/Olympus'"),
        ('start_date = "soon"', "daglake.toml:3: start_date 'soon' is not a date"),
        ("max_active_runs = 2", "daglake.toml:3: project.max_active_runs must be 1"),
        ('catchup = "yes"', "daglake.toml:3: project.catchup must be true or false"),
        ('[alerts]\nwebhok = "http://x"', "daglake.toml:4: unknown key 'webhok' in [alerts]"),
        ('[alerts]\non = ["always"]', "daglake.toml:4: alerts.on must list one or both of 'failure', 'success'"),
        ('[alerts]\nwebhook = "ftp://x"', "daglake.toml:4: alerts.webhook 'ftp://x' must be an http"),
    ],
)
def test_schedule_and_alert_settings_are_validated_with_their_line(tmp_path: Path, line: str, message: str) -> None:
    from daglake.config import load_config

    (tmp_path / "daglake.toml").write_text(f'[project]\nschedule = "@daily"\n{line}\n', encoding="utf-8")
    problems: list = []
    load_config(tmp_path, problems)
    assert next(str(p) for p in problems).startswith(message), problems


def test_settings_that_are_right_are_read(tmp_path: Path) -> None:
    from daglake.config import load_config
    from daglake.orchestration.schedule import project_schedule

    (tmp_path / "daglake.toml").write_text(
        '[project]\nschedule = "@monthly"\ntimezone = "Europe/Paris"\nstart_date = 2026-01-01\ncatchup = true\n'
        '[alerts]\nwebhook = "http://127.0.0.1:9/hook"\non = ["failure", "success"]\nretries = 1\ntimeout = 0.5\n',
        encoding="utf-8",
    )
    problems: list = []
    config = load_config(tmp_path, problems)
    assert problems == []
    assert project_schedule(config) == Schedule("@monthly", "Europe/Paris", dt.datetime(2026, 1, 1), True, 1)
    assert (config.alerts.webhook, config.alerts.on, config.alerts.retries, config.alerts.timeout) == (
        "http://127.0.0.1:9/hook", ["failure", "success"], 1, 0.5
    )
