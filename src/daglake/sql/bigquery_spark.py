"""BigQuery semantics that sqlglot's translation to Spark SQL leaves out or gets wrong.

Each rewrite gives Spark the result BigQuery gives (checked on both engines by
tests/test_spark_translate.py):

- ``ARRAY_AGG(x ORDER BY k)``: sqlglot drops the order (``COLLECT_LIST(x)``); here the values
  are collected with their keys and sorted by them (``ARRAY_SORT`` with a comparator: BigQuery's
  NULLS FIRST for ASC, NULLS LAST for DESC), ``LIMIT n`` as ``SLICE``.
- ``DATE_TRUNC(d, WEEK)``: BigQuery's week starts on Sunday (``WEEK(<day>)`` on that day),
  Spark's ``TRUNC(d, 'WEEK')`` on Monday; here the days since the week's start are subtracted.
- ``FROM UNNEST([STRUCT(...), ...])``: sqlglot's ``EXPLODE`` gives one struct column where
  BigQuery gives the fields as columns; ``INLINE`` does.
- ``DATE(ts, zone)``: sqlglot keeps both arguments, which Spark's ``DATE`` refuses; here the
  timestamp is shifted from UTC to the zone first.
- ``@ds``: a named parameter marker ``:ds`` (Spark's ``spark.sql(sql, args=...)``), not text.
- TIMESTAMP values agree only in a UTC session: the engine sets ``spark.sql.session.timeZone``.
"""

from __future__ import annotations

from sqlglot import exp

_WEEKDAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")


def to_spark(expression: exp.Expr) -> tuple[exp.Expr, list[str]]:
    """BigQuery constructs rewritten for Spark, and what cannot match (none so far)."""
    counter = iter(range(1, 1 << 30))

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, (exp.Order, exp.Limit)):
            return _ordered_array_agg(node, next(counter))
        if isinstance(node, exp.DateTrunc):
            return _week_trunc(node)
        if isinstance(node, exp.Unnest) and isinstance(node.parent, (exp.From, exp.Join)):
            return _inline_structs(node)
        if isinstance(node, exp.Date) and node.args.get("zone") is not None:
            return _local_date(node)
        if isinstance(node, exp.Parameter):
            return exp.Placeholder(this=node.name.lower())
        return node

    return expression.transform(rewrite, copy=False), []


def _local_date(node: exp.Date) -> exp.Expr:
    """``DATE(ts, 'Europe/Paris')``: the day it is there when it is ``ts`` in UTC."""
    shifted = exp.Anonymous(this="FROM_UTC_TIMESTAMP", expressions=[node.this.copy(), node.args["zone"].copy()])
    return exp.Anonymous(this="TO_DATE", expressions=[shifted])


def _ordered_array_agg(node: exp.ArrayAgg, n: int) -> exp.Expr:
    """``ARRAY_AGG([DISTINCT] x ORDER BY k1 [DESC], ... [LIMIT n])`` with its order kept."""
    limit: exp.Expr | None = None
    inner = node.this
    if isinstance(inner, exp.Limit):
        limit = inner.expression
        inner = inner.this
    if not isinstance(inner, exp.Order):
        return node
    value = inner.this
    distinct = isinstance(value, exp.Distinct)
    if isinstance(value, exp.Distinct):
        value = value.expressions[0]
    keys: list[exp.Ordered] = [o for o in inner.expressions if isinstance(o, exp.Ordered)]
    fields = [exp.PropertyEQ(this=exp.to_identifier(f"k{i}"), expression=k.this.copy()) for i, k in enumerate(keys)]
    fields.append(exp.PropertyEQ(this=exp.to_identifier("v"), expression=value.copy()))
    collect = exp.Anonymous(this="COLLECT_SET" if distinct else "COLLECT_LIST", expressions=[exp.Struct(expressions=fields)])
    left, right = f"_daglake_l{n}", f"_daglake_r{n}"
    comparator = exp.Lambda(
        this=_compare(keys, left, right),
        expressions=[exp.to_identifier(left), exp.to_identifier(right)],
    )
    element = f"_daglake_e{n}"
    sorted_ = exp.Anonymous(this="ARRAY_SORT", expressions=[collect, comparator])
    values: exp.Expr = exp.Anonymous(
        this="TRANSFORM",
        expressions=[sorted_, exp.Lambda(this=exp.column("v", table=element), expressions=[exp.to_identifier(element)])],
    )
    if limit is not None:
        values = exp.Anonymous(this="SLICE", expressions=[values, exp.Literal.number(1), limit.copy()])
    return values


