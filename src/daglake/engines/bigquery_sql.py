"""What the BigQuery engine does to SQL before sending it, and to BigQuery's errors after.

The SQL is the user's own text; only two edits are made, each in place so that BigQuery's
``[line:column]`` still points into the user's file: datasets get the target's
``dataset_prefix`` (``tmp.x`` → ``dev_ana_tmp.x``), and an unaliased column in ``STRUCT(...)``
gets the field name BigQuery would infer (``STRUCT(i.currency)`` → ``STRUCT(i.currency AS
currency)``: the same meaning on BigQuery; the emulator would call it ``element2``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from daglake.errors import TaskError


@functools.lru_cache(maxsize=4096)
def prepare(sql: str, prefix: str, local: frozenset[str] = frozenset()) -> str:
    """``sql`` with datasets prefixed and struct fields named (see the module's docstring).

    ``local``: the project's own datasets. ``my-project.raw.orders`` names the same table as
    ``raw.orders`` (as on every engine, and in the graph), so when ``raw`` is the project's the
    project part goes and the target's project and prefix apply; another project's table
    (``bigquery-public-data.samples.shakespeare``) is left as written."""
    try:
        tree = sqlglot.parse_one(sql, read="bigquery")
    except (ParseError, TokenError):
        return sql  # BigQuery will say what is wrong, with its own position
    edits: list[tuple[int, int, str]] = []  # (start, end exclusive, replacement)
    for table in tree.find_all(exp.Table):
        edits.extend(_dataset_edits(table, sql, prefix, local))
    for struct in tree.find_all(exp.Struct):
        for field in struct.expressions:
            if isinstance(field, exp.Column) and isinstance(field.this, exp.Identifier):
                end = field.this.meta.get("end")
                if end is not None:
                    edits.append((int(end) + 1, int(end) + 1, f" AS {field.this.sql(dialect='bigquery')}"))
    for start, end, text in sorted(set(edits), reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def _dataset_edits(table: exp.Table, sql: str, prefix: str, local: frozenset[str]) -> list[tuple[int, int, str]]:
    """The prefix inserted before a table's dataset (inside its backticks when quoted, also
    when ```raw.orders``` is quoted as one name), and a project part naming this project's
    own dataset removed."""
    db, catalog = table.args.get("db"), table.args.get("catalog")
    if not isinstance(db, exp.Identifier) or "start" not in db.meta:
        return []
    if catalog is not None:
        if db.name.lower() not in local or not isinstance(catalog, exp.Identifier) or "start" not in catalog.meta:
            return []  # another project's table
        start, db_start = int(catalog.meta["start"]), int(db.meta["start"])
        if start == db_start:  # `my-project.raw.orders`, one quoted name
            end = int(table.this.meta.get("end", db.meta["end"])) + 1
            return [(start, end, f"`{prefix}{db.name}.{table.name}`")]
        return [(start, db_start, ""), *_dataset_edits(exp.Table(this=table.this, db=db), sql, prefix, local)]
    if not prefix:
        return []
    at = int(db.meta["start"])
    at += 1 if sql[at] == "`" else 0
    return [(at, at, prefix)]


TRANSIENT_REASONS = frozenset(
    {"backendError", "rateLimitExceeded", "internalError", "jobBackendError", "jobInternalError", "jobRateLimitExceeded"}
)

_POSITION = re.compile(r"\s*at \[(\d+):(\d+)\]")
_SUBJECTS = (
    re.compile(r"Unrecognized name: (\w+)"),
    re.compile(r"Name (\w+) not found inside"),
    re.compile(r"Not found: Table [\w.:-]*?\.?(\w+) was not found"),
    re.compile(r"Function not found: (\w+)"),
    re.compile(r'column "(\w+)" not found', re.IGNORECASE),  # the emulator's DuckDB text
    re.compile(r'Table with name (\w+) does not exist'),
)


@dataclass(frozen=True)
class Sent:
    """A statement as sent: where its text came from, to map BigQuery's position back."""

    path: str
    line: int  # the statement's first line in the file
    column: int  # where it starts on that line
    offset: int  # characters daglake put before the user's text on the first line
    verbatim: bool  # the text is the user's own (positions map back exactly)

    @classmethod
    def generated(cls, path: str | None) -> Sent:
        """SQL daglake wrote itself (a check, an append, a Python task's query): no position
        in it means anything in a file."""
        return cls(path or "", 1, 1, 0, False)


def task_error(message: str, sent: Sent, job_id: str | None) -> TaskError:
    """BigQuery's message as a task error at the file's line: its ``[line:column]`` mapped
    back when the text was the user's own, else the name it complains about (found later in
    the user's file, as for every engine)."""
    line, column = sent.line, None
    found = _POSITION.search(message)
    if found and sent.verbatim:
        at_line, at_column = int(found.group(1)), int(found.group(2))
        line = sent.line + at_line - 1
        column = at_column - sent.offset + sent.column - 1 if at_line == 1 else at_column
        message = _POSITION.sub("", message, count=1)
    subject = None
    if column is None:
        for pattern in _SUBJECTS:
            named = pattern.search(message)
            if named:
                subject = named.group(1)
                break
    text = f"{message} (job {job_id})" if job_id else message
    return TaskError(text, sent.path or None, line, column, job_id=job_id, subject=subject)
