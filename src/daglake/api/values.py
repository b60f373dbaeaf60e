"""A query-string value checked against its column's type before the engine sees it.

Engines cast text leniently: DuckDB stores ``1.5`` in a BIGINT as 2 and ``1e-400`` in a
DOUBLE as 0. The API stores a value exactly or refuses it (422 naming the column and why), so
each known type is parsed strictly here and handed to the engine in a canonical spelling its
cast reads back unchanged. Types not listed (TIME, UUID, INTERVAL, lists, ...) go to the
engine's own cast, which still refuses what it cannot read.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import math
import re
import struct
from collections.abc import Callable
from typing import Any

from daglake.api.errors import ApiError

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIMESTAMP = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*([0-9]+)\s*,\s*([0-9]+)\s*\)")


def _bits(n: int, *, unsigned: bool = False) -> tuple[int, int]:
    return (0, 2**n - 1) if unsigned else (-(2 ** (n - 1)), 2 ** (n - 1) - 1)


# type name as the engine's catalogue spells it -> (kind, detail)
DUCKDB: dict[str, tuple[str, Any]] = {
    **{name: ("integer", _bits(8)) for name in ("TINYINT", "INT1")},
    **{name: ("integer", _bits(16)) for name in ("SMALLINT", "INT2")},
    **{name: ("integer", _bits(32)) for name in ("INTEGER", "INT", "INT4")},
    **{name: ("integer", _bits(64)) for name in ("BIGINT", "INT8")},
    "HUGEINT": ("integer", _bits(128)),
    "UTINYINT": ("integer", _bits(8, unsigned=True)),
    "USMALLINT": ("integer", _bits(16, unsigned=True)),
    "UINTEGER": ("integer", _bits(32, unsigned=True)),
    "UBIGINT": ("integer", _bits(64, unsigned=True)),
    "UHUGEINT": ("integer", _bits(128, unsigned=True)),
    "DOUBLE": ("float", 64),
    "FLOAT": ("float", 32),
    "REAL": ("float", 32),
    "BOOLEAN": ("boolean", None),
    "VARCHAR": ("string", None),
    "DATE": ("date", None),
    "TIMESTAMP": ("timestamp", (6, False)),
    "TIMESTAMP_NS": ("timestamp", (9, False)),
    "TIMESTAMP_MS": ("timestamp", (3, False)),
    "TIMESTAMP_S": ("timestamp", (0, False)),
    "TIMESTAMP WITH TIME ZONE": ("timestamp", (6, True)),
    "BLOB": ("bytes", "escapes"),
}
BIGQUERY: dict[str, tuple[str, Any]] = {
    **{name: ("integer", _bits(64)) for name in ("INTEGER", "INT64")},
    **{name: ("float", 64) for name in ("FLOAT", "FLOAT64")},
    "NUMERIC": ("decimal", (38, 9)),
    "BIGNUMERIC": ("decimal", (76, 38)),
    **{name: ("boolean", None) for name in ("BOOLEAN", "BOOL")},
    "STRING": ("string", None),
    "DATE": ("date", None),
    "DATETIME": ("timestamp", (6, False)),
    "TIMESTAMP": ("timestamp", (6, True)),
    "BYTES": ("bytes", "base64"),
}
TYPES = {"duckdb": DUCKDB, "bigquery": BIGQUERY}


class _Refused(Exception):
    """Why a value does not fit; the caller adds the column."""


def checked_value(engine: str, column: str, type_name: str, text: str) -> str:
    """``text`` spelt as ``engine`` casts it to ``type_name`` without change; 422 otherwise."""
    if "\x00" in text:
        raise _invalid(column, "contains a NUL character")
    kind, detail = _kind(engine, type_name)
    check = _CHECKS.get(kind)
    if check is None:
        return text
    try:
        return check(text, detail, type_name)
    except _Refused as exc:
        raise _invalid(column, f"{_shown(text)} {exc} ({type_name})") from None


def _invalid(column: str, why: str) -> ApiError:
    return ApiError(422, "invalid_value", f"column {column!r}: {why}", column=column)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _kind(engine: str, type_name: str) -> tuple[str, Any]:
    name = " ".join(type_name.upper().split())
    found = _DECIMAL.fullmatch(name)
    if found:
        return "decimal", (int(found.group(1)), int(found.group(2)))
    if engine == "duckdb" and name in ("DECIMAL", "NUMERIC"):
        return "decimal", (18, 3)
    return TYPES.get(engine, {}).get(name, ("other", None))


def _integer(text: str, detail: Any, _type: str) -> str:
    if not _INTEGER.fullmatch(text):
        raise _Refused("is not an integer")
    if len(text.lstrip("+-0")) > 40:  # longer than any engine's integers (and int()'s limit)
        raise _Refused("is out of range")
    value = int(text)
    low, high = detail
    if not low <= value <= high:
        raise _Refused(f"is out of range [{low}, {high}]")
    return str(value)


def _number(text: str) -> decimal.Decimal:
    if not _NUMBER.fullmatch(text):
        raise _Refused("is not a number")
    return decimal.Decimal(text)


def _float(text: str, detail: Any, _type: str) -> str:
    exact = _number(text)
    value = float(exact)
    if math.isinf(value):
        raise _Refused("is out of range")
    if detail == 32:
        single = struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3.5e38 else math.inf
        if single != value or math.isinf(single):
            raise _Refused("cannot be stored exactly in a 32-bit float (use DOUBLE)")
    if decimal.Decimal(repr(value)) != exact:
        raise _Refused(f"would lose precision (stored as {value!r})")
    return repr(value)


def _decimal(text: str, detail: Any, _type: str) -> str:
    value = _number(text)
    precision, scale = detail
    quantum = decimal.Decimal(1).scaleb(-scale)
    with decimal.localcontext(decimal.Context(prec=precision + 2)):
        if abs(value) >= decimal.Decimal(10) ** (precision - scale):
            raise _Refused(f"is out of range (at most {precision - scale} digits before the point)")
        rounded = value.quantize(quantum, rounding=decimal.ROUND_HALF_EVEN)
    if rounded != value:
        raise _Refused(f"has more than {scale} decimal places")
    return format(rounded, "f")


def _boolean(text: str, _detail: Any, _type: str) -> str:
    value = {"true": "true", "1": "true", "false": "false", "0": "false"}.get(text.lower())
    if value is None:
        raise _Refused("is not a boolean (true, false, 1 or 0)")
    return value


def _string(text: str, _detail: Any, _type: str) -> str:
    return text


def _date(text: str, _detail: Any, _type: str) -> str:
    import datetime as dt

    if not _DATE.fullmatch(text):
        raise _Refused("is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise _Refused("is not a date of the calendar") from None


def _timestamp(text: str, detail: Any, _type: str) -> str:
    """RFC 3339 (``T``/``t``/space, ``Z``/``z`` or ``±hh:mm``). An offset into a column without
    a time zone is converted to UTC; a value without one into a column with one is UTC."""
    import datetime as dt

    digits, zoned = detail
    found = _TIMESTAMP.fullmatch(text)
    if not found:
        raise _Refused("is not a timestamp (RFC 3339: YYYY-MM-DDTHH:MM:SS[.f][Z|±HH:MM])")
    day, hour, minute, second, fraction, _z, sign, off_h, off_m = found.groups()
    fraction = (fraction or "").rstrip("0")
    if len(fraction) > digits:
        raise _Refused(f"has more than {digits} fractional second digits")
    if sign is not None and (int(off_h) > 23 or int(off_m) > 59):
        raise _Refused("has an offset beyond ±23:59")
    try:
        moment = dt.datetime.fromisoformat(f"{day}T{hour}:{minute}:{second}")
    except ValueError:
        raise _Refused("is not a time of the calendar") from None
    if sign is not None:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
        try:
            moment -= offset if sign == "+" else -offset
        except OverflowError:
            raise _Refused("is out of range in UTC") from None
    spelt = moment.isoformat(sep=" ")  # four-digit years, unlike strftime's %Y
    if fraction:
        spelt += "." + fraction.ljust(digits, "0")
    return spelt + ("+00:00" if zoned else "")


def _bytes(text: str, spelling: Any, _type: str) -> str:
    """Base64 in, as the API answers bytes; DuckDB's cast reads ``\\xHH`` escapes, BigQuery
    decodes canonical base64 (``FROM_BASE64``)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("is not base64") from None
    if spelling == "base64":
        return base64.b64encode(raw).decode("ascii")
    return "".join(f"\\x{byte:02X}" for byte in raw)


_CHECKS: dict[str, Callable[[str, Any, str], str]] = {
    "integer": _integer,
    "float": _float,
    "decimal": _decimal,
    "boolean": _boolean,
    "string": _string,
    "date": _date,
    "timestamp": _timestamp,
    "bytes": _bytes,
}
