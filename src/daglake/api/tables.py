"""``GET /tables``: the lake catalogue merged with what the warehouse holds right now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.api.warehouse import APPENDABLE_SCHEMA
from daglake.errors import UsageError

if TYPE_CHECKING:
    from daglake.config import ProjectConfig


def list_tables(root: Path, config: ProjectConfig) -> dict[str, Any]:
    """Catalogue entries (lake and warehouse tables that tasks build) with live row counts and
    columns from the warehouse, plus warehouse tables the catalogue does not know (zone null).
    ``warehouse`` says whether the live part is there: ok, missing (never built) or busy (another
    process holds it; the catalogue's figures are shown)."""
    from daglake.lake.catalog import read_catalog

    catalog: dict[str, dict[str, Any]] = read_catalog(root / config.lake_root)["tables"]
    live, status = _warehouse(root, config)
    tables: dict[str, dict[str, Any]] = {}
    for name, entry in catalog.items():
        files = entry.get("files") or []
        tables[name] = {
            "name": name,
            "zone": entry.get("zone"),
            "storage": entry.get("storage"),
            "rows": entry.get("rows"),
            "columns": entry.get("schema") or [],
            "partitions": entry.get("partitions") or [],
            "files": len(files),
            "bytes": sum(int(f.get("bytes") or 0) for f in files),
            "task": entry.get("task"),
            "task_path": entry.get("task_path"),
            "upstream": entry.get("upstream") or [],
            "last_run": entry.get("last_run"),
        }
    for name, info in live.items():
        entry = tables.setdefault(
            name,
            {"name": name, "zone": None, "storage": info["kind"], "partitions": [], "files": 0,
             "bytes": 0, "task": None, "task_path": None, "upstream": [], "last_run": None},
        )
        if entry["storage"] != "lake":
            entry["rows"], entry["columns"] = info["rows"], info["columns"]
    for name, entry in tables.items():
        entry["appendable"] = name in live and live[name]["kind"] == "table" and name.startswith(f"{APPENDABLE_SCHEMA}.")
    return {"warehouse": status, "tables": [tables[name] for name in sorted(tables)]}


def _warehouse(root: Path, config: ProjectConfig) -> tuple[dict[str, dict[str, Any]], str]:
    from daglake.config import engine_settings
    from daglake.engines import create_engine, nothing_built

    settings = engine_settings(config)
    if nothing_built(settings, root):
        return {}, "missing"
    try:
        with create_engine(settings, root, read_only=True) as engine:
            return {name: info for name, info in engine.table_info().items() if info is not None}, "ok"
    except UsageError:  # another process (a CLI run) holds the file
        return {}, "busy"
