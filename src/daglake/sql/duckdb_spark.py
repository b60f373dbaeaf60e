"""DuckDB functions that sqlglot's translation to Spark SQL passes through unknown.

- ``epoch_us(ts)``: microseconds since the epoch, Spark's ``UNIX_MICROS(ts)``.
"""

from __future__ import annotations

from sqlglot import exp

_RENAMED = {"epoch_us": "UNIX_MICROS"}


def to_spark(expression: exp.Expr) -> exp.Expr:
    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() in _RENAMED:
            return exp.Anonymous(this=_RENAMED[str(node.this).lower()], expressions=node.expressions)
        return node

    return expression.transform(rewrite, copy=False)
