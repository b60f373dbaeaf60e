"""BigQuery semantics that sqlglot's translation to DuckDB leaves out or gets wrong.

Each rewrite turns a BigQuery construct into DuckDB SQL with the same result and type.
Known differences that remain (those detectable in the SQL come back as warnings):

- ``FARM_FINGERPRINT``: DuckDB has no FarmHash; a stable 64-bit hash of its own is used instead,
  so the numbers differ from BigQuery's (warned).
- ``FORMAT``: ``%T`` is rendered like ``%t`` (strings are not quoted) and the ``'`` grouping
  flag is not supported (warned).
- ``SUM`` of integers is HUGEINT in DuckDB (INT64 in BigQuery); the values are the same.
- Integer and float literals are typed INT64 / FLOAT64 only where they become values (select
  items, STRUCT fields, array elements, IF/CASE/COALESCE results); elsewhere DuckDB picks
  INTEGER / DECIMAL, e.g. ``0.1 * x`` is exact decimal arithmetic.
- ``SAFE.fn(...)`` keeps NULL-on-error only for the PARSE_ functions; elsewhere an error stays
  an error (warned).
- ``arr[OFFSET(i)]`` out of range is NULL instead of an error; a negative computed index counts
  from the end instead of failing.
- ``DATE_TRUNC`` by ISOYEAR and ``DATE_ADD`` assume a DATE argument unless the statement shows
  it is a DATETIME or TIMESTAMP.
- TIMESTAMP values are read in DuckDB's session time zone (BigQuery: UTC) by EXTRACT, DATE(ts)
  and formatting functions; they agree when the session time zone is UTC.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

Type = exp.DType

_WEEKDAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")
_FLOATS = (Type.DOUBLE, Type.FLOAT)
_DECIMALS = (Type.DECIMAL, Type.BIGDECIMAL)
_DATETIMES = (Type.DATETIME, Type.TIMESTAMP, Type.TIMESTAMPTZ, Type.TIMESTAMPLTZ)
_BUCKETS = {  # DATE_TRUNC unit -> time_bucket width; time_bucket keeps DATE, DATETIME or TIMESTAMP
    "DAY": ("1", "DAY"),
    "MONTH": ("1", "MONTH"),
    "QUARTER": ("3", "MONTH"),
    "YEAR": ("1", "YEAR"),
    "ISOWEEK": ("7", "DAY"),
}
_FORMAT_CONVERSIONS = "diouxXfFeEgGstT"


def normalize(expression: exp.Expr) -> exp.Expr:
    """Meanings BigQuery gives by position, made explicit for any target dialect."""
    expression = expression.transform(_struct_array, copy=False)
    return _bottom_up(expression, lambda node: _rewrite(_SOURCE_REWRITES, node))


def to_duckdb(expression: exp.Expr) -> tuple[exp.Expr, list[str]]:
    """BigQuery functions with DuckDB's results made BigQuery's, and what cannot match."""
    warnings: list[str] = []
    unnests = 0

    def rewrite(node: exp.Expr) -> exp.Expr:
        nonlocal unnests
        if isinstance(node, exp.Unnest):
            unnests += 1
            return _unnest_with_offset(node, f"_daglake_unnest_{unnests}")
        warned = _DUCKDB_WARNED.get(type(node))
        if warned is None:
            return _rewrite(_DUCKDB_REWRITES, node)
        rewritten, warning = warned(node)
        if warning:
            warnings.append(warning)
        return rewritten

    return _bottom_up(expression, rewrite), list(dict.fromkeys(warnings))


Rewrite = Callable[[exp.Expr], exp.Expr]


def _rewrite(rewrites: dict[type, Rewrite], node: exp.Expr) -> exp.Expr:
    handler = rewrites.get(type(node))
    return handler(node) if handler else node


def _bottom_up(root: exp.Expr, rewrite: Rewrite) -> exp.Expr:
    """Rewrite children first, so a rewrite that wraps a node keeps its rewritten insides
    (``Expr.transform`` does not descend into the node a rewrite returns)."""
    for node in reversed(list(root.dfs())):
        parent, arg_key, index = node.parent, node.arg_key, node.index
        new = rewrite(node)
        if new is node:
            continue
        if parent is None or arg_key is None:
            root = new
        else:
            parent.set(arg_key, new, index)
    return root


def _known_type(node: exp.Expr) -> exp.DataType | None:
    """The type sqlglot can infer from the statement alone (no schema), if any."""
    typed = annotate_types(node.copy(), dialect="bigquery").type
    if typed is None or typed.this in (Type.UNKNOWN, Type.NULL):
        return None
    return typed


def _call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _typeof_in(node: exp.Expr, *names: str) -> exp.Expr:
    """A test on the runtime type that DuckDB folds away when binding, so the unused branches of a
    CASE over it cost nothing; it lets one translation serve columns of any type."""
    typeof = _call("typeof", node.copy())
    return exp.In(this=typeof, expressions=[exp.Literal.string(n) for n in names])


# --- source normalisation (any target) ---------------------------------------------------------


def _struct_array(node: exp.Expr) -> exp.Expr:
    """``[STRUCT(1 AS a, 'x' AS b), (2, 'y')]``: later elements are structs that take the first
    one's field names, and ``FROM UNNEST`` of such an array yields one column per field."""
    if isinstance(node, exp.Array) and node.expressions:
        elements = [
            exp.Struct(expressions=e.expressions) if isinstance(e, exp.Tuple) else e
            for e in node.expressions
        ]
        if all(isinstance(e, exp.Struct) for e in elements):
            names = [f.this for f in elements[0].expressions if isinstance(f, exp.PropertyEQ)]
            for element in elements[1:]:
                if len(names) == len(elements[0].expressions) == len(element.expressions):
                    element.set(
                        "expressions",
                        [_named(n, f) for n, f in zip(names, element.expressions, strict=True)],
                    )
            node.set("expressions", elements)
    if (
        isinstance(node, exp.Unnest)
        and isinstance(node.parent, (exp.From, exp.Join))
        and len(node.expressions) == 1
        and isinstance(array := node.expressions[0], exp.Array)
        and array.expressions
        and all(isinstance(e, (exp.Struct, exp.Tuple)) for e in array.expressions)
    ):
        node.set("explode_array", True)
    return node


