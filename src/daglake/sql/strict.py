"""What sqlglot's parser lets through that no engine runs: it skips an empty list item
(``a,, b``), drops a keyword with nothing after it (``AS``, ``GROUP BY``, ``ON``) and reads a
misspelt keyword as an expression (``SELEC k``). Found here, with the position, so validation
reports the file instead of the engine failing at run time (or running something else)."""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

Problem = tuple[int, int, str]  # line, column, message

_OPENERS = {TokenType.COMMA, TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.SELECT, TokenType.DISTINCT}
_CLAUSES = {
    TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.HAVING, TokenType.QUALIFY,
    TokenType.WINDOW, TokenType.ORDER_BY, TokenType.LIMIT, TokenType.JOIN, TokenType.UNION,
}
_END = {TokenType.SEMICOLON, TokenType.R_PAREN, None}
# keyword -> what may not follow it, and what the message says is missing
_NEEDS: dict[Any, tuple[set[Any], str]] = {
    TokenType.ALIAS: ({TokenType.COMMA, TokenType.FROM, *_END}, "a name"),
    TokenType.GROUP_BY: (_CLAUSES | _END, "an expression"),
    TokenType.PARTITION_BY: (_CLAUSES | _END, "an expression"),
    TokenType.ON: (_CLAUSES | _END, "a condition"),
    TokenType.SET: ({TokenType.WHERE, TokenType.SEMICOLON, None}, "a column to set"),
    TokenType.SELECT: ({TokenType.FROM, *_END}, "a column"),
}
_LIST_AFTER = {TokenType.IN, TokenType.EXCEPT, TokenType.REPLACE}  # ``IN ()`` lists nothing
_WATCHED = {TokenType.COMMA, TokenType.L_PAREN, TokenType.DISTINCT, *_NEEDS}


def token_problem(tokens: list[Any]) -> Problem | None:
    """The first place where the tokens cannot be SQL although sqlglot parses them."""
    kinds = [token.token_type for token in tokens]
    kinds.append(None)  # what follows the last token
    for index, kind in enumerate(kinds):
        if kind not in _WATCHED:
            continue
        token, after = tokens[index], kinds[index + 1]
        before = kinds[index - 1] if index else None
        if kind == TokenType.COMMA and before in _OPENERS:
            return (*_start(token), "empty item in a list: ',' with nothing before it")
        if kind == TokenType.COMMA and after in (TokenType.SEMICOLON, None):
            return (*_start(token), "a list ends with ',' and nothing after it")
        if kind == TokenType.DISTINCT and before == TokenType.SELECT:
            kind = TokenType.SELECT  # not ``IS DISTINCT FROM``
        if kind in _NEEDS and after in _NEEDS[kind][0]:
            return (*_start(token), f"{token.text.upper()} needs {_NEEDS[kind][1]} after it")
        if kind == TokenType.L_PAREN and before in _LIST_AFTER and after == TokenType.R_PAREN:
            return (*_start(tokens[index - 1]), f"{tokens[index - 1].text.upper()} () lists nothing")
    return None


def statement_problem(expression: exp.Expr, first: Any) -> Problem | None:
    """A statement that is only an expression (``SELEC k`` reads as ``SELEC AS k``)."""
    if isinstance(expression, (exp.Condition, exp.Alias, exp.Star, exp.Identifier, exp.Tuple)):
        return (*_start(first), f"not a SQL statement: {first.text!r} is not a keyword here")
    return None


def _start(token: Any) -> tuple[int, int]:
    """Line and first column of a token (sqlglot records where a token ends)."""
    return int(token.line), max(1, int(token.col) - (int(token.end) - int(token.start)))
