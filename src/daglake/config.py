"""``daglake.toml``: typed settings with every unknown key and bad value reported by line."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from daglake.engine_settings import SETTINGS, EngineSettings, type_name
from daglake.errors import Problem, UsageError
from daglake.files import UnreadableFile, read_project_file

CONFIG_FILE = "daglake.toml"
LAKE_ZONES = ("raw", "staging", "curated")  # zones a task may write (landing/quarantine: ingestion)
DIALECTS = ("bigquery", "duckdb", "spark", "postgres", "snowflake", "ansi")

# section -> key -> expected type; ``tasks`` and ``sources`` are tables of user-named entries.
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "project": {
        "name": str,
        "dialect": str,
        "exclude": list,
        "seeds": list,
        "checks": list,
        "dependencies_file": str,
        "schedule": str,
        "timezone": str,
        "start_date": (str, dt.date),
        "catchup": bool,
        "max_active_runs": int,
    },
    "run": {
        "workers": int,
        "fail_fast": bool,
        "retries": int,
        "retry_delay": (int, float),
        "retry_backoff": (int, float),
        "retry_max_delay": (int, float),
    },
    "state": {"url": str},
    "lake": {"root": str},
    "alerts": {
        "webhook": str,
        "command": str,
        "on": list,
        "retries": int,
        "timeout": (int, float),
        "ui_url": str,
    },
}
ALERT_ON = ("failure", "success")
TASK_KEYS: dict[str, type | tuple[type, ...]] = {
    "depends_on": list,
    "tags": list,
    "retries": int,
    "retry_delay": (int, float),
    "zone": str,
    "partition_by": list,
}


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed task is tried again, and how long to wait: ``delay * backoff**n``,
    capped at ``max_delay``, with jitter so that retries of many tasks do not align."""

    retries: int = 0
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0

    def wait(self, retry: int, random: float) -> float:
        """Seconds before retry number ``retry`` (1-based); ``random`` in [0, 1) is the jitter."""
        ceiling = min(self.max_delay, self.delay * self.backoff ** (retry - 1))
        return ceiling * (0.5 + random / 2)


@dataclass
class TaskSettings:
    depends_on: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    retries: int | None = None
    retry_delay: float | None = None
    zone: str | None = None
    partition_by: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A named environment: an engine and its settings (``[targets.prod] engine = "bigquery"``)."""

    name: str
    engine: str
    settings: EngineSettings


TARGET_ENV = "DAGLAKE_TARGET"


@dataclass
class AlertSettings:
    """``[alerts]``: where to say that a run failed (or succeeded)."""

    webhook: str | None = None
    command: str | None = None
    on: list[str] = field(default_factory=lambda: ["failure"])
    retries: int = 3
    timeout: float = 5.0  # seconds per attempt
    ui_url: str = "http://127.0.0.1:8181"  # where `daglake serve` is reached, for the run's link


@dataclass
class ProjectConfig:
    name: str
    dialect: str = "bigquery"
    exclude: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=lambda: ["seeds", "db_init"])
    check_folders: list[str] = field(default_factory=lambda: ["checks"])
    dependencies_file: str | None = None
    schedule: str | None = None  # cron or @daily/@monthly/...: when `daglake serve` runs it
    timezone: str = "UTC"
    start_date: dt.datetime | None = None  # naive: in ``timezone``
    catchup: bool = False
    max_active_runs: int = 1
    workers: int = 4
    fail_fast: bool = False
    engine: str = "duckdb"  # [engine] name: the default engine
    engines: dict[str, EngineSettings] = field(default_factory=dict)  # [engine.<name>] tables
    targets: dict[str, Target] = field(default_factory=dict)  # [targets.<name>]
    state_url: str | None = None
    lake_root: str = "lake"
    checks: dict[str, Any] = field(default_factory=dict)  # [checks."table"] as written
    alerts: AlertSettings = field(default_factory=lambda: AlertSettings())
    text: str = ""  # the file, for locating keys in messages
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tasks: dict[str, TaskSettings] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    source_lines: dict[str, int] = field(default_factory=dict)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _unquote(part: str) -> str:
    return part.strip().strip("\"'")


def _split_dotted(name: str) -> list[str]:
    return [_unquote(p) for p in re.findall(r"""("[^"]*"|'[^']*'|[^.]+)""", name)]


