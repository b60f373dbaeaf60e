"""``--select`` / ``--exclude`` in dbt's syntax: tables, paths, globs, ``tag:x``; ``+x`` / ``x+``
(all ancestors / descendants), ``2+x`` / ``x+2`` (up to that many edges away), ``@x`` (x, its
descendants and every ancestor of those, what a rebuild of x needs); ``a,b`` is the
intersection of ``a`` and ``b``; several selectors are their union."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from daglake.errors import UsageError
from daglake.graph.dag import DAG
from daglake.project.model import Project

# [@][N+]core[+N]: the core holds no "+" (names, paths, globs and tags never do)
_SELECTOR = re.compile(r"(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<core>[^+@]+?)(?:\+(?P<down>\d*))?")


def match(project: Project, pattern: str) -> set[str]:
    """Task names that one selector names, without its ``+`` operators."""
    if pattern.startswith("tag:"):
        tag = pattern[4:]
        return {n for n, t in project.tasks.items() if tag in t.tags}
    task = project.task_for(pattern)
    if task is not None:
        return {task.name}
    lowered = pattern.lower()
    found = set()
    for name, task in project.tasks.items():
        if (
            fnmatch.fnmatch(task.path, pattern)
            or fnmatch.fnmatch(task.path, pattern.rstrip("/") + "/*")
            or any(fnmatch.fnmatch(out, lowered) for out in task.outputs)
        ):
            found.add(name)
    return found


def expand(project: Project, dag: DAG[str], selector: str) -> set[str]:
    """One ``--select`` value: the intersection of its comma-separated parts."""
    if not selector.strip():
        raise UsageError(f"--select/--exclude {selector!r} is empty: name a table, a path, a glob or tag:x")
    parts = [part.strip() for part in selector.split(",")]
    if not all(parts):
        raise UsageError(f"--select/--exclude {selector!r}: an empty part around ',' (a,b is the tasks both a and b select)")
    chosen = _atom(project, dag, parts[0])
    for part in parts[1:]:
        chosen &= _atom(project, dag, part)
    return chosen


def _atom(project: Project, dag: DAG[str], atom: str) -> set[str]:
    """``[@][N+]name[+N]``: the tasks ``name`` matches and the graph around them."""
    found = _SELECTOR.fullmatch(atom)
    if found is None:
        raise UsageError(
            f"--select/--exclude {atom!r} is not a selector: NAME, +NAME, NAME+, 2+NAME, NAME+2 or @NAME"
        )
    at, up, core, down = found.group("at"), found.group("up"), found.group("core"), found.group("down")
    if at and (up is not None or down is not None):
        raise UsageError(f"--select/--exclude {atom!r}: @ does not combine with + (@x already takes x's descendants and their ancestors)")
    nodes = match(project, core)
    if not nodes:
        raise UsageError(f"--select/--exclude '{atom}' matches no task")
    result = set(nodes)
    for node in nodes:
        if at:
            below = dag.descendants(node) | {node}
            result |= below
            for other in below:
                result |= dag.ancestors(other)
            continue
        if up is not None:
            result |= dag.ancestors(node, int(up) if up else None)
        if down is not None:
            result |= dag.descendants(node, int(down) if down else None)
    return result


def select(
    project: Project, dag: DAG[str], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> set[str]:
    """The tasks to run: all of them, or the union of ``include``, minus ``exclude``."""
    chosen: set[str] = set(dag.upstream) if not include else set()
    for selector in include:
        chosen |= expand(project, dag, selector)
    chosen |= _checks_of(project, chosen)
    for selector in exclude:
        chosen -= expand(project, dag, selector)
    return chosen


def _checks_of(project: Project, chosen: set[str]) -> set[str]:
    """A selected table brings its checks along: they belong to building it."""
    built = {table for name in chosen for table in project.tasks[name].outputs}
    return {
        name
        for name, task in project.tasks.items()
        if task.check is not None and task.check.table in built
    }
