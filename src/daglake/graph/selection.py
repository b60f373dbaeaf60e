"""``--select`` / ``--exclude``: tables, paths, globs, ``tag:x``, and ``+x`` / ``x+`` ancestry."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from daglake.errors import UsageError
from daglake.graph.dag import DAG
from daglake.project.model import Project


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
    upstream = selector.startswith("+")
    downstream = selector.endswith("+") and len(selector) > 1
    core = selector[1 if upstream else 0 : -1 if downstream else None]
    nodes = match(project, core)
    if not nodes:
        raise UsageError(f"--select/--exclude '{selector}' matches no task")
    result = set(nodes)
    for node in nodes:
        if upstream:
            result |= dag.ancestors(node)
        if downstream:
            result |= dag.descendants(node)
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
