"""Split a SQL file into statements with their lines, and name the tables each one touches."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from daglake.sql.quiet import sqlglot_warnings
from daglake.sql.strict import plain_message, statement_problem, token_problem, unclosed

_TOKEN = re.compile(r"<Token token_type: [^,]+, text: (.*?), line: \d+.*?>")


@dataclass
class Statement:
    line: int
    kind: str  # create | insert | merge | query | other
    expression: exp.Expr
    target: str | None = None
    temporary: bool = False
    is_view: bool = False
    reads: dict[str, tuple[int, int]] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)  # @name -> line
    self_read: tuple[int, int] | None = None  # where it reads its own target
    text: str = ""  # as written, first token to last (an engine of the project's dialect runs it)
    column: int = 1  # where ``text`` starts on its first line


@dataclass
class ParsedFile:
    statements: list[Statement] = field(default_factory=list)
    errors: list[tuple[int, int, str]] = field(default_factory=list)
    normal: str = ""  # the hash of its tokens: the same for a change of layout, comments or keyword case


# tokens whose text is data (names, literals): kept as written; any other token is a keyword or
# an operator, whose case does not matter
_TEXT_TOKENS = {
    "VAR", "IDENTIFIER", "STRING", "NUMBER", "PARAMETER", "BIT_STRING", "HEX_STRING", "BYTE_STRING",
    "NATIONAL_STRING", "RAW_STRING", "HEREDOC_STRING", "UNICODE_STRING", "SESSION_PARAMETER",
}


@functools.cache
def _token_names() -> tuple[dict[Any, str], frozenset[Any]]:
    """Each token type's name, and the types whose text is data (an enum's ``.name`` is a
    slow descriptor: looked up once here, not for each of a million tokens)."""
    names = {kind: kind.name for kind in TokenType}
    return names, frozenset(kind for kind, name in names.items() if name in _TEXT_TOKENS)


def normal_form(tokens: list[Any]) -> str:
    """A hash of the tokens, comments and layout aside (one pass over what the parse read)."""
    import hashlib

    names, data = _token_names()
    spelt = "\0".join(
        [names[t.token_type] + "\1" + t.text if t.token_type in data else t.text.upper() for t in tokens]
    )
    return hashlib.blake2b(spelt.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def table_name(table: exp.Table) -> str | None:
    """``dataset.table`` in lower case; a project/catalog prefix names the same table."""
    if not isinstance(table.this, exp.Identifier):
        return None
    parts = [table.db, table.name] if table.db else [table.name]
    return ".".join(p.lower() for p in parts)


def _location(table: exp.Table) -> tuple[int, int]:
    """Line and first column of a table reference (sqlglot records where its tokens end)."""
    for part in (table.args.get("catalog"), table.args.get("db"), table.this):
        meta: dict[str, Any] = part.meta if isinstance(part, exp.Expr) else {}
        if "line" in meta:
            span = int(meta.get("end", 0)) - int(meta.get("start", 0))
            return int(meta["line"]), max(1, int(meta.get("col", 0)) - span)
    return 0, 0


def parse_file(text: str, dialect: str) -> ParsedFile:
    """Statements of ``text`` in ``dialect``, or the first error: sqlglot's, or what
    :mod:`daglake.sql.strict` finds sqlglot let through. sqlglot's log lines are kept quiet."""
    result = ParsedFile()
    impl = Dialect.get_or_raise(dialect)
    tokens: list[Any] = []
    try:
        with sqlglot_warnings():
            tokens = impl.tokenize(text)
            expressions = impl.parser().parse(tokens, text)
    except ParseError as exc:
        for error in exc.errors[:1] or [{"line": 1, "col": 0, "description": str(exc)}]:
            description = plain_message(_TOKEN.sub(r"'\1'", str(error.get("description") or exc)))
            column = int(error.get("col") or 0)  # where the offending token ends
            highlight = str(error.get("highlight") or "")
            if column and highlight:
                column = max(1, column - len(highlight) + 1)
            line = int(error.get("line") or 1)
            result.errors.append(_misspelt_keyword(tokens, line, column) or (line, column, description))
        return result
    except TokenError as exc:
        result.errors.append(unclosed(text, dialect) or _unreadable(text, exc))
        return result
    problem = token_problem(tokens)
    if problem is not None:
        result.errors.append(problem)
        return result
    result.normal = normal_form(tokens)

    for chunk, expression in zip(_statement_lines(tokens), expressions, strict=False):
        if expression is None:
            continue
        line, parameter_lines, (start, end, column), first = chunk
        problem = statement_problem(expression, first)
        if problem is not None:
            result.errors.append(problem)
            result.statements.clear()
            return result
        statement = _describe(expression, line)
        statement.text, statement.column = text[start:end], column
        for name in statement.parameters:
            statement.parameters[name] = parameter_lines.get(name, line)
        result.statements.append(statement)
    return result


def _unreadable(text: str, exc: TokenError) -> tuple[int, int, str]:
    """sqlglot's tokenizer failed somewhere it does not say: its own context, on one line."""
    context = str(exc).removeprefix("Error tokenizing ").strip("'")
    line = text.count("\n", 0, max(0, len(context) - 1)) + 1 if text.startswith(context) else 1
    tail = context.splitlines()[-1].strip() if context.strip() else ""
    return line, 0, f"cannot read SQL near {tail[-40:]!r}"