def _named(name: exp.Identifier, field: exp.Expr) -> exp.Expr:
    if isinstance(field, exp.PropertyEQ):
        return field
    return exp.PropertyEQ(this=name.copy(), expression=field)


def _bigquery_numeric(node: exp.Expr) -> exp.Expr:
    """BigQuery's NUMERIC is DECIMAL(38, 9); a bare DECIMAL elsewhere may round (DuckDB: 18,3)."""
    if isinstance(node, exp.DataType) and node.this in _DECIMALS and not node.expressions:
        return exp.DataType.build("DECIMAL(38, 9)")
    return node


def _anonymous_struct(node: exp.Expr) -> exp.Expr:
    """BigQuery's ``STRUCT(1, 'a')`` has unnamed fields that take names by position (in a
    UNION or a column list); ``ROW(...)`` keeps that meaning where sqlglot would invent names."""
    if (
        isinstance(node, exp.Struct)
        and node.expressions
        and not any(
            isinstance(e, (exp.PropertyEQ, exp.Alias, exp.Column)) for e in node.expressions
        )
    ):
        return _call("ROW", *(e.copy() for e in node.expressions))
    return node


_SOURCE_REWRITES: dict[type, Rewrite] = {
    exp.DataType: _bigquery_numeric,
    exp.Struct: _anonymous_struct,
}


# --- DuckDB ------------------------------------------------------------------------------------


