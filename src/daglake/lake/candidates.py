"""A table's candidate: the new version its audit refused (an error-severity check failed),
kept aside under ``.daglake/candidates/<table>/`` as Parquet for ``daglake show TABLE
--candidate``, and dropped by the table's next successful build. Readers never see it."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from daglake.lake.tables import version_read_sql

CANDIDATES = Path(".daglake") / "candidates"


def candidate_path(root: Path, table: str) -> Path:
    return root / CANDIDATES / table.lower()


def new_candidate(root: Path, table: str) -> Path:
    """An empty hidden folder to write a candidate into; :func:`keep` makes it the candidate."""
    folder = root / CANDIDATES / f".{table.lower()}.{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    return folder


def keep(root: Path, table: str, version: Path) -> Path:
    """Make the folder ``version`` (a staged lake version, or one of :func:`new_candidate`)
    the table's candidate, replacing an older one."""
    target = candidate_path(root, table)
    drop(root, table)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(version, target)
    return target


def drop(root: Path, table: str) -> None:
    """The table was built and published: its old candidate is of no more use."""
    target = candidate_path(root, table)
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)


def drop_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def read_sql(root: Path, table: str) -> str | None:
    """``read_parquet(...)`` of the candidate (DuckDB's SQL), None when there is none."""
    target = candidate_path(root, table)
    if not target.is_dir() or not any(target.rglob("*.parquet")):
        return None
    return version_read_sql(target)
