"""Each check as one query returning its failing rows, built as a sqlglot tree: names are quoted
identifiers, values are literals, and the user's SQL fragments go through the same translation
as tasks, so a check reads the table exactly as the pipeline's own SQL would."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from daglake.checks.spec import CheckSpec
from daglake.sql.parse import ParsedFile, Statement, parse_file, table_name
from daglake.sql.translate import translate_with_warnings

CHECKED = "_daglake_checked"
OTHER = "_daglake_other"
MISSING = "_daglake_missing"
AGGREGATE = "_daglake_aggregate"

Builder = Callable[[CheckSpec, datetime], exp.Query]


def check_sql(
    spec: CheckSpec, dialect: str = "duckdb", *, now: datetime | None = None, tables: Mapping[str, str] | None = None
) -> str:
    """The query returning ``spec``'s failing rows in ``dialect``; ``now`` (UTC, default the
    current time) is what freshness is measured against; ``tables`` names another table to
    read instead of one the check names (an audit reads the unpublished new version)."""
    sql = _check_sql(spec, dialect, now)
    replaced = {k: v for k, v in (tables or {}).items() if k != v}
    return _read_instead(sql, dialect, replaced) if replaced else sql


def _read_instead(sql: str, dialect: str, tables: Mapping[str, str]) -> str:
    tree = sqlglot.parse_one(sql, read=dialect)
    for node in list(tree.find_all(exp.Table)):
        wanted = tables.get(table_name(node) or "")
        if wanted is not None:
            replacement = exp.to_table(wanted, dialect=dialect)
            if node.alias:
                replacement.set("alias", node.args["alias"])
            node.replace(replacement)
    return tree.sql(dialect)


def _check_sql(spec: CheckSpec, dialect: str, now: datetime | None) -> str:
    if spec.kind == "sql":
        parsed = parse_file(str(spec.params["query"]), spec.source_dialect)
        statements = [dataclasses.replace(s, kind="other") for s in parsed.statements]
    else:
        moment = now or datetime.now(UTC)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        query = _BUILDERS[spec.kind](spec, moment)
        statements = [Statement(line=spec.line, kind="other", expression=query)]
    translated, _ = translate_with_warnings(
        ParsedFile(statements=statements), spec.source_dialect, dialect, ""
    )
    return translated[0][1]


def _identifier(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _column(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_identifier(name), table=_identifier(table) if table else None)


def _table(name: str, alias: str) -> exp.Table:
    *dataset, table = name.split(".")
    return exp.Table(
        this=_identifier(table),
        db=_identifier(dataset[-1]) if dataset else None,
        alias=exp.TableAlias(this=_identifier(alias)),
    )


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(repr(value))
    return exp.Literal.string(str(value))


def _fragment(spec: CheckSpec, text: str) -> exp.Expr:
    """A condition the user wrote, parsed in the project's dialect and parenthesized."""
    return exp.Paren(this=sqlglot.parse_one(text, read=spec.source_dialect))


def _checked(spec: CheckSpec) -> exp.Expr:
    """The checked table as a FROM source, narrowed by the check's ``where`` if it has one."""
    table = _table(spec.table, CHECKED)
    where = spec.params.get("where")
    if not where:
        return table
    table.set("alias", None)
    return exp.select("*").from_(table).where(_fragment(spec, where)).subquery(_identifier(CHECKED))


def _is_null(column: exp.Expr) -> exp.Expr:
    return exp.Is(this=column, expression=exp.Null())


def _not_null(column: exp.Expr) -> exp.Expr:
    return exp.not_(_is_null(column))


def _count() -> exp.Expr:
    return exp.Count(this=exp.Star())


def _not_null_rows(spec: CheckSpec, _: datetime) -> exp.Query:
    return exp.select("*").from_(_checked(spec)).where(_is_null(_column(spec.params["column"])))


def _duplicate_keys(spec: CheckSpec, _: datetime) -> exp.Query:
    columns = [_column(c) for c in spec.params["columns"]]
    return (
        exp.select(*columns, _count().as_(_identifier("rows")))
        .from_(_checked(spec))
        .where(exp.and_(*[_not_null(c.copy()) for c in columns]))
        .group_by(*[c.copy() for c in columns])
        .having(exp.GT(this=_count(), expression=exp.Literal.number(1)))
    )


def _unaccepted_values(spec: CheckSpec, _: datetime) -> exp.Query:
    column = _column(spec.params["column"])
    accepted = exp.In(this=column.copy(), expressions=[_literal(v) for v in spec.params["values"]])
    return (
        exp.select("*").from_(_checked(spec)).where(exp.and_(_not_null(column), exp.not_(accepted)))
    )


