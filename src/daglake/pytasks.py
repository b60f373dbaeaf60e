"""Python tasks: ``@daglake.task("staging.x", inputs=[...])`` on ``def x(ctx)``.

Discovery imports each project ``.py`` file whose syntax tree imports daglake (a mere mention in
a comment is not enough: other files are never executed), once, and reads the tables a task
uses from its source (``ctx.table("raw.y")``, ``ctx.sql("... FROM raw.y")``) in addition to the
declared ``inputs``; import errors (``SystemExit`` too) are reported as ``path:line``. What a
task returns is checked before anything is written (:func:`materialize_result`).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from daglake.errors import Problem, TaskError
from daglake.files import UnreadableFile, read_project_file

if TYPE_CHECKING:
    from daglake.context import TaskContext
    from daglake.engines.base import Output, PythonSession

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
    if callable(outputs):
        raise TypeError("@daglake.task needs the table it produces, e.g. @daglake.task('staging.x') (not a bare @daglake.task)")
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
    """Import one project file and return its tasks; a failing import becomes a Problem.

    Only a file whose syntax tree imports daglake is imported (decided before running any of
    it); a file that does not parse is reported when one of its lines imports daglake."""
    path = root / relative
    try:
        source = read_project_file(path, relative, python=True)
    except UnreadableFile as exc:
        problems.append(exc.problem)
        return []
    if "daglake" not in source:
        return []
    try:
        tree = ast.parse(source, relative)
    except SyntaxError as exc:
        if _IMPORT_LINE.search(source):
            problems.append(Problem(relative, exc.lineno or 0, f"Python syntax error: {exc.msg}", exc.offset or 0))
        return []
    if not imports_daglake(tree):
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
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a module that exits at import is a mistake
        sys.modules.pop(module_name, None)
        problem = _import_problem(exc, root, relative)
        if problem not in problems:  # a helper imported by several task files fails once
            problems.append(problem)
        return []
    finally:
        if added:
            sys.path.remove(str(root.resolve()))
    found = []
    for function in list(vars(module).values()):
        if not _is_task_of(function, module_name):
            continue
        task_spec = getattr(function, MARKER)
        line = _def_line(function)
        wrong = _name_problem(task_spec.outputs) or _signature_problem(function, task_spec.outputs[0])
        if wrong:
            problems.append(Problem(relative, line, wrong))
            continue
        reads = {name: line for name in task_spec.inputs}
        for name, read_line in _reads_in_source(function, source).items():
            reads.setdefault(name, read_line)
        for output in task_spec.outputs:
            reads.pop(output, None)
        found.append(FoundTask(task_spec, function, relative, line, reads))
    return found


def _is_task_of(value: object, module_name: str) -> bool:
    """A ``@daglake.task`` function defined in this module (not one it imported); any object a
    module holds is asked, and a proxy whose attributes raise is no task."""
    try:
        spec = getattr(value, MARKER, None)
        return isinstance(spec, PythonTaskSpec) and getattr(value, "__module__", None) == module_name
    except Exception:
        return False


def _def_line(function: Callable[..., Any]) -> int:
    """The line of ``def`` itself, below the decorators, where messages about a task point."""
    try:
        lines, start = inspect.getsourcelines(function)
    except (OSError, TypeError):  # no source to read: the code object still knows its line
        return int(getattr(getattr(function, "__code__", None), "co_firstlineno", 0))
    found = next((i for i, text in enumerate(lines) if _DEF.match(text)), 0)
    return start + found


_DEF = re.compile(r"[ \t]*(?:async[ \t]+)?def\b")
# a line importing daglake, for a file whose syntax tree cannot be had
_IMPORT_LINE = re.compile(r"^[ \t]*(?:import[ \t][^#\n]*\bdaglake\b|from[ \t]+daglake\b)", re.MULTILINE)


def imports_daglake(tree: ast.AST) -> bool:
    """``import daglake``, ``import daglake.x``, ``from daglake import task`` anywhere."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(_is_daglake(alias.name) for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level and _is_daglake(node.module or ""):
            return True
    return False


def _is_daglake(module: str) -> bool:
    return module == "daglake" or module.startswith("daglake.")


def _import_problem(exc: BaseException, root: Path, relative: str) -> Problem:
    """Where an import failed: the deepest frame in a file of the project (the task file, or a
    module of the project it imports), else the task file with no line."""
    if isinstance(exc, SyntaxError) and exc.filename:  # a project module it imports
        where = _project_path(exc.filename, root) or relative
        return Problem(where, exc.lineno or 0, f"Python syntax error: {exc.msg}", exc.offset or 0)
    where, line = relative, 0
    for frame in traceback.extract_tb(exc.__traceback__):
        shown = _project_path(frame.filename, root)
        if shown is not None:
            where, line = shown, frame.lineno or 0
    if isinstance(exc, SystemExit):
        code = "" if exc.code is None else f"({exc.code!r})"
        message = f"cannot import: it calls sys.exit{code} at import (put that under `if __name__ == \"__main__\":`)"
    else:
        message = f"cannot import: {type(exc).__name__}: {exc}"
    return Problem(where, line, message)


