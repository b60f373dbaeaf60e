"""SQL that types JSON records against a declared schema, in two passes.

Every record goes through a fast pass: one parse (``json_extract`` of every field into a list of
JSON texts), typed values from cheap string tests and casts, and one ``valid`` flag. Only the
records found invalid (usually a small share) go through the second pass, which re-parses them
and names the first problem: bad JSON, not an object, a missing field, a value of the wrong
JSON type or out of range, an unparseable time, or a failed rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from daglake.lake.tables import quote_identifier, quote_literal

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
NOT_UTF8 = "not UTF-8 text (the record shows the bad bytes as U+FFFD)"
INVALID = "invalid record"  # never expected: the second pass always names a reason
NOT_BLANK = "trim(record, ' ' || chr(9) || chr(13)) <> ''"
_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?"


@dataclass(frozen=True)
class Rule:
    """A check on the typed record: rows where ``sql`` (DuckDB SQL) is not true are quarantined."""

    reason: str
    sql: str


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass(frozen=True)
class RecordSchema:
    """The declared fields of a JSON source, their column names and the record rules."""

    fields: Mapping[str, str]  # JSON field -> declared type
    names: Mapping[str, str]  # JSON field -> column
    optional: Sequence[str] = ()
    rules: Sequence[Rule] = ()

    @classmethod
    def of(
        cls,
        schema: Mapping[str, str],
        optional: Sequence[str] = (),
        rules: Sequence[Rule] = (),
        rename: Mapping[str, str] | None = None,
    ) -> RecordSchema:
        unknown = {t for t in schema.values() if t.upper() not in TYPES}
        if unknown:
            raise ValueError(f"unknown types {sorted(unknown)} (known: {', '.join(TYPES)})")
        fields = {field: kind.upper() for field, kind in schema.items()}
        names = {field: (rename or {}).get(field, snake_case(field)) for field in schema}
        return cls(fields, names, tuple(optional), tuple(rules))

    @property
    def columns(self) -> list[str]:
        return [quote_identifier(self.names[f]) for f in self.fields]

    def _paths(self) -> str:
        return "[" + ", ".join(quote_literal("$." + json.dumps(f)) for f in self.fields) + "]"

    def typed_sql(self, lines: str) -> str:
        """``lines`` (``file_index, source_position, record, problem``) typed: the columns,
        ``valid``, and the record's text only where it is invalid (it is kept for quarantine);
        ``problem`` is what the reader found wrong with the text itself, if anything. A blank line is
        an invalid row here; :meth:`reason_sql` leaves it out."""
        values, flags = [], []
        for index, field in enumerate(self.fields, start=1):
            raw = f"l[{index}]"
            column = quote_identifier(self.names[field])
            values.append(f"{_value_sql(self.fields[field], raw)} AS {column}")
            fits = f"{column} IS NOT NULL"
            if field in self.optional:
                fits = f"({raw} IS NULL OR {raw} = 'null' OR {fits})"
            flags.append(fits)
        flags += [f"coalesce(({rule.sql}), false)" for rule in self.rules]
        valid = " AND ".join(["problem IS NULL", "l IS NOT NULL", "starts_with(ltrim(record), '{')", *flags])
        parsed = (
            f"SELECT file_index, source_position, record, problem, "
            f"CASE WHEN json_valid(record) THEN json_extract(record, {self._paths()})::VARCHAR[] END AS l "
            f"FROM {lines}"
        )
        typed = f"SELECT *, {', '.join(values)} FROM ({parsed})"
        judged = f"SELECT * EXCLUDE (l), coalesce({valid}, false) AS valid FROM ({typed})"
        return f"SELECT * REPLACE (CASE WHEN NOT valid THEN record END AS record) FROM ({judged})"

    def reason_sql(self, typed: str) -> str:
        """The invalid rows of ``typed`` (see :meth:`typed_sql`) with the first problem of each;
        blank lines are not records."""
        checks = [
            "WHEN problem IS NOT NULL THEN problem",
            f"WHEN NOT json_valid(record) THEN '{BAD_JSON}'",             "WHEN NOT starts_with(ltrim(record), '{') THEN 'not a JSON object'",
        ]
        for index, field in enumerate(self.fields, start=1):
            declared = self.fields[field]
            raw = f"l[{index}]"
            column = quote_identifier(self.names[field])
            label = field.replace("'", "''")
            present = f"({raw} IS NOT NULL AND {raw} <> 'null')"
            if field not in self.optional:
                checks.append(f"WHEN NOT {present} THEN 'missing field {label}'")
            accepted = ", ".join(quote_literal(t) for t in TYPES[declared][1])
            checks.append(
                f"WHEN {present} AND json_type({raw}) NOT IN ({accepted}) THEN "
                f"'field {label}: expected {declared}, got ' || lower(json_type({raw}))"
            )
            if declared in ("TIMESTAMP", "DATE"):
                message = f"'field {label}: not a valid {declared}: ' || ({raw}->>'$')"
            elif declared == "INT64":
                message = f"'field {label}: not an INT64 (out of range or not a whole number): ' || {raw}"
            else:
                message = f"'field {label}: not a valid {declared}: ' || {raw}"
            checks.append(f"WHEN {present} AND {column} IS NULL THEN {message}")
        checks += [f"WHEN NOT coalesce(({r.sql}), false) THEN {quote_literal(r.reason)}" for r in self.rules]
        reason = f"coalesce(CASE {' '.join(checks)} END, '{INVALID}')"
        parsed = (
            f"SELECT *, CASE WHEN json_valid(record) THEN json_extract(record, {self._paths()})::VARCHAR[] END AS l "
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
        return f"TRY_CAST({text} AS {duck})"
    if declared == "BOOL":
        return f"CASE {raw} WHEN 'true' THEN true WHEN 'false' THEN false END"
    if declared == "INT64":  # a JSON number without fraction or exponent, in range
        whole = f"NOT (contains({raw}, '.') OR contains({raw}, 'e') OR contains({raw}, 'E'))"
        return f"CASE WHEN {whole} THEN TRY_CAST({raw} AS BIGINT) END"
    # FLOAT64 / NUMERIC: a JSON number, not a quoted string or a boolean a cast would accept
    number = f"regexp_full_match({raw}, '{_NUMBER}')"
    return f"CASE WHEN {number} THEN TRY_CAST({raw} AS {duck}) END"
