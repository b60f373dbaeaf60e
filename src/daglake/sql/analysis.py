"""What a SQL file reads and writes, found by parsing it with sqlglot (never by regex)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daglake.sql.parse import ParsedFile

WRITE_KINDS = ("create", "insert", "merge")


@dataclass
class SqlAnalysis:
    """The reads, writes and parse problems of one file; plain data so it can be cached."""

    outputs: list[str] = field(default_factory=list)
    output_lines: dict[str, int] = field(default_factory=dict)
    reads: dict[str, tuple[int, int]] = field(default_factory=dict)
    statements: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, int, str]] = field(default_factory=list)
    has_bare_query: bool = False
    views: list[str] = field(default_factory=list)
    parameters: dict[str, int] = field(default_factory=dict)  # @name -> first line
    # a table the statement creating it reads, before the file wrote it: (line, column)
    self_reads: dict[str, tuple[int, int]] = field(default_factory=dict)
    # a hash of the SQL as sqlglot regenerates it, without comments or layout: an edit of
    # only those changes nothing that runs; None in an entry cached before it existed
    normal: str | None = None
    volatile: str | None = None  # why the SQL's result changes by itself ("calls RAND")

    def to_json(self) -> dict[str, Any]:
        return {
            "outputs": self.outputs,
            "output_lines": self.output_lines,
            "reads": {k: list(v) for k, v in self.reads.items()},
            "statements": [list(s) for s in self.statements],
            "errors": [list(e) for e in self.errors],
            "has_bare_query": self.has_bare_query,
            "views": self.views,
            "parameters": self.parameters,
            "self_reads": {k: list(v) for k, v in self.self_reads.items()},
            "normal": self.normal,
            "volatile": self.volatile,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SqlAnalysis:
        return cls(
            outputs=list(data["outputs"]),
            output_lines=dict(data["output_lines"]),
            reads={k: (v[0], v[1]) for k, v in data["reads"].items()},
            statements=[(s[0], s[1]) for s in data["statements"]],
            errors=[(e[0], e[1], e[2]) for e in data["errors"]],
            has_bare_query=bool(data["has_bare_query"]),
            views=list(data["views"]),
            parameters=dict(data["parameters"]),
            self_reads={k: (v[0], v[1]) for k, v in data["self_reads"].items()},
            normal=data.get("normal"),
            volatile=data.get("volatile"),
        )


def analyze(text: str, dialect: str, default_output: str) -> tuple[SqlAnalysis, ParsedFile]:
    """Find outputs and inputs of ``text``; a bare query outputs ``default_output``."""
    from daglake.sql.parse import parse_file  # sqlglot is imported only when a file changed

    parsed = parse_file(text, dialect)
    result = SqlAnalysis(errors=list(parsed.errors))
    if parsed.errors:
        return result, parsed

    local: set[str] = set()  # temporary tables live only inside the file
    bare_queries = 0
    written: set[str] = set()
    for statement in parsed.statements:
        result.statements.append((statement.line, statement.kind))
        target = statement.target
        own = statement.self_read
        if statement.kind == "query":
            bare_queries += 1
            if bare_queries > 1:
                result.errors.append(
                    (statement.line, 0, "a file may hold only one bare query (its result is the table)")
                )
            target = default_output
            own = statement.reads.get(default_output)
            result.has_bare_query = True
        if target and own and target not in written and statement.kind in ("create", "query"):
            result.self_reads.setdefault(target, own)
        if target:
            written.add(target)
        if statement.temporary and target:
            local.add(target)
        elif target and statement.kind in (*WRITE_KINDS, "query"):
            if target not in result.output_lines:
                result.outputs.append(target)
                result.output_lines[target] = statement.line
            if statement.is_view:
                result.views.append(target)
        for name, where in statement.reads.items():
            result.reads.setdefault(name, where)
        for name, line in statement.parameters.items():
            result.parameters.setdefault(name, line)
    for name in [*result.outputs, *local]:
        result.reads.pop(name, None)
    result.normal, result.volatile = _normal_form(parsed, dialect, result.parameters)
    return result, parsed


def _normal_form(parsed: ParsedFile, dialect: str, parameters: dict[str, int]) -> tuple[str, str | None]:
    """The hash of the file's tokens (no comments, no layout: see :func:`parse.normal_form`;
    regenerating the SQL with sqlglot instead costs more than the parse on a big seed file),
    and why the statements are not deterministic, if they are not."""
    from daglake.sql.volatile import reads_variable, volatile_reason

    volatile = None
    for statement in parsed.statements:
        volatile = volatile or volatile_reason(statement.expression, parameters)
        if "ds" not in parameters and reads_variable(statement.expression, "ds"):
            parameters["ds"] = statement.line  # DuckDB's getvariable('ds') reads the date too
    return f"{dialect}:{parsed.normal}", volatile

