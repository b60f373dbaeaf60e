"""What a declared check is: its kind, table, severity and parameters, independent of where
it was written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "not_null",
    "unique",
    "accepted_values",
    "relationships",
    "row_count",
    "expression",
    "freshness",
    "reconcile",
    "sql",
)
SEVERITIES = ("error", "warn")
# Kinds whose failing query is an aggregate: at most one row, "failing" is 0 or 1.
AGGREGATE_KINDS = ("row_count", "freshness")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)


@dataclass(frozen=True)
class CheckSpec:
    """One check as declared; ``params`` is kind-specific (see the package docstring)."""

    name: str
    table: str
    kind: str
    severity: str
    params: Mapping[str, Any] = field(hash=False)
    path: str
    line: int
    reads: tuple[str, ...] = ()
    source_dialect: str = "bigquery"  # the dialect SQL fragments in ``params`` are written in

    @property
    def is_aggregate(self) -> bool:
        """True when the failing query returns at most one row describing the failure."""
        return self.kind in AGGREGATE_KINDS or (
            self.kind == "reconcile" and not self.params.get("key")
        )


def parse_duration(text: str) -> float | None:
    """Seconds in ``"36h"``, ``"2d"``, ``"1d12h"``, ``"90m"``; None when it is not a duration."""
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        position = match.end()
    if position == 0 or text[position:].strip():
        return None
    return total


def split_table(name: str) -> tuple[str, ...] | None:
    """``dataset.table`` as lower-case parts, a ``project.`` prefix dropped; None if malformed."""
    parts = tuple(p.strip().strip("`\"'").lower() for p in name.strip().strip("`").split("."))
    if not 1 <= len(parts) <= 3 or not all(parts):
        return None
    return parts[-2:]


def check_name(table: str, kind: str, params: Mapping[str, Any], label: str | None) -> str:
    """A readable name, unique within a project as long as the same check is not declared twice."""
    if label:
        return f"{table}: {label}"
    if kind in ("not_null", "accepted_values", "freshness"):
        detail = str(params["column"])
    elif kind == "unique":
        detail = ", ".join(params["columns"])
    elif kind == "relationships":
        detail = f"{params['column']} -> {params['to_table']}.{params['to_column']}"
    elif kind == "expression":
        detail = " ".join(str(params["expression"]).split())
    elif kind == "reconcile":
        key = params.get("key")
        detail = str(params["table"]) + (f" on {', '.join(key)}" if key else "")
    else:
        detail = ""
    where = params.get("where")
    if where:
        detail = f"{detail} where {' '.join(str(where).split())}".strip()
    return f"{table}: {kind}({detail})" if detail else f"{table}: {kind}"