def _unnest_with_offset(node: exp.Unnest, name: str) -> exp.Expr:
    """``UNNEST(a) AS x WITH OFFSET AS pos`` counts from 0; DuckDB's ORDINALITY counts from 1, so
    the unnest becomes a subquery that shifts it (and expands struct elements into columns)."""
    offset = node.args.get("offset")
    if not offset or not isinstance(node.parent, (exp.From, exp.Join)):
        return node
    alias = node.args.get("alias")
    element = alias.columns[0].name if isinstance(alias, exp.TableAlias) and alias.columns else None
    position = offset.name if isinstance(offset, exp.Expr) else "offset"
    value = exp.column("_daglake_value")
    source = exp.Unnest(
        expressions=node.expressions,
        alias=exp.TableAlias(
            this=exp.to_identifier("_daglake_unnest"), columns=[exp.to_identifier(value.name)]
        ),
        offset=exp.to_identifier("_daglake_ordinal"),
    )
    first: exp.Expr
    if node.args.get("explode_array"):
        first = exp.Unnest(expressions=[value])
    else:
        first = value.as_(element or "unnest")
    ordinal = exp.Sub(this=exp.column("_daglake_ordinal"), expression=exp.Literal.number(1))
    query = exp.select(first, ordinal.as_(position)).from_(source)
    table_alias = element if node.args.get("explode_array") and element else name
    return query.subquery(table_alias)


def _limited_array_agg(node: exp.Expr) -> exp.Expr:
    """``ARRAY_AGG(x ORDER BY y LIMIT n)``: DuckDB has no LIMIT there, so the ordered list is
    sliced to its first n elements."""
    agg = node.this if isinstance(node, (exp.IgnoreNulls, exp.RespectNulls)) else node
    if not isinstance(agg, exp.ArrayAgg) or not isinstance(agg.this, exp.Limit):
        return node
    if node is agg and isinstance(node.parent, (exp.IgnoreNulls, exp.RespectNulls)):
        return node  # the wrapper is rewritten next, and the slice goes around it
    limit = agg.this
    agg.set("this", limit.this)
    first = exp.Slice(this=exp.Literal.number(1), expression=limit.expression)
    return exp.Bracket(this=exp.Paren(this=node), expressions=[first], offset=1)


def _date_trunc(node: exp.Expr) -> exp.Expr:
    """DuckDB's DATE_TRUNC returns TIMESTAMP for a DATE; BigQuery returns the argument's type.
    ``time_bucket`` keeps the type and, by default, buckets TIMESTAMPs in UTC like BigQuery."""
    assert isinstance(node, exp.DateTrunc)
    unit = node.args.get("unit")
    value = node.this
    if isinstance(unit, exp.WeekStart):
        weekday = _WEEKDAYS.index(unit.name.upper()) if unit.name.upper() in _WEEKDAYS else 0
        shift = exp.Interval(this=exp.Literal.string(str((weekday + 6) % 7)), unit=exp.var("DAY"))
        width = exp.Interval(this=exp.Literal.string("7"), unit=exp.var("DAY"))
        return _call("time_bucket", width, value, shift)
    name = unit.name.upper() if unit is not None else ""
    if name in _BUCKETS:
        count, part = _BUCKETS[name]
        width = exp.Interval(this=exp.Literal.string(count), unit=exp.var(part))
        return _call("time_bucket", width, value)
    if name != "ISOYEAR":
        return node  # a time of day unit: the argument is a DATETIME or TIMESTAMP already
    known = _known_type(value)
    if known is not None and known.this in _DATETIMES:
        return node
    return exp.cast(node, Type.DATE)


def _date_arithmetic(node: exp.Expr) -> exp.Expr:
    """``DATE_ADD``/``DATE_SUB`` return DATE; DuckDB's date + interval is a TIMESTAMP."""
    known = _known_type(node.this)
    if known is not None and known.this in _DATETIMES:
        return node
    return exp.cast(node, Type.DATE)


