"""Running one task on an engine: its kind, its attempts and retries, its log, its errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.config import retry_policy
from daglake.context import LakePaths, TaskContext
from daglake.engines.base import Audit, Engine, Fetch, Output, PythonSession, Statement
from daglake.errors import AuditFailed, TaskError
from daglake.events import FAILED, SUCCESS, Attempt
from daglake.lake.tables import lake_table
from daglake.logs import TaskLog, log_path
from daglake.project import Project, Task

if TYPE_CHECKING:
    from collections.abc import Callable

    from daglake.checks import CheckResult, CheckSpec
    from daglake.fingerprint import Decision
    from daglake.graph.dag import DAG

INJECT_FAILURES_ENV = "DAGLAKE_INJECT_FAILURES"  # test hook: "task=N,..." fails N attempts


@dataclass
class Done:
    rows: int | None
    attempts: list[Attempt]
    skipped: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class Failed(Exception):
    """A task's last attempt failed; carries every attempt for the run record. ``released``:
    the check tasks that judged its refused new version, which still run to report it."""

    def __init__(self, cause: BaseException, attempts: list[Attempt]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.attempts = attempts
        self.released = tuple(cause.checks) if isinstance(cause, AuditFailed) else ()


@dataclass
class TaskExecutor:
    """Called by the scheduler with a task name, on a worker thread."""

    engine: Engine
    project: Project
    run_id: str
    logical_date: dt.date
    statements: dict[str, list[Statement]]
    existing: set[str]
    full_refresh: bool
    previous_attempts: dict[str, int]
    faults: _Faults = field(default_factory=lambda: _Faults(os.environ.get(INJECT_FAILURES_ENV, "")))
    decide: Callable[[str], Decision] | None = None  # run or skip: only what changed runs (SPEC §4)
    _audited: dict[str, CheckResult] = field(default_factory=dict)  # check task -> its audit's result
    _audited_lock: threading.Lock = field(default_factory=threading.Lock)
    _specs: dict[str, list[CheckSpec]] | None = None
    _upstream: DAG[str] | None = None

    def __call__(self, name: str) -> Done:
        task = self.project.tasks[name]
        decision = self.decide(name) if self.decide is not None else None
        if decision is not None and decision.action == "skip":
            return Done(None, [], skipped=decision.reason)
        if task.is_seed and not self.full_refresh and all(o in self.existing for o in task.outputs):
            return Done(None, [], skipped="seed tables exist (use --full-refresh to reload)")
        policy = retry_policy(self.project.config, task.settings)
        first = self.previous_attempts.get(name, 0) + 1
        last = first + policy.retries
        attempts: list[Attempt] = []
        for number in range(first, last + 1):
            attempt = Attempt(number=number, started_at=time.time())
            attempts.append(attempt)
            path = log_path(self.project.root, self.run_id, task.name, number)
            attempt.log_path = str(path.relative_to(self.project.root))
            log = TaskLog(path, f"task {task.name} ({task.path}), run {self.run_id}, attempt {number}")
            metrics: dict[str, Any] = {}
            try:
                self.faults.check(task.name, self.logical_date.isoformat())
                rows = self._attempt(task, log, metrics, attempt)
            except (Exception, SystemExit) as exc:  # sys.exit() in a Python task fails it, at its line
                attempt.state = FAILED
                attempt.duration = time.time() - attempt.started_at
                attempt.error, attempt.location = describe_error(exc, task, self.project.root)
                job = exc.job_id if isinstance(exc, TaskError) else None
                if job and job not in attempt.job_ids:
                    attempt.job_ids.append(job)
                log.close(f"failed after {attempt.duration:.3f} s: {attempt.location}: {attempt.error}")
                if number == last or isinstance(exc, AuditFailed):  # the same rows fail again
                    raise Failed(exc, attempts) from exc
                time.sleep(policy.wait(number - first + 1, random.random()))
                continue
            attempt.state, attempt.rows = SUCCESS, rows
            attempt.duration = time.time() - attempt.started_at
            written = "" if rows is None else f", {rows} rows"
            log.close(f"succeeded in {attempt.duration:.3f} s{written}")
            return Done(rows, attempts, metrics=metrics)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, task: Task, log: TaskLog, metrics: dict[str, Any], attempt: Attempt) -> int | None:
        if task.check is not None:
            self._check(task.check, log, attempt)
            return None
        outputs = [self.output(task, table) for table in task.outputs]
        audit = self._auditor(task, log)
        if task.kind == "python":
            assert task.function is not None
            with self.engine.python_session(outputs, task.path, attempt.job_ids, audit) as session:
                from daglake.pytasks import materialize_result

                context = self._context(task, session, outputs, log, metrics)
                value = task.function(context)
                where = (task.path, task.analysis.output_lines.get(task.outputs[0], 0))
                return materialize_result(value, context, session, outputs, self.existing, where)
        statements = self.statements[task.name]
        return self.engine.run_statements(
            statements, {o.table: o for o in outputs}, task.path, log, attempt.job_ids, audit
        )

    def _auditor(self, task: Task, log: TaskLog) -> Audit | None:
        """The task's outputs' error-severity checks, run on their new versions before they are
        published (SPEC §4, audit before publish); their results stand for the check tasks."""
        specs = [spec for table in task.outputs for spec in self._audits().get(table, [])]
        if not specs or not self._before_publish(task, specs):
            return None

        def audit(fetch: Fetch, names: Mapping[str, str]) -> None:
            from daglake.checks import run_check

            now = dt.datetime.now(dt.UTC)
            refused = []
            for spec in specs:
                result = run_check(spec, fetch, self.engine.dialect, now=now, tables=names)
                log(f"-- audit {spec.name}: " + (result.error or f"{result.failing} failing"))
                with self._audited_lock:
                    self._audited[spec.name] = result
                if result.blocks:
                    refused.append((spec, result))
            if refused and not all(r.table in names for _, r in refused):
                raise AuditFailed(
                    f"a check failed on the new version, which {self.engine.name} could not hold back "
                    f"(it was written by the task's own statements or a load): {_failures(refused)}",
                    task.path,
                    checks=[spec.name for spec in specs],
                )
            if refused:
                tables = ", ".join(sorted({r.table for _, r in refused}))
                raise AuditFailed(
                    f"not published, a check failed on the new version ({_failures(refused)}); {tables} keeps its "
                    f"previous version (daglake show {refused[0][1].table} --candidate shows the new rows)",
                    task.path,
                    checks=[spec.name for spec in specs],
                )

        return audit

    def _audits(self) -> dict[str, list[CheckSpec]]:
        """Error-severity checks by the table they check (worked out once per run)."""
        if self._specs is None:
            found: dict[str, list[CheckSpec]] = {}
            for t in self.project.tasks.values():
                if t.check is not None and t.check.severity == "error":
                    found.setdefault(t.check.table, []).append(t.check)
            self._specs = found
        return self._specs

    def _before_publish(self, task: Task, specs: list[CheckSpec]) -> bool:
        """Checks that also read other tables (relationships, reconcile) can run before
        publishing only when those tables are built before the task: sources, or upstream."""
        others = {
            self.project.producers[table]
            for spec in specs
            for table in spec.reads
            if table != spec.table and table in self.project.producers
        }
        if not others:
            return True
        from daglake.graph.dag import DAG

        with self._audited_lock:
            if self._upstream is None:
                self._upstream = DAG({n: self.project.upstream(t) for n, t in self.project.tasks.items()})
            upstream = self._upstream
        return others <= upstream.ancestors(task.name)

    def _check(self, spec: CheckSpec, log: TaskLog, attempt: Attempt) -> None:
        """A failed error-severity check fails the task (blocking what reads the table); a
        failed warning succeeds with its result recorded."""
        from daglake.checks import check_sql, run_check

        with self._audited_lock:
            audited = self._audited.pop(spec.name, None)
        now = dt.datetime.now(dt.UTC)
        if audited is not None:
            log(f"-- {spec.path}:{spec.line}: checked on the new version before it was published")
            result = audited
        else:
            with contextlib.suppress(Exception):  # the check reports its own build errors
                log(f"-- {spec.path}:{spec.line}\n{check_sql(spec, self.engine.dialect, now=now)};")
            result = run_check(spec, lambda sql: self.engine.fetch(sql), self.engine.dialect, now=now)
        attempt.check = result.as_dict()
        if result.error:
            log(f"-- could not run: {result.error}")
        else:
            log(f"-- {result.failing} failing" + "".join(f"\n{row}" for row in result.sample))
        if result.blocks:
            detail = result.error or f"{result.failing} failing row{'s' if result.failing != 1 else ''}"
            raise TaskError(f"check failed: {detail}", spec.path, spec.line)

    def output(self, task: Task, table: str) -> Output:
        if task.zone is None:
            return Output(table)
        return Output(table, lake_table(self.lake_root, table), tuple(task.partition_by))

    @property
    def lake_root(self) -> Path:
        return self.project.root / self.project.config.lake_root

    def _context(
        self, task: Task, session: PythonSession, outputs: list[Output], log: TaskLog, metrics: dict[str, Any]
    ) -> TaskContext:
        logger = logging.Logger(f"daglake.task.{task.name}")  # not registered: one per attempt
        logger.addHandler(_TaskLogHandler(log))
        logger.setLevel(logging.INFO)
        return TaskContext(
            task=task.name,
            outputs=list(task.outputs),
            run_id=self.run_id,
            logical_date=self.logical_date,
            project_root=self.project.root,
            lake=LakePaths(self.lake_root),
            log=logger,
            session=session,
            targets={o.table: o for o in outputs},
            dialect=self.project.config.dialect,
            engine_dialect=self.engine.dialect,
            metrics=metrics,
            full_refresh=self.full_refresh,
        )


def _failures(refused: list[tuple[CheckSpec, CheckResult]]) -> str:
    return "; ".join(
        f"{spec.name} ({spec.path}:{spec.line}): "
        f"{r.error or str(r.failing) + ' failing row' + ('s' if r.failing != 1 else '')}"
        for spec, r in refused
    )


class _TaskLogHandler(logging.Handler):
    def __init__(self, log: TaskLog) -> None:
        super().__init__()
        self.log = log
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.log(self.format(record))


class _Faults:
    """``DAGLAKE_INJECT_FAILURES="tmp.a=2"`` fails the first two attempts of tmp.a in each run,
    ``"tmp.a@2026-03-01=1"`` only in runs of that logical date (tests only)."""

    def __init__(self, spec: str) -> None:
        self._left: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, count = item.partition("=")
            self._left[name.strip()] = int(count or 1)
        self._lock = threading.Lock()

    def check(self, task: str, logical_date: str) -> None:
        if not self._left:
            return
        with self._lock:
            key = next((k for k in (f"{task}@{logical_date}", task) if self._left.get(k, 0) > 0), None)
            if key is None:
                return
            self._left[key] -= 1
        raise TaskError(f"injected failure ({INJECT_FAILURES_ENV})")


def describe_error(error: BaseException, task: Task, root: Path) -> tuple[str, str]:
    """The message and ``path:line`` an attempt records: for a Python task the deepest line of
    its own file in the traceback, for SQL the line naming what the engine complains about."""
    if task.kind == "python":
        cause = error.__cause__ if isinstance(error, TaskError) and error.__cause__ else error
        message = error.message if isinstance(error, TaskError) else f"{type(error).__name__}: {error}"
        if isinstance(error, SystemExit):
            code = "" if error.code is None else f"({error.code!r})"
            message = f"the task called sys.exit{code}: raise an exception to fail a task"
        line = _traceback_line(cause, root / task.path)
        if not line and isinstance(error, TaskError) and error.path == task.path:
            line = error.line or 0  # daglake's own finding about the task (e.g. its return value)
        return message, f"{task.path}:{line}" if line else task.path
    if not isinstance(error, TaskError):
        return f"{type(error).__name__}: {error}", task.path
    if error.path == task.path and error.line and error.subject:
        return error.message, f"{task.path}:{_line_naming(task, error.subject, error.line)}"
    return error.message, error.location or task.path


def _traceback_line(exc: BaseException, source: Path) -> int:
    """The deepest line of ``source`` in ``exc``'s traceback, 0 when it is not there."""
    wanted = os.path.realpath(source)
    line = 0
    traceback = exc.__traceback__
    while traceback is not None:
        if os.path.realpath(traceback.tb_frame.f_code.co_filename) == wanted:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _line_naming(task: Task, name: str, first: int) -> int:
    """The first line of the statement starting at ``first`` that names ``name`` (outside a
    comment): engines report positions in translated SQL; the name is in the user's file."""
    starts = sorted(line for line, _ in task.analysis.statements)
    end = next((line for line in starts if line > first), None)
    word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", re.IGNORECASE)
    lines = task.text.splitlines()
    for number in range(first, (end or len(lines) + 1)):
        if number - 1 < len(lines) and word.search(lines[number - 1].split("--")[0]):
            return number
    return first
