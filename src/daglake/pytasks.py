"""Python tasks: ``@daglake.task("staging.x", inputs=[...])`` on ``def x(ctx)``.

Discovery imports each project ``.py`` file that mentions daglake, once, and reads the tables a
task uses from its source (``ctx.table("raw.y")``, ``ctx.sql("... FROM raw.y")``) in addition
to the declared ``inputs``; import errors are reported as ``path:line``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from daglake.errors import Problem
from daglake.files import UnreadableFile, read_project_file

F = TypeVar("F", bound=Callable[..., Any])
MARKER = "__daglake_task__"


@dataclass(frozen=True)
class PythonTaskSpec:
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    retries: int | None = None
    retry_delay: float | None = None
    partition_by: tuple[str, ...] = ()
    zone: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class FoundTask:
    spec: PythonTaskSpec
    function: Callable[..., Any]
    path: str
    line: int
    reads: dict[str, int] = field(default_factory=dict)  # table -> line


def task(
    outputs: str | Iterable[str],
    *,
    inputs: Iterable[str] = (),
    retries: int | None = None,
    retry_delay: float | None = None,
    partition_by: Iterable[str] = (),
    zone: str | None = None,
    tags: Iterable[str] = (),
) -> Callable[[F], F]:
    """Declare a Python task producing ``outputs`` (a table name or a list of them).

    ``zone`` puts the outputs in the lake (``"curated"``: ``curated.x`` is Parquet under
    ``lake/curated/x``), partitioned by ``partition_by``. The function takes one argument, the
    :class:`~daglake.context.TaskContext`, and returns the data to write (Arrow, pandas, polars,
    a DuckDB relation) or None when it wrote its outputs itself through the context.
    """
    names = (outputs,) if isinstance(outputs, str) else tuple(outputs)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError("@daglake.task needs the table it produces, e.g. @daglake.task('staging.x')")
    if zone is not None:
        names = tuple(n if "." in n else f"{zone}.{n}" for n in names)
        wrong = [n for n in names if n.split(".")[0] not in (zone, "quarantine")]
        if wrong:
            raise TypeError(
                f"outputs of a task in zone {zone!r} must be {zone}.<table> (or quarantine.<table>): "
                + ", ".join(wrong)
            )
    spec = PythonTaskSpec(
        outputs=tuple(n.lower() for n in names),
        inputs=tuple(i.lower() for i in inputs),
        retries=retries,
        retry_delay=retry_delay,
        partition_by=tuple(partition_by),
        zone=zone,
        tags=tuple(tags),
    )

    def register(function: F) -> F:
        if not callable(function):
            raise TypeError("@daglake.task decorates a function")
        setattr(function, MARKER, spec)
        return function

    return register


def discover(root: Path, relative: str, problems: list[Problem]) -> list[FoundTask]:
    """Import one project file and return its tasks; a failing import becomes a Problem."""
    path = root / relative
    try:
        source = read_project_file(path, relative, python=True)
    except UnreadableFile as exc:
        problems.append(exc.problem)
        return []
    if "daglake" not in source:
        return []
    module_name = "daglake_project." + relative[:-3].replace("/", ".").replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        return []
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    added = str(root.resolve()) not in sys.path
    if added:
        sys.path.insert(0, str(root.resolve()))  # so tasks can import the project's own modules
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        problems.append(Problem(relative, exc.lineno or 0, f"Python syntax error: {exc.msg}", exc.offset or 0))
        return []
    except Exception as exc:
        problems.append(Problem(relative, _line_in(exc, path), f"cannot import: {type(exc).__name__}: {exc}"))
        return []
    finally:
        if added:
            sys.path.remove(str(root.resolve()))
    found = []
    for function in vars(module).values():
        task_spec = getattr(function, MARKER, None)
        if not isinstance(task_spec, PythonTaskSpec) or getattr(function, "__module__", None) != module_name:
            continue
        line = inspect.getsourcelines(function)[1]
        reads = {name: line for name in task_spec.inputs}
        for name, read_line in _reads_in_source(function, source).items():
            reads.setdefault(name, read_line)
        for output in task_spec.outputs:
            reads.pop(output, None)
        found.append(FoundTask(task_spec, function, relative, line, reads))
    return found


def _line_in(exc: BaseException, path: Path) -> int:
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno or 0
    return line


def _reads_in_source(function: Callable[..., Any], source: str) -> dict[str, int]:
    """Tables named in ``ctx.table("x")`` / ``ctx.sql("...")`` calls with literal arguments."""
    try:
        lines, start = inspect.getsourcelines(function)
        tree = ast.parse("".join(lines).lstrip() if lines[0].startswith((" ", "\t")) else "".join(lines))
    except (OSError, SyntaxError):
        return {}
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        argument = node.args[0]
        if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
            continue
        line = start + node.lineno - 1
        if node.func.attr == "table":
            found.setdefault(argument.value.lower(), line)
        elif node.func.attr == "sql":
            for name in _tables_in_sql(argument.value):
                found.setdefault(name, line)
    return found


def _tables_in_sql(sql: str) -> list[str]:
    from daglake.sql.analysis import analyze

    analysis, _ = analyze(sql, "duckdb", "main._query")
    return [] if analysis.errors else list(analysis.reads)
