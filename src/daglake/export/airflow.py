"""``daglake export airflow``: an Airflow DAG file with one BashOperator per daglake task.

The file imports only Airflow and pendulum, never daglake: the Airflow workers call the
``daglake`` executable found at export time, so they need the project folder and that
executable, not daglake on Airflow's own Python path. Written from sorted data, the file is the
same text for the same project, so it can be committed and diffed.
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from daglake.config import RetryPolicy, retry_policy
from daglake.graph.dag import DAG
from daglake.project.model import Project

DEFAULT_START = datetime(2024, 1, 1)  # any fixed past date: with catchup off only the latest interval runs


@dataclass(frozen=True)
class AirflowSettings:
    """What the DAG file states besides the graph; ``from_project`` reads daglake.toml."""

    dag_id: str
    daglake: str  # the executable the Airflow tasks call
    schedule: str | None = None
    start_date: datetime = DEFAULT_START
    timezone: str = "UTC"
    catchup: bool = False

    @classmethod
    def from_project(cls, project: Project, daglake: str, dag_id: str | None = None) -> AirflowSettings:
        config = project.config
        # timezone, start_date and catchup arrive with schedules; read them when present
        start = getattr(config, "start_date", None)
        return cls(
            dag_id=dag_id or airflow_id(config.name),
            daglake=daglake,
            schedule=config.schedule,
            start_date=_as_datetime(start) if start else DEFAULT_START,
            timezone=getattr(config, "timezone", None) or "UTC",
            catchup=bool(getattr(config, "catchup", False)),
        )


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def airflow_id(name: str) -> str:
    """A table name as an Airflow task id that is also a Python name: ``final.products`` →
    ``final_products``."""
    cleaned = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", name.lower())).strip("_") or "task"
    if cleaned[0].isdigit():
        cleaned = f"t_{cleaned}"
    return f"{cleaned}_task" if keyword.iskeyword(cleaned) or cleaned in _RESERVED else cleaned


_RESERVED = {"dag", "pendulum", "timedelta", "BashOperator", "DAG", "CronDataIntervalTimetable", "RUN"}


def task_ids(names: list[str]) -> dict[str, str]:
    """Unique ids in the given order: a second ``a.b`` / ``a_b`` clash becomes ``a_b_2``."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = candidate = airflow_id(name)
        number = 2
        while candidate in taken:
            candidate = f"{base}_{number}"
            number += 1
        ids[name] = candidate
        taken.add(candidate)
    return ids


def render_dag(project: Project, dag: DAG[str], settings: AirflowSettings) -> str:
    """The DAG file's text: the tasks of ``dag`` (checks run inside their table's task)."""
    order = dag.topological_order()
    ids = task_ids(order)
    default = project.config.retry
    run = " ".join(
        shlex.quote(part) for part in (settings.daglake, "run", str(project.root.resolve()))
    )
    lines = [
        f'"""Airflow DAG of the daglake project {_py(project.config.name)}, written by `daglake export airflow`.',
        "",
        "Each task runs one daglake task, with its data-quality checks, for the run's logical date",
        "(`{{ ds }}`, the start of the data interval). daglake lets one run at a time write a",
        "project, so the tasks run one after another (max_active_tasks=1). Export again after",
        "changing the project instead of editing this file.",
        '"""',
        "",
        "from datetime import timedelta",
        "",
        "import pendulum",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.sdk import DAG, CronDataIntervalTimetable" if settings.schedule else "from airflow.sdk import DAG",
        "",
        f"RUN = {_py(run)}",
        "",
        "with DAG(",
        f"    dag_id={_py(settings.dag_id)},",
        f"    description={_py('daglake project ' + project.config.name)},",
        f"    schedule={_schedule(settings)},",
        f"    start_date={_start(settings)},",
        f"    catchup={_py(settings.catchup)},",
        "    max_active_runs=1,",
        "    max_active_tasks=1,",
        "    default_args={",
        *(f"        {_py(key)}: {value}," for key, value in _retry_args(default).items()),
        "    },",
        '    tags=["daglake"],',
        ") as dag:",
    ]
    for name in order:
        task = project.tasks[name]
        policy = retry_policy(project.config, task.settings)
        command = f" --select {shlex.quote(name)} --date {{{{ ds }}}}"
        lines += [
            f"    {ids[name]} = BashOperator(",
            f"        task_id={_py(ids[name])},",
            f"        bash_command=RUN + {_py(command)},",
        ]
        if policy != default:  # the task's own [tasks."..."] retries or retry_delay
            lines += [f"        {key}={value}," for key, value in _retry_args(policy).items()]
        lines.append("    )")
    edges = [(sorted(ids[u] for u in dag.upstream[n]), ids[n]) for n in order if dag.upstream[n]]
    if edges:
        lines.append("")
    for upstream, downstream in edges:
        source = upstream[0] if len(upstream) == 1 else f"[{', '.join(upstream)}]"
        lines.append(f"    {source} >> {downstream}")
    return "\n".join(lines) + "\n"


def _schedule(settings: AirflowSettings) -> str:
    if not settings.schedule:
        return "None"
    # a data-interval timetable: {{ ds }} is the interval's start, daglake's logical date
    return f"CronDataIntervalTimetable({_py(settings.schedule)}, timezone={_py(settings.timezone)})"


def _start(settings: AirflowSettings) -> str:
    start = settings.start_date
    parts = [start.year, start.month, start.day]
    if start.hour or start.minute:
        parts += [start.hour, start.minute]
    return f"pendulum.datetime({', '.join(map(str, parts))}, tz={_py(settings.timezone)})"


def _retry_args(policy: RetryPolicy) -> dict[str, str]:
    return {
        "retries": str(policy.retries),
        "retry_delay": f"timedelta(seconds={_number(policy.delay)})",
        "retry_exponential_backoff": _number(policy.backoff),
        "max_retry_delay": f"timedelta(seconds={_number(policy.max_delay)})",
    }


def _py(value: object) -> str:
    """A Python literal in double quotes (a JSON string is one, escapes and all)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
