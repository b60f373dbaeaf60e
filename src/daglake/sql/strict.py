"""What sqlglot's parser lets through that no engine runs: it skips an empty list item
(``a,, b``), drops a keyword with nothing after it (``AS``, ``GROUP BY``, ``ON``) and reads a
misspelt keyword as an expression (``SELEC k``). Found here, with the position, so validation
reports the file instead of the engine failing at run time (or running something else)."""

from __future__ import annotations

import re
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


def _ids(kinds: set[Any]) -> frozenset[int]:
    return frozenset(id(kind) for kind in kinds)


# the sets above by identity: an enum member hashes in Python, which a million tokens feel
_WATCHED_IDS, _OPENER_IDS, _LIST_AFTER_IDS = _ids(_WATCHED), _ids(_OPENERS), _ids(_LIST_AFTER)
_NEEDS_IDS = {id(kind): (_ids(after), what) for kind, (after, what) in _NEEDS.items()}
_COMMA, _L_PAREN, _R_PAREN, _DISTINCT, _SELECT = (
    id(TokenType.COMMA), id(TokenType.L_PAREN), id(TokenType.R_PAREN), id(TokenType.DISTINCT), id(TokenType.SELECT)
)
_LIST_END = {id(TokenType.SEMICOLON), id(None)}


def token_problem(tokens: list[Any]) -> Problem | None:
    """The first place where the tokens cannot be SQL although sqlglot parses them."""
    kinds = [id(token.token_type) for token in tokens]
    kinds.append(id(None))  # what follows the last token
    for index, kind in enumerate(kinds):
        if kind not in _WATCHED_IDS:
            continue
        token, after = tokens[index], kinds[index + 1]
        before = kinds[index - 1] if index else id(None)
        if kind == _COMMA and before in _OPENER_IDS:
            return (*_start(token), "empty item in a list: ',' with nothing before it")
        if kind == _COMMA and after in _LIST_END:
            return (*_start(token), "a list ends with ',' and nothing after it")
        if kind == _DISTINCT and before == _SELECT:
            kind = _SELECT  # not ``IS DISTINCT FROM``
        needs = _NEEDS_IDS.get(kind)
        if needs is not None and after in needs[0]:
            return (*_start(token), f"{token.text.upper()} needs {needs[1]} after it")
        if kind == _L_PAREN and before in _LIST_AFTER_IDS and after == _R_PAREN:
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


_QUOTE_KINDS = {"'": "a string", '"': "a string", "`": "a quoted name"}


def unclosed(text: str, dialect: str) -> Problem | None:
    """Where a string, quoted name or block comment that never ends was opened: sqlglot's
    tokenizer only says it could not read the file, naming no line."""
    backslash = dialect in ("bigquery", "spark", "databricks", "mysql")
    hash_comment = dialect in ("bigquery", "mysql")
    index, length = 0, len(text)
    while index < length:
        char, pair = text[index], text[index : index + 2]
        if pair == "--" or (char == "#" and hash_comment):
            end = text.find("\n", index)
            index = length if end < 0 else end + 1
            continue
        if pair == "/*":
            end = text.find("*/", index + 2)
            if end < 0:
                return (*_position(text, index), "a /* comment is never closed")
            index = end + 2
            continue
        if char in _QUOTE_KINDS:
            raw = index > 0 and text[index - 1] in "rR" and backslash
            delimiter = char * 3 if text.startswith(char * 3, index) and char != "`" else char
            end = _closing(text, index + len(delimiter), delimiter, backslash and not raw)
            if end < 0:
                what = _QUOTE_KINDS[char]
                return (*_position(text, index), f"{what} opened with {delimiter} is never closed")
            index = end
            continue
        index += 1
    return None


def _closing(text: str, index: int, delimiter: str, escapes: bool) -> int:
    """The index after the delimiter that closes a quoted run starting at ``index``, or -1."""
    while index < len(text):
        if escapes and text[index] == "\\":
            index += 2
            continue
        if text.startswith(delimiter, index):
            if len(delimiter) == 1 and text.startswith(delimiter * 2, index) and not escapes:
                index += 2  # '' inside a string is one quote
                continue
            return index + len(delimiter)
        index += 1
    return -1


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]+\.(\w+)'>")
_CLAUSE_NAMES = {
    "Where": "WHERE", "Having": "HAVING", "Order": "ORDER BY", "Limit": "LIMIT", "Offset": "OFFSET",
    "Qualify": "QUALIFY", "Group": "GROUP BY", "Join": "JOIN", "Window": "WINDOW",
}
_OPERATORS = {
    "EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "Add": "+", "Sub": "-",
    "Mul": "*", "Div": "/", "Mod": "%", "And": "AND", "Or": "OR", "Like": "LIKE", "ILike": "ILIKE",
    "In": "IN", "Between": "BETWEEN", "Is": "IS", "DPipe": "||", "Not": "NOT",
}


def plain_message(description: str) -> str:
    """sqlglot's parser messages in the user's words: no Python class names, no sentinel."""
    found = _MISSING.search(description)
    if found:
        name = found.group(1)
        if name in _CLAUSE_NAMES:
            return f"{_CLAUSE_NAMES[name]} needs an expression after it"
        if name in _OPERATORS:
            return f"{_OPERATORS[name]!r} needs an expression on each side"
        return f"incomplete {name.upper()}: a part of it is missing"
    description = description.replace("but got 'SENTINEL'", "but the SQL ends there")
    description = description.replace("Expected table name", "expected a table name")
    return re.sub(r"<class '[\w.]+\.(\w+)'>", lambda m: m.group(1).upper(), description)
