"""JSON records typed by DuckDB against a declared schema, in two passes.

Every record goes through a fast pass: one parse (``json_extract`` of every field into a list of
JSON texts), typed values from cheap string tests and casts, and one ``valid`` flag. Only the
records found invalid (usually a small share) go through the second pass, which re-parses them
and names the first problem: bad JSON, not an object, a missing field, a value of the wrong
JSON type or out of range, an unparseable time, or a failed rule.

:class:`DuckDBRecordTyper` gathers a delivery's records in temporary tables of a connection of
its own, a batch at a time; :mod:`daglake.lake.ingest` drives it and writes the results.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from daglake.engines.base import RecordTyper
from daglake.lake.json_schema import (
    BAD_JSON,
    BAD_OFFSET,
    DATE_PATTERN,
    INVALID,
    NOT_OBJECT,
    TIMESTAMP_PATTERN,
    RecordSchema,
)
from daglake.lake.records import WHOLE_FILE, careful_records, is_array
from daglake.lake.tables import quote_identifier, quote_literal

# declared type -> (DuckDB type, DuckDB's json_type() names accepted for it)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "STRING": ("VARCHAR", ("VARCHAR",)),
    "INT64": ("BIGINT", ("BIGINT", "UBIGINT")),
    "FLOAT64": ("DOUBLE", ("BIGINT", "UBIGINT", "DOUBLE")),
    "NUMERIC": ("DECIMAL(38, 9)", ("BIGINT", "UBIGINT", "DOUBLE")),
    "BOOL": ("BOOLEAN", ("BOOLEAN",)),
    "TIMESTAMP": ("TIMESTAMPTZ", ("VARCHAR",)),
    "DATE": ("DATE", ("VARCHAR",)),
}
_LTRIM = "ltrim(record, ' ' || chr(9) || chr(13))"
NOT_BLANK = "(problem IS NOT NULL OR trim(record, ' ' || chr(9) || chr(13)) <> '')"  # a file unreadable as a whole has no text
LINE_DELIMITER = "'\x1f\x1e\x1d\x1c'"  # control characters a JSON text never holds raw
_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?"


class DuckDBRecordTyper(RecordTyper):
    """Records gathered in temporary tables of their own cursor (``lines``, untyped, in file
    order) and typed in parallel (``typed``): parsing changes nothing in the database, and
    inside the task's transaction DuckDB would hold every batch until the commit."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, schema: RecordSchema) -> None:
        self.schema = schema
        self.native = connection.cursor()
        self.native.execute("SET TimeZone = 'UTC'")
        self.native.execute("CREATE TEMP TABLE files (file_index INTEGER, ingest_date DATE, source_file VARCHAR)")
        self.native.execute(
            "CREATE TEMP TABLE lines (file_index INTEGER, source_position BIGINT, record VARCHAR, problem VARCHAR)"
        )

    def add_file(self, index: int, path: Path, ingest_date: Any, name: str) -> Iterator[int]:
        self.native.execute("INSERT INTO files VALUES (?, ?, ?)", [index, ingest_date, name])
        try:  # DuckDB reads a whole file in one statement: a refusal inserts nothing
            self._insert(index, f"({records_sql(path)})", "NULL")
            yield path.stat().st_size
        except duckdb.Error:  # not UTF-8, mixed line endings, a malformed array
            for part in careful_records(path):
                registered = f"_daglake_records_{secrets.token_hex(4)}"
                self.native.register(registered, part)
                try:
                    self._insert(index, registered, "problem")
                finally:
                    self.native.unregister(registered)
                yield part.nbytes

    def add_unreadable(self, index: int, ingest_date: Any, name: str, reason: str) -> None:
        self.native.execute("INSERT INTO files VALUES (?, ?, ?)", [index, ingest_date, name])
        self.native.execute("INSERT INTO lines VALUES (?, ?, NULL, ?)", [index, WHOLE_FILE, reason])

    def _insert(self, index: int, source: str, problem: str) -> None:
        self.native.execute(f"INSERT INTO lines SELECT {index}, source_position, record, {problem} FROM {source}")

    def type_batch(self) -> tuple[int, int]:
        self.native.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {typed_sql(self.schema, 'lines')}")
        self.native.execute("DELETE FROM lines")
        row = self.native.execute(
            f"SELECT count(*) FILTER (WHERE valid), count(*) FILTER (WHERE NOT valid AND {NOT_BLANK}) FROM typed"
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def accepted_sql(self) -> str:
        columns = ", ".join(f"t.{c}" for c in self.schema.columns)
        return (
            f"SELECT {columns}, f.ingest_date, f.source_file, t.source_position "
            "FROM typed t JOIN files f USING (file_index) WHERE t.valid"
        )

    def quarantined_sql(self) -> str:
        judged = reason_sql(self.schema, "SELECT * FROM typed")
        return (
            "SELECT f.ingest_date, f.source_file, q.source_position, q.reason, q.record "
            f"FROM ({judged}) q JOIN files f USING (file_index)"
        )

    def empty_sql(self) -> str:
        declared = self.schema.fields.values()
        columns = [f"CAST(NULL AS {TYPES[t][0]}) AS {c}" for t, c in zip(declared, self.schema.columns, strict=True)]
        columns += [
            "CAST(NULL AS DATE) AS ingest_date",
            "CAST(NULL AS VARCHAR) AS source_file",
            "CAST(NULL AS BIGINT) AS source_position",
        ]
        return f"SELECT {', '.join(columns)} WHERE false"

    def close(self) -> None:
        self.native.close()  # its temporary tables go with it


def records_sql(path: Path) -> str:
    """A DuckDB query giving the file's records as ``(source_position, record)``, in order;
    blank lines are included (numbered, then skipped by the caller).

    DuckDB's readers are fast and strict: they refuse text that is not UTF-8, a malformed
    array, or line endings that mix ``\\r\\n`` with ``\\n`` or a bare ``\\r`` (where their line
    numbers could differ from an editor's). When the query fails, read the file with
    :func:`careful_records`, which accepts anything."""
    if is_array(path):
        return (
            "SELECT row_number() OVER () AS source_position, json::VARCHAR AS record "
            f"FROM read_json_objects({quote_literal(str(path))}, format = 'array')"
        )
    # each line one field: no quoting, and a delimiter no JSON text contains
    return (
        "SELECT row_number() OVER () AS source_position, record FROM read_csv("
        f"{quote_literal(str(path))}, columns = {{'record': 'VARCHAR'}}, header = false, "
        f"auto_detect = false, quote = '', escape = '', delim = {LINE_DELIMITER}, "
        "strict_mode = true, max_line_size = 1073741824)"
    )


def _paths(schema: RecordSchema) -> str:
    return "[" + ", ".join(quote_literal("$." + json.dumps(f)) for f in schema.fields) + "]"

def typed_sql(schema: RecordSchema, lines: str) -> str:
    """``lines`` (``file_index, source_position, record, problem``) typed: the columns,
    ``valid``, and the record's text only where it is invalid (it is kept for quarantine);
    ``problem`` is what the reader found wrong with the text itself, if anything. A blank line is
    an invalid row here; :func:`reason_sql` leaves it out."""
    values, flags = [], []
    for index, field in enumerate(schema.fields, start=1):
        raw = f"l[{index}]"
        column = quote_identifier(schema.names[field])
        values.append(f"{_value_sql(schema.fields[field], raw)} AS {column}")
        fits = f"{column} IS NOT NULL"
        if field in schema.optional:
            fits = f"({raw} IS NULL OR {raw} = 'null' OR {fits})"
        flags.append(fits)
    flags += [f"coalesce(({rule.sql}), false)" for rule in schema.rules]
    # a key given twice: its first value counts (json_extract's rule; Spark follows it)
    valid = " AND ".join(["problem IS NULL", "l IS NOT NULL", f"starts_with({_LTRIM}, '{{')", *flags])
    parsed = (
        f"SELECT file_index, source_position, record, problem, "
        f"CASE WHEN json_valid(record) THEN json_extract(record, {_paths(schema)})::VARCHAR[] END AS l "
        f"FROM {lines}"
    )
    typed = f"SELECT *, {', '.join(values)} FROM ({parsed})"
    judged = f"SELECT * EXCLUDE (l), coalesce({valid}, false) AS valid FROM ({typed})"
    return f"SELECT * REPLACE (CASE WHEN NOT valid THEN record END AS record) FROM ({judged})"

def reason_sql(schema: RecordSchema, typed: str) -> str:
    """The invalid rows of ``typed`` (see :func:`typed_sql`) with the first problem of each;
    blank lines are not records."""
    checks = [
        "WHEN problem IS NOT NULL THEN problem",
        f"WHEN NOT json_valid(record) THEN '{BAD_JSON}'",
        f"WHEN NOT starts_with({_LTRIM}, '{{') THEN '{NOT_OBJECT}'",
    ]
    for index, field in enumerate(schema.fields, start=1):
        declared = schema.fields[field]
        raw = f"l[{index}]"
        column = quote_identifier(schema.names[field])
        label = field.replace("'", "''")
        present = f"({raw} IS NOT NULL AND {raw} <> 'null')"
        if field not in schema.optional:
            checks.append(f"WHEN NOT {present} THEN 'missing field {label}'")
        accepted = ", ".join(quote_literal(t) for t in TYPES[declared][1])
        checks.append(
            f"WHEN {present} AND json_type({raw}) NOT IN ({accepted}) THEN "
            f"'field {label}: expected {declared}, got ' || lower(json_type({raw}))"
        )
        if declared == "TIMESTAMP":  # say so when only the offset is wrong
            text = f"({raw}->>'$')"
            shape = f"regexp_full_match(regexp_replace({text}, '[+-][0-9][0-9]:[0-9][0-9]$', '+00:00'), {quote_literal(TIMESTAMP_PATTERN)})"
            message = (
                f"'field {label}: not a valid {declared}' || CASE WHEN {shape} AND NOT "
                f"regexp_full_match({text}, {quote_literal(TIMESTAMP_PATTERN)}) THEN ' ({BAD_OFFSET})' ELSE '' END "
                f"|| ': ' || {text}"
            )
        elif declared == "DATE":
            message = f"'field {label}: not a valid {declared}: ' || ({raw}->>'$')"
        elif declared == "INT64":
            message = f"'field {label}: not an INT64 (out of range or not a whole number): ' || {raw}"
        else:
            message = f"'field {label}: not a valid {declared}: ' || {raw}"
        checks.append(f"WHEN {present} AND {column} IS NULL THEN {message}")
    checks += [f"WHEN NOT coalesce(({r.sql}), false) THEN {quote_literal(r.reason)}" for r in schema.rules]
    reason = f"coalesce(CASE {' '.join(checks)} END, '{INVALID}')"
    parsed = (
        f"SELECT *, CASE WHEN json_valid(record) THEN json_extract(record, {_paths(schema)})::VARCHAR[] END AS l "
        f"FROM ({typed}) WHERE NOT valid AND {NOT_BLANK}"
    )
    return f"SELECT * EXCLUDE (l), {reason} AS reason FROM ({parsed})"


def _value_sql(declared: str, raw: str) -> str:
    """The typed value of one field's JSON text; NULL when it does not fit the declared type.

    The texts come from DuckDB's JSON writer: a string is quoted (escaped only when it has a
    backslash), a whole number has no ``.`` or exponent, a boolean is ``true``/``false``."""
    duck = TYPES[declared][0]
    text = (
        f"CASE WHEN starts_with({raw}, '\"') THEN "
        f"CASE WHEN contains({raw}, '\\') THEN {raw}->>'$' ELSE {raw}[2:-2] END END"
    )
    if declared == "STRING":
        return text
    if declared == "TIMESTAMP":  # RFC 3339 (lowercase t/z too); DuckDB's cast alone takes far more
        return f"CASE WHEN regexp_full_match({text}, {quote_literal(TIMESTAMP_PATTERN)}) THEN TRY_CAST(upper({text}) AS {duck}) END"
    if declared == "DATE":
        return f"CASE WHEN regexp_full_match({text}, {quote_literal(DATE_PATTERN)}) THEN TRY_CAST({text} AS {duck}) END"
    if declared == "BOOL":
        return f"CASE {raw} WHEN 'true' THEN true WHEN 'false' THEN false END"
    if declared == "INT64":  # a JSON number without fraction or exponent, in range
        whole = f"NOT (contains({raw}, '.') OR contains({raw}, 'e') OR contains({raw}, 'E'))"
        return f"CASE WHEN {whole} THEN TRY_CAST({raw} AS BIGINT) END"
    # FLOAT64 / NUMERIC: a JSON number, not a quoted string or a boolean a cast would accept
    number = f"regexp_full_match({raw}, '{_NUMBER}')"
    return f"CASE WHEN {number} THEN TRY_CAST({raw} AS {duck}) END"
