"""A run: discover, validate, select, translate, then execute tasks on an engine."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from daglake.engines.base import Engine, EngineSettings, SqlStatement, create_engine
from daglake.errors import TaskError, ValidationError
from daglake.events import (
    FAILED,
    NOT_STARTED,
    RUNNING,
    SKIPPED,
    SUCCESS,
    UPSTREAM_FAILED,
    Plan,
    RunObserver,
    RunSummary,
    TaskRun,
)
from daglake.graph.dag import DAG
from daglake.graph.selection import select
from daglake.lock import RunLock
from daglake.project import Project, Task, load_project
from daglake.project.validate import missing_upstream, problems
from daglake.scheduler.executor import ReadyQueue, execute
from daglake.sql.cache import atomic_write_text

DURATIONS_FILE = "durations.json"


@dataclass
class RunOptions:
    select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    workers: int | None = None
    full_refresh: bool = False
    fail_fast: bool | None = None
    dry_run: bool = False
    deps_file: str | None = None
    engine: str | None = None
    strict: bool = False
    logical_date: str | None = None


@dataclass
class _Skipped:
    reason: str


class Session:
    """A loaded, validated project with its engine open: what ``validate``, ``run`` and
    ``graph`` share."""

    def __init__(self, path: str | Path, options: RunOptions, *, read_only: bool) -> None:
        self.options = options
        self.project: Project = load_project(
            path, deps_file=options.deps_file, write_cache=not options.dry_run
        )
        self.dag: DAG[str] = DAG(self.project.dependencies())
        config = self.project.config
        self.engine: Engine | None = None
        file_problems = problems(self.project, self.dag, None, strict=options.strict)
        if file_problems:
            raise ValidationError(file_problems)
        settings = EngineSettings(root=self.project.root, path=config.engine_path, read_only=read_only)
        self.engine = create_engine(options.engine or config.engine, settings)
        self.existing = self.engine.existing_tables()
        missing = problems(self.project, self.dag, self.existing)
        if missing:
            self.close()
            raise ValidationError(missing)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate(path: str | Path = ".", options: RunOptions | None = None) -> Project:
    """Raise :class:`ValidationError` listing every problem; return the project when clean."""
    with Session(path, options or RunOptions(), read_only=True) as session:
        return session.project


def run(
    path: str | Path = ".", options: RunOptions | None = None, observer: RunObserver | None = None
) -> RunSummary:
    """Run the project's selected tasks; the summary says how each ended."""
    options = options or RunOptions()
    observer = observer or RunObserver()
    with Session(path, options, read_only=options.dry_run) as session:
        return _run(session, options, observer)


def _run(session: Session, options: RunOptions, observer: RunObserver) -> RunSummary:
    project, engine = session.project, session.engine
    assert engine is not None
    config = project.config
    chosen = select(project, session.dag, options.select, options.exclude)
    dag = session.dag.subgraph(chosen)
    not_built = missing_upstream(project, chosen, session.existing)
    if not_built:
        raise ValidationError(not_built)
    durations = _load_durations(project)
    priority = dag.remaining_path(durations, default=_typical(durations))
    workers = options.workers or config.workers
    plan = Plan(order=_start_order(dag, priority), groups=dag.levels(), workers=workers)
    summary = RunSummary(run_id=_new_run_id(), project=config.name, engine=engine.name)
    summary.dry_run = options.dry_run
    summary.logical_date = options.logical_date or time.strftime("%Y-%m-%d")
    for name in plan.order:
        summary.tasks[name] = TaskRun(name=name, path=project.tasks[name].path)
    if options.dry_run:
        observer.run_started(summary, plan)
        observer.run_finished(summary)
        return summary

    statements = {name: compile_task(project, project.tasks[name], engine.dialect) for name in chosen}
    if project.cache is not None:
        project.cache.save()
    lock = RunLock(project.state_dir)
    lock.acquire(summary.run_id)
    try:
        engine.create_schemas(
            {t.split(".")[0] for n in chosen for t in project.tasks[n].outputs if "." in t}
        )
        started = time.perf_counter()
        observer.run_started(summary, plan)
        result = execute(
            dag,
            lambda name: _run_task(engine, project.tasks[name], statements[name], session, options),
            workers=workers,
            priority=priority,
            fail_fast=options.fail_fast if options.fail_fast is not None else config.fail_fast,
            on_start=lambda name: _started(summary.tasks[name], observer),
            on_finish=lambda name, value, error: _finished(summary.tasks[name], value, error, observer),
            on_blocked=lambda name, cause: _blocked(summary.tasks[name], cause, observer),
        )
        for name in result.not_started:
            task_run = summary.tasks[name]
            task_run.state, task_run.reason = NOT_STARTED, "the run stopped early (--fail-fast)"
            observer.task_finished(task_run)
        summary.duration = time.perf_counter() - started
        _save_durations(project, durations, summary)
    finally:
        lock.release()
    observer.run_finished(summary)
    return summary