def locate(text: str, section: list[str], key: str | None = None) -> int:
    """Line of ``key`` inside table ``section`` (or of the header), 1-based; 0 when unknown."""
    current: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            current = _split_dotted(header.group(1))
            if key is None and current == section:
                return number
            continue
        found = _KEY.match(raw)
        if found and key is not None:
            full = current + _split_dotted(found.group(1))
            if full == [*section, key]:
                return number
    return 0


def _check_value(value: Any, expected: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and expected is not bool:
        return False
    return isinstance(value, expected)


def load_config(root: Path, problems: list[Problem]) -> ProjectConfig:
    """Read ``daglake.toml`` (optional) and append every problem found to ``problems``."""
    config = ProjectConfig(name=root.resolve().name)
    path = root / CONFIG_FILE
    if not path.is_file():
        return config
    try:
        text = read_project_file(path, CONFIG_FILE)
    except UnreadableFile as exc:
        problems.append(exc.problem)
        return config
    config.text = text
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(_toml_problem(exc))
        return config

    def problem(section: list[str], key: str | None, message: str) -> None:
        problems.append(Problem(CONFIG_FILE, locate(text, section, key), message))

    for section, body in data.items():
        if section == "tasks":
            _load_tasks(config, body, problem)
        elif section == "sources":
            _load_sources(config, body, problem, text)
        elif section == "engine":
            _load_engines(config, body, problem)
        elif section == "targets":
            _load_targets(config, body, problem)
        elif section == "checks":
            if isinstance(body, dict):
                config.checks = body  # validated by daglake.checks, which knows the kinds
            else:
                problem([], "checks", '[checks] must be a table of tables: [checks."dataset.table"]')
        elif section in SCHEMA:
            if not isinstance(body, dict):
                problem([], section, f"[{section}] must be a table")
                continue
            for key, value in body.items():
                expected = SCHEMA[section].get(key)
                if expected is None:
                    known = ", ".join(sorted(SCHEMA[section]))
                    problem([section], key, f"unknown key '{key}' in [{section}] (known: {known})")
                elif not _check_value(value, expected):
                    problem([section], key, f"{section}.{key} must be {type_name(expected)}")
                else:
                    _apply(config, section, key, value, lambda m, s=section, k=key: problem([s], k, m))
        else:
            known = ", ".join(sorted([*SCHEMA, "tasks", "sources", "checks", "engine", "targets"]))
            line = locate(text, [section]) or locate(text, [], section)
            problems.append(Problem(CONFIG_FILE, line, f"unknown section [{section}] (known: {known})"))
    return config


def _apply(config: ProjectConfig, section: str, key: str, value: Any, problem: Any) -> None:
    if section == "project":
        if key == "dialect" and value not in DIALECTS:
            problem(f"unknown dialect '{value}' (known: {', '.join(DIALECTS)})")
            return
        if key == "schedule" and not _valid_schedule(value):
            problem(
                f"schedule '{value}' is not a cron expression "
                "(e.g. \"0 3 * * *\") or one of @hourly, @daily, @weekly, @monthly, @yearly"
            )
            return
        if key in ("timezone", "start_date", "max_active_runs"):
            _apply_schedule_key(config, key, value, problem)
            return
        if key in ("exclude", "seeds", "checks") and not all(isinstance(v, str) for v in value):
            problem(f"project.{key} must be a list of strings")
            return
        setattr(config, "check_folders" if key == "checks" else key, value)
    elif section == "run":
        minimum = {"workers": 1, "retry_backoff": 1}.get(key, 0)
        if not isinstance(value, bool) and value < minimum:
            problem(f"run.{key} must be at least {minimum}")
            return
        if key.startswith("retr"):
            name = {"retries": "retries"}.get(key, key.removeprefix("retry_"))
            config.retry = replace(config.retry, **{name: value})
        else:
            setattr(config, key, value)
    elif section == "alerts":
        _apply_alert_key(config.alerts, key, value, problem)
    elif section == "state":
        config.state_url = value
    elif section == "lake":
        config.lake_root = value


def _load_engines(config: ProjectConfig, body: Any, problem: Any) -> None:
    """``[engine] name = "duckdb"`` and one table per engine, ``[engine.duckdb] path = ...``.
    ``path``, ``memory_limit`` and ``threads`` directly in ``[engine]`` are DuckDB's (the short
    form of round 1)."""
    if not isinstance(body, dict):
        problem([], "engine", "[engine] must be a table")
        return
    duckdb_short = {k: v for k, v in body.items() if k in ("path", "memory_limit", "threads")}
    for key, value in body.items():
        if key in duckdb_short:
            continue
        if key == "name":
            if value not in SETTINGS:
                problem(["engine"], key, f"unknown engine {value!r} (known: {', '.join(SETTINGS)})")
            else:
                config.engine = value
        elif key in SETTINGS and isinstance(value, dict):
            config.engines[key] = SETTINGS[key].from_table(value, _reporter(problem, ["engine", key]))
        else:
            known = ", ".join(["name", *SETTINGS])
            problem(["engine"], key, f"unknown key '{key}' in [engine] (known: {known}, or a table per engine)")
    if duckdb_short:
        settings = config.engines.get("duckdb") or SETTINGS["duckdb"]()
        config.engines["duckdb"] = settings.merged(duckdb_short, _reporter(problem, ["engine"]))


def _reporter(problem: Any, section: list[str]) -> Callable[[str, str], None]:
    """A settings class's ``(key, message)`` as a problem at that key's line, the message
    naming the key in full (``engine.duckdb.threads must be ...``)."""

    def report(key: str, message: str) -> None:
        prefix = ".".join(section)
        problem(section, key, f"{prefix}.{message}" if message.startswith(key) else message)

    return report


def _load_targets(config: ProjectConfig, body: Any, problem: Any) -> None:
    if not isinstance(body, dict):
        problem([], "targets", "[targets] must be a table of tables: [targets.prod]")
        return
    for name, table in body.items():
        if not isinstance(table, dict):
            problem(["targets"], name, f"[targets.{name}] must be a table")
            continue
        engine = table.get("engine", config.engine)
        if engine not in SETTINGS:
            problem(["targets", name], "engine", f"unknown engine {engine!r} (known: {', '.join(SETTINGS)})")
            continue
        for key in table:
            if key not in ("engine", *SETTINGS):
                problem(["targets", name], key, f"unknown key '{key}' in [targets.{name}] (known: engine, {', '.join(SETTINGS)})")
        section = ["targets", name, engine]
        own = table.get(engine, {})
        if not isinstance(own, dict):
            problem(["targets", name], engine, f"targets.{name}.{engine} must be a table")
            own = {}
        base = config.engines.get(engine) or SETTINGS[engine]()
        settings = base.merged(own, _reporter(problem, section))
        config.targets[name] = Target(name, engine, settings)


def engine_settings(config: ProjectConfig, *, engine: str | None = None, target: str | None = None) -> EngineSettings:
    """What a run opens: ``--target`` (or ``DAGLAKE_TARGET``), else ``--engine`` with the project's
    table for it, else the project's default engine."""
    import os

    given = ""
    if target is None and engine is None:
        target = os.environ.get(TARGET_ENV) or None
        given = f" from ${TARGET_ENV}"  # said, or the user hunts for where the name came from
    if target is not None:
        if engine is not None:
            raise UsageError("--engine and --target cannot be used together (a target names its engine)")
        found = config.targets.get(target)
        if found is None:
            known = ", ".join(sorted(config.targets)) or f"none in {CONFIG_FILE}"
            raise UsageError(f"unknown target {target!r}{given} (known: {known})")
        return found.settings
    name = engine or config.engine
    if name not in SETTINGS:
        raise UsageError(f"unknown engine {name!r} (available: {', '.join(SETTINGS)})")
    return config.engines.get(name) or SETTINGS[name]()


def warehouse_location(config: ProjectConfig) -> str:
    """Where the default engine keeps its tables, as the catalog shows it."""
    settings = engine_settings(config)
    return str(getattr(settings, "path", settings.engine))


def _apply_schedule_key(config: ProjectConfig, key: str, value: Any, problem: Any) -> None:
    if key == "timezone":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            problem(f"unknown time zone '{value}' (an IANA name such as \"Europe/Paris\" or \"UTC\")")
            return
        config.timezone = value
    elif key == "start_date":
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                problem(f"start_date '{value}' is not a date (YYYY-MM-DD) or date-time")
                return
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        config.start_date = value
    elif value != 1:
        problem("project.max_active_runs must be 1 (runs of a project never overlap)")


def _apply_alert_key(alerts: AlertSettings, key: str, value: Any, problem: Any) -> None:
    if key == "on" and not (value and all(v in ALERT_ON for v in value)):
        problem(f"alerts.on must list one or both of {', '.join(repr(v) for v in ALERT_ON)}")
    elif key == "webhook" and not value.startswith(("http://", "https://")):
        problem(f"alerts.webhook '{value}' must be an http:// or https:// URL")
    elif key in ("retries", "timeout") and (value < 0 or (key == "timeout" and value == 0)):
        problem(f"alerts.{key} must be {'at least 0' if key == 'retries' else 'more than 0'}")
    else:
        setattr(alerts, key, float(value) if key == "timeout" else value)


def _valid_schedule(value: str) -> bool:
    from croniter import croniter  # only when a schedule is set

    return bool(croniter.is_valid(value))


def _load_tasks(config: ProjectConfig, body: Any, problem: Any) -> None:
    if not isinstance(body, dict):
        problem([], "tasks", "[tasks] must be a table of task paths")
        return
    for task, settings in body.items():
        if not isinstance(settings, dict):
            problem(["tasks"], task, f'[tasks."{task}"] must be a table')
            continue
        entry = TaskSettings()
        for key, value in settings.items():
            expected = TASK_KEYS.get(key)
            if expected is None:
                known = ", ".join(sorted(TASK_KEYS))
                problem(["tasks", task], key, f"unknown key '{key}' for task '{task}' (known: {known})")
            elif expected is list and (
                not isinstance(value, list) or not all(isinstance(v, str) for v in value)
            ):
                problem(["tasks", task], key, f"tasks.{key} must be a list of strings")
            elif key == "zone" and value not in LAKE_ZONES:
                problem(["tasks", task], key, f"tasks.zone must be one of {', '.join(LAKE_ZONES)}")
            elif not _check_value(value, expected) or (expected in (int, (int, float)) and value < 0):
                problem(["tasks", task], key, f"tasks.{key} must be {type_name(expected)} >= 0")
            else:
                setattr(entry, key, list(value) if expected is list else value)
        config.tasks[task] = entry


def _load_sources(config: ProjectConfig, body: Any, problem: Any, text: str) -> None:
    if not isinstance(body, dict):
        problem([], "sources", "[sources] must be a table of table = location")
        return
    for name, location in body.items():
        if not isinstance(location, str):
            problem(["sources"], name, f"source '{name}' must be a string (a path or description)")
            continue
        config.sources[name.lower()] = location
        config.source_lines[name.lower()] = locate(text, ["sources"], name)


def _toml_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    line, column = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    return Problem(CONFIG_FILE, line, f"invalid TOML: {message}", column)


def task_setting_line(root: Path, task: str, key: str) -> int:
    """Line of ``[tasks."task"] key`` in the config, for messages about explicit dependencies."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return 0
    try:
        text = read_project_file(path, CONFIG_FILE)
    except UnreadableFile:
        return 0  # load_config reports it
    return locate(text, ["tasks", task], key) or locate(text, ["tasks", task])


def retry_policy(config: ProjectConfig, task_settings: TaskSettings | None) -> RetryPolicy:
    """The project's policy with a task's own ``retries``/``retry_delay`` applied."""
    policy = config.retry
    if task_settings is not None:
        if task_settings.retries is not None:
            policy = replace(policy, retries=task_settings.retries)
        if task_settings.retry_delay is not None:
            policy = replace(policy, delay=float(task_settings.retry_delay))
    return policy
