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
import shutil
from collections.abc import Iterator, Mapping, Sequence
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
_INTEGER = r"-?(0|[1-9][0-9]*)"
_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?"
NDJSON_SUFFIXES = (".jsonl", ".ndjson")


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
    staging = lake_root / ".ingest" / secrets.token_hex(8)
    staging.mkdir(parents=True)
    # Parsing into staging files changes nothing in the database, so it runs on a connection of
    # its own: inside the task's transaction DuckDB would hold every chunk until the commit.
    stager = ctx.con.cursor()
    try:
        stager.execute("SET TimeZone = 'UTC'")
        for number, file in enumerate(files):
            for part, source in enumerate(_sources(stager, file, lake_root)):
                parsed = _parse_sql(source, schema, names, optional, rules)
                target = staging / f"{number:06d}-{part:06d}.parquet"
                stager.execute(f"COPY ({parsed}) TO {quote_literal(str(target))} (FORMAT parquet)")
        stager.close()
        if not any(staging.iterdir()):
            return empty  # only empty files: no records (they are looked at again next run)
        staged = f"read_parquet({quote_literal(str(staging / '*.parquet'))})"
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
        stager.close()
        shutil.rmtree(staging, ignore_errors=True)
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


CHUNK_BYTES = 64 << 20  # NDJSON is parsed in pieces of about this size: memory stays flat


def _sources(con: Any, file: LandedFile, lake_root: Path) -> Iterator[str]:
    """SQL giving ``(ingest_date, source_file, source_position, record)`` for a file's records,
    one query per piece: NDJSON in chunks with 1-based line numbers, an array by element."""
    path = file.absolute(lake_root)
    meta = f"{quote_literal(file.ingest_date)}::DATE AS ingest_date, {quote_literal(file.name)} AS source_file"
    if not _is_array(path):
        for chunk in _line_chunks(path):
            name = f"_daglake_lines_{secrets.token_hex(4)}"
            con.register(name, chunk)
            try:
                yield f"SELECT {meta}, source_position, record FROM {name} WHERE trim(record) <> ''"
            finally:
                con.unregister(name)
        return
    if not _parses_as_array(path):  # a malformed array: split it in Python, keeping what parses
        yield _register_elements(con, path, meta)
        return
    yield (
        f"SELECT {meta}, row_number() OVER () AS source_position, json::VARCHAR AS record "
        f"FROM read_json_objects({quote_literal(str(path))}, format = 'array')"
    )


def _line_chunks(path: Path) -> Iterator[Any]:
    """Arrow tables of ``(source_position, record)``, lines read by Arrow's CSV reader (every
    line one field: no delimiter or quote can occur in it), counted as they stream by."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if _is_empty(path):
        return  # no records (and Arrow refuses an empty CSV)
    stream = pa.input_stream(str(path), compression="gzip" if path.suffix == ".gz" else None)
    reader = pcsv.open_csv(
        stream,
        read_options=pcsv.ReadOptions(column_names=["record"], block_size=8 << 20, use_threads=False),
        parse_options=pcsv.ParseOptions(
            delimiter="\x1f", quote_char=False, escape_char=False, ignore_empty_lines=False
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={"record": pa.string()}, strings_can_be_null=False
        ),
    )
    offset = 0
    pending: list[Any] = []
    size = 0
    for batch in reader:  # (an empty file has no lines and yields nothing)
        count = batch.num_rows
        positions = pa.array(range(offset + 1, offset + count + 1), pa.int64())
        pending.append(pa.RecordBatch.from_arrays([positions, batch.column(0)], ["source_position", "record"]))
        offset += count
        size += batch.nbytes
        if size >= CHUNK_BYTES:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _parses_as_array(path: Path) -> bool:
    """Checked on a separate connection: a failed query would abort the task's transaction."""
    import duckdb

    with duckdb.connect() as probe:
        try:
            probe.execute(f"SELECT count(*) FROM read_json_objects({quote_literal(str(path))}, format = 'array')")
        except duckdb.Error:
            return False
    return True


