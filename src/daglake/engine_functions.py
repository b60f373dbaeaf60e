"""Functions a project calls that its engine lacks, found at validation (from the translated
SQL, which is cached for the run) rather than by a failing run."""

from __future__ import annotations

import re
from collections.abc import Callable

from daglake.engines.base import Engine, Statement
from daglake.errors import Problem
from daglake.project import Project, Task


def missing_functions(
    project: Project, engine: Engine, compiled: Callable[[Task], list[Statement]]
) -> list[Problem]:
    """One problem per call of a function ``engine`` has not, at the line that calls it;
    functions the project itself defines (``CREATE FUNCTION``, ``CREATE MACRO``) exist."""
    tasks = [t for t in project.tasks.values() if t.kind in ("sql", "seed")]
    statements = {task.name: compiled(task) for task in tasks}
    defined = {name for found in statements.values() for s in found for name in s.defines}
    called = {name for found in statements.values() for s in found for name in s.functions}
    missing = _missing(project, engine, called - defined)
    if not missing:
        return []
    problems = []
    for task in tasks:
        for statement in statements[task.name]:
            for name in statement.functions:
                if name in missing:
                    problems.append(
                        Problem(
                            task.path,
                            _line_calling(task.text, name, statement.line),
                            f"function {name.upper()} does not exist on {engine.name} (the engine this project runs on)",
                        )
                    )
    return problems


def _missing(project: Project, engine: Engine, names: set[str]) -> set[str]:
    """``engine.missing_functions(names)``, remembered in the parse cache when nothing was
    missing (asking DuckDB for its functions loads its extensions: ~30 ms of an unchanged
    run). A function present once stays present for the same engine release; a missing one is
    asked again each time, so installing an extension is noticed."""
    stamp = engine.functions_stamp()
    cache = project.cache
    if stamp is None or cache is None or not names:
        return engine.missing_functions(names)
    asked: list[set[str]] = []  # the engine's answer, when it was asked just now

    def ask() -> list[str]:
        asked.append(engine.missing_functions(names))
        return sorted(asked[0])

    remembered = cache.latest(f"functions on {stamp}", "\n".join(sorted(names)), engine.dialect, ask)
    if asked:
        return asked[0]
    return engine.missing_functions(names) if remembered else set()  # a remembered miss is asked again


def _line_calling(text: str, name: str, first: int) -> int:
    """The first line from ``first`` on that calls ``name`` (by its last part: translation may
    have renamed the rest), else ``first``."""
    call = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name.rpartition('.')[2])}\s*\(", re.IGNORECASE)
    lines = text.splitlines()
    for number in range(max(first, 1), len(lines) + 1):
        if call.search(lines[number - 1].split("--")[0]):
            return number
    return first
