"""The functions a statement calls, as the engine will see them: so validation can name a
function the engine lacks (``NET.HOST`` on DuckDB) instead of the run failing, or the engine
trying to download an extension for it."""

from __future__ import annotations

from typing import Any

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from daglake.sql.quiet import sqlglot_warnings

_NAME = {TokenType.VAR}
_NOT_A_CALL = {  # a name followed by "(" that is a table, a column list or a definition
    TokenType.INTO, TokenType.TABLE, TokenType.VIEW, TokenType.ALIAS, TokenType.WITH,
    TokenType.EXISTS, TokenType.FUNCTION, TokenType.MODEL, TokenType.DOT,
}
_DEFINES = {TokenType.FUNCTION}


def called_functions(sql: str, dialect: str) -> tuple[list[str], list[str]]:
    """``(called, defined)``: lower-case names, dotted as written (``net.host``), of the
    functions ``sql`` calls and of those it defines (``CREATE FUNCTION``/``MACRO``)."""
    try:
        with sqlglot_warnings():
            tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except Exception:  # the engine will say what is wrong with SQL it cannot tokenize
        return [], []
    called: dict[str, None] = {}
    defined: dict[str, None] = {}
    index = 0
    while index < len(tokens):
        end = _name_end(tokens, index)
        if end is None:
            index += 1
            continue
        name = ".".join(t.text.lower() for t in tokens[index:end:2])
        before = tokens[index - 1] if index else None
        if before is not None and (before.token_type in _DEFINES or before.text.upper() == "MACRO"):
            defined[name] = None
        elif (before is None or before.token_type not in _NOT_A_CALL) and not _column_list(tokens, end, before):
            called[name] = None
        index = end + 1
    return list(called), list(defined)


def _name_end(tokens: list[Any], start: int) -> int | None:
    """Index of the "(" after a dotted name starting at ``start``, if one follows it."""
    index = start
    while index < len(tokens) and tokens[index].token_type in _NAME:
        following = tokens[index + 1].token_type if index + 1 < len(tokens) else None
        if following == TokenType.L_PAREN:
            return index + 1
        if following != TokenType.DOT:
            return None
        index += 2
    return None


def _column_list(tokens: list[Any], paren: int, before: Any) -> bool:
    """``name (a, b) AS (...)``: a CTE's column list, not a call."""
    if before is None or before.token_type not in (TokenType.COMMA, TokenType.WITH):
        return False
    depth = 0
    for index in range(paren, len(tokens)):
        kind = tokens[index].token_type
        depth += kind == TokenType.L_PAREN
        depth -= kind == TokenType.R_PAREN
        if depth == 0:
            after = [t.token_type for t in tokens[index + 1 : index + 3]]
            return after == [TokenType.ALIAS, TokenType.L_PAREN]
    return False
