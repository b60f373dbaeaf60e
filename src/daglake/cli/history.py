"""Tables for ``daglake runs`` and ``daglake catalog``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.markup import escape
from rich.table import Table

from daglake.cli.console import STYLES, _duration, _rows, make_console, print_checks
from daglake.history import RunDetails
from daglake.state import RunRecord


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _state(state: str) -> str:
    style = STYLES.get(state)  # pending (a run that died before the task started) has none
    return f"[{style}]{escape(state)}[/]" if style else escape(state)


def print_runs(records: list[RunRecord]) -> None:
    console = make_console()
    if not records:
        console.print("no runs yet")
        return
    table = Table(header_style="bold", show_edge=False)
    for column in ("run", "date", "state", "started", "duration", "tasks", "trigger"):
        table.add_column(column, justify="right" if column == "duration" else "left")
    for record in records:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(record.counts.items()))
        table.add_row(
            record.id,
            record.logical_date,
            _state(record.state),
            _when(record.started_at),
            _duration(record.duration),
            counts,
            record.trigger,
        )
    console.print(table)


def print_run(details: RunDetails) -> None:
    console = make_console()
    record = details.record
    console.print(
        f"[bold]run {record.id}[/] ({record.trigger}) logical date {record.logical_date}: "
        f"{_state(record.state)}, started {_when(record.started_at)}, "
        f"took {_duration(record.duration) or '…'}"
    )
    if record.error:
        console.print(f"[red]{escape(record.error)}[/]")
    table = Table(header_style="bold", show_edge=False)
    for column in ("task", "state", "attempts", "duration", "rows", "error"):
        table.add_column(column, justify="right" if column in ("attempts", "duration", "rows") else "left")
    for task in details.tasks:
        error = f"{task.location}: {task.error}" if task.error else (task.reason or "")
        table.add_row(
            escape(task.name),
            _state(task.state),
            str(len(task.attempts)),
            _duration(task.duration),
            _rows(task.rows),
            escape(error),
        )
    console.print(table)
    jobs = [(task.name, job) for task in details.tasks for attempt in task.attempts for job in attempt.job_ids]
    if jobs:  # BigQuery: where to look a job up in the console, one per line so none is wrapped apart
        console.print("jobs:")
        for name, job in jobs:
            console.print(f"  {escape(name)} {escape(job)}", soft_wrap=True)
    print_checks(console, details.tasks)


def print_catalog(tables: dict[str, dict[str, Any]]) -> None:
    console = make_console()
    if not tables:
        console.print("the catalog is empty (run the project first)")
        return
    table = Table(header_style="bold", show_edge=False)
    for column in ("table", "zone", "rows", "partitions", "files", "task", "last run"):
        table.add_column(column, justify="right" if column in ("rows", "partitions", "files") else "left")
    for name, entry in tables.items():
        table.add_row(
            escape(name),
            entry["zone"],
            _rows(entry.get("rows")),
            str(len(entry.get("partitions", []))),
            str(len(entry.get("files", []))),
            escape(entry.get("task_path") or ""),
            entry.get("last_run") or "",
        )
    console.print(table)


def print_catalog_table(entry: dict[str, Any]) -> None:
    console = make_console()
    console.print(
        f"[bold]{escape(entry['name'])}[/] ({entry['zone']}, {entry['storage']}) at "
        f"{escape(entry['path'])}: {_rows(entry.get('rows')) or '?'} rows"
    )
    console.print(
        f"produced by {escape(entry.get('task_path') or 'no task')}, last run "
        f"{entry.get('last_run') or 'never'}; upstream: {escape(', '.join(entry.get('upstream', [])) or 'none')}"
    )
    schema = Table("column", "type", header_style="bold", show_edge=False)
    for column in entry.get("schema", []):
        schema.add_row(escape(column["name"]), escape(column["type"]))
    console.print(schema)
    if entry.get("partitions"):
        console.print("partitions: " + escape(", ".join(entry["partitions"])))
    for file in entry.get("files", []):
        console.print(f"  {escape(file['path'])}  {file['rows']:,} rows  {file['bytes']:,} bytes")