def _start_order(dag: DAG[str], priority: dict[str, float]) -> list[str]:
    """Topological order that, among ready tasks, prefers the longest remaining path."""
    remaining = {n: len(d) for n, d in dag.upstream.items()}
    ready: ReadyQueue[str] = ReadyQueue(priority)
    for node in dag.topological_order():
        if remaining[node] == 0:
            ready.push(node)
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for child in dag.downstream[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.push(child)
    return order


def compile_task(project: Project, task: Task, dialect: str) -> list[SqlStatement]:
    """The task's statements in the engine's dialect, from the cache when the file is unchanged."""
    cache = project.cache
    cached = cache.get_sql(task.cache_key, dialect) if cache is not None else None
    if cached is None:
        from daglake.sql.parse import parse_file
        from daglake.sql.translate import translate

        parsed = task.parsed or parse_file(task.text, project.config.dialect)
        cached = translate(parsed, project.config.dialect, dialect, task.default_output(project.root))
        if cache is not None:
            cache.put_sql(task.cache_key, dialect, cached)
    return [SqlStatement(line, sql) for line, sql in cached]


def _run_task(
    engine: Engine, task: Task, statements: list[SqlStatement], session: Session, options: RunOptions
) -> int | _Skipped | None:
    if task.is_seed and not options.full_refresh and all(o in session.existing for o in task.outputs):
        return _Skipped("seed tables exist (use --full-refresh to reload)")
    return engine.run_statements(statements, task.path)


def _started(task_run: TaskRun, observer: RunObserver) -> None:
    task_run.state = RUNNING
    task_run.started_at = time.perf_counter()
    observer.task_started(task_run)


def _finished(
    task_run: TaskRun, value: object, error: BaseException | None, observer: RunObserver
) -> None:
    assert task_run.started_at is not None
    task_run.duration = time.perf_counter() - task_run.started_at
    if error is not None:
        task_run.state = FAILED
        if isinstance(error, TaskError):
            task_run.error, task_run.location = error.message, error.location
        else:
            task_run.error, task_run.location = f"{type(error).__name__}: {error}", task_run.path
    elif isinstance(value, _Skipped):
        task_run.state, task_run.reason = SKIPPED, value.reason
    else:
        task_run.state = SUCCESS
        task_run.rows = value if isinstance(value, int) else None
    observer.task_finished(task_run)


def _blocked(task_run: TaskRun, cause: str, observer: RunObserver) -> None:
    task_run.state, task_run.reason = UPSTREAM_FAILED, f"upstream task {cause} failed"
    observer.task_finished(task_run)


def _new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _load_durations(project: Project) -> dict[str, float]:
    path = project.state_dir / DURATIONS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_durations(project: Project, durations: dict[str, float], summary: RunSummary) -> None:
    """Last successful duration per task: the weights of the critical-path priority."""
    for name, task_run in summary.tasks.items():
        if task_run.state == SUCCESS and task_run.duration is not None:
            durations[name] = task_run.duration
    known = {n: d for n, d in durations.items() if n in project.tasks}
    atomic_write_text(project.state_dir / DURATIONS_FILE, json.dumps(known))


def _typical(durations: dict[str, float]) -> float:
    if not durations:
        return 1.0
    values = sorted(durations.values())
    return values[len(values) // 2]


__all__ = ["FAILED", "RunOptions", "Session", "run", "validate"]