def _is_empty(path: Path) -> bool:
    if path.suffix != ".gz":
        return path.stat().st_size == 0
    with gzip.open(path, "rb") as handle:
        return not handle.read(1)


def _is_array(path: Path) -> bool:
    """``.jsonl``/``.ndjson`` are one object per line whatever they start with; a ``.json``
    file is an array when it opens with ``[``."""
    name = path.name.removesuffix(".gz")
    if name.endswith(NDJSON_SUFFIXES):
        return False
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head: bytes = handle.read(4096).lstrip()
    return head.startswith(b"[")


def _register_elements(con: Any, path: Path, meta: str) -> str:
    import pyarrow as pa

    positions, records = [], []
    for position, record in split_array(path):
        positions.append(position)
        records.append(record)
    name = f"_daglake_elements_{secrets.token_hex(4)}"
    con.register(name, pa.table({"source_position": positions, "record": records}))
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
    """Typed columns plus the first reason (if any) each record is invalid.

    Each record is parsed once (``json_extract`` of every field's path into a list of JSON
    texts); types are then judged on those small texts with casts and string tests, which
    is several times faster than asking the JSON parser field by field."""
    fields = list(schema)
    paths = "[" + ", ".join(quote_literal("$." + json.dumps(f)) for f in fields) + "]"
    values, checks = [], [f"WHEN NOT ok THEN '{BAD_JSON}'", "WHEN NOT is_object THEN 'not a JSON object'"]
    for index, field in enumerate(fields, start=1):
        declared = schema[field].upper()
        duck = TYPES[declared][0]
        raw = f"l[{index}]"
        present = f"({raw} IS NOT NULL AND {raw} <> 'null')"
        if declared in ("STRING", "TIMESTAMP", "DATE"):
            text = f"CASE WHEN starts_with({raw}, '\"') THEN {raw}->>'$' END"
            value = text if declared == "STRING" else f"TRY_CAST({text} AS {duck})"
            wrong_type = f"NOT starts_with({raw}, '\"')"
        elif declared == "BOOL":
            value = f"CASE {raw} WHEN 'true' THEN true WHEN 'false' THEN false END"
            wrong_type = f"{value} IS NULL"
        else:  # a JSON number, not a string or a boolean a cast would accept
            number = _INTEGER if declared == "INT64" else _NUMBER
            wrong_type = f"NOT regexp_full_match({raw}, '{number}')"
            value = f"CASE WHEN NOT {wrong_type} THEN TRY_CAST({raw} AS {duck}) END"
        column = quote_identifier(names[field])
        values.append(f"{value} AS {column}")
        label = field.replace("'", "''")
        if field not in optional:
            checks.append(f"WHEN NOT {present} THEN 'missing field {label}'")
        checks.append(
            f"WHEN {present} AND {wrong_type} THEN "
            f"'field {label}: expected {declared}, got ' || lower(json_type({raw}))"
        )
        if declared in ("TIMESTAMP", "DATE"):
            checks.append(
                f"WHEN {present} AND {column} IS NULL THEN 'field {label}: not a valid {declared}: ' || ({raw}->>'$')"
            )
    parsed = (
        f"SELECT *, CASE WHEN ok THEN json_extract(record, {paths}) END AS l, "
        "ok AND starts_with(ltrim(record), '{') AS is_object "
        f"FROM (SELECT *, json_valid(record) AS ok FROM ({source}))"
    )
    typed = f"SELECT *, {', '.join(values)} FROM ({parsed})"
    reason = "CASE " + " ".join(checks) + " END"
    if rules:
        rule_checks = " ".join(f"WHEN NOT coalesce(({r.sql}), false) THEN {quote_literal(r.reason)}" for r in rules)
        reason = f"coalesce({reason}, CASE {rule_checks} END)"
    judged = f"SELECT * EXCLUDE (l, ok, is_object), {reason} AS reason FROM ({typed})"
    # the record's text is kept only where it is quarantined: staging stays small
    return f"SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN record END AS record) FROM ({judged})"


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
