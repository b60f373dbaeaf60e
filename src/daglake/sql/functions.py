"""The functions a statement calls, as the engine will see them: so validation can name a
function the engine lacks (``NET.HOST`` on DuckDB) instead of the run failing, or the engine
trying to download an extension for it.

It reads SQL that sqlglot generated (or the user's own, when the engine speaks the project's
dialect) in one pass of one regular expression: quoted strings, quoted names and comments
are matched whole, so nothing inside them is taken for a call; a word the dialect's
tokenizer treats as a keyword (``IN (``, ``DECIMAL(``) is not a call. A tokenizer pass costs
as much again as parsing on an 8 MB file."""

from __future__ import annotations

import functools
import re

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

_WORD = r"[A-Za-z_][A-Za-z0-9_$]*"
_SCAN = re.compile(
    r"'(?:[^'\\]|\\.|'')*'"  # a string
    r'|"(?:[^"]|"")*"|`[^`]*`'  # a quoted name
    r"|/\*.*?\*/|--[^\n]*"  # a comment
    rf"|(?<![A-Za-z0-9_$])(?P<name>{_WORD}(?:\s*\.\s*{_WORD})*)\s*\(",  # a call
    re.DOTALL,
)
_WITH = re.compile(r"\bWITH\b", re.IGNORECASE)
_BEFORE = re.compile(rf"({_WORD}|[.,(])\s*$")
_NOT_A_CALL = {"INTO", "TABLE", "VIEW", "AS", "EXISTS", "MODEL", "."}
_DEFINES = {"FUNCTION", "MACRO"}


@functools.cache
def _keywords(dialect: str) -> frozenset[str]:
    keywords = Dialect.get_or_raise(dialect).tokenizer_class.KEYWORDS
    return frozenset(word for word, kind in keywords.items() if kind != TokenType.VAR)


def called_functions(sql: str, dialect: str) -> tuple[list[str], list[str]]:
    """``(called, defined)``: lower-case names, dotted as written (``net.host``), of the
    functions ``sql`` calls and of those it defines (``CREATE FUNCTION``/``MACRO``)."""
    keywords = _keywords(dialect)
    with_clause = _WITH.search(sql) is not None
    called: dict[str, None] = {}
    defined: dict[str, None] = {}
    for match in _SCAN.finditer(sql):
        if match.group("name") is None:
            continue
        name = re.sub(r"\s+", "", match.group("name"))
        if name.lower() in called or name.upper() in keywords:
            continue
        found = _BEFORE.search(sql, max(0, match.start() - 64), match.start())
        before = found.group(1).upper() if found else ""
        if before in _DEFINES:
            defined[name.lower()] = None
        elif before not in _NOT_A_CALL and not (with_clause and before in (",", "WITH") and _column_list(sql, match.end())):
            called[name.lower()] = None
    return list(called), list(defined)


def _column_list(sql: str, start: int) -> bool:
    """``name (a, b) AS (...)``: a CTE's column list, not a call (``start`` is after "(")."""
    depth = 1
    index = start
    while depth and index < len(sql):
        depth += {"(": 1, ")": -1}.get(sql[index], 0)
        index += 1
    return re.match(r"\s*AS\s*\(", sql[index : index + 40], re.IGNORECASE) is not None
