"""What translation hands an engine: structured statements, not finished DDL."""

from __future__ import annotations

from dataclasses import dataclass

MATERIALIZE = "materialize"  # a bare query: its rows replace ``target``
EXECUTE = "execute"  # DDL or DML run as written (CREATE TABLE … AS, INSERT, DELETE, MERGE …)


@dataclass(frozen=True)
class Statement:
    """One translated statement of a task: what it does, to which table, from which line.

    Each engine materializes a MATERIALIZE its own way (DuckDB: ``CREATE OR REPLACE TABLE … AS``
    in the task's transaction, or a lake version; BigQuery: a destination table)."""

    kind: str  # MATERIALIZE or EXECUTE
    query: str  # in the engine's dialect
    line: int
    target: str | None = None  # the table it writes, when it writes one
    parameters: tuple[str, ...] = ()  # run parameters it reads: ("ds", "run_id")
    column: int = 1  # where ``query`` starts on ``line``, when it is the text as written
    verbatim: bool = False  # ``query`` is the user's own text (the engine speaks the project's dialect)
    functions: tuple[str, ...] = ()  # functions ``query`` calls, lower case (``net.host``)
    defines: tuple[str, ...] = ()  # functions it creates (``CREATE MACRO``)
