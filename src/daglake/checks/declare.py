"""Turn one table's check declarations (compact per-kind keys and explicit ``checks`` entries)
into :class:`CheckSpec` values, reporting every mistake at its line instead of raising."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from daglake.checks.lines import Lines
from daglake.checks.params import KIND_KEYS, Judge, condition_error, kind_params
from daglake.checks.spec import SEVERITIES, CheckSpec, check_name
from daglake.errors import Problem

COMMON_KEYS = ("kind", "name", "severity", "where")
TABLE_KEYS = (*KIND_KEYS, "checks", "severity", "warn")
_COMPACT_FORMS = {
    "not_null": 'a list of column names: not_null = ["id", "name"]',
    "unique": 'a list of columns or column lists: unique = ["id", ["order_id", "line"]]',
    "accepted_values": 'a table of column = [values]: accepted_values = { status = ["a", "b"] }',
    "relationships": 'a table of column = "dataset.table.column": relationships = { x_id = "raw.x.id" }',
    "row_count": "a table: row_count = { min = 1, max = 1000 }",
    "expression": 'a SQL condition or a list of them: expression = ["price >= 0"]',
    "freshness": 'a table: freshness = { column = "updated_at", max_age = "36h" }',
    "reconcile": 'a table: reconcile = { table = "raw.x", key = "id" }',
    "checks": 'a list of tables, each with a kind: [[checks."dataset.table".checks]] kind = "..."',
}

LineOf = Callable[[str | None], int]


@dataclass(frozen=True)
class Origin:
    """Where one table's declarations were written: the file, its lines, and the key path of
    the table's body inside it (``("checks", "final.products")`` in daglake.toml, ``()`` beside)."""

    path: str
    lines: Lines
    at: tuple[str | int, ...]
    dialect: str
    judge: Judge | None = None  # remembers verdicts by content (the parse cache): no sqlglot when unchanged

    def condition_error(self, text: Any) -> str | None:
        return self.judge(text) if self.judge is not None else condition_error(text, self.dialect)

    def line(self, *keys: str | int) -> int:
        return self.lines.line((*self.at, *keys))


def declare(table: str, body: Any, origin: Origin) -> tuple[list[CheckSpec], list[Problem]]:
    """Every check declared for ``table`` by ``body`` (a parsed TOML table or YAML mapping)."""
    problems: list[Problem] = []

    def problem(line: int, message: str) -> None:
        problems.append(Problem(origin.path, line, f"{table}: {message}"))

    if not isinstance(body, dict):
        problem(origin.line(), f"checks must be a table of check kinds ({', '.join(KIND_KEYS)})")
        return [], problems
    default = body.get("severity", "error")
    if default not in SEVERITIES:
        problem(origin.line("severity"), f"severity must be 'error' or 'warn', not {default!r}")
        default = "error"
    warned = _warned_kinds(body.get("warn", []), origin, problem)
    specs: list[CheckSpec] = []
    for name, value in body.items():
        key = str(name)
        if key in ("severity", "warn"):
            continue
        if key not in TABLE_KEYS:
            known = ", ".join(TABLE_KEYS)
            hint = " (SQL checks are .sql files in a check folder)" if key == "sql" else ""
            problem(origin.line(key), f"unknown key '{key}'{hint} (known: {known})")
            continue
        entries = _entries(key, value, origin)
        if not entries:
            problem(origin.line(key), f"{key} must be {_COMPACT_FORMS[key]}")
        for entry, line_of in entries:
            kind = entry.get("kind")
            severity = "warn" if isinstance(kind, str) and kind in warned else default
            spec = _entry(table, entry, line_of, severity, origin, problem)
            if spec is not None:
                specs.append(spec)
    return specs, problems


