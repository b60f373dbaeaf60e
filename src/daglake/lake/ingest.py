"""Typed ingestion of JSON files: valid records into a raw table, every invalid one into
quarantine with its reason, its file and its position, so ``input = accepted + quarantined``.

DuckDB does the work, streaming: each file is read as raw lines (NDJSON) or array elements,
parsed and checked in SQL, and written once to a staging Parquet file that the accepted and
quarantined rows are then split from. Memory does not grow with file size.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.lake.landing import LandedFile
from daglake.lake.tables import quote_identifier, quote_literal

if TYPE_CHECKING:
    from daglake.context import TaskContext

# declared type -> (DuckDB type, JSON types accepted for it)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "STRING": ("VARCHAR", ("VARCHAR",)),
    "INT64": ("BIGINT", ("BIGINT", "UBIGINT")),
    "FLOAT64": ("DOUBLE", ("BIGINT", "UBIGINT", "DOUBLE")),
    "NUMERIC": ("DECIMAL(38, 9)", ("BIGINT", "UBIGINT", "DOUBLE")),
    "BOOL": ("BOOLEAN", ("BOOLEAN",)),
    "TIMESTAMP": ("TIMESTAMPTZ", ("VARCHAR",)),
    "DATE": ("DATE", ("VARCHAR",)),
}
BAD_JSON = "bad JSON"


@dataclass(frozen=True)
class Rule:
    """A check on the typed record: rows where ``sql`` (DuckDB SQL) is not true are quarantined."""

    reason: str
    sql: str


@dataclass
class IngestResult:
    input: int
    accepted: int
    quarantined: int
    files: list[str]

    def as_metrics(self) -> dict[str, int]:
        return {"input": self.input, "accepted": self.accepted, "quarantined": self.quarantined}


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


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
    unknown = {t for t in schema.values() if t.upper() not in TYPES}
    if unknown:
        raise ValueError(f"unknown types {sorted(unknown)} (known: {', '.join(TYPES)})")
    names = {field: (rename or {}).get(field, snake_case(field)) for field in schema}
    empty = IngestResult(0, 0, 0, [])
    if not files:
        return empty
    lake_root = ctx.lake.root
    sources = [_source_sql(ctx, file, lake_root) for file in files]
    parsed = _parse_sql(" UNION ALL ".join(sources), schema, names, optional, rules)
    staging = lake_root / ".ingest" / f"{secrets.token_hex(8)}.parquet"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        ctx.con.execute(f"COPY ({parsed}) TO {quote_literal(str(staging))} (FORMAT parquet)")
        staged = f"read_parquet({quote_literal(str(staging))})"
        columns = ", ".join(quote_identifier(n) for n in names.values())
        keys = "ingest_date, source_file"
        accepted = ctx.write(
            table,
            f"SELECT {columns}, {keys}, source_position FROM {staged} WHERE reason IS NULL",
            partition_by=["ingest_date", "source_file"],
        )
        quarantined = 0
        if quarantine is not None:
            quarantined = ctx.write(
                quarantine,
                f"SELECT {keys}, source_position, reason, record FROM {staged} WHERE reason IS NOT NULL",
                partition_by=["ingest_date", "source_file"],
            ) or 0
        counts = ctx.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {staged}"
        ).fetchone()
    finally:
        staging.unlink(missing_ok=True)
    total, valid = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    if quarantine is None:
        quarantined = total - valid
    result = IngestResult(total, int(accepted or valid), quarantined, [f.path for f in files])
    for name, value in result.as_metrics().items():
        ctx.metric(name, ctx.metrics.get(name, 0) + value)
    ctx.log.info(
        "ingested %d records from %d files: %d accepted, %d quarantined",
        result.input, len(files), result.accepted, result.quarantined,
    )
    return result


def _source_sql(ctx: TaskContext, file: LandedFile, lake_root: Path) -> str:
    """``(ingest_date, source_file, source_position, record)`` for every record of one file."""
    path = file.absolute(lake_root)
    meta = f"{quote_literal(file.ingest_date)}::DATE AS ingest_date, {quote_literal(file.name)} AS source_file"
    if not _is_array(path):
        lines = (
            f"read_csv({quote_literal(str(path))}, columns = {{'record': 'VARCHAR'}}, delim = '\x1f', "
            "quote = '', escape = '', header = false, auto_detect = false, max_line_size = 67108864)"
        )
        # positions are 1-based line numbers; DuckDB keeps a file's row order
        return (
            f"SELECT {meta}, source_position, record FROM (SELECT row_number() OVER () AS source_position, "
            f"record FROM {lines}) WHERE trim(record) <> ''"
        )
    if not _parses_as_array(path):  # a malformed array: split it in Python, keeping what parses
        return _register_elements(ctx, path, meta)
    return (
        f"SELECT {meta}, row_number() OVER () AS source_position, json::VARCHAR AS record "
        f"FROM read_json_objects({quote_literal(str(path))}, format = 'array')"
    )


def _parses_as_array(path: Path) -> bool:
    """Checked on a separate connection: a failed query would abort the task's transaction."""
    import duckdb

    with duckdb.connect() as probe:
        try:
            probe.execute(f"SELECT count(*) FROM read_json_objects({quote_literal(str(path))}, format = 'array')")
        except duckdb.Error:
            return False
    return True