def _extract(node: exp.Expr) -> exp.Expr:
    """Date parts whose numbering differs: DAYOFWEEK is 1 (Sunday) to 7, WEEK counts weeks that
    start on Sunday (or the given weekday) from 0, ISOWEEK is DuckDB's WEEK, and MILLISECOND /
    MICROSECOND are within the second (DuckDB: within the minute)."""
    assert isinstance(node, exp.Extract)
    part, value = node.this, node.expression
    name = part.name.upper()
    if isinstance(part, exp.WeekStart):
        return _week_number(value, _WEEKDAYS.index(name) if name in _WEEKDAYS else 0)
    if name == "WEEK":
        return _week_number(value, 0)
    if name == "DAYOFWEEK":
        return exp.paren(exp.Add(this=node, expression=exp.Literal.number(1)))
    if name == "ISOWEEK":
        return exp.Extract(this=exp.var("WEEK"), expression=value)
    if name in ("MILLISECOND", "MICROSECOND"):
        per_second = "1000" if name == "MILLISECOND" else "1000000"
        return exp.paren(exp.Mod(this=node, expression=exp.Literal.number(per_second)))
    casts = {"DATE": Type.DATE, "TIME": Type.TIME, "DATETIME": Type.TIMESTAMP}
    if name in casts:
        return exp.cast(value, casts[name])
    return node


def _week_number(value: exp.Expr, weekday: int) -> exp.Expr:
    """Weeks starting on ``weekday`` (0 = Sunday), numbered from 0 before the first such day."""
    day_of_year = exp.Extract(this=exp.var("DAYOFYEAR"), expression=value.copy())
    day_of_week = exp.Extract(this=exp.var("DAYOFWEEK"), expression=value.copy())
    into_week = exp.Mod(
        this=exp.paren(
            exp.Add(
                this=exp.Sub(this=day_of_week, expression=exp.Literal.number(weekday)),
                expression=exp.Literal.number(7),
            )
        ),
        expression=exp.Literal.number(7),
    )
    days = exp.Sub(
        this=exp.Add(this=day_of_year, expression=exp.Literal.number(6)),
        expression=exp.paren(into_week),
    )
    return exp.paren(exp.IntDiv(this=exp.paren(days), expression=exp.Literal.number(7)))


def _format(node: exp.Expr) -> tuple[exp.Expr, str | None]:
    """BigQuery's FORMAT is printf-like (DuckDB's FORMAT uses ``{}``); ``%t`` prints any value
    as text, which DuckDB's printf spells ``%s`` of the value cast to STRING."""
    pattern = node.this
    arguments = list(node.expressions)
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return _call("printf", pattern, *arguments), None
    text = str(pattern.this)
    converted: list[tuple[int, exp.Expr]] = []
    warning: str | None = None
    result: list[str] = []
    index = position = 0
    while index < len(text):
        if text[index] != "%":
            result.append(text[index])
            index += 1
            continue
        end = index + 1
        while end < len(text) and text[end] not in _FORMAT_CONVERSIONS and text[end] != "%":
            end += 1
        spec = text[index + 1 : end + 1]
        index = end + 1
        if spec == "%":
            result.append("%%")
            continue
        position += spec.count("*")
        if "'" in spec:
            warning = "FORMAT: the ' (thousands grouping) flag is not supported by DuckDB; ignored"
            spec = spec.replace("'", "")
        if spec[-1:] in ("t", "T") and position < len(arguments):
            if spec[-1] == "T":
                warning = "FORMAT: %T is printed like %t (strings are not quoted) on DuckDB"
            text_value = _as_string(arguments[position])
            converted.append(
                (position, exp.Coalesce(this=text_value, expressions=[exp.Literal.string("NULL")]))
            )
            spec = spec[:-1] + "s"
        result.append("%" + spec)
        position += 1
    for at, value in converted:
        arguments[at] = value
    return _call("printf", exp.Literal.string("".join(result)), *arguments), warning