def _warned_kinds(value: Any, origin: Origin, problem: Callable[[int, str], None]) -> set[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problem(origin.line("warn"), 'warn must be a list of check kinds: warn = ["unique"]')
        return set()
    kinds = set()
    for index, kind in enumerate(value):
        if isinstance(kind, str) and kind in KIND_KEYS:
            kinds.add(kind)
        else:
            problem(
                origin.line("warn", index),
                f"warn lists unknown kind {kind!r} (known: {', '.join(KIND_KEYS)})",
            )
    return kinds


def _entries(key: str, value: Any, origin: Origin) -> list[tuple[dict[str, Any], LineOf]]:
    """The explicit entries a compact declaration stands for, each with where its keys are;
    an empty list when ``value`` has the wrong shape."""

    def item_line(index: int | str) -> LineOf:
        return lambda _: origin.line(key, index)

    def key_line(*at: str | int) -> LineOf:
        return lambda name: origin.line(key, *at, name) if name else origin.line(key, *at)

    items = [value] if isinstance(value, str) else value
    if key == "checks" and isinstance(value, list) and value:
        return [
            (dict(item) if isinstance(item, dict) else {"_not_a_table": item}, key_line(index))
            for index, item in enumerate(value)
        ]
    if key in ("not_null", "expression") and isinstance(items, list) and items:
        field = "column" if key == "not_null" else "expression"
        return [({"kind": key, field: item}, item_line(i)) for i, item in enumerate(items)]
    if key == "unique" and isinstance(items, list) and items:
        return [
            ({"kind": key, "columns": item if isinstance(item, list) else [item]}, item_line(i))
            for i, item in enumerate(items)
        ]
    if key in ("accepted_values", "relationships") and isinstance(value, dict) and value:
        field = "values" if key == "accepted_values" else "to"
        return [
            ({"kind": key, "column": str(column), field: target}, item_line(str(column)))
            for column, target in value.items()
        ]
    if key in ("row_count", "freshness", "reconcile") and isinstance(value, dict):
        entry = dict(value)
        if "kind" in entry:
            entry["_kind_inside"] = entry.pop("kind")
        return [({**entry, "kind": key}, key_line())]
    return []


def _entry(
    table: str,
    entry: dict[str, Any],
    line_of: LineOf,
    severity: str,
    origin: Origin,
    problem: Callable[[int, str], None],
) -> CheckSpec | None:
    """One explicit entry checked against its kind's keys and types."""
    kind = entry.get("kind")
    if "_not_a_table" in entry:
        problem(line_of(None), "each entry of checks must be a table with a kind")
        return None
    if not isinstance(kind, str) or kind not in KIND_KEYS:
        known = ", ".join(KIND_KEYS)
        hint = " (SQL checks are .sql files in a check folder)" if kind == "sql" else ""
        message = (
            f"unknown check kind {kind!r}{hint} (known: {known})"
            if kind
            else "a check needs a kind"
        )
        problem(line_of("kind"), message)
        return None
    failures: list[tuple[int, str]] = []

    def fail(key: str | None, message: str) -> None:
        failures.append((line_of(key), message))

    for key in entry:
        if key not in (*COMMON_KEYS, *KIND_KEYS[kind]):
            shown = "kind" if key == "_kind_inside" else key
            fail(
                shown,
                f"unknown key '{shown}' for a {kind} check (known: {', '.join(KIND_KEYS[kind])}, name, severity, where)",
            )
    severity = entry.get("severity", severity)
    if severity not in SEVERITIES:
        fail("severity", f"severity must be 'error' or 'warn', not {severity!r}")
    label = entry.get("name")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        fail("name", "name must be a non-empty string")
    params: dict[str, Any] = {}
    where = entry.get("where")
    if where is not None:
        error = origin.condition_error(where)
        if error is None:
            params["where"] = where
        else:
            fail("where", f"where must be a SQL condition: {error}")
    reads = kind_params(kind, entry, params, fail, origin.condition_error)
    for line, message in failures:
        problem(line, message)
    if failures:
        return None
    return CheckSpec(
        name=check_name(table, kind, params, label.strip() if isinstance(label, str) else None),
        table=table,
        kind=kind,
        severity=str(severity),
        params=MappingProxyType(params),
        path=origin.path,
        line=line_of(None),
        reads=reads,
        source_dialect=origin.dialect,
    )
