"""A ``.sql`` file in a check folder: one query, in the project's dialect, returning the rows
that fail. Header comments (``-- table: final.products``, ``-- severity: warn``) configure it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daglake.checks.spec import SEVERITIES, CheckSpec, split_table
from daglake.errors import Problem
from daglake.files import UnreadableFile, read_project_file
from daglake.sql.cache import AnalysisCache

_HEADER = re.compile(r"^\s*--\s*(table|severity)\s*:\s*(.*?)\s*$", re.IGNORECASE)


def check_files(root: Path, folders: list[str]) -> list[str]:
    """Relative POSIX paths of the ``.sql`` files under the check folders, sorted."""
    found: set[str] = set()
    for folder in folders:
        base = root / folder.strip("/")
        if not base.is_dir():
            continue
        for directory, subdirs, files in os.walk(base):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for file in files:
                if file.endswith(".sql") and not file.startswith("."):
                    found.add((Path(directory) / file).relative_to(root).as_posix())
    return sorted(found)


def headers(text: str) -> dict[str, tuple[str, int]]:
    """``table`` and ``severity`` from the comment lines that open the file, with their lines."""
    found: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        match = _HEADER.match(line)
        if match:
            found.setdefault(match.group(1).lower(), (match.group(2), number))
    return found


def load_sql_check(
    root: Path, relative: str, dialect: str, cache: AnalysisCache | None = None
) -> tuple[CheckSpec | None, list[Problem]]:
    """The check a file declares; its table is the ``-- table:`` header or the first table read."""
    try:
        text = read_project_file(root / relative, relative)
    except UnreadableFile as exc:
        return None, [exc.problem]
    problems: list[Problem] = []
    given = headers(text)
    severity, severity_line = given.get("severity", ("error", 0))
    severity = severity.lower()
    if severity not in SEVERITIES:
        problems.append(
            Problem(
                relative, severity_line, f"severity must be 'error' or 'warn', not {severity!r}"
            )
        )
    parsed = _parsed(text, dialect) if cache is None else cache.remembered("sql check", text, dialect, lambda: _parsed(text, dialect))
    for line, column, message in parsed["errors"]:
        problems.append(Problem(relative, line, f"SQL syntax error: {message}", column))
    if parsed["errors"]:
        return None, problems
    statements = parsed["statements"]
    if len(statements) != 1 or statements[0][0] != "query":
        line = next((line for kind, line in statements if kind != "query"), 1)
        problems.append(
            Problem(
                relative,
                line,
                "a check file must hold exactly one query (SELECT or WITH) returning the failing rows",
            )
        )
        return None, problems
    reads, query_line = parsed["reads"], statements[0][1]
    table: str | None = None
    if "table" in given:
        value, line = given["table"]
        parts = split_table(value)
        if parts is None or len(parts) < 2:
            problems.append(
                Problem(relative, line, f"-- table: must name 'dataset.table', not {value!r}")
            )
        else:
            table = ".".join(parts)
    elif reads:
        table = reads[0]
    else:
        problems.append(
            Problem(
                relative,
                query_line,
                "the check reads no table: name the table it checks with '-- table: dataset.table'",
            )
        )
    if problems or table is None:
        return None, problems
    return CheckSpec(
        name=relative,
        table=table,
        kind="sql",
        severity=severity,
        params=MappingProxyType({"query": text}),
        path=relative,
        line=query_line,
        reads=tuple(r for r in reads if r != table),
        source_dialect=dialect,
    ), problems


def _parsed(text: str, dialect: str) -> dict[str, Any]:
    """What a check needs of its file's parse, as JSON for the parse cache: syntax errors,
    each statement's kind and line, and the tables the query reads in the order it reads them."""
    from daglake.sql.parse import parse_file  # sqlglot: only when a check file is new or changed

    parsed = parse_file(text, dialect)
    queries = [s for s in parsed.statements if s.kind == "query"]
    reads = [name for name, _ in sorted(queries[0].reads.items(), key=lambda item: item[1])] if queries else []
    return {
        "errors": [list(e) for e in parsed.errors],
        "statements": [[s.kind, s.line] for s in parsed.statements],
        "reads": reads,
    }
