"""What ``daglake schedule`` and ``GET /schedule`` show: the schedule and its coming intervals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from daglake.orchestration.schedule import project_schedule


def schedule_listing(config: Any, now: dt.datetime, count: int) -> dict[str, Any]:
    """The project's schedule settings and the next ``count`` intervals (none when unscheduled)."""
    schedule = project_schedule(config)
    body: dict[str, Any] = {
        "project": config.name,
        "schedule": config.schedule,
        "timezone": config.timezone,
        "start_date": config.start_date.isoformat() if config.start_date else None,
        "catchup": config.catchup,
        "max_active_runs": config.max_active_runs,
        "next": [],
    }
    if schedule is None:
        return body
    body["next"] = [
        interval.as_dict() | {"runs_at": interval.end.isoformat()}
        for interval in schedule.upcoming(now, count)
    ]
    return body
