"""A run: discover, validate, select, translate, then execute tasks on an engine, recording
every run, task and attempt in the state database."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.config import engine_settings
from daglake.engines import REGISTRY, create_engine, engine_class
from daglake.engines.base import Engine, Statement
from daglake.errors import Problem, TaskError, UsageError, ValidationError
from daglake.events import (
    FAILED,
    NOT_STARTED,
    RUNNING,
    SKIPPED,
    SUCCESS,
    UPSTREAM_FAILED,
    WARNED,
    Observers,
    Plan,
    Progress,
    RunObserver,
    RunSummary,
    TaskRun,
    said_if_slow,
)
from daglake.execution import Done, Failed, TaskExecutor
from daglake.fingerprint import SKIP, Decision
from daglake.graph.dag import DAG
from daglake.graph.selection import select
from daglake.lake.catalog import catalog_path, lake_tables, update_catalog
from daglake.lock import RunLock
from daglake.logs import prune as prune_logs
from daglake.project import Project, Task, load_project
from daglake.project.validate import missing_upstream, problems
from daglake.scheduler.executor import ReadyQueue, execute

if TYPE_CHECKING:
    from daglake.state import RunRecord, StateStore

DEAD_RUN = "the process running it died (killed or crashed)"
REDO_STATES = (FAILED, UPSTREAM_FAILED, NOT_STARTED, RUNNING, "pending")


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
    target: str | None = None  # [targets.<name>] in daglake.toml, or DAGLAKE_TARGET
    strict: bool = False
    logical_date: str | None = None
    trigger: str = "cli"
    run_id: str | None = None  # chosen by the caller: the API answers with it before the run starts
    progress: Progress | None = None  # hears what slow preparation is doing (parsing a big file)
    force: list[str] = field(default_factory=list)  # selectors of tasks run even when unchanged

    def selection(self) -> dict[str, Any]:
        """What ``daglake retry`` needs to run the same tasks the same way."""
        keep = ("select", "exclude", "workers", "full_refresh", "fail_fast", "deps_file", "engine", "target")
        chosen = {k: v for k, v in asdict(self).items() if k in keep}
        if self.deps_file:  # relative to where the run started, not to where retry is typed
            chosen["deps_file"] = str(Path(self.deps_file).absolute())
        return chosen


def _refuse_lake(project: Project, engine: str) -> None:
    """A project using lake tables cannot run on an engine without the lake (BigQuery until
    a GCS lake exists): refused before anything runs, one line per lake task."""
    if REGISTRY[engine].lake:
        return
    found = [
        Problem(task.path, 1, f"{task.outputs[0]} is a {task.zone} lake table; the {engine} engine has no data lake yet (run it on duckdb)")
        for task in project.tasks.values()
        if task.zone is not None
    ]
    if found:
        raise ValidationError(found)


class Session:
    """A loaded, validated project with its engine open: what ``validate``, ``run`` and
    ``retry`` share."""

    def __init__(self, path: str | Path, options: RunOptions, *, read_only: bool) -> None:
        self.options = options
        # the parse cache is written once: here when validation ends the work (``validate``, a
        # refused run), else by the run once its tasks are compiled
        self.project: Project = load_project(path, deps_file=options.deps_file, write_cache=False, progress=options.progress)
        self.dag: DAG[str] = DAG(self.project.dependencies())
        config = self.project.config
        self.engine: Engine | None = None
        try:
            settings = engine_settings(config, engine=options.engine, target=options.target)
            _refuse_lake(self.project, settings.engine)
            # validate through a read-only connection, so a refused run creates no warehouse
            writable = not read_only and engine_class(settings.engine).opening_creates_nothing(settings, self.project.root)
            self.engine = create_engine(settings, self.project.root, read_only=not writable, lazy=writable)
            self.existing = self.engine.existing_tables()
            if REGISTRY[settings.engine].lake:  # lake tables on disk exist on every lake engine, attached or not
                self.existing |= {t.qualified for t in lake_tables(self.project.root / config.lake_root) if t.exists()}
            found = problems(self.project, self.dag, self.existing, strict=options.strict)
            found.extend(self._missing_functions())
            if found:
                raise ValidationError(found)
            self.chosen = select(self.project, self.dag, options.select, options.exclude)
            not_built = missing_upstream(self.project, self.chosen, self.existing)
            if not_built:
                raise ValidationError(not_built)
        except BaseException:
            self.close()
            self.save_cache()
            raise
        if read_only:
            self.save_cache()
        elif not writable:
            self.close()
            self.engine = create_engine(settings, self.project.root, read_only=False, lazy=True)

    def _missing_functions(self) -> list[Problem]:
        """Functions the engine lacks; the translation this needs is cached for the run."""
        from daglake.engine_functions import missing_functions

        engine, project = _engine(self), self.project
        def statements(task: Task) -> list[Statement]:
            return compile_task(project, task, engine.dialect, self.options.progress, engine.name).statements

        return missing_functions(project, engine, statements)

    def save_cache(self) -> None:
        if self.project.cache is not None and not self.options.dry_run:
            self.project.cache.save()

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


def open_state(project: Project) -> StateStore:
    from daglake.state import StateStore, state_url

    return StateStore(state_url(project.root, project.config.state_url))


def run(
    path: str | Path = ".",
    options: RunOptions | None = None,
    observer: RunObserver | None = None,
    *,
    lock: RunLock | None = None,
) -> RunSummary:
    """Run the project's selected tasks; the summary says how each ended.

    ``lock`` is the project's run lock when the caller already took it (the API does, to
    answer at once whether the run starts); the run releases it when it ends."""
    options = options or RunOptions()
    observer = observer or RunObserver()
    summary = RunSummary(run_id=options.run_id or new_run_id(), project="", engine="")
    summary.logical_date, summary.dry_run = _logical_date(options.logical_date), options.dry_run
    if options.dry_run:
        if lock is not None:
            lock.release()  # a dry run writes nothing
        with Session(path, options, read_only=True) as session:
            chosen = _selected(session, summary)
            plan = _plan(session, chosen, _durations_if_any(session.project))
            for name in plan.order:
                summary.tasks[name] = _task_run(session.project, name)
            summary.estimate = _estimate(session, plan.order)
            observer.run_started(summary, plan)
            observer.run_finished(summary)
            return summary
    # the lock comes first: a refused run must not touch the warehouse another run is writing
    with lock or RunLock(_state_dir(path)) as held:
        if lock is None:
            held.acquire(summary.run_id)
        with Session(path, options, read_only=False) as session:
            chosen = _selected(session, summary)
            store = open_state(session.project)
            try:
                store.mark_dead_runs(summary.project, DEAD_RUN)
                plan = _plan(session, chosen, store.last_durations(summary.project))
                for name in plan.order:
                    summary.tasks[name] = _task_run(session.project, name)
                record = _record(summary, options)
                _execute(session, summary, plan, options, observer, store, record, resumed=False)
            finally:
                store.close()
    return summary


def _estimate(session: Session, order: list[str]) -> dict[str, Any] | None:
    """What each SQL task would scan, from the engine's dry run, when the engine can say: only
    tasks whose inputs exist (the others say so instead of guessing), the total and its cost."""
    engine, project = _engine(session), session.project
    price = engine.price_per_tib()
    if price is None:
        return None
    tasks: dict[str, dict[str, Any]] = {}
    for name in order:
        task = project.tasks[name]
        if task.kind != "sql" or task.check is not None:
            continue
        unbuilt = sorted({r.table for r in task.reads} - session.existing)
        if unbuilt:
            tasks[name] = {"bytes": None, "reason": f"reads tables not built yet: {', '.join(unbuilt)}"}
            continue
        try:
            scanned = engine.estimate(compile_task(project, task, engine.dialect).statements, task.path)
        except TaskError as exc:
            tasks[name] = {"bytes": None, "reason": f"{exc.location}: {exc.message}" if exc.location else exc.message}
            continue
        tasks[name] = {"bytes": scanned, "reason": None}
    total = sum(t["bytes"] or 0 for t in tasks.values())
    return {"tasks": tasks, "total_bytes": total, "price_per_tib": price, "cost": total / 2**40 * price}


def _task_run(project: Project, name: str) -> TaskRun:
    task = project.tasks[name]
    return TaskRun(name=name, path=task.path, kind=task.kind)


def _state_dir(path: str | Path) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{path}: not a folder")
    return root / ".daglake"


def _selected(session: Session, summary: RunSummary) -> set[str]:
    summary.project, summary.engine = session.project.config.name, _engine(session).name
    return session.chosen


def retry(
    path: str | Path = ".", run_id: str | None = None, observer: RunObserver | None = None
) -> RunSummary:
    """Finish an earlier run: redo only its tasks that failed, were blocked or never ran, with
    the same logical date and selection, in the same run record."""
    observer = observer or RunObserver()
    with RunLock(_state_dir(path)) as lock:
        lock.acquire(f"retry of {run_id or 'the latest run'}")
        project = load_project(path)
        store = open_state(project)
        try:
            store.mark_dead_runs(project.config.name, DEAD_RUN)
            record = store.get_run(run_id) if run_id else store.latest_run(project.config.name)
            if record is None:
                raise UsageError(f"no run {run_id} to retry" if run_id else "no run to retry yet")
            if record.project != project.config.name:
                raise UsageError(f"run {record.id} belongs to project {record.project}")
            options = RunOptions(**record.selection, logical_date=record.logical_date, trigger="retry")
            with Session(path, options, read_only=False) as session:
                previous = {t.name: t for t in store.task_runs(record.id)}
                chosen = session.chosen
                redo = {n for n in chosen if n not in previous or previous[n].state in REDO_STATES}
                summary = RunSummary(
                    run_id=record.id, project=record.project, engine=_engine(session).name
                )
                summary.logical_date = record.logical_date
                plan = _plan(session, redo, store.last_durations(project.config.name))
                for name in sorted(chosen - redo):
                    summary.tasks[name] = previous[name]
                for name in plan.order:
                    earlier = previous.get(name)
                    summary.tasks[name] = _task_run(session.project, name)
                    summary.tasks[name].attempts = list(earlier.attempts) if earlier else []
                _execute(session, summary, plan, options, observer, store, record, resumed=True)
        finally:
            store.close()
    return summary


def _engine(session: Session) -> Engine:
    assert session.engine is not None
    return session.engine


def _plan(session: Session, chosen: set[str], durations: dict[str, float]) -> Plan:
    dag = session.dag.subgraph(chosen)
    priority = dag.remaining_path(durations, default=_typical(durations))
    workers = session.options.workers or session.project.config.workers
    return Plan(order=_start_order(dag, priority), groups=dag.levels(), workers=workers, priority=priority)


def _execute(
    session: Session,
    summary: RunSummary,
    plan: Plan,
    options: RunOptions,
    observer: RunObserver,
    store: StateStore,
    record: RunRecord,
    *,
    resumed: bool,
) -> None:
    from daglake.state import StateRecorder

    project, engine = session.project, _engine(session)
    config = project.config
    chosen = set(plan.order)
    compiled = {name: compile_task(project, project.tasks[name], engine.dialect) for name in chosen}
    session.save_cache()
    plan.warnings = summary.warnings = [w for name in plan.order for w in compiled[name].warnings]
    lake_root = project.root / config.lake_root
    engine.attach_lake(lake_tables(lake_root))
    # every schema a task writes, lake zones included: creating one inside concurrent task
    # transactions is a write-write conflict in DuckDB
    engine.create_schemas({t.split(".")[0] for n in chosen for t in project.tasks[n].outputs if "." in t})
    engine.set_variables({"ds": dt.date.fromisoformat(summary.logical_date), "run_id": summary.run_id})
    from daglake.changes import BuildRecorder, decider_for, engine_key

    decider = decider_for(session, plan.order, store, summary.logical_date, summary.run_id, options)
    builds = BuildRecorder(store, project.config.name, engine_key(engine.settings), decider.decisions, summary.run_id)
    observers = Observers(StateRecorder(store, record, resumed=resumed), builds, observer)
    work = TaskExecutor(
        engine=engine,
        project=project,
        run_id=summary.run_id,
        logical_date=dt.date.fromisoformat(summary.logical_date),
        statements={name: c.statements for name, c in compiled.items()},
        existing=session.existing,
        full_refresh=options.full_refresh,
        previous_attempts={name: len(summary.tasks[name].attempts) for name in chosen},
        decide=decider,
    )
    started = time.perf_counter()
    observers.run_started(summary, plan)
    try:
        result = execute(
            session.dag.subgraph(chosen),
            work,
            workers=plan.workers,
            priority=plan.priority,
            fail_fast=options.fail_fast if options.fail_fast is not None else config.fail_fast,
            on_start=lambda name: _started(summary.tasks[name], observers, _will_skip(decider, name), engine),
            on_finish=lambda name, value, error: _finished(summary.tasks[name], value, error, observers),
            on_blocked=lambda name, cause: _blocked(summary.tasks[name], cause, observers),
            on_round=observers.settle,
            inline=lambda name: _will_skip(decider, name),
        )
        for name in result.not_started:
            task_run = summary.tasks[name]
            task_run.state, task_run.reason = NOT_STARTED, "the run stopped early (--fail-fast)"
            observers.task_finished(task_run)
        built = {n for n in result.succeeded if summary.tasks[n].state != SKIPPED}
        if built or not catalog_path(project.root / config.lake_root).is_file():  # nothing rebuilt: nothing to describe
            update_catalog(project, engine.table_info, summary.run_id, built, engine.lake_columns, engine.parquet_rows)
        prune_logs(project.root)
    finally:
        summary.duration = time.perf_counter() - started
        observers.run_finished(summary)
        from daglake.orchestration.alerts import dispatch

        dispatch(project.root, config.alerts, summary, options.trigger)


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


@dataclass
class CompiledTask:
    statements: list[Statement]
    warnings: list[str]  # ``path:line: what differs on this engine``


def compile_task(
    project: Project, task: Task, dialect: str, progress: Progress | None = None, engine: str | None = None
) -> CompiledTask:
    """The task's statements in the engine's dialect, from the cache when the file is unchanged;
    ``progress`` hears of a translation that takes long."""
    if task.kind == "python" or task.check is not None:  # a check's query is built when it runs
        return CompiledTask([], [])
    cache = project.cache
    cached = cache.get_sql(task.cache_key, dialect) if cache is not None else None
    if cached is None:
        from daglake.sql.parse import parse_file
        from daglake.sql.quiet import collector_paused
        from daglake.sql.translate import translate_task

        with collector_paused(), said_if_slow(progress, f"translating {task.path} for {engine or dialect}…"):
            parsed = task.parsed or parse_file(task.text, project.config.dialect)
            task.parsed = None  # consumed by the translation
            cached = translate_task(parsed, project.config.dialect, dialect, task.default_output(project.root), consume=True)
        if cache is not None:
            cache.put_sql(task.cache_key, dialect, *cached)
    statements, warnings = cached
    return CompiledTask(statements, [f"{task.path}:{line}: {message}" for line, message in warnings])


def _will_skip(decide: Callable[[str], Decision], name: str) -> bool:
    try:
        return decide(name).action == SKIP
    except Exception:  # the task's executor decides again, and fails the task with it
        return False


def _started(task_run: TaskRun, observer: RunObserver, skipped: bool, engine: Engine) -> None:
    """A task that will be skipped does nothing between its start and its end: it is reported
    once, when it ends (one state write instead of two; an unchanged run of 1,000 tasks spent
    a fifth of its time committing starts)."""
    task_run.started_at = time.time()
    if skipped:
        return
    engine.open()  # a lazy warehouse, on the scheduling thread: busy is one line, not a task's error
    task_run.state = RUNNING
    observer.task_started(task_run)


def _finished(
    task_run: TaskRun, value: object, error: BaseException | None, observer: RunObserver
) -> None:
    assert task_run.started_at is not None
    task_run.duration = time.time() - task_run.started_at
    if isinstance(error, Failed):
        task_run.attempts.extend(error.attempts)
        task_run.check = error.attempts[-1].check
        task_run.state = FAILED
        task_run.error, task_run.location = error.attempts[-1].error, error.attempts[-1].location
    elif error is not None:
        task_run.state = FAILED
        task_run.error, task_run.location = f"{type(error).__name__}: {error}", task_run.path
    elif isinstance(value, Done):
        task_run.attempts.extend(value.attempts)
        task_run.check = value.attempts[-1].check if value.attempts else None
        if value.skipped is not None:
            task_run.state, task_run.reason = SKIPPED, value.skipped
        else:
            task_run.state, task_run.rows = SUCCESS, value.rows
            task_run.error = task_run.location = None
            task_run.metrics = value.metrics
            if task_run.check is not None and not task_run.check["passed"]:
                task_run.state = WARNED
                failing = task_run.check["error"] or f"{task_run.check['failing']} failing"
                task_run.reason = f"warning: {failing}"
    observer.task_finished(task_run)


def _blocked(task_run: TaskRun, cause: str, observer: RunObserver) -> None:
    task_run.state, task_run.reason = UPSTREAM_FAILED, f"upstream task {cause} failed"
    observer.task_finished(task_run)


def _record(summary: RunSummary, options: RunOptions) -> RunRecord:
    from daglake.state import RunRecord

    return RunRecord(
        id=summary.run_id,
        project=summary.project,
        logical_date=summary.logical_date,
        selection=options.selection(),
        state=RUNNING,
        trigger=options.trigger,
    )


def _logical_date(value: str | None) -> str:
    if value is None:
        return dt.date.today().isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"--date {value!r} is not a date in the form YYYY-MM-DD") from None


def _durations_if_any(project: Project) -> dict[str, float]:
    """History for a dry run's plan, without creating a state database that is not there."""
    from daglake.state.store import STATE_FILE, STATE_URL_ENV

    configured = os.environ.get(STATE_URL_ENV) or project.config.state_url
    if not configured and not (project.state_dir / STATE_FILE).exists():
        return {}
    store = open_state(project)
    try:
        return store.last_durations(project.config.name)
    finally:
        store.close()


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _typical(durations: dict[str, float]) -> float:
    if not durations:
        return 1.0
    values = sorted(durations.values())
    return values[len(values) // 2]


__all__ = ["RunOptions", "Session", "retry", "run", "validate"]
