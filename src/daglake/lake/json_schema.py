"""What a JSON source declares, whatever engine types it: its fields and their declared types,
column names, optional fields, record rules, and the quarantine reasons every engine gives.

The SQL that types records is the engine's (``daglake.engines.duckdb_json``,
``daglake.engines.spark_json``); both follow the patterns and words defined here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from daglake.lake.tables import quote_identifier

# declared type -> JSON kinds a value of it may have in the file
DECLARED_TYPES: dict[str, tuple[str, ...]] = {
    "STRING": ("string",),
    "INT64": ("integer",),
    "FLOAT64": ("integer", "number"),
    "NUMERIC": ("integer", "number"),
    "BOOL": ("boolean",),
    "TIMESTAMP": ("string",),
    "DATE": ("string",),
}
BAD_JSON = "bad JSON"
NOT_OBJECT = "not a JSON object"
# A key given twice in a record: its first value counts, on every engine.
# Times as RFC 3339 writes them (``T``/``t`` or a space between date and time, ``Z``/``z`` or an
# offset up to ±23:59; fractions of a second truncated to microseconds), and without an offset
# (read as UTC); a date as RFC 3339's full-date. The calendar (Feb 30) is the engine's cast.
TIMESTAMP_PATTERN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
)
BAD_OFFSET = "its UTC offset is beyond ±23:59"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
NOT_UTF8 = "not UTF-8 text (the record shows the bad bytes as U+FFFD)"
INVALID = "invalid record"  # never expected: the second pass always names a reason


@dataclass(frozen=True)
class Rule:
    """A check on the typed record: rows where ``sql`` (in the engine's dialect, over the typed
    columns) is not true are quarantined."""

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
        unknown = {t for t in schema.values() if t.upper() not in DECLARED_TYPES}
        if unknown:
            raise ValueError(f"unknown types {sorted(unknown)} (known: {', '.join(DECLARED_TYPES)})")
        fields = {field: kind.upper() for field, kind in schema.items()}
        names = {field: (rename or {}).get(field, snake_case(field)) for field in schema}
        return cls(fields, names, tuple(optional), tuple(rules))

    @property
    def columns(self) -> list[str]:
        return [quote_identifier(self.names[f]) for f in self.fields]
