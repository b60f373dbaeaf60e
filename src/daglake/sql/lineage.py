"""Column lineage of one query, with sqlglot's scopes: for each column the query outputs, the
columns of the tables it reads that its values are computed from (``sources``) and those that
only decide which rows there are (join and filter keys: ``filters``).

Columns are resolved through CTEs, subqueries, unions, ``UNNEST`` and structs; ``SELECT *`` is
expanded with the schemas given (what daglake knows of upstream tables). Names are
``dataset.table.column``, lower case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

Schema = dict[str, dict[str, dict[str, str]]]  # dataset -> table -> column -> type


@dataclass
class ColumnSources:
    sources: set[str] = field(default_factory=set)
    filters: set[str] = field(default_factory=set)

    def add(self, other: ColumnSources) -> None:
        self.sources |= other.sources
        self.filters |= other.filters


def query_of(statement: exp.Expr) -> tuple[exp.Query | None, list[str]]:
    """The query whose rows a statement writes, and the column list it names (``CREATE TABLE
    t (a, b) AS …``, ``INSERT INTO t (a, b) …``), if any."""
    if isinstance(statement, exp.Query):
        return statement, []
    if isinstance(statement, exp.Create | exp.Insert):
        target = statement.this
        named = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
        query = statement.expression
        return (query if isinstance(query, exp.Query) else None), named
    return None, []


def query_lineage(query: exp.Query, schema: Schema, dialect: str) -> dict[str, ColumnSources]:
    """Each output column of ``query`` (in order) with what it is computed from."""
    qualified = qualify(
        query.copy(), schema=cast(dict[str, object], schema), dialect=dialect, validate_qualify_columns=False,
        quote_identifiers=False, identify=False,
    )
    root = build_scope(qualified)
    if root is None:
        return {}
    resolver = _Resolver()
    found: dict[str, ColumnSources] = {}
    for select in qualified.selects:
        name = select.alias_or_name.lower()
        found[name] = resolver.output(root, name)
        for field_name, value in _struct_fields(select):  # col.field of a STRUCT (in an array)
            inner = resolver.expression(root, value)
            inner.filters |= found[name].filters
            found[f"{name}.{field_name}"] = inner
    return found


def _struct_fields(select: exp.Expr) -> list[tuple[str, exp.Expr]]:
    """The named fields of a STRUCT a column is (or aggregates into an array), each with its
    value expression: ``ARRAY_AGG(STRUCT(a, b AS c))`` gives ``a`` and ``c``."""
    node = select.this if isinstance(select, exp.Alias) else select
    while isinstance(node, exp.ArrayAgg | exp.Array | exp.Filter | exp.Order | exp.Distinct | exp.Paren):
        inner = node.this if not isinstance(node, exp.Array) else (node.expressions[0] if len(node.expressions) == 1 else None)
        if inner is None:
            break
        node = inner
    if not isinstance(node, exp.Struct):
        return []
    fields: list[tuple[str, exp.Expr]] = []
    for value in node.expressions:
        if isinstance(value, exp.PropertyEQ | exp.Alias):
            fields.append((value.name.lower() if isinstance(value, exp.Alias) else value.this.name.lower(), value))
        elif isinstance(value, exp.Column):
            fields.append((value.name.lower(), value))
    return fields


class _Resolver:
    """Walks scopes from an output column down to table columns, once per (scope, column)."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, str], ColumnSources] = {}
        self._filters: dict[int, ColumnSources] = {}

    def output(self, scope: Scope, name: str) -> ColumnSources:
        """Column ``name`` of what ``scope`` returns, with the filters of every scope on the way."""
        key = (id(scope), name.lower())
        if key in self._done:
            return self._done[key]
        found = self._done[key] = ColumnSources()  # a recursive CTE meets itself: nothing more
        if scope.set_operation_scopes:
            for branch in scope.set_operation_scopes:
                found.add(self.output(branch, name))
            return found
        select = next((s for s in _selects(scope.expression) if s.alias_or_name.lower() == name.lower()), None)
        if select is None:
            position = _position(scope.expression, name)
            select = _selects(scope.expression)[position] if position is not None else None
        if select is not None:
            found.add(self.expression(scope, select))
        filters = self.filters(scope)
        found.filters |= filters.sources | filters.filters
        return found

    def filters(self, scope: Scope) -> ColumnSources:
        """What the join conditions, WHERE, HAVING and QUALIFY of ``scope`` read."""
        if id(scope) in self._filters:
            return self._filters[id(scope)]
        found = self._filters[id(scope)] = ColumnSources()
        node = scope.expression
        parts: list[Any] = [node.args.get(k) for k in ("where", "having", "qualify")]
        for join in node.args.get("joins") or []:
            parts += [join.args.get("on"), *(join.args.get("using") or [])]
        for part in filter(None, parts):
            found.add(self.expression(scope, part))
        return found

    def expression(self, scope: Scope, node: exp.Expr) -> ColumnSources:
        """The table columns an expression of ``scope`` reads (scalar subqueries included)."""
        found = ColumnSources()
        for column in _columns(node):
            found.add(self.column(scope, column))
        for subquery in node.find_all(exp.Subquery, exp.Exists):
            inner = next((s for s in scope.subquery_scopes if s.expression is subquery.this), None)
            if inner is not None:
                for name in [s.alias_or_name for s in _selects(inner.expression)]:
                    found.add(self.output(inner, name))
        return found

    def column(self, scope: Scope, column: exp.Column) -> ColumnSources:
        source = scope.sources.get(column.table) if column.table else None
        if isinstance(source, exp.Table):
            return ColumnSources({_table_column(source, column.name)})
        if isinstance(source, Scope) and isinstance(source.expression, exp.Unnest):
            return self._unnested(scope, source.expression, column)  # its arguments read this scope
        if isinstance(source, Scope):
            return self.output(source, column.name)
        if isinstance(source, exp.Unnest):  # UNNEST(x) AS e: e and e.field come from x
            return self._unnested(scope, source, column)
        unnested = _unnest_named(scope, column.table or column.name)
        if unnested is not None:
            return self._unnested(scope, unnested, column)
        if scope.parent is not None:  # a correlated reference to an outer query
            return self.column(scope.parent, column)
        return ColumnSources()


    def _unnested(self, scope: Scope, unnest: exp.Unnest, column: exp.Column) -> ColumnSources:
        """The array's column, or its struct field ``col.field`` when the element's field is
        what is read (``e.field``) and the array comes from one column."""
        whole = self.expression(scope, exp.Tuple(expressions=[e.copy() for e in unnest.expressions]))
        dot = column.parent
        if isinstance(dot, exp.Dot) and dot.this is column and len(whole.sources) == 1:
            return ColumnSources({f"{next(iter(whole.sources))}.{dot.expression.name.lower()}"}, whole.filters)
        return whole


