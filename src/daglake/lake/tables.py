"""Lake tables: Hive-partitioned Parquet published atomically by swapping a symlink.

A table ``curated.x`` lives in ``lake/curated/x``, a symlink to an immutable version folder
``lake/curated/.x.v<id>``. A write builds a whole new version beside it — new partitions
written by DuckDB, untouched partitions hard-linked from the current version — and then
replaces the symlink with one ``rename``: every reader, inside or outside daglake, sees the
old version or the new one, never a mix or a half-written partition, even after ``kill -9``.
Leftovers of an interrupted write are removed by the next write.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ZONES = ("landing", "raw", "staging", "curated", "quarantine")
EMPTY_PARTITION = "__daglake_empty__"
PARTITION_TYPES = ".partition_types.json"  # beside the data (hidden): partition column -> SQL type
CRASH_AT_ENV = "DAGLAKE_CRASH_AT"  # tests only: kill -9 this process at a named moment of publish


@dataclass(frozen=True)
class LakeTable:
    root: Path  # the lake root
    zone: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.zone}.{self.name}"

    @property
    def path(self) -> Path:
        """The stable path readers use (a symlink to the current version)."""
        return self.root / self.zone / self.name

    @property
    def glob(self) -> str:
        return str(self.path.absolute() / "**" / "*.parquet")

    def exists(self) -> bool:
        return self.path.is_symlink() and self.path.resolve().is_dir()

    def current_version(self) -> Path | None:
        return self.path.resolve() if self.exists() else None

    def read_sql(self) -> str:
        """``read_parquet(...)`` of the current version, its partition columns typed as written
        (a city code ``"001"`` stays a string; DuckDB alone would guess from folder names)."""
        current = self.current_version()
        return version_read_sql(current, self.glob) if current is not None else version_read_sql(None, self.glob)


def version_read_sql(version: Path | None, glob: str | None = None) -> str:
    """``read_parquet(...)`` of one version folder (or ``glob``) with its partition types."""
    options = "hive_partitioning = true, union_by_name = true"
    types = read_partition_types(version) if version is not None else {}
    if types:
        listed = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items())
        options += f", hive_types = {{{listed}}}"
    pattern = glob if glob is not None else str(Path(str(version)).absolute() / "**" / "*.parquet")
    return f"read_parquet({quote_literal(pattern)}, {options})"


def lake_table(root: Path, qualified: str) -> LakeTable:
    zone, _, name = qualified.partition(".")
    if zone not in ZONES or not name:
        raise ValueError(f"{qualified!r} is not a lake table (zone.table with zone in {ZONES})")
    return LakeTable(root, zone, name)


class PartitionedQuery(str):
    """A query (the string itself) whose rows are known partition by partition: ``parts`` pairs
    each partition's values with the query of its rows without the partition columns. An engine
    may write each part straight into its folder (DuckDB's partitioned writer costs about twice a
    plain one); any other use reads the whole query."""

    parts: tuple[tuple[dict[str, str], str], ...]

    def __new__(cls, whole: str, parts: Sequence[tuple[dict[str, str], str]]) -> PartitionedQuery:
        query = super().__new__(cls, whole)
        query.parts = tuple(parts)
        return query


_PLAIN_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def partition_folder(version: Path, values: Mapping[str, str]) -> Path | None:
    """The hive folder of a partition, as a partitioned writer names it; None for a value a
    writer would escape (only plain names are written by hand)."""
    if not all(_PLAIN_VALUE.fullmatch(value) for value in values.values()):
        return None
    return version.joinpath(*(f"{column}={value}" for column, value in values.items()))


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def new_version(table: LakeTable) -> Path:
    """An empty, unpublished version folder for the next write (leftovers removed first)."""
    table.path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(table)
    version = table.path.parent / f".{table.name}.v{secrets.token_hex(6)}"
    version.mkdir()
    return version


def carry_over(table: LakeTable, version: Path) -> list[str]:
    """Hard-link the current partitions that ``version`` does not rewrite into it.

    A partition is a whole key (``ingest_date=…/source_file=…``): one that shares only its
    outer folder with a written one is carried too. Returns the carried partition folders;
    the written ones replace their old contents.
    """
    current = table.current_version()
    if current is None:
        return []
    written = _leaves(version)
    carried = []
    for leaf in sorted(_leaves(current) - written):
        if EMPTY_PARTITION not in leaf:
            _link_tree(current / leaf, version / leaf)
            carried.append(leaf)
    return carried


def _leaves(version: Path) -> set[str]:
    """Partition folders holding data files, relative to the version (``.`` when unpartitioned)."""
    return {str(p.parent.relative_to(version)) for p in version.rglob("*.parquet")} - {"."}


def empty_partition_folder(version: Path, partition_by: list[str]) -> Path | None:
    """Where an empty partitioned table keeps one file (so readers know its columns), or
    None when the version holds data."""
    if any(version.rglob("*.parquet")):
        return None
    folder = version / "/".join(f"{c}={EMPTY_PARTITION}" for c in partition_by)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_partition_types(version: Path, types: dict[str, str]) -> None:
    (version / PARTITION_TYPES).write_text(json.dumps(types), encoding="utf-8")


def read_partition_types(version: Path) -> dict[str, str]:
    """The partition columns' types, unless the version is an empty table's marker (whose
    folder name fits no type) or was written before types were recorded."""
    path = version / PARTITION_TYPES
    if not path.is_file() or _empty_markers(version):
        return {}
    types = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in types.items()}


def drop_empty_marker(version: Path) -> None:
    """Remove the empty-table marker once the version holds data (carried over, or added)."""
    markers = _empty_markers(version)
    others = (p for p in version.iterdir() if p.is_dir() and p not in markers)
    if markers and any(any(p.rglob("*.parquet")) for p in others):
        for marker in markers:
            shutil.rmtree(marker)


def _empty_markers(version: Path) -> list[Path]:
    """The folder of :func:`empty_partition_folder`, if the version has one."""
    return [p for p in version.iterdir() if p.is_dir() and p.name.endswith(f"={EMPTY_PARTITION}")]


@dataclass
class StagedVersion:
    """A table version a task is writing, published only when the whole task succeeds; the
    current partitions it does not rewrite are carried into it first (every engine)."""

    table: LakeTable
    version: Path
    carry: bool  # overwrite_partitions: keep the current partitions this write does not cover

    def complete(self) -> None:
        """Carry the untouched partitions in: the version is then the whole new table (what
        an audit reads, what publishing swaps in)."""
        if self.carry:
            carry_over(self.table, self.version)
            self.carry = False
        drop_empty_marker(self.version)


S = TypeVar("S", bound=StagedVersion)


def take_staged(staged: list[S], found: S | None) -> Path | None:
    """``found``'s version, removed from ``staged``: no longer the task's to publish or
    discard (an audit's candidate)."""
    if found is None:
        return None
    staged.remove(found)
    return found.version


def publish(table: LakeTable, version: Path) -> None:
    """Make ``version`` the table's content in one atomic rename, then drop the old one."""
    previous = table.current_version()
    link = table.path.parent / f".{table.name}.link-{secrets.token_hex(4)}"
    os.symlink(version.name, link)
    if table.path.exists() and not table.path.is_symlink():
        raise FileExistsError(f"{table.path} exists and is not a daglake table; move it away")
    crash_point("publish:linked")
    os.replace(link, table.path)
    fsync_dir(table.path.parent)
    crash_point("publish:swapped")
    if previous is not None and previous != version.resolve():
        shutil.rmtree(previous, ignore_errors=True)


def crash_point(moment: str) -> None:
    """``DAGLAKE_CRASH_AT=publish:swapped`` kills the process for real at that moment, so tests
    can check what readers and the next run find there (a random kill rarely lands inside)."""
    if os.environ.get(CRASH_AT_ENV) == moment:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def discard(version: Path) -> None:
    shutil.rmtree(version, ignore_errors=True)


def footer_rows(paths: Sequence[Path]) -> list[int]:
    """Rows in each Parquet file of ``paths``, from its footer alone (pyarrow)."""
    import pyarrow.parquet as pq

    return [pq.read_metadata(path).num_rows for path in paths]


def files(table: LakeTable) -> list[Path]:
    current = table.current_version()
    return sorted(current.rglob("*.parquet")) if current else []


def partitions(table: LakeTable) -> list[str]:
    """Partition folders relative to the table, e.g. ``city_code=BCN``."""
    current = table.current_version()
    if current is None:
        return []
    found = {
        str(path.parent.relative_to(current))
        for path in current.rglob("*.parquet")
        if path.parent != current and EMPTY_PARTITION not in str(path.parent)
    }
    return sorted(found)


def _remove_leftovers(table: LakeTable) -> None:
    """Versions and staging folders of interrupted writes: anything but the current version."""
    current = table.current_version()
    for path in table.path.parent.glob(f".{table.name}.*"):
        if path.is_symlink():
            path.unlink(missing_ok=True)
        elif path.is_dir() and (current is None or path.resolve() != current):
            shutil.rmtree(path, ignore_errors=True)


def _link_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, destination)
            except OSError:  # another file system or no hard links: copy instead
                shutil.copy2(path, destination)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
