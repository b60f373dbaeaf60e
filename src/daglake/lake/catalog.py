"""``lake/_catalog/catalog.json``: every table, its zone, schema, partitions, files, row counts,
producing task, last run and upstream tables — rewritten atomically after each run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.lake.tables import ZONES, LakeTable, files, partitions
from daglake.sql.cache import atomic_write_text

if TYPE_CHECKING:
    from daglake.project import Project

Describe = Callable[[LakeTable], list[tuple[str, str]]]  # a lake table's (column, type), by the engine
CountRows = Callable[[list[Path]], list[int]]  # rows in each Parquet file, from its footer, by the engine
CATALOG = Path("_catalog") / "catalog.json"
FORMAT = 1


LINEAGE = ("task", "task_path", "upstream", "last_run")


def catalog_path(lake_root: Path) -> Path:
    return lake_root / CATALOG


def read_catalog(lake_root: Path) -> dict[str, Any]:
    try:
        data = json.loads(catalog_path(lake_root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "tables": {}}
    return data if isinstance(data, dict) and "tables" in data else {"format": FORMAT, "tables": {}}


def catalog_columns(lake_root: Path) -> dict[str, list[str]]:
    """Each catalogued table's column names: what lineage knows of sources and Python tasks."""
    tables = read_catalog(lake_root)["tables"]
    return {name: [c["name"] for c in entry.get("schema") or []] for name, entry in tables.items()}


def lake_tables(lake_root: Path) -> list[LakeTable]:
    """Tables on disk: each is a symlink ``zone/name`` to its current version."""
    found: list[LakeTable] = []
    for zone in ZONES:
        folder = lake_root / zone
        if folder.is_dir():
            found.extend(
                LakeTable(lake_root, zone, p.name)
                for p in sorted(folder.iterdir())
                if p.is_symlink() and not p.name.startswith(".")
            )
    return found


def describe_lake_table(
    table: LakeTable, lake_root: Path, describe: Describe, count_rows: CountRows, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Schema (as the engine reads the table: ``describe``), partitions, files and row counts
    (from the Parquet footers only: ``count_rows``); taken from ``previous`` (the catalog's
    entry) when it describes the same immutable version."""
    current = table.current_version()
    version = current.name if current is not None else None
    if previous is not None and version is not None and previous.get("version") == version:
        return {k: v for k, v in previous.items() if k not in LINEAGE}
    parquet = files(table)
    entry: dict[str, Any] = {
        "name": table.qualified,
        "zone": table.zone,
        "storage": "lake",
        "version": version,
        "path": str(table.path.relative_to(lake_root.parent)),
        "partitions": partitions(table),
        "files": [],
        "rows": 0,
        "schema": [],
    }
    if not parquet or current is None:
        return entry
    entry["schema"] = [{"name": name, "type": kind} for name, kind in describe(table)]
    for path, rows in zip(parquet, count_rows(parquet), strict=True):
        entry["files"].append(
            {"path": str(path.relative_to(current)), "bytes": path.stat().st_size, "rows": rows}
        )
        entry["rows"] += rows
    return entry


def write_catalog(lake_root: Path, tables: dict[str, dict[str, Any]]) -> Path:
    """One line per table: still read line by line, and written by json's C encoder (indenting
    falls back to the pure-Python one: 75 ms instead of 8 for a thousand tables)."""
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry, default=str)}" for name, entry in sorted(tables.items()))
    text = f'{{"format": {FORMAT}, "updated_at": {time.time()!r}, "tables": {{\n{lines}\n}}}}\n'
    path = catalog_path(lake_root)
    atomic_write_text(path, text)
    return path


def update_catalog(
    project: Project,
    warehouse: Callable[[set[str]], dict[str, dict[str, Any] | None]],
    run_id: str,
    succeeded: set[str],
    describe: Describe,
    count_rows: CountRows,
) -> Path:
    """Rewrite the catalog from what exists now: lake tables on disk (their columns as
    ``describe`` reads them), warehouse tables that tasks produce (``warehouse`` lists them,
    describing at least those built now or not in the catalog yet; the others keep their
    entry); ``last_run`` moves to ``run_id`` for tables whose task succeeded."""
    lake_root = project.root / project.config.lake_root
    previous = read_catalog(lake_root)["tables"]
    built = {table for name in succeeded if name in project.tasks for table in project.tasks[name].outputs}
    listed = {name for name, entry in previous.items() if entry.get("zone") == "warehouse"}
    tables: dict[str, dict[str, Any]] = {}

    def lineage(name: str) -> dict[str, Any]:
        producer = project.producers.get(name)
        task = project.tasks.get(producer) if producer else None
        before = previous.get(name, {})
        return {
            "task": task.name if task else None,
            "task_path": task.path if task else None,
            "upstream": sorted({r.table for r in task.reads}) if task else [],
            "last_run": run_id if task and task.name in succeeded else before.get("last_run"),
        }

    for table in lake_tables(lake_root):
        described = describe_lake_table(table, lake_root, describe, count_rows, previous.get(table.qualified))
        tables[table.qualified] = described | lineage(table.qualified)
    from daglake.config import warehouse_location

    location = warehouse_location(project.config)
    for name, info in warehouse(built | (set(project.producers) - listed)).items():
        if name in tables or name not in project.producers:
            continue
        if info is None:  # not described again: unchanged since the catalog was written
            tables[name] = previous[name] | lineage(name)
            continue
        tables[name] = {
            "name": name,
            "zone": "warehouse",
            "storage": info["kind"],
            "path": location,
            "partitions": [],
            "files": [],
            "rows": info["rows"],
            "schema": info["columns"],
        } | lineage(name)
    return write_catalog(lake_root, tables)