def _columns(node: exp.Expr) -> list[exp.Column]:
    """Columns of ``node`` outside its subqueries (those are scopes of their own)."""
    found = []
    for column in node.find_all(exp.Column):
        if column is node:
            found.append(column)
            continue
        parent = column.parent
        inside = False
        while parent is not None and parent is not node:
            if isinstance(parent, exp.Subquery | exp.Exists | exp.Query) and parent is not node:
                inside = True
                break
            parent = parent.parent
        if not inside:
            found.append(column)
    return found


def _unnest_named(scope: Scope, alias: str) -> exp.Unnest | None:
    for unnest in scope.expression.find_all(exp.Unnest):
        named = unnest.args.get("alias")
        names = [named.name, *(c.name for c in named.columns)] if named else []
        if alias and alias.lower() in (n.lower() for n in names if n):
            return unnest
    return None


def _position(query: exp.Expr, name: str) -> int | None:
    """A column of a union branch is matched by position with the first branch's names."""
    parent = query.parent
    while isinstance(parent, exp.Subquery):
        parent = parent.parent
    if isinstance(parent, exp.SetOperation):
        first = parent.this
        while isinstance(first, exp.SetOperation):
            first = first.this
        names = [n.lower() for n in first.named_selects]
        if name.lower() in names and names.index(name.lower()) < len(_selects(query)):
            return names.index(name.lower())
    return None


def _selects(node: exp.Expr) -> list[exp.Expr]:
    return list(node.selects) if isinstance(node, exp.Query) else []


def _table_column(table: exp.Table, column: str) -> str:
    return f"{table.db}.{table.name}.{column}".lower() if table.db else f"{table.name}.{column}".lower()
