"""Translate a project's SQL into an engine's dialect, filling what sqlglot leaves undone."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from daglake.sql import bigquery, bigquery_spark, duckdb_spark
from daglake.sql.compiled import EXECUTE, MATERIALIZE, Statement
from daglake.sql.functions import called_functions
from daglake.sql.parse import ParsedFile
from daglake.sql.parse import Statement as ParsedStatement
from daglake.sql.quiet import sqlglot_warnings as _sqlglot_warnings

SOURCE_ALIAS = "_daglake_src"

_STORAGE_HINTS = (exp.PartitionedByProperty, exp.ClusterProperty)


def translate(parsed: ParsedFile, source: str, target: str, default_output: str) -> list[tuple[int, str]]:
    """Each statement as ``(line, sql)`` in ``target``'s dialect; bare queries become CTAS."""
    statements, _ = translate_with_warnings(parsed, source, target, default_output)
    return statements


def translate_with_warnings(
    parsed: ParsedFile, source: str, target: str, default_output: str, *, query_only: bool = False
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Statements as :func:`translate` gives them, and ``(line, message)`` for each thing the
    target cannot do as the source does (sqlglot's own warnings are caught, not printed).

    ``query_only`` leaves a bare query unwrapped, for results the engine writes elsewhere (the
    lake) instead of into ``default_output``."""
    statements: list[tuple[int, str]] = []
    warnings: list[tuple[int, str]] = []
    for statement in parsed.statements:
        with _sqlglot_warnings() as caught:
            sql, messages = _statement_sql(statement, source, target, default_output, query_only)
        statements.append((statement.line, sql))
        warnings.extend((statement.line, m) for m in dict.fromkeys([*messages, *caught]))
    return statements, warnings


def translate_task(
    parsed: ParsedFile, source: str, target: str, default_output: str, *, consume: bool = False
) -> tuple[list[Statement], list[tuple[int, str]]]:
    """A task's statements for an engine: a bare query is a MATERIALIZE of ``default_output``
    (the engine decides how to replace the table), anything else runs as written.

    ``consume`` rewrites the parsed trees in place instead of copying them (a copy costs more
    than the translation on a big file): ``parsed`` is not used afterwards."""
    statements: list[Statement] = []
    warnings: list[tuple[int, str]] = []
    skeleton: list[str] = []
    with _sqlglot_warnings() as logged:
        for statement in parsed.statements:
            bare = statement.kind == "query"
            verbatim = source == target and bool(statement.text)  # the user's SQL, unchanged
            sql, messages, before = "", list[str](), len(logged)
            if not verbatim:
                expression = statement.expression if consume else statement.expression.copy()
                sql, messages = _expression_sql(expression, statement.kind, source, target, default_output, True, skeleton)
            caught = logged[before:]
            # functions are looked for in the statement without its literal rows, when set aside
            called, defined = called_functions(statement.text if verbatim else (skeleton.pop() if skeleton else sql), target)
            statements.append(
                Statement(
                    kind=MATERIALIZE if bare else EXECUTE,
                    query=statement.text if verbatim else sql,
                    line=statement.line,
                    target=default_output if bare else statement.target,
                    parameters=tuple(sorted(statement.parameters)),
                    column=statement.column if verbatim else 1,
                    verbatim=verbatim,
                    functions=tuple(called),
                    defines=tuple(defined),
                )
            )
            warnings.extend((statement.line, m) for m in dict.fromkeys([*messages, *caught]))
    return statements, warnings


def select_all(table: str, dialect: str) -> str:
    """``SELECT * FROM`` a table (``dataset.table``), quoted the way ``dialect`` quotes names."""
    parts = [exp.to_identifier(part, quoted=True) for part in table.split(".")]
    name = exp.Table(this=parts[-1], db=parts[-2] if len(parts) > 1 else None, catalog=parts[-3] if len(parts) > 2 else None)
    return exp.select("*").from_(name).sql(dialect=dialect)


@functools.lru_cache(maxsize=512)
def translate_query(sql: str, source: str, target: str) -> str:
    """One statement written in ``source``'s dialect, for ``target`` (what ``ctx.sql`` runs);
    a ValueError saying why when it is not one statement of ``source``."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        with _sqlglot_warnings():
            parsed = [e for e in sqlglot.parse(sql, read=source) if e is not None]
    except ParseError as exc:
        raise ValueError(f"not {source} SQL: {exc.errors[0]['description'] if exc.errors else exc}") from exc
    if len(parsed) != 1:
        raise ValueError(f"expected one {source} statement, found {len(parsed)}")
    with _sqlglot_warnings():
        translated, _ = _expression_sql(parsed[0], "other", source, target, "", query_only=True)
    return translated


def _statement_sql(
    statement: ParsedStatement, source: str, target: str, default_output: str, query_only: bool = False
) -> tuple[str, list[str]]:
    return _expression_sql(statement.expression.copy(), statement.kind, source, target, default_output, query_only)


def _expression_sql(
    expression: exp.Expr,
    kind: str,
    source: str,
    target: str,
    default_output: str,
    query_only: bool,
    skeleton: list[str] | None = None,
) -> tuple[str, list[str]]:
    """The statement in ``target``'s SQL; ``skeleton`` gets the SQL without the literal rows
    of a seed ``INSERT … VALUES`` when they were set aside (what to look for functions in)."""
    if kind == "query" and not query_only:
        expression = exp.Create(
            this=exp.to_table(default_output),
            kind="TABLE",
            replace=True,
            expression=expression,
        )
    if source == target:
        return expression.sql(dialect=_dialect(target), copy=False), []  # already a private copy
    with _literal_rows_aside(expression) as aside:
        expression, warnings = _rewritten(expression, source, target)
        if aside and skeleton is not None:
            skeleton.append(expression.sql(dialect=_dialect(target), copy=False))
    return expression.sql(dialect=_dialect(target), copy=False), warnings


def _rewritten(expression: exp.Expr, source: str, target: str) -> tuple[exp.Expr, list[str]]:
    warnings: list[str] = []
    expression = expression.transform(_drop_catalog, copy=False)
    if target != "bigquery" and isinstance(expression, exp.Create):
        _drop_storage_hints(expression, options=source == "bigquery")
    if source == "bigquery":
        expression = bigquery.normalize(expression)
        if target == "duckdb":
            expression, warnings = bigquery.to_duckdb(expression)
        elif target == "spark":
            expression, warnings = bigquery_spark.to_spark(expression)
    elif source == "duckdb" and target == "spark":
        expression = duckdb_spark.to_spark(expression)
    if target != "bigquery" and isinstance(expression, exp.Create):
        expression = _column_list_as_casts(expression)
    if target == "duckdb":
        expression = expression.transform(_parameter_as_variable, copy=False)
    return expression, warnings


_PLAIN_VALUES = (exp.Literal, exp.Null, exp.Boolean)


# typed literals (``DATE '2024-01-01'``, a cast of a string) no rewrite changes; casts to
# strings, integers and decimals are rewritten
_PLAIN_CASTS = {
    exp.DataType.Type.DATE, exp.DataType.Type.DATETIME, exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIME,
}


def _plain(value: exp.Expr) -> bool:
    if isinstance(value, exp.Cast) and type(value) is exp.Cast and not value.args.get("format"):
        return value.to.this in _PLAIN_CASTS and isinstance(value.this, exp.Literal) and value.this.is_string
    return isinstance(value, _PLAIN_VALUES) or (isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal))


@contextlib.contextmanager
def _literal_rows_aside(expression: exp.Expr) -> Iterator[bool]:
    """An ``INSERT … VALUES`` of literal rows (a seed file of 84,000 rows) keeps its rows out of
    the rewrites, none of which touches a literal in a VALUES row: walking them costs more than
    parsing them. They are put back before the SQL is written in the target dialect."""
    values = expression.args.get("expression") if isinstance(expression, exp.Insert) else None
    rows = values.expressions if isinstance(values, exp.Values) else []
    if not rows or not all(isinstance(r, exp.Tuple) and all(_plain(v) for v in r.expressions) for r in rows):
        yield False
        return
    assert isinstance(values, exp.Values)
    values.set("expressions", [])
    try:
        yield True
    finally:
        values.set("expressions", rows)


@functools.cache
def _dialect(name: str) -> Dialect:
    """One instance per dialect: sqlglot would build one for every statement of a big file."""
    return Dialect.get_or_raise(name)


def _drop_catalog(node: exp.Expr) -> exp.Expr:
    """``project.dataset.table`` is ``dataset.table`` in a single-warehouse engine."""
    if isinstance(node, exp.Table) and node.args.get("catalog") and node.args.get("db"):
        node.set("catalog", None)
    return node


def _drop_storage_hints(create: exp.Create, options: bool) -> None:
    """PARTITION BY, CLUSTER BY and BigQuery's OPTIONS(...) tune storage and billing; an engine
    without them gives the same results, so they go without a warning."""
    properties = create.args.get("properties")
    if not isinstance(properties, exp.Properties):
        return
    kept = [
        p
        for p in properties.expressions
        if not isinstance(p, _STORAGE_HINTS) and not (options and type(p) is exp.Property)
    ]
    if kept:
        properties.set("expressions", kept)
    else:
        create.set("properties", None)


def _parameter_as_variable(node: exp.Expr) -> exp.Expr:
    """``@ds`` (a BigQuery query parameter) reads the DuckDB variable the engine sets per run,
    so translated SQL stays the same for every logical date and can be cached."""
    if isinstance(node, exp.Parameter):
        return exp.Anonymous(this="getvariable", expressions=[exp.Literal.string(node.name.lower())])
    return node


def _column_list_as_casts(create: exp.Create) -> exp.Create:
    """``CREATE TABLE t (a INT64, b STRING) AS q`` → ``CREATE TABLE t AS SELECT CAST(..) AS a ...``.

    BigQuery names and types the query's columns by position; DuckDB and Spark reject a column
    list on CTAS, so the query is wrapped and each column cast and renamed.
    """
    schema = create.this
    query = create.expression
    if not isinstance(schema, exp.Schema) or not isinstance(query, exp.Query):
        return create
    columns = [c for c in schema.expressions if isinstance(c, exp.ColumnDef)]
    if not columns:
        return create
    positional = [exp.to_identifier(f"_c{i}") for i in range(len(columns))]
    projections = [
        exp.Cast(
            this=exp.column(positional[i].name, table=SOURCE_ALIAS),
            to=column.args["kind"].copy(),
        ).as_(column.this.copy())
        if column.args.get("kind")
        else exp.column(positional[i].name, table=SOURCE_ALIAS).as_(column.this.copy())
        for i, column in enumerate(columns)
    ]
    source = exp.Subquery(
        this=query,
        alias=exp.TableAlias(this=exp.to_identifier(SOURCE_ALIAS), columns=positional),
    )
    create.set("this", schema.this)
    create.set("expression", exp.select(*projections).from_(source))
    return create
