"""Column lineage across a project's files (SPEC §4, ``daglake lineage``): each SQL task's query
analysed in dependency order, so ``SELECT *`` of an upstream table expands to the columns that
task was found to output, and a column's sources followed from file to file.

Python tasks and sources outside the project contribute the columns daglake knows of them
(``known``: the catalog's schemas) and no lineage of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daglake.project.model import Project, Task
    from daglake.sql.lineage import ColumnSources


@dataclass
class Lineage:
    """Output columns per table (in order) and each column's direct sources and filters."""

    columns: dict[str, list[str]] = field(default_factory=dict)
    direct: dict[str, ColumnSources] = field(default_factory=dict)  # "ds.table.col" -> sources

    def upstream(self, column: str) -> tuple[list[str], list[str]]:
        """Every column ``column`` is computed from, at any depth, and every join or filter key
        on the way (sorted)."""
        sources: set[str] = set()
        filters: set[str] = set()
        pending = [column]
        while pending:
            found = self.direct.get(pending.pop())
            if found is None:
                continue
            filters |= found.filters
            for source in found.sources - sources:
                sources.add(source)
                pending.append(source)
        return sorted(sources), sorted(filters)

    def downstream(self, column: str) -> list[str]:
        """Every column whose values are computed from ``column``, at any depth."""
        readers: dict[str, set[str]] = {}
        for name, found in self.direct.items():
            for source in found.sources:
                readers.setdefault(source, set()).add(name)
        dependents: set[str] = set()
        pending = [column]
        while pending:
            for reader in readers.get(pending.pop(), set()) - dependents:
                dependents.add(reader)
                pending.append(reader)
        return sorted(dependents)

    def table_columns(self, table: str) -> list[str]:
        return self.columns.get(table.lower(), [])


def project_lineage(project: Project, order: Iterable[str], known: Mapping[str, list[str]] | None = None) -> Lineage:
    """``known``: columns of tables no SQL task describes (sources, Python tasks' outputs)."""
    """Lineage of every SQL task's outputs, tasks taken in ``order`` (topological)."""
    from daglake.sql.lineage import ColumnSources

    lineage = Lineage({name.lower(): list(columns) for name, columns in (known or {}).items()})
    for name in order:
        task = project.tasks[name]
        if task.kind not in ("sql", "seed") or task.check is not None:
            continue
        bare = task.default_output(project.root).lower()
        for table, columns in _task_lineage(task, project.config.dialect, lineage, bare).items():
            lineage.columns[table] = list(columns)
            for column, found in columns.items():
                key = f"{table}.{column}"
                lineage.direct.setdefault(key, ColumnSources()).add(found)
    return lineage


def _task_lineage(task: Task, dialect: str, lineage: Lineage, bare: str) -> dict[str, dict[str, ColumnSources]]:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from daglake.sql.lineage import ColumnSources, query_lineage, query_of

    try:
        statements = [s for s in sqlglot.parse(task.text, read=dialect) if s is not None]
    except SqlglotError:
        return {}  # validation reports it
    schema = _schema(lineage)
    written: dict[str, dict[str, ColumnSources]] = {}
    for statement in statements:
        query, named = query_of(statement)
        target = _target(statement) if not isinstance(statement, exp.Query) else bare
        if target is None or target not in {o.lower() for o in task.outputs}:
            continue
        try:
            found = query_lineage(query, schema, dialect) if query is not None else {}
        except SqlglotError:
            found = {}
        if named:  # a column list names the columns by position
            values = list(found.values())
            found = {n.lower(): values[i] if i < len(values) else ColumnSources() for i, n in enumerate(named)}
        columns = written.setdefault(target, {})
        for column, sources in found.items():
            columns.setdefault(column, ColumnSources()).add(sources)
        dataset, _, name = target.rpartition(".")
        schema.setdefault(dataset, {})[name] = {c: "UNKNOWN" for c in columns if "." not in c}
    return written


def _target(statement: Any) -> str | None:
    from sqlglot import exp

    table = statement.this
    while isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table):
        return None
    return f"{table.db}.{table.name}".lower() if table.db else table.name.lower()


def _schema(lineage: Lineage) -> dict[str, dict[str, dict[str, str]]]:
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for table, columns in lineage.columns.items():
        dataset, _, name = table.rpartition(".")
        top = [c for c in columns if "." not in c]  # struct fields (col.field) are not columns
        if dataset and top:
            schema.setdefault(dataset, {})[name] = {c: "UNKNOWN" for c in top}
    return schema