def _compare(keys: list[exp.Ordered], left: str, right: str) -> exp.Expr:
    """A comparator over ``k0, k1, ...``: -1, 0 or 1 with BigQuery's NULL placement."""
    case = exp.Case()
    for i, key in enumerate(keys):
        a, b = exp.column(f"k{i}", table=left), exp.column(f"k{i}", table=right)
        desc = bool(key.args.get("desc"))
        nulls_first = key.args.get("nulls_first")
        nulls_first = (not desc) if nulls_first is None else bool(nulls_first)
        first, later = exp.Literal.number(-1), exp.Literal.number(1)
        before, after = (later, first) if desc else (first, later)
        case = case.when(exp.and_(a.is_(exp.null()), b.is_(exp.null()).not_()), first if nulls_first else later)
        case = case.when(exp.and_(b.is_(exp.null()), a.is_(exp.null()).not_()), later if nulls_first else first)
        case = case.when(exp.LT(this=a.copy(), expression=b.copy()), before)
        case = case.when(exp.GT(this=a.copy(), expression=b.copy()), after)
    return case.else_(exp.Literal.number(0))


def _week_trunc(node: exp.DateTrunc) -> exp.Expr:
    """``DATE_TRUNC(d, WEEK)`` / ``WEEK(<day>)``: the date minus the days since that weekday;
    ``ISOWEEK`` and ``WEEK(MONDAY)`` are Spark's ``TRUNC(d, 'WEEK')``."""
    unit = node.args.get("unit")
    start = "SUNDAY"
    if isinstance(unit, exp.WeekStart):
        start = unit.this.name.upper()
    elif isinstance(unit, exp.Var | exp.Literal) and unit.name.upper() == "ISOWEEK":
        start = "MONDAY"
    elif not (isinstance(unit, exp.Var | exp.Literal) and unit.name.upper() == "WEEK"):
        return node
    if start not in _WEEKDAYS:
        return node
    if start == "MONDAY":
        return exp.Anonymous(this="TRUNC", expressions=[node.this.copy(), exp.Literal.string("WEEK")])
    day = exp.Anonymous(this="DAYOFWEEK", expressions=[node.this.copy()])  # 1 = Sunday
    since = exp.Mod(
        this=exp.paren(exp.Add(this=exp.Sub(this=day, expression=exp.Literal.number(_WEEKDAYS.index(start) + 1)), expression=exp.Literal.number(7))),
        expression=exp.Literal.number(7),
    )
    return exp.Anonymous(this="DATE_SUB", expressions=[node.this.copy(), since])


def _inline_structs(node: exp.Unnest) -> exp.Expr:
    """``FROM UNNEST([STRUCT(...)])`` as ``INLINE(ARRAY(STRUCT(...)))``: the fields as columns."""
    if len(node.expressions) != 1 or node.args.get("offset"):
        return node
    array = node.expressions[0]
    elements = array.expressions if isinstance(array, exp.Array) else []
    if not elements or not all(isinstance(e, exp.Struct) for e in elements):
        return node
    alias = node.args.get("alias")
    name = None
    if isinstance(alias, exp.TableAlias):
        name = alias.this or (alias.columns[0] if alias.columns else None)
    table = exp.Table(this=exp.Anonymous(this="INLINE", expressions=[array.copy()]))
    if name is not None:
        table.set("alias", exp.TableAlias(this=name.copy()))
    return table
