"""The parameters of each check kind: which keys it takes, their types, and their canonical form
in :attr:`CheckSpec.params`, so queries never see a value that was not validated."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from daglake.checks.spec import parse_duration, split_table

KIND_KEYS: dict[str, tuple[str, ...]] = {
    "not_null": ("column",),
    "unique": ("column", "columns"),
    "accepted_values": ("column", "values"),
    "relationships": ("column", "to"),
    "row_count": ("min", "max"),
    "expression": ("expression",),
    "freshness": ("column", "max_age"),
    "reconcile": ("table", "key", "other_key"),
}

MAX_AGE_LIMIT = 100 * 365 * 86400
_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")

Fail = Callable[[str | None, str], None]
Judge = Callable[[Any], str | None]  # why a text is not one SQL condition, or None


def kind_params(
    kind: str, entry: dict[str, Any], params: dict[str, Any], fail: Fail, judge: Judge
) -> tuple[str, ...]:
    """Validate ``entry``'s kind-specific keys into ``params``; return the other tables it reads."""
    if kind in ("not_null", "accepted_values", "relationships", "freshness"):
        column = _name(entry, "column", kind, fail)
        if column is not None:
            params["column"] = column
    if kind == "unique":
        _unique(entry, params, fail)
    elif kind == "accepted_values":
        _accepted_values(entry, params, fail)
    elif kind == "relationships":
        return _relationships(entry, params, fail)
    elif kind == "row_count":
        _row_count(entry, params, fail)
    elif kind == "expression":
        text = entry.get("expression")
        error = (
            "a expression check needs 'expression'"
            if text is None
            else judge(text)
        )
        if error is None:
            params["expression"] = text
        else:
            fail(
                "expression",
                error if text is None else f"expression must be a SQL condition: {error}",
            )
    elif kind == "freshness":
        _freshness(entry, params, fail)
    elif kind == "reconcile":
        return _reconcile(entry, params, fail)
    return ()


def condition_error(text: Any, dialect: str) -> str | None:
    """Why ``text`` is not one SQL condition in ``dialect``, or None when it is."""
    if not isinstance(text, str) or not text.strip():
        return "expected a non-empty string"
    import sqlglot  # only projects that declare SQL conditions pay for it
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError

    try:
        parsed = sqlglot.parse(text, read=dialect)
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        description = _CLASS.sub(r"\1", str(error.get("description") or exc))
        return f"cannot parse {text!r}: {description}"
    except SqlglotError as exc:
        return f"cannot parse {text!r}: {exc}"
    if (
        len(parsed) != 1
        or not isinstance(parsed[0], exp.Condition)
        or isinstance(parsed[0], exp.Query)
    ):
        return f"{text!r} is not a single condition"
    return None


def _name(entry: dict[str, Any], key: str, kind: str, fail: Fail) -> str | None:
    if key not in entry:
        fail(None, f"a {kind} check needs '{key}'")
        return None
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        fail(key, f"{kind} {key} must be a column name (a non-empty string), not {value!r}")
        return None
    return value.strip()


def _names(value: Any, key: str, kind: str, fail: Fail) -> tuple[str, ...] | None:
    """A non-empty list of distinct column names (a single name is a list of one)."""
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(v, str) and v.strip() for v in items)
    ):
        fail(key, f"{kind} {key} must be a column name or a non-empty list of them, not {value!r}")
        return None
    names = tuple(v.strip() for v in items)
    if len(set(names)) != len(names):
        fail(key, f"{kind} {key} lists a column twice: {', '.join(names)}")
        return None
    return names


def _unique(entry: dict[str, Any], params: dict[str, Any], fail: Fail) -> None:
    given = [k for k in ("column", "columns") if k in entry]
    if len(given) != 1:
        fail(None, "a unique check needs 'columns' (a list, for a composite key) or 'column'")
        return
    columns = _names(entry[given[0]], given[0], "unique", fail)
    if columns is not None:
        params["columns"] = columns


def _accepted_values(entry: dict[str, Any], params: dict[str, Any], fail: Fail) -> None:
    values = entry.get("values")
    if values is None:
        fail(None, "an accepted_values check needs 'values'")
    elif (
        not isinstance(values, list)
        or not values
        or not all(
            isinstance(v, str | int) or (isinstance(v, float) and math.isfinite(v)) for v in values
        )
    ):
        fail(
            "values",
            f"accepted_values must be a non-empty list of strings, numbers or booleans (quote dates), not {values!r}",
        )
    else:
        params["values"] = tuple(values)


def _relationships(entry: dict[str, Any], params: dict[str, Any], fail: Fail) -> tuple[str, ...]:
    target = entry.get("to")
    if target is None:
        fail(None, "a relationships check needs 'to' = \"dataset.table.column\"")
        return ()
    table, _, column = target.rpartition(".") if isinstance(target, str) else ("", "", "")
    parts = split_table(table) if table else None
    if parts is None or len(parts) < 2 or not column.strip():
        fail("to", f"relationships target must be 'dataset.table.column', not {target!r}")
        return ()
    params["to_table"] = ".".join(parts)
    params["to_column"] = column.strip().strip('`"')
    return (params["to_table"],)


def _row_count(entry: dict[str, Any], params: dict[str, Any], fail: Fail) -> None:
    bounds: dict[str, int] = {}
    for key in ("min", "max"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail(key, f"row_count {key} must be a whole number >= 0, not {value!r}")
        else:
            bounds[key] = value
    if entry.get("min") is None and entry.get("max") is None:  # (a YAML ``min:`` is None)
        fail(None, "a row_count check needs 'min', 'max' or both")
    elif "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        fail("max", f"row_count max ({bounds['max']}) is less than min ({bounds['min']})")
    params.update({"min": bounds.get("min"), "max": bounds.get("max")})


def _freshness(entry: dict[str, Any], params: dict[str, Any], fail: Fail) -> None:
    max_age = entry.get("max_age")
    seconds = parse_duration(max_age) if isinstance(max_age, str) else None
    if max_age is None:
        fail(None, "a freshness check needs 'max_age' (e.g. \"36h\")")
    elif not seconds:
        fail(
            "max_age",
            f'max_age must be a duration such as "36h", "2d" or "1d12h" (units s, m, h, d, w), not {max_age!r}',
        )
    elif seconds > MAX_AGE_LIMIT:
        fail("max_age", f"max_age {max_age!r} is longer than 100 years")
    else:
        params["max_age"] = max_age.strip()
        params["max_age_seconds"] = seconds


def _reconcile(entry: dict[str, Any], params: dict[str, Any], fail: Fail) -> tuple[str, ...]:
    other = entry.get("table")
    parts = split_table(other) if isinstance(other, str) else None
    if other is None:
        fail(None, "a reconcile check needs 'table', the table to compare with")
    elif parts is None:
        fail("table", f"reconcile table must be 'dataset.table', not {other!r}")
    key: tuple[str, ...] | None = ()
    other_key: tuple[str, ...] | None = ()
    if "key" in entry:
        key = _names(entry["key"], "key", "reconcile", fail)
    if "other_key" in entry:
        other_key = _names(entry["other_key"], "other_key", "reconcile", fail)
        if "key" not in entry:
            fail("other_key", "reconcile other_key needs key (the columns of this table)")
        elif key and other_key and len(key) != len(other_key):
            fail(
                "other_key", f"reconcile other_key has {len(other_key)} columns, key has {len(key)}"
            )
    if parts is None or key is None or other_key is None:
        return ()
    params.update(table=".".join(parts), key=key, other_key=other_key or key)
    return (params["table"],)
