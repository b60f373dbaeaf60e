"""Typed ingestion of JSON files: valid records into a raw table, every invalid one into
quarantine with its reason, its file and its position, so ``input = accepted + quarantined``.

The engine does the typing (its :class:`~daglake.engines.base.RecordTyper`: DuckDB's in
:mod:`daglake.engines.duckdb_json`, Spark's in :mod:`daglake.engines.spark_json`, with the same
rules and reasons): the files' records (with their positions) are gathered a batch at a time,
typed, and the accepted and quarantined rows written from there with ``ctx.write``. What is
engine-neutral lives in ``daglake.lake``: landing and manifests (:mod:`.landing`), what a
record and its position are and whether a ``.gz`` is readable (:mod:`.records`), the declared
types, time patterns and reason words (:mod:`.json_schema`), and here what is read, when a
batch is typed, and what is counted (``input = accepted + quarantined``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daglake.lake.json_schema import DECLARED_TYPES, RecordSchema, Rule, snake_case
from daglake.lake.landing import LandedFile, wait_landed
from daglake.lake.records import gzip_problem, is_gzip

if TYPE_CHECKING:
    from daglake.context import TaskContext
    from daglake.engines.base import RecordTyper

BATCH_BYTES = 256 << 20  # records gathered before they are typed: bounds the untyped text held
KEYS = ["ingest_date", "source_file"]


@dataclass
class IngestResult:
    input: int
    accepted: int
    quarantined: int
    files: list[str]

    def as_metrics(self) -> dict[str, int]:
        return {"input": self.input, "accepted": self.accepted, "quarantined": self.quarantined}


def ingest_json(
    ctx: TaskContext,
    files: Sequence[LandedFile],
    *,
    table: str,
    schema: Mapping[str, str],
    quarantine: str | None = None,
    optional: Sequence[str] = (),
    rules: Sequence[Rule] = (),
    rename: Mapping[str, str] | None = None,
) -> IngestResult:
    """Ingest landed JSON files (arrays or one object per line, optionally gzipped).

    ``schema`` maps each JSON field to a type (STRING, INT64, FLOAT64, NUMERIC, BOOL,
    TIMESTAMP, DATE); columns are the fields in snake_case unless ``rename`` says otherwise,
    plus ``ingest_date``, ``source_file`` and ``source_position``. A record is quarantined for
    bad JSON, a missing or mistyped field (not in ``optional``), an unparseable time, or a
    failed ``rule``; the reason names the first problem found. Both tables are partitioned by
    ``ingest_date`` and ``source_file``, so re-ingesting a file replaces exactly its rows. A
    ``.gz`` file that cannot be decompressed to its end (corrupt, truncated, not gzip) is one
    quarantined record of position 0 whose reason names the problem and its byte offset; the
    other files are ingested, and the file counts as done for later runs.
    """
    record_schema = RecordSchema.of(schema, optional, rules, rename)
    files = list({f.path: f for f in files}.values())  # a file listed twice is read once
    if not files:
        return IngestResult(0, 0, 0, [])
    batches = _Batches(ctx, ctx.session.record_typer(record_schema), table, quarantine)
    try:
        for index, file in enumerate(files):
            batches.add_file(index, file)
        batches.flush()
    finally:
        batches.close()
        for source in sorted({f.source for f in files}):
            wait_landed(ctx.lake.root, source)  # before the raw table made of them is published
    total = batches.accepted + batches.quarantined
    if total == 0:
        return IngestResult(0, 0, 0, [])  # only empty files (they are looked at again next run)
    result = IngestResult(total, batches.accepted, batches.quarantined, [f.path for f in files])
    for name, value in result.as_metrics().items():
        ctx.metric(name, ctx.metrics.get(name, 0) + value)
    if batches.unreadable:
        ctx.metric("unreadable_files", ctx.metrics.get("unreadable_files", 0) + batches.unreadable)
    ctx.log.info(
        "ingested %d records from %d files: %d accepted, %d quarantined",
        result.input, len(files), result.accepted, result.quarantined,
    )
    return result


class _Batches:
    """Records gathered a batch at a time by the engine's typer, typed, then added to the raw
    and quarantine tables: memory holds one batch, not the whole delivery."""

    def __init__(self, ctx: TaskContext, typer: RecordTyper, table: str, quarantine: str | None) -> None:
        self.ctx, self.typer, self.table, self.quarantine = ctx, typer, table, quarantine
        self.pending, self.accepted, self.quarantined, self.unreadable = 0, 0, 0, 0
        self.read_since = time.perf_counter()

    def add_file(self, index: int, file: LandedFile) -> None:
        path = file.absolute(self.ctx.lake.root)
        problem = gzip_problem(path) if is_gzip(path) else None
        if problem is not None:  # quarantined whole; the rest of the delivery goes on
            self.ctx.log.warning("%s: quarantined as a whole: %s", file.name, problem)
            self.typer.add_unreadable(index, file.ingest_date, file.name, problem)
            self.unreadable += 1
            return
        for gathered in self.typer.add_file(index, path, file.ingest_date, file.name):
            self.pending += gathered
            if self.pending >= BATCH_BYTES:
                self.flush()

    def flush(self) -> None:
        """Type the gathered records and add them to the raw and quarantine tables this task
        writes."""
        self.pending, started = 0, time.perf_counter()
        valid, invalid = self.typer.type_batch()
        if valid + invalid == 0:
            return  # blank lines only
        write = {"partition_by": KEYS, "con": self.typer.native, "append": True}
        typed = time.perf_counter()
        self.accepted += self.ctx.write(self.table, self.typer.accepted_sql(), **write) or 0
        if self.quarantine is not None:
            self.ctx.write(self.quarantine, self.typer.quarantined_sql(), **write)
        self.quarantined += invalid
        self.ctx.log.info(
            "batch of %d records: typed in %.2f s, written in %.2f s (read before: %.2f s)",
            valid + invalid, typed - started, time.perf_counter() - typed, started - self.read_since,
        )
        self.read_since = time.perf_counter()

    def close(self) -> None:
        self.typer.close()


def write_empty(ctx: TaskContext, *, table: str, schema: Mapping[str, str], rename: Mapping[str, str] | None = None) -> None:
    """Create ``table`` with the columns an ingestion of ``schema`` gives and no rows, so SQL
    and checks downstream can read it before the first file arrives."""
    typer = ctx.session.record_typer(RecordSchema.of(schema, rename=rename))
    try:
        ctx.write(table, typer.empty_sql(), partition_by=KEYS, con=typer.native)
    finally:
        typer.close()


def land_and_pending(
    ctx: TaskContext, source: str, delivered: Sequence[Path], *, table: str, quarantine: str | None = None
) -> list[LandedFile]:
    """Land newly delivered files, and return every landed file not yet ingested into
    ``table`` (nor wholly quarantined): a run that died after landing is finished next time."""
    from daglake.lake.landing import land, manifest
    from daglake.lake.tables import lake_table, partitions

    lake_root = ctx.lake.root
    # the new files are made durable and recorded while they are read: ingest_json waits
    new, repeated = land(
        lake_root, source, delivered, ingest_date=ctx.logical_date, run_id=ctx.run_id, wait=False
    )
    ctx.log.info("landed %d new files", len(new))
    if repeated:
        ctx.log.info("%d delivered files were landed before (same checksum): skipped", len(repeated))
    done: set[str] = set()
    for name in filter(None, (table, quarantine)):
        assert name is not None
        done.update(partitions(lake_table(lake_root, name)))
    landed = {f.path: f for f in [*manifest(lake_root, source), *new]}  # (the recording may be done)
    return [
        f for f in landed.values()
        if f"ingest_date={f.ingest_date}/source_file={f.name}" not in done
    ]

__all__ = ["DECLARED_TYPES", "IngestResult", "Rule", "ingest_json", "land_and_pending", "snake_case", "write_empty"]
