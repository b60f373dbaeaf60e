"""JSON records typed by Spark with the same rules, reasons and positions as on DuckDB.

Spark's JSON reader cannot be used: with a corrupt-record column it turns ``5`` into ``'5'`` for
a string field and drops blank lines (so line numbers shift). Files are read as text lines
instead (``lineSep = "\\n"``: a ``\\r`` before it is stripped, as :mod:`daglake.lake.records`
defines for every engine), each line's number computed from its split (the block it was read
in, its row within the block, the lines of the blocks before), and typed by generated Spark SQL:

- the record is JSON when ``try_parse_json('[' || record || ']')`` parses to one element (the
  brackets refuse trailing text, which ``parse_json`` alone ignores);
- it is an object when ``json_object_keys`` lists its keys;
- each field's JSON kind is ``schema_of_variant`` of its variant, its text ``json_tuple``'s
  (numbers as written, strings unquoted), named in DuckDB's ``json_type`` words (``varchar``,
  ``ubigint`` for a whole number >= 0 …) so that the reasons read the same. A key given twice:
  its first value counts, as on DuckDB (``get_json_object``'s text; the kind is the variant's,
  which holds the last value: the one case where the engines can differ is a key given twice
  with values of different JSON kinds);
- times are matched against the neutral RFC 3339 pattern, then cast and shifted by their offset
  by hand (Java's own zone parsing stops at ±18:00, the neutral rule at ±23:59).

JSON arrays are split on the driver by :func:`~daglake.lake.records.split_array`, like the
careful path on DuckDB.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.engines.base import RecordTyper
from daglake.lake.json_schema import (
    BAD_JSON,
    BAD_OFFSET,
    DATE_PATTERN,
    INVALID,
    NOT_OBJECT,
    NOT_UTF8,
    TIMESTAMP_PATTERN,
    RecordSchema,
)
from daglake.lake.records import BOM, WHOLE_FILE, is_array, split_array

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# declared type -> (Spark type, DuckDB's json_type() names accepted for it)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "STRING": ("STRING", ("varchar",)),
    "INT64": ("BIGINT", ("bigint", "ubigint")),
    "FLOAT64": ("DOUBLE", ("bigint", "ubigint", "double")),
    "NUMERIC": ("DECIMAL(38, 9)", ("bigint", "ubigint", "double")),
    "BOOL": ("BOOLEAN", ("boolean",)),
    "TIMESTAMP": ("TIMESTAMP", ("varchar",)),
    "DATE": ("DATE", ("varchar",)),
}
LINES_SCHEMA = "file_index INT, source_position BIGINT, record STRING, problem STRING"
NOT_BLANK = "(problem IS NOT NULL OR trim(BOTH ' \\t\\r' FROM record) <> '')"
_GLOB = re.compile(r"([\\*?\[\]{}])")
U64_MAX = "18446744073709551615"
_TS = "'^(?:" + TIMESTAMP_PATTERN.replace("\\", "\\\\") + ")\\\\z'"  # RLIKE finds; \z: the very end
_DATE = "'^(?:" + DATE_PATTERN + ")\\\\z'"
_FRACTION = "'^.{19}\\\\.([0-9]+)'"


def literal(text: str) -> str:
    """A Spark SQL string literal (backslashes are escapes there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class SparkRecordTyper(RecordTyper):
    """A delivery's lines gathered as DataFrames (lazy: nothing is read before a batch is
    typed), typed into a cached DataFrame that the accepted and quarantined queries read
    through temporary views of their own."""

    def __init__(self, spark: SparkSession, schema: RecordSchema) -> None:
        self.native = spark
        self.schema = schema
        token = secrets.token_hex(4)
        self.files_view, self.typed_view = f"_daglake_files_{token}", f"_daglake_typed_{token}"
        self.files: list[tuple[int, dt.date, str]] = []
        self.paths: dict[int, Path] = {}  # line files of the batch, read together
        self.rows: list[tuple[int, int, str | None, str | None]] = []  # arrays and unreadable files
        self.typed: DataFrame | None = None
        # a record with a key twice is JSON (DuckDB reads it too; its first value counts)
        spark.conf.set("spark.sql.variant.allowDuplicateKeys", "true")

    def _file(self, index: int, ingest_date: Any, name: str) -> None:
        day = ingest_date if isinstance(ingest_date, dt.date) else dt.date.fromisoformat(str(ingest_date))
        self.files.append((index, day, name))

    def add_file(self, index: int, path: Path, ingest_date: Any, name: str) -> Iterator[int]:
        self._file(index, ingest_date, name)
        if is_array(path):
            self.rows += [(index, position, text, None) for position, text in split_array(path)]
        else:
            self.paths[index] = path
        yield path.stat().st_size

    def add_unreadable(self, index: int, ingest_date: Any, name: str, reason: str) -> None:
        self._file(index, ingest_date, name)
        self.rows.append((index, WHOLE_FILE, None, reason))

    def type_batch(self) -> tuple[int, int]:
        spark = self.native
        parts = [_numbered_lines(spark, self.paths)] if self.paths else []
        if self.rows:
            parts.append(spark.createDataFrame(self.rows, LINES_SCHEMA))
        self.paths, self.rows = {}, []
        self._drop_typed()
        if not parts:
            parts = [spark.createDataFrame([], LINES_SCHEMA)]
        lines = parts[0]
        for part in parts[1:]:
            lines = lines.unionByName(part)
        lines_view = self.typed_view + "_lines"
        lines.createOrReplaceTempView(lines_view)
        spark.createDataFrame(self.files, "file_index INT, ingest_date DATE, source_file STRING").createOrReplaceTempView(
            self.files_view
        )
        typed = spark.sql(typed_sql(self.schema, lines_view)).cache()
        typed.createOrReplaceTempView(self.typed_view)
        self.typed = typed
        row = spark.sql(
            f"SELECT count_if(valid), count_if(NOT valid AND {NOT_BLANK}) FROM {self.typed_view}"
        ).collect()[0]
        return int(row[0] or 0), int(row[1] or 0)

    def accepted_sql(self) -> str:
        columns = ", ".join(f"t.{c}" for c in _columns(self.schema))
        return (
            f"SELECT {columns}, f.ingest_date, f.source_file, t.source_position "
            f"FROM {self.typed_view} t JOIN {self.files_view} f ON t.file_index = f.file_index WHERE t.valid"
        )

    def quarantined_sql(self) -> str:
        return (
            "SELECT f.ingest_date, f.source_file, t.source_position, t.reason, t.record "
            f"FROM {self.typed_view} t JOIN {self.files_view} f ON t.file_index = f.file_index "
            f"WHERE NOT t.valid AND {NOT_BLANK.replace('problem', 't.problem').replace('record', 't.record')}"
        )

    def empty_sql(self) -> str:
        declared = self.schema.fields.values()
        columns = [f"CAST(NULL AS {TYPES[t][0]}) AS {c}" for t, c in zip(declared, _columns(self.schema), strict=True)]
        columns += [
            "CAST(NULL AS DATE) AS ingest_date",
            "CAST(NULL AS STRING) AS source_file",
            "CAST(NULL AS BIGINT) AS source_position",
        ]
        return f"SELECT {', '.join(columns)} WHERE false"

    def _drop_typed(self) -> None:
        if self.typed is not None:
            self.typed.unpersist()
            self.typed = None

    def close(self) -> None:
        self._drop_typed()
        for view in (self.files_view, self.typed_view, self.typed_view + "_lines"):
            self.native.catalog.dropTempView(view)


def _columns(schema: RecordSchema) -> list[str]:
    return [identifier(schema.names[f]) for f in schema.fields]


def _numbered_lines(spark: SparkSession, paths: dict[int, Path]) -> DataFrame:
    """The lines of the files ``{file_index: path}`` as ``(file_index, source_position,
    record, problem)``, read by one scan.

    Each line is read by exactly one split, in order, and a split's rows get consecutive ids
    in its task; so a line's number is its row within its block (id minus the block's first
    id) plus the lines of the file's blocks before it (those starting at a smaller offset). Ids
    alone are not line numbers: they jump from one task to the next. The blocks (one small row
    each) are counted first and joined back, so the lines stay in the partitions they were read
    in and are typed in parallel; the scan is deterministic, so reading it twice gives the same
    ids."""
    from pyspark.sql import functions as F

    text = spark.read.option("lineSep", "\n").text([_GLOB.sub(r"\\\1", str(p.absolute())) for p in paths.values()])
    rows = text.select(
        F.col("value"),
        F.input_file_name().alias("uri"),
        F.input_file_block_start().alias("block"),
        F.monotonically_increasing_id().alias("id"),
    )
    counted = rows.groupBy("uri", "block").agg(F.min("id").alias("first"), F.count(F.lit(1)).alias("lines")).collect()
    index_of = {_local(p): i for i, p in paths.items()}
    blocks, base, previous = [], 0, None
    for block in sorted(counted, key=lambda b: (b["uri"], b["block"])):
        if block["uri"] != previous:
            base, previous = 0, block["uri"]
        blocks.append((block["uri"], block["block"], block["first"], base, index_of[_local(block["uri"])]))
        base += block["lines"]
    starts = spark.createDataFrame(blocks, "uri STRING, block BIGINT, first BIGINT, base BIGINT, file_index INT")
    numbered = rows.join(F.broadcast(starts), ["uri", "block"]).select(
        "value", "file_index", (F.col("base") + F.col("id") - F.col("first") + 1).alias("source_position")
    )
    valid_text = F.expr("is_valid_utf8(value)")
    record = F.regexp_replace(F.expr("make_valid_utf8(value)"), "\r\\z", "")
    record = F.when(F.col("source_position") == 1, F.regexp_replace(record, "^" + BOM, "")).otherwise(record)
    return numbered.select(
        F.col("file_index").cast("int").alias("file_index"),
        F.col("source_position").cast("bigint").alias("source_position"),
        record.alias("record"),
        F.when(~valid_text, F.lit(NOT_UTF8)).alias("problem"),
    )


def _local(location: Path | str) -> str:
    """A file's absolute path, from a path or from the ``file:`` URI Spark names it by."""
    if isinstance(location, str):
        from urllib.parse import unquote, urlparse

        location = Path(unquote(urlparse(location).path))
    return os.path.realpath(location)


def _shape(variant: str) -> str:
    """The first word of the field's variant schema (``STRING``, ``BIGINT``, ``OBJECT`` …),
    computed once per field: the kind's ``CASE`` reads it for every branch."""
    return f"regexp_extract(schema_of_variant({variant}), '^[A-Z]+', 0)"


def _kind(variant: str, shape: str, text: str) -> str:
    """The field's JSON kind in DuckDB's words; ``null`` for JSON null, NULL when absent. A
    ``BIGINT`` variant of a record whose keys are distinct is a whole number written as one
    (its text is the same token, in range): only its sign is looked at."""
    number = (
        f"CASE WHEN {text} RLIKE '^-?[0-9]+$' THEN CASE "
        f"WHEN try_cast({text} AS BIGINT) IS NOT NULL THEN CASE WHEN {text} LIKE '-%' THEN 'bigint' ELSE 'ubigint' END "
        f"WHEN {text} NOT LIKE '-%' AND try_cast({text} AS DECIMAL(20, 0)) <= {U64_MAX} THEN 'ubigint' "
        "ELSE 'double' END ELSE 'double' END"
    )
    return (
        f"CASE WHEN {variant} IS NULL THEN NULL ELSE CASE {shape} WHEN 'STRING' THEN 'varchar' "
        "WHEN 'BOOLEAN' THEN 'boolean' WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' "
        f"WHEN 'VOID' THEN 'null' WHEN 'BIGINT' THEN CASE WHEN unique_keys AND {text} IS NOT NULL "
        f"THEN CASE WHEN {text} LIKE '-%' THEN 'bigint' ELSE 'ubigint' END ELSE {number} END ELSE {number} END END"
    )


def _value(declared: str, kind: str, text: str) -> str:
    """The typed value of one field; NULL when it does not fit the declared type."""
    accepted = ", ".join(literal(k) for k in TYPES[declared][1])
    fits = f"{kind} IN ({accepted})"
    if declared == "STRING":
        return f"CASE WHEN {fits} THEN {text} END"
    if declared == "BOOL":
        return f"CASE WHEN {fits} THEN {text} = 'true' END"
    if declared == "TIMESTAMP":
        return f"CASE WHEN {fits} AND {text} RLIKE {_TS} THEN {_timestamp(text)} END"
    if declared == "DATE":
        return f"CASE WHEN {fits} AND {text} RLIKE {_DATE} THEN try_cast({text} AS DATE) END"
    return f"CASE WHEN {fits} THEN try_cast({text} AS {TYPES[declared][0]}) END"


def _timestamp(text: str) -> str:
    """A text matching the RFC 3339 pattern as a UTC timestamp: its wall time (fraction cut to
    microseconds) cast in the session's UTC, minus its offset."""
    fraction = f"rpad(substr(regexp_extract({text}, {_FRACTION}, 1), 1, 6), 6, '0')"
    wall = f"try_cast(concat(substr({text}, 1, 10), ' ', substr({text}, 12, 8), '.', {fraction}) AS TIMESTAMP)"
    sign = f"regexp_extract({text}, '([+-])[0-9]{{2}}:[0-9]{{2}}$', 1)"
    hours = f"int(regexp_extract({text}, '([0-9]{{2}}):[0-9]{{2}}$', 1))"
    minutes = f"int(regexp_extract({text}, '([0-9]{{2}})$', 1))"
    shift = f"make_dt_interval(0, {hours}, {minutes}, 0)"
    return f"CASE {sign} WHEN '+' THEN {wall} - {shift} WHEN '-' THEN {wall} + {shift} ELSE {wall} END"


def typed_sql(schema: RecordSchema, lines: str) -> str:
    """``lines`` typed: the declared columns, ``valid``, and ``reason`` (the first problem, as
    :func:`daglake.engines.duckdb_json.reason_sql` names it) where the record is invalid."""
    fields = list(schema.fields)
    texts = [f"_t{i}" for i in range(len(fields))]
    wrapped = "CASE WHEN problem IS NULL THEN try_parse_json(concat('[', record, ']')) END"
    parsed = (
        f"SELECT l.*, w, variant_get(w, '$[0]') AS v, "
        f"w IS NOT NULL AND variant_get(w, '$[1]') IS NULL AS json_ok, "
        f"CASE WHEN w IS NOT NULL THEN json_object_keys(record) END AS keys "
        f"FROM (SELECT *, {wrapped} AS w FROM {lines}) l"
    )
    keyed = f"SELECT *, size(keys) = size(array_distinct(keys)) AS unique_keys FROM ({parsed})"
    tuple_args = ", ".join(literal(f) for f in fields)
    extracted = (
        f"SELECT p.*, {', '.join(_first(f, f'j.{t}') + f' AS {t}' for f, t in zip(fields, texts, strict=True))} FROM ({keyed}) p "
        f"LATERAL VIEW OUTER json_tuple(CASE WHEN p.json_ok THEN p.record END, {tuple_args}) j AS {', '.join(texts)}"
    )
    variants, shapes, kinds, values, flags, checks = [], [], [], [], [], []
    checks += [
        "WHEN problem IS NOT NULL THEN problem",
        f"WHEN NOT json_ok THEN {literal(BAD_JSON)}",
        f"WHEN keys IS NULL THEN {literal(NOT_OBJECT)}",
    ]
    for index, field in enumerate(fields):
        declared, column, text = schema.fields[field], identifier(schema.names[field]), texts[index]
        kind = f"_k{index}"
        path = _path(field)
        variant, shape = f"_v{index}", f"_s{index}"
        variants.append(f"variant_get(v, {path}) AS {variant}")
        shapes.append(f"{_shape(variant)} AS {shape}")
        kinds.append(f"{_kind(variant, shape, text)} AS {kind}")
        values.append(f"{_value(declared, kind, text)} AS {column}")
        present = f"({kind} IS NOT NULL AND {kind} <> 'null')"
        flags.append(f"(NOT {present} OR {column} IS NOT NULL)" if field in schema.optional else f"{column} IS NOT NULL")
        label = literal(field)
        if field not in schema.optional:
            checks.append(f"WHEN NOT {present} THEN concat('missing field ', {label})")
        accepted = ", ".join(literal(k) for k in TYPES[declared][1])
        checks.append(
            f"WHEN {present} AND {kind} NOT IN ({accepted}) THEN "
            f"concat('field ', {label}, ': expected {declared}, got ', {kind})"
        )
        checks.append(f"WHEN {present} AND {column} IS NULL THEN {_message(declared, label, text)}")
    checks += [f"WHEN NOT coalesce(({r.sql}), false) THEN {literal(r.reason)}" for r in schema.rules]
    flags += [f"coalesce(({rule.sql}), false)" for rule in schema.rules]
    valid = " AND ".join(["problem IS NULL", "json_ok", "keys IS NOT NULL", *flags])
    with_variants = f"SELECT *, {', '.join(variants)} FROM ({extracted})"
    with_shapes = f"SELECT *, {', '.join(shapes)} FROM ({with_variants})"
    with_kinds = f"SELECT *, {', '.join(kinds)} FROM ({with_shapes})"
    with_values = f"SELECT *, {', '.join(values)} FROM ({with_kinds})"
    judged = f"SELECT *, coalesce({valid}, false) AS valid FROM ({with_values})"
    reason = f"CASE WHEN valid THEN NULL ELSE coalesce(CASE {' '.join(checks)} END, {literal(INVALID)}) END"
    keep = ", ".join(["file_index", "source_position", "record", "problem", *_columns(schema), "valid"])
    return f"SELECT {keep}, {reason} AS reason FROM ({judged})"


def _path(field: str) -> str:
    """The JSON path of a top-level field, as a Spark SQL literal."""
    return literal('$["' + field.replace("\\", "\\\\").replace('"', '\\"') + '"]')


def _first(field: str, text: str) -> str:
    """The field's text from ``json_tuple`` (one parse for every field), or where the record
    has a key twice from ``get_json_object``, which keeps the first value like DuckDB."""
    path = literal(f"$.{field}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field) else f"$['{field}']")
    return f"CASE WHEN p.unique_keys THEN {text} ELSE get_json_object(p.record, {path}) END"


def _message(declared: str, label: str, text: str) -> str:
    if declared == "TIMESTAMP":  # say so when only the offset is wrong
        pattern = _TS
        normalised = f"regexp_replace({text}, '[+-][0-9][0-9]:[0-9][0-9]$', '+00:00')"
        note = f"CASE WHEN {normalised} RLIKE {pattern} AND NOT {text} RLIKE {pattern} THEN ' ({BAD_OFFSET})' ELSE '' END"
        return f"concat('field ', {label}, ': not a valid TIMESTAMP', {note}, ': ', {text})"
    if declared == "INT64":
        return f"concat('field ', {label}, ': not an INT64 (out of range or not a whole number): ', {text})"
    return f"concat('field ', {label}, ': not a valid {declared}: ', {text})"