def _orphans(spec: CheckSpec, _: datetime) -> exp.Query:
    child = _column(spec.params["column"], CHECKED)
    parent = (
        exp.select(exp.Literal.number(1))
        .from_(_table(spec.params["to_table"], OTHER))
        .where(exp.EQ(this=_column(spec.params["to_column"], OTHER), expression=child.copy()))
    )
    return (
        exp.select(exp.Column(this=exp.Star(), table=_identifier(CHECKED)))
        .from_(_checked(spec))
        .where(exp.and_(_not_null(child), exp.not_(exp.Exists(this=parent))))
    )


def _row_count(spec: CheckSpec, _: datetime) -> exp.Query:
    actual = _column("actual")
    low, high = spec.params.get("min"), spec.params.get("max")
    outside = [
        exp.LT(this=actual.copy(), expression=_literal(low)) if low is not None else None,
        exp.GT(this=actual.copy(), expression=_literal(high)) if high is not None else None,
    ]
    counted = exp.select(_count().as_(_identifier("actual"))).from_(_checked(spec))
    return (
        exp.select(
            actual, _literal(low).as_(_identifier("min")), _literal(high).as_(_identifier("max"))
        )
        .from_(counted.subquery(_identifier(AGGREGATE)))
        .where(exp.or_(*[c for c in outside if c is not None]))
    )


def _stale(spec: CheckSpec, now: datetime) -> exp.Query:
    """Seconds since the epoch are compared, so DATE, TIMESTAMP and TIMESTAMPTZ columns all work
    whatever the session's time zone (cast to TIMESTAMP first: Spark's UNIX_SECONDS refuses a
    DATE); an empty table (no latest value) is stale too."""
    cutoff = now - timedelta(seconds=float(spec.params["max_age_seconds"]))
    latest = _column("latest")
    newest = exp.select(
        exp.Max(this=_column(spec.params["column"])).as_(_identifier("latest"))
    ).from_(_checked(spec))
    return (
        exp.select(
            latest,
            _literal(cutoff.astimezone(UTC).isoformat()).as_(_identifier("cutoff")),
            _literal(spec.params["max_age"]).as_(_identifier("max_age")),
        )
        .from_(newest.subquery(_identifier(AGGREGATE)))
        .where(
            exp.or_(
                _is_null(latest.copy()),
                exp.LT(
                    this=exp.UnixSeconds(this=exp.Cast(this=latest.copy(), to=exp.DataType.build("TIMESTAMP"))),
                    expression=_literal(cutoff.timestamp()),
                ),
            )
        )
    )


def _reconcile(spec: CheckSpec, _: datetime) -> exp.Query:
    other = str(spec.params["table"])
    if not spec.params.get("key"):
        actual = exp.select(_count().as_(_identifier("actual"))).from_(_checked(spec))
        expected = exp.select(_count().as_(_identifier("expected"))).from_(_table(other, OTHER))
        return (
            exp.select(_column("actual"), _column("expected"))
            .from_(actual.subquery(_identifier(CHECKED)))
            .join(expected.subquery(_identifier(OTHER)), join_type="cross")
            .where(exp.NEQ(this=_column("actual"), expression=_column("expected")))
        )
    keys = list(spec.params["key"])
    here = exp.select(*[_column(k) for k in keys]).from_(_checked(spec))
    there = exp.select(
        *[
            _column(o).as_(_identifier(k))
            for o, k in zip(spec.params["other_key"], keys, strict=True)
        ]
    ).from_(_table(other, OTHER))

    def missing_from(table: str, present: exp.Query, absent: exp.Query) -> exp.Select:
        difference = exp.except_(present.copy(), absent.copy(), distinct=True)
        return exp.select(
            _literal(table).as_(_identifier("missing_from")), *[_column(k) for k in keys]
        ).from_(difference.subquery(_identifier(MISSING)))

    return exp.union(
        missing_from(other, here, there), missing_from(spec.table, there, here), distinct=False
    )


def _expression(spec: CheckSpec, _: datetime) -> exp.Query:
    """A row passes only when the condition is TRUE: FALSE and NULL fail."""
    holds = exp.Coalesce(
        this=_fragment(spec, str(spec.params["expression"])), expressions=[exp.false()]
    )
    return exp.select("*").from_(_checked(spec)).where(exp.not_(holds))


_BUILDERS: dict[str, Builder] = {
    "not_null": _not_null_rows,
    "unique": _duplicate_keys,
    "accepted_values": _unaccepted_values,
    "relationships": _orphans,
    "row_count": _row_count,
    "expression": _expression,
    "freshness": _stale,
    "reconcile": _reconcile,
}
