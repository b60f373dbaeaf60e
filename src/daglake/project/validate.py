"""Everything wrong with a project, found in one pass before anything runs."""

from __future__ import annotations

from daglake.config import CONFIG_FILE
from daglake.errors import Problem
from daglake.graph.dag import DAG
from daglake.project.model import Project


def problems(
    project: Project, dag: DAG[str], existing: set[str] | None, *, strict: bool = False
) -> list[Problem]:
    """File problems, cycles, missing sources (when ``existing`` is known) and, if ``strict``,
    disagreements between declared and inferred dependencies."""
    found = list(project.problems)
    found.extend(_unknown_parameters(project))
    found.extend(_cycles(project, dag))
    if existing is not None:
        found.extend(_missing_sources(project, existing))
        found.extend(_reading_own_output(project, existing))
    if strict:
        found.extend(_declared_vs_inferred(project))
    return found


RUN_PARAMETERS = {"ds": "the run's logical date (DATE)", "run_id": "the run's id (STRING)"}


def _unknown_parameters(project: Project) -> list[Problem]:
    known = ", ".join(f"@{name}" for name in RUN_PARAMETERS)
    return [
        Problem(task.path, line, f"unknown parameter @{name} (known: {known})")
        for task in project.tasks.values()
        for name, line in task.analysis.parameters.items()
        if name not in RUN_PARAMETERS
    ]


def _cycles(project: Project, dag: DAG[str]) -> list[Problem]:
    result = []
    for cycle in dag.cycles():
        first, second = project.tasks[cycle[0]], cycle[1]
        shown = " → ".join(f"{n} ({project.tasks[n].path})" for n in cycle[:-1])
        line = next(
            (r.line for r in first.reads if project.producers.get(r.table) == second),
            0,
        )
        result.append(Problem(first.path, line, f"dependency cycle: {shown} → {cycle[-1]}"))
    return result


def _missing_sources(project: Project, existing: set[str]) -> list[Problem]:
    result = []
    declared = project.config.sources
    unparsed = set().union(*project.broken.values())  # may be created by a file with a problem
    for table, places in sorted(project.sources().items()):
        if table in existing or table in declared or table.split(".")[-1] in declared or table in unparsed:
            continue
        for task, read in places:
            result.append(
                Problem(
                    task.path,
                    read.line,
                    f"table {table} does not exist and no task creates it "
                    f"(create it, add a seed script, or declare it under [sources] in {CONFIG_FILE})",
                    read.column,
                )
            )
    return result


def _reading_own_output(project: Project, existing: set[str]) -> list[Problem]:
    """A statement reading the table it creates, which is not built yet: the engine would only
    say the table does not exist (and guess at a system table)."""
    return [
        Problem(
            task.path,
            line,
            f"reads its own output {table}, which does not exist yet: a task cannot read the "
            f"table it builds (read another table, or create {table} first)",
            column,
        )
        for task in project.tasks.values()
        for table, (line, column) in task.analysis.self_reads.items()
        if table not in existing
    ]


def _declared_vs_inferred(project: Project) -> list[Problem]:
    result = []
    for task in project.tasks.values():
        if not task.declared:
            continue
        inferred = project.inferred_upstream(task)
        for name in sorted(task.declared - inferred):
            result.append(
                Problem(
                    task.path,
                    0,
                    f"declared dependency on {name} ({project.tasks[name].path}) "
                    "is not read by the SQL",
                )
            )
        for name in sorted(inferred - task.declared):
            upstream = project.tasks[name]
            line = next((r.line for r in task.reads if r.table in upstream.outputs), 0)
            result.append(
                Problem(
                    task.path,
                    line,
                    f"reads {name} ({upstream.path}) but its declared dependencies omit it",
                )
            )
    return result


def missing_upstream(
    project: Project, selected: set[str], existing: set[str]
) -> list[Problem]:
    """Tables that selected tasks read from unselected tasks and that have not been built yet."""
    result = []
    for name in sorted(selected):
        task = project.tasks[name]
        for read in task.reads:
            producer = project.producers.get(read.table)
            if producer and producer not in selected and read.table not in existing:
                result.append(
                    Problem(
                        task.path,
                        read.line,
                        f"{read.table} has not been built and its task {producer} is not "
                        f"selected (select +{name} to build it first)",
                        read.column,
                    )
                )
    return result
