"""What the Spark engine does with a translated statement, and with Spark's errors.

Spark refuses ``CREATE OR REPLACE TABLE … AS`` for Parquet tables and cannot ``DELETE`` from
them, so DDL that writes a table becomes a write of a new version (:mod:`spark_tables`):
``CREATE [OR REPLACE] TABLE t AS q`` and ``INSERT OVERWRITE t q`` replace ``t``,
``INSERT INTO t q`` adds to it, ``CREATE TABLE t (columns)`` makes it empty, ``DROP TABLE t``
removes it. Anything else runs as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from daglake.engines.base import Output
from daglake.errors import TaskError


@dataclass(frozen=True)
class StatementPlan:
    action: str  # write, overwrite, insert, create_if_missing, drop, run
    sql: str  # the query whose rows are written, or the statement to run
    output: Output | None = None
    schema: str | None = None  # an empty table's columns, as Spark DDL

    def describe(self) -> str:
        if self.output is None:
            return self.sql
        what = {"insert": "append to", "drop": "drop"}.get(self.action, "replace")
        return f"-- {what} {self.output.table}\n{self.sql}" if self.sql else f"-- {what} {self.output.table}"


def _name(table: exp.Expr) -> str | None:
    if isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table) or not table.name:
        return None
    return ".".join(p for p in (table.db, table.name) if p).lower()


_REFUSED = (exp.Delete, exp.Update, exp.Merge)


def plan_statement(sql: str) -> StatementPlan:
    """How an EXECUTE statement in Spark's dialect runs on versioned Parquet tables."""
    try:
        tree = sqlglot.parse_one(sql, read="spark")
    except (ParseError, TokenError):
        return StatementPlan("run", sql)  # Spark will say what is wrong
    if isinstance(tree, _REFUSED):
        verb = type(tree).__name__.upper()
        raise TaskError(
            f"{verb} is not available on the spark engine's Parquet tables: write the table's new rows "
            "as a query (CREATE OR REPLACE TABLE … AS SELECT …)"
        )
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
        name = _name(tree.this)
        if name is None:
            return StatementPlan("run", sql)
        action = "create_if_missing" if tree.args.get("exists") else "overwrite"
        query = tree.expression
        if isinstance(query, exp.Query):
            return StatementPlan(action, query.sql(dialect="spark"), Output(name))
        schema = tree.this
        if isinstance(schema, exp.Schema):
            columns = ", ".join(c.sql(dialect="spark") for c in schema.expressions if isinstance(c, exp.ColumnDef))
            return StatementPlan(action, "", Output(name), schema=columns)
        return StatementPlan("run", sql)
    if isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Query):
        name = _name(tree.this)
        if name is not None and not isinstance(tree.this, exp.Schema):
            action = "overwrite" if tree.args.get("overwrite") else "insert"
            return StatementPlan(action, tree.expression.sql(dialect="spark"), Output(name))
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() == "TABLE":
        name = _name(tree.this)
        if name is not None:
            return StatementPlan("drop", "", Output(name))
    return StatementPlan("run", sql)


def temp_views(sql: str, views: dict[str, str]) -> str:
    """``sql`` (Spark's dialect) reading each bare table name of ``views`` (lower case) from
    the view it maps to, keeping the name as the alias its columns are qualified by; a CTE of
    the same name keeps its own."""
    tree = sqlglot.parse_one(sql, read="spark")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        if table.args.get("db") or name not in views or name in ctes:
            continue
        renamed = exp.Table(this=exp.to_identifier(views[name]))
        renamed.set("alias", table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name)))
        table.replace(renamed)
    return tree.sql(dialect="spark")


def is_spark_error(exc: BaseException) -> bool:
    """An error Spark raised (SQL, analysis, a failed job), as opposed to a bug in daglake."""
    from pyspark.errors import PySparkException

    return isinstance(exc, PySparkException) or type(exc).__name__ == "Py4JJavaError"


_TRAILER = re.compile(r"\s*SQLSTATE: \w+.*$|;?\s*line \d+,? pos \d+.*$")
_JAVA = re.compile(r"^(?:[\w$]+\.)+[\w$]+(?:Exception|Error): ")


def spark_message(exc: BaseException) -> str:
    """Spark's first line: the error class and message, without the SQLSTATE, the position in
    translated SQL (it misleads users), the plan and the JVM stack."""
    text = str(exc)
    if type(exc).__name__ == "Py4JJavaError":
        java = getattr(exc, "java_exception", None)
        text = str(java.toString()) if java is not None else text
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("An error occurred", ": "))]
    first = lines[0] if lines else text.strip()
    first = _JAVA.sub("", first.lstrip(": "))
    return _TRAILER.sub("", first).strip().rstrip(";.") + "."


def _subject(exc: BaseException) -> str | None:
    """The name Spark complains about (it is in the user's file too)."""
    get = getattr(exc, "getMessageParameters", None)
    parameters = get() if callable(get) else None
    for key in ("objectName", "relationName", "routineName", "functionName", "name"):
        value = (parameters or {}).get(key)
        if value:
            return str(value).replace("`", "").split(".")[-1]
    return None


def engine_error(exc: BaseException, path: str | None, line: int | None = None) -> TaskError:
    return TaskError(spark_message(exc), path, line, subject=_subject(exc))