def _farm_fingerprint(node: exp.Expr) -> tuple[exp.Expr, str | None]:
    """No FarmHash in DuckDB: DuckDB's 64-bit ``hash``, shifted into INT64's range."""
    value = node.expressions[0] if node.expressions else node.this
    shifted = exp.Sub(
        this=exp.cast(_call("hash", value), Type.INT128),
        expression=exp.Literal.number("9223372036854775808"),
    )
    warning = (
        "FARM_FINGERPRINT: DuckDB has no FarmHash; its own 64-bit hash is used, so the numbers "
        "differ from BigQuery's (equal inputs still give equal numbers)"
    )
    return exp.cast(shifted, Type.BIGINT), warning


def _safe_function(node: exp.Expr) -> tuple[exp.Expr, str | None]:
    """``SAFE.fn(...)`` returns NULL where ``fn`` fails: DuckDB's TRY_STRPTIME does that for the
    PARSE_ functions; elsewhere the function runs as is and its errors stay errors."""
    function = node.this
    if "safe" in function.arg_types:
        function.set("safe", True)
        return function, None
    name = function.sql_name() if not isinstance(function, exp.Anonymous) else function.name
    return function, f"SAFE.{name.upper()}: DuckDB raises the error where BigQuery returns NULL"


def _count_if(node: exp.Expr) -> exp.Expr:
    """COUNTIF is INT64; DuckDB's COUNT_IF is HUGEINT."""
    return exp.cast(node, Type.BIGINT)


def _timestamp_diff(node: exp.Expr) -> exp.Expr:
    """TIMESTAMP_DIFF counts whole units elapsed (DuckDB's ``date_sub``), not unit boundaries
    crossed (DuckDB's ``date_diff``, which is right for DATE_DIFF and DATETIME_DIFF)."""
    unit = node.args.get("unit")
    part = exp.Literal.string(unit.name.upper() if unit is not None else "DAY")
    return _call("date_sub", part, node.expression, node.this)


def _current_date(node: exp.Expr) -> exp.Expr:
    """BigQuery's current date and datetime are UTC's unless a time zone is given."""
    zone = node.this if node.this is not None else exp.Literal.string("UTC")
    if isinstance(node, exp.CurrentDate):
        node.set("this", zone)
        return node
    return exp.AtTimeZone(this=exp.CurrentTimestamp(), zone=zone)


def _cast(node: exp.Expr) -> exp.Expr:
    """Casts whose results differ: FLOAT64 and NUMERIC to STRING (BigQuery prints the shortest
    form that reads back, and no trailing zeros), FLOAT64 to INT64 (halves round away from 0)."""
    assert isinstance(node, exp.Cast)
    target = node.to
    value = node.this
    if node.args.get("format"):
        return node  # CAST(... FORMAT '...') is sqlglot's to translate
    if target.this in (Type.TEXT, Type.VARCHAR) and not target.expressions:
        return _as_string(value, safe=isinstance(node, exp.TryCast))
    if target.this == Type.BIGINT:
        known = _known_type(value)
        if known is not None and known.this not in _FLOATS:
            return node
        as_double = exp.cast(value.copy(), Type.DOUBLE)
        rounded = node.copy()
        rounded.set("this", _call("ROUND", as_double))
        if known is not None:
            return rounded
        return exp.Case(
            ifs=[exp.If(this=_typeof_in(value, "DOUBLE", "FLOAT"), true=rounded)], default=node
        )
    return node