def _project_path(filename: str, root: Path) -> str | None:
    """``filename`` relative to the project, None outside it or in a hidden folder (a venv)."""
    if not os.path.isabs(filename):  # "<frozen os>", "<string>"
        return None
    try:
        relative = Path(os.path.realpath(filename)).relative_to(os.path.realpath(root))
    except ValueError:
        return None
    if any(part.startswith(".") for part in relative.parts):
        return None
    return relative.as_posix()


_TABLE = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")


def _name_problem(outputs: tuple[str, ...]) -> str | None:
    """Outputs are ``dataset.table``, as a SQL task's are (a bare name, or three parts, would
    land in DuckDB's ``main`` or fail at run time with the engine's words)."""
    wrong = [name for name in outputs if not _TABLE.fullmatch(name)]
    if not wrong:
        return None
    return (
        f"{', '.join(repr(n) for n in wrong)} is not a table name: a task's outputs are dataset.table "
        "(letters, digits and _, not starting with a digit), e.g. @daglake.task('staging.orders')"
    )


def _signature_problem(function: Callable[..., Any], table: str) -> str | None:
    """A task is called with one argument, the context; say so at its ``def`` line."""
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return f"task {table} is an async def: daglake calls it as a plain function (def, not async def)"
    if inspect.isgeneratorfunction(function):
        return f"task {table} yields: return one table, or ctx.write(..., append=True) each batch"
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        return f"task {table} must take one argument, the context: def {function.__name__}(ctx)"
    except ValueError:  # no signature to read (a builtin): let the call tell
        return None
    return None


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


# what a task may return or ctx.write: the type's top-level package and the class name (so
# pandas and polars are not imported unless the value is one of theirs)
_TABLE_TYPES = {
    "pyarrow": ("Table", "RecordBatchReader"),
    "pandas": ("DataFrame",),
    "polars": ("DataFrame",),
    "duckdb": ("DuckDBPyRelation",),
    "_duckdb": ("DuckDBPyRelation",),
    "pyspark": ("DataFrame",),
}
TABLE_KINDS = "a table (pyarrow, pandas, polars, a relation)"


def is_table(value: object) -> bool:
    """Whether ``value`` is data an engine can write: Arrow, pandas, polars, an engine's relation."""
    for kind in type(value).__mro__:
        if kind.__name__ in _TABLE_TYPES.get(kind.__module__.partition(".")[0], ()):
            return True
    return False


def materialize_result(
    value: object,
    ctx: TaskContext,
    session: PythonSession,
    outputs: list[Output],
    existing: set[str],
    where: tuple[str, int],
) -> int | None:
    """Write what the task returned to its first output, after checking it is a table; then
    make sure every declared output was written (or already exists, an incremental task with
    nothing new). ``where``: the task's file and ``def`` line, for the error."""
    rows = None
    if value is not None:
        if isinstance(value, str):
            raise TaskError(
                f"task {ctx.task} returned a str, which is not run as SQL: return ctx.sql(query), "
                f"{TABLE_KINDS} or None after ctx.write",
                *where,
            )
        if not is_table(value):
            raise TaskError(
                f"task {ctx.task} returned {type(value).__name__}; return {TABLE_KINDS} or None after ctx.write",
                *where,
            )
        rows = session.write(outputs[0], value)
        ctx.written.add(outputs[0].table)
    missing = [o.table for o in outputs if o.table not in ctx.written and not _exists(o, session, existing)]
    if missing:
        named, first = ", ".join(missing), missing[0]
        if value is None:
            message = f"task {ctx.task} returned None without writing {named}: return its table, or ctx.write({first!r}, data)"
        else:
            message = (
                f"task {ctx.task} did not write {named}: what it returns goes to {outputs[0].table}, "
                f"the other outputs need ctx.write({first!r}, data)"
            )
        raise TaskError(message, *where)
    return rows


def _exists(output: Output, session: PythonSession, existing: set[str]) -> bool:
    """An output not written this time is fine when it is there already (kept as it was) or is
    a quarantine table (written only when records are rejected)."""
    if output.table.partition(".")[0] == "quarantine":
        return True
    if output.lake is not None:
        return output.lake.exists()
    seen = session.has_table(output)
    return seen if seen is not None else output.table in existing
