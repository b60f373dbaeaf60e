"""JSON records typed by DuckDB against a declared schema, in two passes.

Every record goes through a fast pass, as DuckDB reads the file: one parse (``from_json`` into
native values for a record in canonical form, else of every field into its JSON text, typed by
cheap string tests and casts; see :func:`typed_sql`) and one ``valid`` flag. Only the
records found invalid (usually a small share) go through the second pass, which re-parses them
and names the first problem: bad JSON, not an object, a missing field, a value of the wrong
JSON type or out of range, an unparseable time, or a failed rule.

:class:`DuckDBRecordTyper` types each file of a delivery into a temporary table of a connection
of its own, a batch of files at a time; :mod:`daglake.lake.ingest` drives it and writes the results.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
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
from daglake.lake.tables import PartitionedQuery, quote_identifier, quote_literal

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
_WHITESPACE = "' ' || chr(9) || chr(13)"
_LTRIM = f"ltrim(record, {_WHITESPACE})"
NOT_BLANK = "(problem IS NOT NULL OR trim(record, ' ' || chr(9) || chr(13)) <> '')"  # a file unreadable as a whole has no text
LINE_DELIMITER = "'\x1f\x1e\x1d\x1c'"  # control characters a JSON text never holds raw
_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?"


class DuckDBRecordTyper(RecordTyper):
    """Each file typed in parallel as DuckDB reads it, into a temporary table of its own cursor
    (``CREATE TABLE AS`` keeps the file's order, so a line's number is its row's ``rowid + 1``):
    the text is read once, parsing changes nothing in the database, and inside the task's
    transaction DuckDB would hold every batch until the commit."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, schema: RecordSchema) -> None:
        self.schema = schema
        self.native = connection.cursor()
        self.native.execute("SET TimeZone = 'UTC'")
        self.gathered: list[_Typed] = []  # typed since the last batch
        self.batch: list[_Typed] = []  # the batch the accepted and quarantined queries read
        self.made = 0

    def add_file(self, index: int, path: Path, ingest_date: Any, name: str) -> Iterator[int]:
        table = self._table(ingest_date, name)
        try:  # DuckDB reads a whole file in one statement: a refusal creates nothing
            if not is_array(path):
                self._create(table, f"({lines_sql(path)})")
            elif not self._array_by_lines(table, path):
                self._create(table, f"({elements_sql(path)})")
            yield path.stat().st_size
        except duckdb.Error:  # not UTF-8, mixed line endings, a malformed array, a huge line
            self.gathered.remove(table)
            for part in careful_records(path):
                table = self._table(ingest_date, name)
                registered = f"_daglake_records_{secrets.token_hex(4)}"
                self.native.register(registered, part)
                try:
                    self._create(table, registered)
                finally:
                    self.native.unregister(registered)
                yield part.nbytes

    def _array_by_lines(self, table: _Typed, path: Path) -> bool:
        """Type an array of one element per line (``[``, the elements each followed by a comma
        but the last, ``]``: how most programs write a large array) as lines, in parallel,
        element ``n`` being line ``n + 1``. False, having typed nothing, for any other shape
        (an element over several lines, a blank line inside): DuckDB's array reader then reads
        it, on one thread.

        A line that is a whole JSON value closes every bracket it opens, so it cannot be the
        start of an element spread over lines: when every line between the brackets is one,
        the lines are the elements."""
        try:
            self._create(table, f"({array_lines_sql(path)})")
        except duckdb.Error:
            return False
        row = self.native.execute(array_shape_sql(table.name)).fetchone()
        if not row or not row[1]:
            self.native.execute(f"DROP TABLE {table.name}")
            return False
        self.native.execute(f"DELETE FROM {table.name} WHERE rowid = 0 OR rowid >= {int(row[0])}")
        table.first_rowid = 1  # line 1 is the opening bracket: element n is the row of rowid n
        table.record = f"trim(record, {_WHITESPACE})"  # the blanks around it the array reader drops
        return True

    def add_unreadable(self, index: int, ingest_date: Any, name: str, reason: str) -> None:
        self._create(
            self._table(ingest_date, name),
            f"(SELECT {WHOLE_FILE}::BIGINT AS source_position, NULL::VARCHAR AS record, {quote_literal(reason)} AS problem)",
        )

    def _table(self, ingest_date: Any, name: str) -> _Typed:
        self.made += 1
        typed = _Typed(f"_daglake_typed_{self.made}", str(ingest_date), name)
        self.gathered.append(typed)
        return typed

    def _create(self, table: _Typed, source: str) -> None:
        self.native.execute(f"CREATE TEMP TABLE {table.name} AS {typed_sql(self.schema, source)}")

    def type_batch(self) -> tuple[int, int]:
        for typed in self.batch:
            self.native.execute(f"DROP TABLE IF EXISTS {typed.name}")
        self.batch, self.gathered = self.gathered, []
        for typed in self.batch:
            row = self.native.execute(
                f"SELECT count(*) FILTER (WHERE valid), count(*) FILTER (WHERE NOT valid AND {NOT_BLANK}) "
                f"FROM {typed.name}"
            ).fetchone()
            typed.valid, typed.invalid = (int(row[0]), int(row[1])) if row else (0, 0)
        return sum(t.valid for t in self.batch), sum(t.invalid for t in self.batch)

    def _rows(self, typed: _Typed, columns: str, where: str) -> str:
        position = f"coalesce(source_position, rowid + {1 - typed.first_rowid}) AS source_position"
        return f"SELECT {columns.replace('{record}', typed.record)}, {position} FROM {typed.name} WHERE {where}"

    def _partitioned(self, rows: dict[str, str], columns: str, part: str) -> PartitionedQuery:
        """The batch's rows (``rows``: each file's, without its partition columns), and each
        file's apart, as ``part`` selects them, for its ``ingest_date`` and ``source_file``
        partition. Files without rows have no part (and no partition)."""
        whole = " UNION ALL ".join(
            f"SELECT *, CAST({quote_literal(t.ingest_date)} AS DATE) AS ingest_date, "
            f"{quote_literal(t.source_file)} AS source_file FROM ({rows[t.name]})"
            for t in self.batch
            if t.name in rows
        )
        parts = [
            ({"ingest_date": t.ingest_date, "source_file": t.source_file}, part.format(rows=rows[t.name]))
            for t in self.batch
            if t.name in rows
        ]
        return PartitionedQuery(f"SELECT {columns} FROM ({whole})", parts)

    def accepted_sql(self) -> str:
        columns = ", ".join(self.schema.columns)
        rows = {t.name: self._rows(t, columns, "valid") for t in self.batch if t.valid}
        if not rows:  # the columns, no rows
            rows = {self.batch[0].name: self._rows(self.batch[0], columns, "false")}
        query = self._partitioned(rows, f"{columns}, ingest_date, source_file, source_position", "{rows}")
        return query if any(t.valid for t in self.batch) else PartitionedQuery(query, [])

    def quarantined_sql(self) -> str:
        columns = ", ".join(["{record} AS record", "problem", "valid", *self.schema.columns])
        invalid = f"NOT valid AND {NOT_BLANK}"
        judged = {t.name: reason_sql(self.schema, self._rows(t, columns, invalid)) for t in self.batch if t.invalid}
        if not judged:
            judged = {self.batch[0].name: reason_sql(self.schema, self._rows(self.batch[0], columns, "false"))}
        query = self._partitioned(
            judged,
            "ingest_date, source_file, source_position, reason, record",
            "SELECT source_position, reason, record FROM ({rows})",
        )
        return query if any(t.invalid for t in self.batch) else PartitionedQuery(query, [])

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


@dataclass
class _Typed:
    """A temporary table of typed records of one file (or of one piece of it)."""

    name: str
    ingest_date: str
    source_file: str
    first_rowid: int = 0  # the rowid of position 1 (a row without a position has its own)
    record: str = "record"  # a quarantined record's text
    valid: int = 0
    invalid: int = 0


def lines_sql(path: Path) -> str:
    """A DuckDB query giving the lines of an NDJSON file as ``(source_position, record,
    problem)``, in order, blank lines included (skipped by the caller); the position is NULL:
    a line's number is its row's ``rowid + 1`` in the table made from the query.

    DuckDB's readers are fast and strict: they refuse text that is not UTF-8, a malformed
    array, a line longer than ``max_line_size`` (kept at its default: a larger one makes the
    reader single-threaded), or line endings that mix ``\\r\\n`` with ``\\n`` or a bare
    ``\\r`` (where their line numbers could differ from an editor's). When the query fails,
    read the file with :func:`careful_records`, which accepts anything."""
    # each line one field: no quoting, and a delimiter no JSON text contains
    return (
        "SELECT NULL::BIGINT AS source_position, record, NULL::VARCHAR AS problem FROM read_csv("
        f"{quote_literal(str(path))}, columns = {{'record': 'VARCHAR'}}, header = false, "
        f"auto_detect = false, quote = '', escape = '', delim = {LINE_DELIMITER}, strict_mode = true)"
    )


def array_lines_sql(path: Path) -> str:
    """The lines of a JSON array file as records, each without the comma that ends it (``sep``
    says it had one; a line with blanks after its comma is not an element line here)."""
    return (
        "SELECT source_position, CASE WHEN ends_with(record, ',') THEN record[1:-2] ELSE record END AS record, "
        f"problem, ends_with(record, ',') AS sep FROM ({lines_sql(path)})"
    )


def array_shape_sql(table: str) -> str:
    """``(closing line's rowid, whether the lines are the elements)`` of a table made by
    :func:`array_lines_sql`: ``[`` first (after a byte order mark), ``]`` last (blank lines
    after it), and between them at least one line, each a JSON value followed by a comma, but
    the last."""
    shape = (
        "CASE WHEN r = 0 THEN trim(ltrim(record, chr(65279)), ' ' || chr(9) || chr(13)) = '[' "
        "WHEN r = e THEN trim(record, ' ' || chr(9) || chr(13)) = ']' WHEN r > e THEN true "
        "ELSE (valid OR json_valid(record)) AND sep = (r < e - 1) END"
    )
    return (
        f"WITH lines AS (SELECT rowid AS r, record, valid, sep FROM {table}), "
        "closing AS (SELECT max(r) AS e FROM lines WHERE valid OR coalesce(record, '') <> '') "
        f"SELECT e, e >= 2 AND bool_and(coalesce({shape}, false)) FROM lines, closing GROUP BY e"
    )


def elements_sql(path: Path) -> str:
    """The elements of a JSON array file as ``(source_position, record, problem)``, by DuckDB's
    array reader (strict: a malformed array is refused, see :func:`lines_sql`)."""
    return (
        "SELECT row_number() OVER () AS source_position, json::VARCHAR AS record, NULL::VARCHAR AS problem "
        f"FROM read_json_objects({quote_literal(str(path))}, format = 'array')"
    )


def _paths(schema: RecordSchema) -> str:
    return "[" + ", ".join(quote_literal("$." + json.dumps(f)) for f in schema.fields) + "]"


def _struct_keys_fit(schema: RecordSchema) -> bool:
    """Whether ``from_json`` can read the fields as struct keys: it matches keys ignoring case."""
    return len({f.lower() for f in schema.fields}) == len(schema.fields)


def _extracted(schema: RecordSchema) -> tuple[str, str]:
    """The expression parsing a valid ``record`` once into every field's JSON text (NULL for a
    missing field or a JSON null), and how to name field ``{i}`` of it.

    ``from_json`` into a struct of JSON values is DuckDB's reader's own transform, a third
    cheaper than ``json_extract`` of a list of paths; struct keys are case-insensitive, so
    fields whose names differ only in case take the paths. A key given twice: its first value
    counts with both (Spark follows it)."""
    if _struct_keys_fit(schema):
        structure = json.dumps({f: "JSON" for f in schema.fields})
        return f"from_json(record, {quote_literal(structure)})", "(struct_extract_at(l, {i})::VARCHAR)"
    return f"json_extract(record, {_paths(schema)})::VARCHAR[]", "(nullif(l[{i}], 'null'))"


# declared type -> the type ``from_json`` reads a field as on the canonical path (see
# :func:`typed_sql`): native where DuckDB's conversion is exact once the text is canonical,
# the unescaped text where the declared type has its own test, the JSON text for decimals
_CANONICAL = {
    "STRING": "VARCHAR", "INT64": "BIGINT", "BOOL": "BOOLEAN",
    "TIMESTAMP": "VARCHAR", "DATE": "VARCHAR", "FLOAT64": "JSON", "NUMERIC": "JSON",
}


def typed_sql(schema: RecordSchema, lines: str, canonical: bool = True) -> str:
    """``lines`` (``source_position, record, problem``) typed: the columns, ``valid``, and the
    record's text only where it is invalid (it is kept for quarantine); ``problem`` is what the
    reader found wrong with the text itself, if anything. A blank line is an invalid row here;
    :func:`reason_sql` leaves it out.

    Most writers put a record in one canonical form: the declared fields in order, no blanks,
    nothing else. Such a record is read once by ``from_json`` into native values, and it is
    canonical when DuckDB's JSON writer gives its text back byte for byte: then every value had
    the JSON type its column needs (a string ``"5"`` for an INT64 would come back as ``5``, a
    ``5.5`` as ``6``, a ``true`` as ``1``), no field was missing or given twice, and the native
    conversion was exact. Any other record takes the general path: every field's JSON text
    (:func:`_extracted`) and string tests on it. Both give the same values (``canonical=False``
    takes the general path for every record: the tests compare the two)."""
    extract, field_of = _extracted(schema)
    canonical_path = canonical and _struct_keys_fit(schema)
    values, flags = [], []
    for index, field in enumerate(schema.fields, start=1):
        declared = schema.fields[field]
        raw = field_of.format(i=index)
        column = quote_identifier(schema.names[field])
        value = _value_sql(declared, raw)
        if canonical_path:
            fast = f"struct_extract_at(v, {index})"
            if _CANONICAL[declared] == "JSON":
                fast = _value_sql(declared, f"({fast}::VARCHAR)")
            elif declared in ("TIMESTAMP", "DATE"):
                fast = _text_value_sql(declared, fast)
            value = f"CASE WHEN canonical THEN {fast} ELSE {value} END"
        values.append(f"{value} AS {column}")
        fits = f"{column} IS NOT NULL"
        if field in schema.optional:
            fits = f"(CASE WHEN canonical THEN struct_extract_at(v, {index}) IS NULL ELSE {raw} IS NULL END OR {fits})" if canonical_path else f"({raw} IS NULL OR {fits})"
        flags.append(fits)
    flags += [f"coalesce(({rule.sql}), false)" for rule in schema.rules]
    valid = " AND ".join(["problem IS NULL", "(canonical OR l IS NOT NULL)", f"(canonical OR starts_with({_LTRIM}, '{{'))", *flags])
    if canonical_path:
        structure = json.dumps({f: _CANONICAL[t] for f, t in schema.fields.items()})
        read = f"SELECT *, CASE WHEN json_valid(record) THEN from_json(record, {quote_literal(structure)}) END AS v FROM {lines}"
        checked = f"SELECT *, coalesce(to_json(v)::VARCHAR = record, false) AS canonical FROM ({read})"
        parsed = f"SELECT *, CASE WHEN NOT canonical AND v IS NOT NULL THEN {extract} END AS l FROM ({checked})"
    else:
        parsed = f"SELECT *, false AS canonical, CASE WHEN json_valid(record) THEN {extract} END AS l FROM {lines}"
    typed = f"SELECT *, {', '.join(values)} FROM ({parsed})"
    judged = f"SELECT * EXCLUDE (l, canonical{', v' if canonical_path else ''}), coalesce({valid}, false) AS valid FROM ({typed})"
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
    if declared in ("TIMESTAMP", "DATE"):
        return _text_value_sql(declared, text)
    if declared == "BOOL":
        return f"CASE {raw} WHEN 'true' THEN true WHEN 'false' THEN false END"
    if declared == "INT64":  # a JSON number without fraction or exponent, in range
        whole = f"NOT (contains({raw}, '.') OR contains({raw}, 'e') OR contains({raw}, 'E'))"
        return f"CASE WHEN {whole} THEN TRY_CAST({raw} AS BIGINT) END"
    # FLOAT64 / NUMERIC: a JSON number, not a quoted string or a boolean a cast would accept
    number = f"regexp_full_match({raw}, '{_NUMBER}')"
    return f"CASE WHEN {number} THEN TRY_CAST({raw} AS {duck}) END"


def _text_value_sql(declared: str, text: str) -> str:
    """A TIMESTAMP or DATE from a string field's (unescaped) text; NULL when it is not one."""
    if declared == "TIMESTAMP":  # RFC 3339 (lowercase t/z too); DuckDB's cast alone takes far more
        return f"CASE WHEN regexp_full_match({text}, {quote_literal(TIMESTAMP_PATTERN)}) THEN TRY_CAST(upper({text}) AS TIMESTAMPTZ) END"
    return f"CASE WHEN regexp_full_match({text}, {quote_literal(DATE_PATTERN)}) THEN TRY_CAST({text} AS DATE) END"
