"""Typed ingestion of JSON files: valid records into a raw table, every invalid one into
quarantine with its reason, its file and its position, so ``input = accepted + quarantined``.

DuckDB does the work on a connection of its own: the files' records (with their positions) are
gathered in a temporary table a batch at a time, typed in parallel into another, and the
accepted and quarantined rows are written from there, each table once. Only the invalid rows
are judged a second time, to name their problem (:mod:`daglake.lake.json_typing`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daglake.lake.json_typing import NOT_BLANK, TYPES, RecordSchema, Rule, snake_case
from daglake.lake.landing import LandedFile, wait_landed
from daglake.lake.records import careful_records, records_sql

if TYPE_CHECKING:
    from daglake.context import TaskContext

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
    ``ingest_date`` and ``source_file``, so re-ingesting a file replaces exactly its rows.
    """
    record_schema = RecordSchema.of(schema, optional, rules, rename)
    files = list({f.path: f for f in files}.values())  # a file listed twice is read once
    if not files:
        return IngestResult(0, 0, 0, [])
    # Parsing changes nothing in the database, so it runs on a connection of its own: inside
    # the task's transaction DuckDB would hold every batch until the commit.
    batches = _Batches(ctx, record_schema, table, quarantine)
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
    ctx.log.info(
        "ingested %d records from %d files: %d accepted, %d quarantined",
        result.input, len(files), result.accepted, result.quarantined,
    )
    return result


class _Batches:
    """Records gathered a batch at a time in temporary tables of their own connection
    (``lines``, untyped, in file order), typed in parallel (``typed``), then added to the raw
    and quarantine tables: memory holds one batch, not the whole delivery."""

    def __init__(self, ctx: TaskContext, schema: RecordSchema, table: str, quarantine: str | None) -> None:
        self.ctx, self.schema, self.table, self.quarantine = ctx, schema, table, quarantine
        self.con = ctx.con.cursor()
        self.pending, self.accepted, self.quarantined = 0, 0, 0
        self.read_since = time.perf_counter()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("CREATE TEMP TABLE files (file_index INTEGER, ingest_date DATE, source_file VARCHAR)")
        self.con.execute(
            "CREATE TEMP TABLE lines (file_index INTEGER, source_position BIGINT, record VARCHAR, problem VARCHAR)"
        )

    def add_file(self, index: int, file: LandedFile) -> None:
        import duckdb

        self.con.execute("INSERT INTO files VALUES (?, ?, ?)", [index, file.ingest_date, file.name])
        path = file.absolute(self.ctx.lake.root)
        try:  # DuckDB reads a whole file in one statement: a refusal inserts nothing
            self._insert(index, f"({records_sql(path)})", "NULL")
            self.pending += path.stat().st_size
        except duckdb.Error:  # not UTF-8, mixed line endings, a malformed array
            for part in careful_records(path):
                name = f"_daglake_records_{secrets.token_hex(4)}"
                self.con.register(name, part)
                try:
                    self._insert(index, name, "problem")
                finally:
                    self.con.unregister(name)
                self.pending += part.nbytes
                if self.pending >= BATCH_BYTES:
                    self.flush()
        if self.pending >= BATCH_BYTES:
            self.flush()

    def _insert(self, index: int, source: str, problem: str) -> None:
        self.con.execute(f"INSERT INTO lines SELECT {index}, source_position, record, {problem} FROM {source}")

    def flush(self) -> None:
        """Type the gathered records in parallel (a table scan, unlike the ordered reads) and
        add them to the raw and quarantine tables this task writes."""
        self.pending, started = 0, time.perf_counter()
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {self.schema.typed_sql('lines')}")
        self.con.execute("DELETE FROM lines")
        row = self.con.execute(
            f"SELECT count(*) FILTER (WHERE valid), count(*) FILTER (WHERE NOT valid AND {NOT_BLANK}) FROM typed"
        ).fetchone()
        valid, invalid = (int(row[0]), int(row[1])) if row else (0, 0)
        if valid + invalid == 0:
            return  # blank lines only
        write = {"partition_by": KEYS, "con": self.con, "append": True}
        typed = time.perf_counter()
        self.accepted += self.ctx.write(self.table, self._accepted_sql(), **write) or 0
        if self.quarantine is not None:
            self.ctx.write(self.quarantine, self._quarantined_sql(), **write)
        self.quarantined += invalid
        self.ctx.log.info(
            "batch of %d records: typed in %.2f s, written in %.2f s (read before: %.2f s)",
            valid + invalid, typed - started, time.perf_counter() - typed, started - self.read_since,
        )
        self.read_since = time.perf_counter()

    def _accepted_sql(self) -> str:
        columns = ", ".join(f"t.{c}" for c in self.schema.columns)
        return (
            f"SELECT {columns}, f.ingest_date, f.source_file, t.source_position "
            "FROM typed t JOIN files f USING (file_index) WHERE t.valid"
        )

    def _quarantined_sql(self) -> str:
        judged = self.schema.reason_sql("SELECT * FROM typed")
        return (
            "SELECT f.ingest_date, f.source_file, q.source_position, q.reason, q.record "
            f"FROM ({judged}) q JOIN files f USING (file_index)"
        )

    def close(self) -> None:
        self.con.close()  # its temporary tables go with it


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

__all__ = ["TYPES", "IngestResult", "Rule", "ingest_json", "land_and_pending", "snake_case"]
