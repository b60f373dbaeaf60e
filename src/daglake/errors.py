"""One exception tree: user mistakes carry a location; the CLI and API render them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_LISTED = 50


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a project, rendered as ``path:line: message``."""

    path: str
    line: int
    message: str
    column: int = 0

    def __str__(self) -> str:
        where = self.path
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "column": self.column, "message": self.message}


class DaglakeError(Exception):
    """Root of every error daglake raises on purpose."""

    exit_code = 1
    code = "error"

    def as_dict(self) -> dict[str, object]:
        """The error as the CLI's ``--json`` and the API render it."""
        return {"error": {"code": self.code, "message": str(self)}}


class UsageError(DaglakeError):
    """The command line asked for something that cannot be done (exit 2)."""

    exit_code = 2
    code = "usage"


class WarehouseBusy(UsageError):
    """Another process keeps the warehouse (a file only one process may write) past the wait."""


class ProjectError(DaglakeError):
    """A user mistake in the project, located in a file."""

    exit_code = 2
    code = "invalid_project"

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class ValidationError(DaglakeError):
    """Every problem found in a project, raised once after collecting them all."""

    exit_code = 2
    code = "invalid_project"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__(self.render())

    def as_dict(self) -> dict[str, object]:
        count = len(self.problems)
        return {
            "error": {
                "code": self.code,
                "message": f"{count} problem{'s' if count != 1 else ''} found",
                "problems": [p.as_dict() for p in self.problems],
            }
        }

    def render(self) -> str:
        lines = [str(p) for p in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"… and {len(self.problems) - MAX_LISTED} more")
        return "\n".join(lines)


class RunInProgressError(DaglakeError):
    """Another run holds the project's lock; ``run_id`` and ``pid`` name it when known."""

    exit_code = 2
    code = "run_in_progress"

    def __init__(self, message: str, run_id: str | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.pid = pid

    def as_dict(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": str(self), "run_id": self.run_id, "pid": self.pid}}


class TaskError(DaglakeError):
    """A task failed at run time: the engine's own message, where in the project (``path``,
    ``line``, ``column`` of the failing statement or of the engine's position in it), the
    engine's job id where there is one, and ``subject``, the name the engine complains about
    (a missing column or table), so the line that names it can be found in the user's file."""

    code = "task_failed"

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        *,
        job_id: str | None = None,
        subject: str | None = None,
    ) -> None:
        self.message, self.path, self.line, self.column = message, path, line, column
        self.job_id, self.subject = job_id, subject
        super().__init__(f"{self.location}: {message}" if self.location else message)

    @property
    def location(self) -> str | None:
        """``path:line`` (``path:line:column`` when the engine gave the column) as the CLI, the
        logs and the run history show it."""
        if self.path is None:
            return None
        if not self.line:
            return self.path
        return f"{self.path}:{self.line}:{self.column}" if self.column else f"{self.path}:{self.line}"

    def as_dict(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message, "path": self.path, "line": self.line}
        if self.column:
            error["column"] = self.column
        if self.job_id:
            error["job_id"] = self.job_id
        return {"error": error}



class AuditFailed(TaskError):
    """A table's new version failed an error-severity check before it was published: the
    previous version stays and the new one is kept as the table's candidate."""

    code = "audit_failed"

    def __init__(self, message: str, path: str | None = None, *, checks: list[str] | None = None) -> None:
        super().__init__(message, path)
        self.checks = checks or []  # the check tasks that judged the new version

class EnvironmentProblem(DaglakeError):
    """The machine refused: a file or folder daglake may not read or write, a full disk, a
    read-only database. Exit 2 when the project cannot be read at all, 1 when a run fails."""

    code = "environment"

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_DATABASE_ERRORS = {  # module of the class -> what the database is to a user
    "sqlite3": "state database",
    "sqlalchemy.exc": "state database",
    "_duckdb": "warehouse",
    "duckdb": "warehouse",
}
_DUCKDB_ENVIRONMENT = ("IOException", "PermissionException", "OutOfMemoryException")


def environment_error(exc: BaseException) -> EnvironmentProblem | None:
    """``exc`` as one line when the machine, not daglake, refused (decided from the exception's
    class, without importing database drivers); None for anything else, a bug to show whole."""
    if isinstance(exc, OSError):
        from daglake.files import os_reason

        where = f"{exc.filename}: " if exc.filename else ""
        return EnvironmentProblem(f"{where}{os_reason(exc)}", 2 if isinstance(exc, PermissionError) else 1)
    for kind in type(exc).__mro__:
        what = _DATABASE_ERRORS.get(kind.__module__)
        if what is None:
            continue
        if what == "warehouse" and not any(k.__name__ in _DUCKDB_ENVIRONMENT for k in type(exc).__mro__):
            return None
        if what == "state database" and "OperationalError" not in {k.__name__ for k in type(exc).__mro__}:
            return None
        cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
        message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return EnvironmentProblem(f"{what}: {message}")
    return None
