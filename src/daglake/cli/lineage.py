"""``daglake lineage``: a table's or a column's lineage, upstream or downstream, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from daglake.errors import UsageError


def lineage_report(path: Path, target: str, *, downstream: bool, deps: str | None) -> dict[str, Any]:
    """What ``daglake lineage TARGET`` prints, as data: for ``ds.table.column`` its sources and
    filters (or its dependents), for ``ds.table`` the same per column."""
    from daglake.errors import ValidationError
    from daglake.graph.dag import DAG
    from daglake.lake.catalog import catalog_columns
    from daglake.project import load_project
    from daglake.project.lineage import project_lineage
    from daglake.project.validate import problems

    project = load_project(path, deps_file=deps)
    dag = DAG(project.dependencies())
    found = problems(project, dag, None)
    if found:
        raise ValidationError(found)
    known = catalog_columns(project.root / project.config.lake_root)
    lineage = project_lineage(project, dag.topological_order(), known)
    wanted = target.lower()
    parts = wanted.split(".", 2)  # dataset.table[.column[.field]]
    table = ".".join(parts[:2])
    if len(parts) == 2 and lineage.table_columns(table):
        columns = lineage.table_columns(table)
    else:
        column = parts[2] if len(parts) == 3 else ""
        if not column or column not in lineage.table_columns(table):
            known_columns = [c for c in lineage.table_columns(table) if "." not in c]
            if known_columns:
                raise UsageError(f"{table} has no column {column or '(none given)'}; its columns: {', '.join(known_columns)}")
            raise UsageError(f"no table or column {target} in the project (a table is dataset.table, a column dataset.table.column)")
        if downstream:
            return {"column": wanted, "dependents": lineage.downstream(wanted)}
        sources, filters = lineage.upstream(wanted)
        return {"column": wanted, "sources": sources, "filters": filters}
    per_column: dict[str, Any] = {}
    for column in columns:
        name = f"{table}.{column}"
        if downstream:
            per_column[name] = {"dependents": lineage.downstream(name)}
        else:
            sources, filters = lineage.upstream(name)
            per_column[name] = {"sources": sources, "filters": filters}
    return {"table": table, "columns": per_column}


def print_lineage(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    entries = report["columns"] if "table" in report else {report["column"]: report}
    for name, entry in entries.items():
        typer.echo(name)
        if "dependents" in entry:
            for dependent in entry["dependents"] or ["(no column depends on it)"]:
                typer.echo(f"  -> {dependent}")
            continue
        for source in entry["sources"] or ["(computed from no column: a literal, a seed or a source)"]:
            typer.echo(f"  <- {source}")
        for key in entry["filters"]:
            typer.echo(f"  filtered by {key}")


__all__ = ["lineage_report", "print_lineage"]
