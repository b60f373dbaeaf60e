"""Translate a project's SQL into an engine's dialect, filling what sqlglot leaves undone."""

from __future__ import annotations

from sqlglot import exp

from daglake.sql.parse import ParsedFile, Statement

SOURCE_ALIAS = "_daglake_src"


def translate(parsed: ParsedFile, source: str, target: str, default_output: str) -> list[tuple[int, str]]:
    """Each statement as ``(line, sql)`` in ``target``'s dialect; bare queries become CTAS."""
    return [
        (statement.line, _statement_sql(statement, source, target, default_output))
        for statement in parsed.statements
    ]


def _statement_sql(statement: Statement, source: str, target: str, default_output: str) -> str:
    expression = statement.expression.copy()
    if statement.kind == "query":
        expression = exp.Create(
            this=exp.to_table(default_output),
            kind="TABLE",
            replace=True,
            expression=expression,
        )
    if source == target:
        return expression.sql(dialect=target)
    expression = expression.transform(_drop_catalog, copy=False)
    if source == "bigquery":
        expression = expression.transform(_bigquery_numeric, copy=False)
        expression = expression.transform(_anonymous_struct, copy=False)
    if target != "bigquery" and isinstance(expression, exp.Create):
        expression = _column_list_as_casts(expression)
    if target == "duckdb":
        expression = expression.transform(_parameter_as_variable, copy=False)
    return expression.sql(dialect=target)


def _drop_catalog(node: exp.Expr) -> exp.Expr:
    """``project.dataset.table`` is ``dataset.table`` in a single-warehouse engine."""
    if isinstance(node, exp.Table) and node.args.get("catalog") and node.args.get("db"):
        node.set("catalog", None)
    return node


def _parameter_as_variable(node: exp.Expr) -> exp.Expr:
    """``@ds`` (a BigQuery query parameter) reads the DuckDB variable the engine sets per run,
    so translated SQL stays the same for every logical date and can be cached."""
    if isinstance(node, exp.Parameter):
        return exp.Anonymous(this="getvariable", expressions=[exp.Literal.string(node.name.lower())])
    return node


def _bigquery_numeric(node: exp.Expr) -> exp.Expr:
    """BigQuery's NUMERIC is DECIMAL(38, 9); a bare DECIMAL elsewhere may round (DuckDB: 18,3)."""
    if (
        isinstance(node, exp.DataType)
        and node.this in (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL)
        and not node.expressions
    ):
        return exp.DataType.build("DECIMAL(38, 9)")
    return node


def _anonymous_struct(node: exp.Expr) -> exp.Expr:
    """BigQuery's ``STRUCT(1, 'a')`` has unnamed fields that take names by position (in a
    UNION or a column list); ``ROW(...)`` keeps that meaning where sqlglot would invent names."""
    if (
        isinstance(node, exp.Struct)
        and node.expressions
        and not any(isinstance(e, (exp.PropertyEQ, exp.Alias, exp.Column)) for e in node.expressions)
    ):
        return exp.Anonymous(this="ROW", expressions=[e.copy() for e in node.expressions])
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
