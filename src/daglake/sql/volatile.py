"""Whether a statement's result can change with nothing it reads changing: such SQL always runs.

Found on the tree sqlglot parsed in the project's dialect (where ``@ds`` is a parameter; in
DuckDB's dialect it would read as ``ABS(ds)``), never on the text, so a name in a comment or
a string is not a call."""

from __future__ import annotations

from sqlglot import exp

_CLASSES: dict[type[exp.Expr], str] = {
    exp.CurrentDate: "CURRENT_DATE",
    exp.CurrentDatetime: "CURRENT_DATETIME",
    exp.CurrentTime: "CURRENT_TIME",
    exp.CurrentTimestamp: "CURRENT_TIMESTAMP",
    exp.CurrentTimestampLTZ: "CURRENT_TIMESTAMP",
    exp.Localtime: "LOCALTIME",
    exp.Localtimestamp: "LOCALTIMESTAMP",
    exp.Rand: "RAND",
    exp.Randn: "RANDN",
    exp.Randstr: "RANDSTR",
    exp.Uuid: "UUID",
}
# calls sqlglot keeps as anonymous functions in some dialect
_NAMES = {
    "now", "random", "rand", "uuid", "gen_random_uuid", "generate_uuid", "today", "getdate",
    "sysdate", "systimestamp", "random_uuid", "current_timestamp", "current_date", "setseed",
    "nextval", "unix_timestamp", "current_time", "current_datetime",
}
_VARIABLES = {"run_id": "reads @run_id"}


def volatile_reason(expression: exp.Expr, parameters: dict[str, int]) -> str | None:
    """``"calls CURRENT_DATE"``, ``"reads @run_id"``..., or None for deterministic SQL."""
    for name, reason in _VARIABLES.items():
        if name in parameters:
            return reason
    classes = tuple(_CLASSES)
    for node in expression.walk():
        if isinstance(node, classes):
            return f"calls {next(n for k, n in _CLASSES.items() if isinstance(node, k))}"
        if isinstance(node, exp.Anonymous):
            called = str(node.name).lower()
            if called in _NAMES:
                return f"calls {called.upper()}"
            if called == "getvariable":  # DuckDB's own @name: getvariable('run_id')
                argument = node.expressions[0] if node.expressions else None
                if isinstance(argument, exp.Literal) and argument.name.lower() in _VARIABLES:
                    return _VARIABLES[argument.name.lower()]
    return None


def reads_variable(expression: exp.Expr, name: str) -> bool:
    """DuckDB SQL reading ``getvariable('name')`` (what ``@name`` is in other dialects)."""
    for node in expression.find_all(exp.Anonymous):
        if str(node.name).lower() == "getvariable" and node.expressions:
            argument = node.expressions[0]
            if isinstance(argument, exp.Literal) and argument.name.lower() == name:
                return True
    return False
