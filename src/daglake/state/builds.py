"""What was last built, and how: each task's fingerprint at its last successful build, and a
change counter per table that the API appends to. The runner compares fingerprints with these
to run only what changed (SPEC §4)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from daglake.state.schema import builds, table_versions
from daglake.state.store import StateStore


@dataclass(frozen=True)
class Build:
    task: str
    fingerprint: str
    run_id: str
    finished_at: float
    parts: dict[str, Any]  # what the fingerprint hashed: code, settings, engine, date, inputs


def last_builds(store: StateStore, project: str, target: str) -> dict[str, Build]:
    """Every task's last successful build on ``target``."""
    connection = store.connection
    try:
        rows = connection.execute(
            sa.select(builds.c.task, builds.c.fingerprint, builds.c.run_id, builds.c.finished_at, builds.c.parts).where(
                builds.c.project == project, builds.c.target == target
            )
        ).all()
    finally:
        if connection.in_transaction():
            connection.rollback()
    return {row[0]: Build(row[0], row[1], row[2], float(row[3]), json.loads(row[4])) for row in rows}


def save_builds(store: StateStore, project: str, target: str, done: Iterable[Build]) -> None:
    """Record successful builds, one transaction, replacing each task's previous one."""
    found = {b.task: b for b in done}
    if not found:
        return
    connection = store.connection
    with connection.begin():
        connection.execute(
            builds.delete().where(
                builds.c.project == project, builds.c.target == target, builds.c.task.in_(list(found))
            )
        )
        connection.execute(
            builds.insert(),
            [
                {"project": project, "target": target, "task": b.task, "fingerprint": b.fingerprint, "run_id": b.run_id, "finished_at": b.finished_at, "parts": json.dumps(b.parts, sort_keys=True)}
                for b in found.values()
            ],
        )


def table_versions_of(store: StateStore, project: str) -> dict[str, int]:
    """How many times rows were appended to each table through the API."""
    connection = store.connection
    try:
        rows = connection.execute(
            sa.select(table_versions.c.table_name, table_versions.c.version).where(table_versions.c.project == project)
        ).all()
    finally:
        if connection.in_transaction():
            connection.rollback()
    return {row[0]: int(row[1]) for row in rows}


def bump_versions(store: StateStore, project: str, tables: Iterable[str]) -> None:
    """One more change of each of ``tables`` (``raw.orders``), in one transaction."""
    names = sorted({t.lower() for t in tables})
    if not names:
        return
    connection = store.connection
    now = time.time()
    with connection.begin():
        for name in names:
            where = (table_versions.c.project == project) & (table_versions.c.table_name == name)
            changed = connection.execute(
                table_versions.update().where(where).values(version=table_versions.c.version + 1, changed_at=now)
            )
            if not changed.rowcount:
                connection.execute(
                    table_versions.insert().values(project=project, table_name=name, version=1, changed_at=now)
                )