def _is_array(path: Path) -> bool:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head: bytes = handle.read(4096).lstrip()
    return head.startswith(b"[")


def _register_elements(ctx: TaskContext, path: Path, meta: str) -> str:
    import pyarrow as pa

    positions, records = [], []
    for position, record in split_array(path):
        positions.append(position)
        records.append(record)
    name = f"_daglake_elements_{secrets.token_hex(4)}"
    ctx.con.register(name, pa.table({"source_position": positions, "record": records}))
    return f"SELECT {meta}, source_position, record FROM {name}"


def split_array(path: Path) -> list[tuple[int, str]]:
    """Elements of a JSON array that may be malformed: each well-formed element as its text;
    from the first bad one, the rest of the file as one record (it fails as bad JSON)."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    found: list[tuple[int, str]] = []
    position = 0
    while index < len(text):
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            break
        position += 1
        try:
            _, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            found.append((position, text[index:].rstrip().rstrip("]")))
            break
        found.append((position, text[index:end]))
        index = end
    return found


def _parse_sql(
    source: str,
    schema: Mapping[str, str],
    names: Mapping[str, str],
    optional: Sequence[str],
    rules: Sequence[Rule],
) -> str:
    """Typed columns plus the first reason (if any) each record is invalid."""
    typed, checks = [], [f"WHEN NOT json_valid(record) THEN '{BAD_JSON}'", "WHEN json_type(j) <> 'OBJECT' THEN 'not a JSON object'"]
    for field, declared in schema.items():
        duck, json_types = TYPES[declared.upper()]
        path = quote_literal("$." + json.dumps(field))
        kind = f"json_type(j, {path})"
        text = f"json_extract_string(j, {path})"
        value = f"TRY_CAST({text} AS {duck})"
        typed.append(f"{value} AS {quote_identifier(names[field])}")
        label = field.replace("'", "''")
        if field not in optional:
            checks.append(f"WHEN {kind} IS NULL OR {kind} = 'NULL' THEN 'missing field {label}'")
        allowed = ", ".join(quote_literal(t) for t in json_types)
        checks.append(
            f"WHEN {kind} NOT IN ({allowed}, 'NULL') THEN 'field {label}: expected {declared.upper()}, got ' || lower({kind})"
        )
        checks.append(
            f"WHEN {text} IS NOT NULL AND {value} IS NULL THEN 'field {label}: not a valid {declared.upper()}: ' || {text}"
        )
    reason = "CASE " + " ".join(checks) + " END"
    rows = (
        f"SELECT ingest_date, source_file, source_position, record, j, {reason} AS reason, "
        + ", ".join(typed)
        + f" FROM (SELECT *, CASE WHEN json_valid(record) THEN record::JSON END AS j FROM ({source}))"
    )
    if not rules:
        return f"SELECT * EXCLUDE (j) FROM ({rows})"
    rule_checks = " ".join(f"WHEN NOT coalesce(({r.sql}), false) THEN {quote_literal(r.reason)}" for r in rules)
    return (
        f"SELECT * EXCLUDE (j, reason), coalesce(reason, CASE {rule_checks} END) AS reason "
        f"FROM ({rows})"
    )


def land_and_pending(
    ctx: TaskContext, source: str, delivered: Sequence[Path], *, table: str, quarantine: str | None = None
) -> list[LandedFile]:
    """Land newly delivered files, and return every landed file not yet ingested into
    ``table`` (nor wholly quarantined): a run that died after landing is finished next time."""
    from daglake.lake.landing import land, manifest
    from daglake.lake.tables import lake_table, partitions

    lake_root = ctx.lake.root
    new, repeated = land(lake_root, source, delivered, ingest_date=ctx.logical_date, run_id=ctx.run_id)
    ctx.log.info("landed %d new files", len(new))
    if repeated:
        ctx.log.info("%d delivered files were landed before (same checksum): skipped", len(repeated))
    done: set[str] = set()
    for name in filter(None, (table, quarantine)):
        assert name is not None
        done.update(partitions(lake_table(lake_root, name)))
    return [
        f for f in manifest(lake_root, source)
        if f"ingest_date={f.ingest_date}/source_file={f.name}" not in done
    ]