def _as_string(value: exp.Expr, safe: bool = False) -> exp.Expr:
    """``CAST(value AS STRING)`` as BigQuery prints it."""
    cast: Callable[[exp.Expr, Type], exp.Expr] = _try_cast if safe else exp.cast
    plain = cast(value.copy(), Type.VARCHAR)
    known = _known_type(value)
    if known is not None and known.this not in (*_FLOATS, *_DECIMALS):
        return plain
    float_text = _float_text(value)
    decimal_text = _decimal_text(plain)
    if known is not None:
        return float_text if known.this in _FLOATS else decimal_text
    decimal = exp.Like(
        this=_call("typeof", value.copy()), expression=exp.Literal.string("DECIMAL%")
    )
    return exp.Case(
        ifs=[
            exp.If(this=_typeof_in(value, "DOUBLE", "FLOAT"), true=float_text),
            exp.If(this=decimal, true=decimal_text),
        ],
        default=plain,
    )


def _try_cast(value: exp.Expr, to: Type) -> exp.Expr:
    return exp.TryCast(this=value, to=exp.DataType.build(to))


def _float_text(value: exp.Expr) -> exp.Expr:
    """15 significant digits when they read back as the same double, else 17 (ZetaSQL's rule)."""
    short = _call("printf", exp.Literal.string("%.15g"), value.copy())
    long = _call("printf", exp.Literal.string("%.17g"), value.copy())
    exact = exp.EQ(this=exp.cast(short.copy(), Type.DOUBLE), expression=value.copy())
    return exp.Case(ifs=[exp.If(this=exact, true=short)], default=long)


def _decimal_text(text: exp.Expr) -> exp.Expr:
    """A DECIMAL's text without trailing fractional zeros, as BigQuery prints NUMERIC."""
    trimmed = _call(
        "rtrim", _call("rtrim", text.copy(), exp.Literal.string("0")), exp.Literal.string(".")
    )
    has_fraction = _call("contains", text.copy(), exp.Literal.string("."))
    return exp.Case(ifs=[exp.If(this=has_fraction, true=trimmed)], default=text)


def _typed_literal(node: exp.Expr) -> exp.Expr:
    """A number literal that becomes a value is INT64 or FLOAT64 in BigQuery; DuckDB would make
    it INTEGER (overflowing at 2^31) or DECIMAL."""
    assert isinstance(node, exp.Literal)
    if node.is_string or not _is_value(node):
        return node
    return exp.cast(node, Type.BIGINT if node.is_int else Type.DOUBLE, copy=False)  # node moves into the cast


def _is_value(node: exp.Expr) -> bool:
    child, parent = node, node.parent
    while isinstance(parent, (exp.Paren, exp.Neg, exp.Alias)):
        child, parent = parent, parent.parent
    if isinstance(parent, exp.Select):
        return child.arg_key == "expressions"
    if isinstance(parent, exp.PropertyEQ):
        return isinstance(parent.parent, exp.Struct) and child.arg_key == "expression"
    if isinstance(parent, exp.If):
        return child.arg_key in ("true", "false")
    if isinstance(parent, exp.Case):
        return child.arg_key == "default"
    if isinstance(parent, exp.Anonymous):
        return parent.name.upper() == "ROW"  # an anonymous STRUCT
    return isinstance(parent, (exp.Struct, exp.Array, exp.Coalesce))


_DUCKDB_REWRITES: dict[type, Rewrite] = {
    exp.ArrayAgg: _limited_array_agg,
    exp.IgnoreNulls: _limited_array_agg,
    exp.RespectNulls: _limited_array_agg,
    exp.DateTrunc: _date_trunc,
    exp.DateAdd: _date_arithmetic,
    exp.DateSub: _date_arithmetic,
    exp.Extract: _extract,
    exp.CountIf: _count_if,
    exp.TimestampDiff: _timestamp_diff,
    exp.CurrentDate: _current_date,
    exp.CurrentDatetime: _current_date,
    exp.Cast: _cast,
    exp.TryCast: _cast,
    exp.Literal: _typed_literal,
}

_DUCKDB_WARNED: dict[type, Callable[[exp.Expr], tuple[exp.Expr, str | None]]] = {
    exp.FarmFingerprint: _farm_fingerprint,
    exp.Format: _format,
    exp.SafeFunc: _safe_function,
}
