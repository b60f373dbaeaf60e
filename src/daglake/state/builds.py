"""What was last built, and how: each task's fingerprint at its last successful build, and a
change counter per table that the API appends to. The runner compares fingerprints with these
to run only what changed (SPEC §4)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from daglake.state.store import StateStore, insert


@dataclass(frozen=True)
class Build:
    task: str
    fingerprint: str
    run_id: str
    finished_at: float
    parts: dict[str, Any]  # what the fingerprint hashed: code, settings, engine, date, inputs


def last_builds(store: StateStore, project: str, target: str) -> dict[str, Build]:
    """Every task's last successful build on ``target``."""
    rows = store.database.query(
        "SELECT task, fingerprint, run_id, finished_at, parts FROM builds WHERE project = :project AND target = :target",
        {"project": project, "target": target},
    )
    return {
        row["task"]: Build(row["task"], row["fingerprint"], row["run_id"], float(row["finished_at"]), json.loads(row["parts"]))
        for row in rows
    }


def save_builds(store: StateStore, project: str, target: str, done: Iterable[Build]) -> None:
    """Record successful builds, one transaction, replacing each task's previous one."""
    found = {b.task: b for b in done}
    if not found:
        return
    rows = [
        {"project": project, "target": target, "task": b.task, "fingerprint": b.fingerprint, "run_id": b.run_id, "finished_at": b.finished_at, "parts": json.dumps(b.parts, sort_keys=True)}
        for b in found.values()
    ]
    database = store.database
    with database.transaction():
        database.execute_many("DELETE FROM builds WHERE project = :project AND target = :target AND task = :task", rows)
        database.execute_many(insert("builds", rows[0]), rows)


def table_versions_of(store: StateStore, project: str) -> dict[str, int]:
    """How many times rows were appended to each table through the API."""
    rows = store.database.query("SELECT table_name, version FROM table_versions WHERE project = :project", {"project": project})
    return {row["table_name"]: int(row["version"]) for row in rows}


def bump_versions(store: StateStore, project: str, tables: Iterable[str]) -> None:
    """One more change of each of ``tables`` (``raw.orders``), in one transaction."""
    names = sorted({t.lower() for t in tables})
    if not names:
        return
    database = store.database
    now = time.time()
    with database.transaction():
        for name in names:
            row = {"project": project, "table_name": name, "version": 1, "changed_at": now}
            changed = database.execute(
                "UPDATE table_versions SET version = version + 1, changed_at = :changed_at"
                " WHERE project = :project AND table_name = :table_name",
                row,
            )
            if not changed:
                database.execute(insert("table_versions", row), row)