def _misspelt_keyword(tokens: list[Any], line: int, column: int) -> tuple[int, int, str] | None:
    """A statement that fails to parse and starts with a plain word (``SELEC k FROM t``): the
    word is the mistake, not the token where sqlglot gave up."""
    chunks = [chunk for chunk in _statement_lines(tokens) if chunk[3].line < line or (chunk[3].line == line and chunk[2][2] <= column)]
    if not chunks or chunks[-1][3].token_type != TokenType.VAR:
        return None
    first = chunks[-1][3]
    return (first.line, chunks[-1][2][2], f"not a SQL statement: {first.text!r} is not a keyword here")


def possible_targets(text: str, dialect: str) -> set[str]:
    """Tables a file that does not parse seems to create, read as far as sqlglot can go: so its
    readers are not told, besides the syntax error, that the table does not exist."""
    from sqlglot.errors import ErrorLevel

    impl = Dialect.get_or_raise(dialect)
    try:
        with sqlglot_warnings():
            expressions = impl.parser(error_level=ErrorLevel.IGNORE).parse(impl.tokenize(text), text)
    except (ParseError, TokenError):
        return set()
    found = set()
    for expression in expressions:
        if isinstance(expression, (exp.Create, exp.Insert, exp.Merge)):
            table = _target_table(expression.this)
            name = table_name(table) if table is not None else None
            if name:
                found.add(name)
    return found


_Chunk = tuple[int, dict[str, int], tuple[int, int, int], Any]


def _statement_lines(tokens: list[Any]) -> list[_Chunk]:
    """First line of each semicolon-separated chunk, as sqlglot's parser chunks them, the line
    of each ``@name`` in it (the parsed tree keeps no position for parameters), its span in
    the text (first character, end, and the column it starts at) and its first token."""
    chunks: list[_Chunk] = []
    first: Any = None
    last: Any = None
    parameters: dict[str, int] = {}
    previous: Any = None
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append(_chunk(first, last, token, parameters))
            first, last, parameters = None, None, {}
        else:
            first = first or token
            last = token
        if previous is not None and previous.token_type == TokenType.PARAMETER and token.token_type != TokenType.PARAMETER:
            parameters.setdefault(token.text.lower(), previous.line)
        previous = token
    if first is not None:
        chunks.append(_chunk(first, last, last, parameters))
    return chunks


def _chunk(first: Any, last: Any, at: Any, parameters: dict[str, int]) -> _Chunk:
    if first is None:  # an empty statement: nothing but a semicolon
        return at.line, parameters, (at.start, at.start, 1), at
    column = max(1, first.col - (first.end - first.start))  # sqlglot records where tokens end
    return first.line, parameters, (first.start, last.end + 1, column), first


def _describe(expression: exp.Expr, line: int) -> Statement:
    statement = Statement(line=line, kind="other", expression=expression)
    target_table: exp.Table | None = None
    if isinstance(expression, exp.Create):
        kind = str(expression.args.get("kind") or "").upper()
        if kind in ("TABLE", "VIEW"):
            statement.kind = "create"
            statement.is_view = kind == "VIEW"
            target_table = _target_table(expression.this)
            properties = expression.args.get("properties")
            statement.temporary = bool(
                properties and properties.find(exp.TemporaryProperty)
            )
    elif isinstance(expression, exp.Insert):
        statement.kind = "insert"
        target_table = _target_table(expression.this)
    elif isinstance(expression, exp.Merge):
        statement.kind = "merge"
        target_table = _target_table(expression.this)
    elif isinstance(expression, exp.Query):
        statement.kind = "query"
    if target_table is not None:
        statement.target = table_name(target_table)
    statement.reads = _reads(expression)
    if statement.target is not None and statement.reads.pop(statement.target, None) is not None:
        query = expression.args.get("expression")
        own = [t for t in query.find_all(exp.Table) if table_name(t) == statement.target] if isinstance(query, exp.Expr) else []
        statement.self_read = _location(own[0]) if own else None
    for parameter in expression.find_all(exp.Parameter):
        meta = parameter.this.meta if isinstance(parameter.this, exp.Expr) else {}
        statement.parameters.setdefault(parameter.name.lower(), int(meta.get("line", line)))
    return statement


def _target_table(node: exp.Expr | None) -> exp.Table | None:
    if isinstance(node, exp.Schema):
        node = node.this
    return node if isinstance(node, exp.Table) else None


def _reads(expression: exp.Expr) -> dict[str, tuple[int, int]]:
    """Tables read by one statement: scope analysis separates CTEs from real tables."""
    found: dict[str, tuple[int, int]] = {}
    try:
        scopes = traverse_scope(expression)
    except Exception:  # sqlglot cannot scope some statements; fall back to every table name
        scopes = []
    tables: list[exp.Table] = []
    if scopes:
        for scope in scopes:
            tables.extend(s for s in scope.sources.values() if isinstance(s, exp.Table))
    else:
        ctes = {cte.alias_or_name.lower() for cte in expression.find_all(exp.CTE)}
        tables = [
            t for t in expression.find_all(exp.Table) if not (not t.db and t.name.lower() in ctes)
        ]
    if isinstance(expression, (exp.Delete, exp.Update)) and isinstance(expression.this, exp.Table):
        tables.append(expression.this)  # modifying a table depends on whoever builds it
    for table in tables:
        name = table_name(table)
        if name:
            where = _location(table)
            if name not in found or where < found[name]:
                found[name] = where
    return found
