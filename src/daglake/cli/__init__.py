"""The ``daglake`` command. Heavy modules are imported inside commands so ``--help`` is fast.

Errors are rendered here, once: ``path:line: message`` lines for user mistakes, a traceback
only under ``--debug``.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Run a folder of SQL tasks as one dependency-ordered, parallel pipeline.",
)
_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])

PathArg = Annotated[str, typer.Argument(help="Project folder.")]
EngineOpt = Annotated[str | None, typer.Option("--engine", help="Engine name, with its [engine.NAME] settings (default from daglake.toml).")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="A [targets.NAME] of daglake.toml (default: $DAGLAKE_TARGET).")]
DepsOpt = Annotated[
    str | None, typer.Option("--deps", help="JSON file of explicit dependencies (relative to the current folder).", metavar="FILE")
]
SelectOpt = Annotated[
    list[str] | None,
    typer.Option("--select", "-s", help="Tables, paths, globs, tag:x, +x (with upstream), x+, 2+x / x+1 (to a depth), @x, a,b (both)."),
]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude", "-x", help="Same forms as --select.")]


def _stderr() -> Any:
    from daglake.cli.console import make_console

    return make_console(stderr=True)


def reports_errors(command: F) -> F:
    """Render daglake errors as one line each and exit with their code; tracebacks on --debug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from daglake.errors import DaglakeError, ValidationError, environment_error

        try:
            try:
                return command(*args, **kwargs)
            except (typer.Exit, KeyboardInterrupt, DaglakeError):
                raise
            except Exception as exc:
                refused = environment_error(exc)  # the machine said no: a line, not a traceback
                if refused is None:
                    raise
                raise refused from exc
        except DaglakeError as exc:
            from rich.markup import escape

            if _state["debug"]:
                import traceback

                traceback.print_exc()  # then the same lines and exit code as without --debug
            if kwargs.get("json_output"):
                import json

                typer.echo(json.dumps(exc.as_dict(), indent=2))
            console = _stderr()
            if isinstance(exc, ValidationError):
                for line in exc.render().splitlines():
                    console.print(f"[red]{escape(line)}[/]", soft_wrap=True)
                count = len(exc.problems)
                console.print(f"[bold red]{count} problem{'s' if count != 1 else ''} found[/]")
            else:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _stderr().print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    """Eager, so ``daglake --version`` alone prints it instead of "Missing command"."""
    if value:
        from daglake import __version__

        typer.echo(f"daglake {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
@reports_errors
def validate(
    path: PathArg = ".",
    strict: Annotated[bool, typer.Option(help="Also report declared vs inferred dependencies.")] = False,
    deps: DepsOpt = None,
    engine: EngineOpt = None,
    target: TargetOpt = None,
) -> None:
    """Check the project (syntax, cycles, duplicates, sources, config) without running it."""
    from daglake.runner import RunOptions
    from daglake.runner import validate as validate_project

    options = RunOptions(strict=strict, deps_file=deps, engine=engine, target=target, progress=_progress)
    project = validate_project(path, options)
    typer.echo(f"{project.config.name}: {len(project.tasks)} tasks, no problems found")


@app.command()
@reports_errors
def run(
    path: PathArg = ".",
    select: SelectOpt = None,
    exclude: ExcludeOpt = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", min=1, help="Tasks run at once.")] = None,
    date: Annotated[str | None, typer.Option(help="Logical date YYYY-MM-DD (default: today).")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Run every task, unchanged or not, and reload seeds.")] = False,
    force: Annotated[list[str] | None, typer.Option("--force", help="Run these tasks even if unchanged (same forms as --select).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Print why each task would run or be skipped; run nothing.")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Start nothing new after a failure.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; touch nothing.")] = False,
    engine: EngineOpt = None,
    target: TargetOpt = None,
    deps: DepsOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary only.")] = False,
) -> None:
    """Run the project's tasks in dependency order, in parallel."""
    from daglake.runner import RunOptions
    from daglake.runner import run as run_project

    options = RunOptions(
        select=select or [],
        exclude=exclude or [],
        workers=workers,
        full_refresh=full_refresh,
        fail_fast=fail_fast or None,
        dry_run=dry_run,
        deps_file=deps,
        engine=engine,
        target=target,
        logical_date=date,
        progress=None if json_output else _progress,
        force=force or [],
    )
    if explain:
        _explain(path, options, json_output)
        return
    summary = run_project(path, options, _observer(json_output))
    _finish(summary, json_output)


def _explain(path: str, options: Any, json_output: bool) -> None:
    """``run --explain``: a line per task, ``run`` or ``skip`` and why."""
    import json

    from daglake.changes import explain

    found = explain(path, options)
    if json_output:
        typer.echo(json.dumps(found.as_dict(), indent=2))
        return
    for name, _path, decision in found.tasks:
        typer.echo(f"{decision.action:<4}  {name}  {decision.reason}")
    counts = found.counts()
    typer.echo(f"{counts['run']} to run, {counts['skip']} to skip ({found.engine}, logical date {found.logical_date}); nothing was run")


ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project folder.")]


@app.command()
@reports_errors
def retry(
    run_id: Annotated[str | None, typer.Argument(help="Run to finish (default: the latest).")] = None,
    project: ProjectOpt = ".",
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary only.")] = False,
) -> None:
    """Re-run only what failed or never ran in a run, with its logical date and selection."""
    from daglake.runner import retry as retry_run

    summary = retry_run(project, run_id, _observer(json_output))
    _finish(summary, json_output)


@app.command()
@reports_errors
def runs(
    run_id: Annotated[str | None, typer.Argument(help="Show this run's tasks.")] = None,
    project: ProjectOpt = ".",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List past runs, latest first, or one run's tasks."""
    import json

    from daglake.cli.history import print_run, print_runs
    from daglake.history import list_runs, run_details

    if run_id is None:
        records = list_runs(project, limit)
        if json_output:
            typer.echo(json.dumps([r.as_dict() for r in records], indent=2))
        else:
            print_runs(records)
        return
    details = run_details(project, run_id)
    if json_output:
        data = details.record.as_dict() | {"tasks": [t.as_dict() for t in details.tasks]}
        typer.echo(json.dumps(data, indent=2))
    else:
        print_run(details)


@app.command()
@reports_errors
def catalog(
    table: Annotated[str | None, typer.Argument(help="Show this table in detail.")] = None,
    project: ProjectOpt = ".",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the data-lake catalog: tables, zones, rows, partitions, files, lineage."""
    import json

    from daglake.cli.history import print_catalog, print_catalog_table
    from daglake.config import load_config
    from daglake.errors import UsageError, ValidationError
    from daglake.lake.catalog import read_catalog

    root = Path(project)
    problems: list[Any] = []
    config = load_config(root, problems)
    if problems:
        raise ValidationError(problems)
    tables = read_catalog(root / config.lake_root)["tables"]
    if table is not None:
        entry = tables.get(table.lower())
        if entry is None:
            raise UsageError(f"table {table} is not in the catalog (run the project first)")
        typer.echo(json.dumps(entry, indent=2)) if json_output else print_catalog_table(entry)
    elif json_output:
        typer.echo(json.dumps(tables, indent=2))
    else:
        print_catalog(tables)


@app.command()
@reports_errors
def logs(
    run_id: Annotated[str, typer.Argument(help="The run.")],
    task: Annotated[str, typer.Argument(help="Task name or path.")],
    project: ProjectOpt = ".",
) -> None:
    """Print a task's logs in a run, every attempt."""
    from daglake.history import task_logs

    for number, text in task_logs(project, run_id, task):
        typer.echo(f"===== attempt {number} =====")
        typer.echo(text, nl=False)


@app.command()
@reports_errors
def serve(
    path: PathArg = ".",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8181,
    target: TargetOpt = None,
) -> None:
    """Serve the HTTP API and web UI: start runs, append rows, watch runs live."""
    import os

    _started()  # a server lives long: collect as usual

    from daglake.api.server import serve as serve_project
    from daglake.config import TARGET_ENV

    if target:  # the runs, appends and table listings of this server all use it
        os.environ[TARGET_ENV] = target
    serve_project(path, host, port, announce=lambda line: typer.echo(line, err=False))


@app.command()
@reports_errors
def schedule(
    path: PathArg = ".",
    next_count: Annotated[int, typer.Option("--next", "-n", min=1, max=1000, help="How many intervals.")] = 5,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the coming scheduled intervals: logical date and when each run starts."""
    import datetime as dt
    import json

    from daglake.config import load_config
    from daglake.errors import UsageError, ValidationError
    from daglake.orchestration.listing import schedule_listing

    problems: list[Any] = []
    config = load_config(Path(path), problems)
    if problems:
        raise ValidationError(problems)
    listing = schedule_listing(config, dt.datetime.now(dt.UTC), next_count)
    if json_output:
        typer.echo(json.dumps(listing, indent=2))
        return
    if listing["schedule"] is None:
        raise UsageError(f"{config.name} has no schedule (set [project] schedule in daglake.toml)")
    catchup = "catch-up on" if listing["catchup"] else "no catch-up"
    typer.echo(f"{config.name}: {listing['schedule']} ({listing['timezone']}, {catchup})")
    for entry in listing["next"]:
        typer.echo(f"  {entry['logical_date']}  runs at {entry['runs_at']}  [{entry['start']} .. {entry['end']})")


@app.command()
@reports_errors
def backfill(
    path: PathArg = ".",
    start: Annotated[str, typer.Option("--start", help="First logical date, YYYY-MM-DD (included).")] = "",
    end: Annotated[str, typer.Option("--end", help="Last logical date, YYYY-MM-DD (excluded).")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print each interval's run id and state.")] = False,
) -> None:
    """Run every scheduled interval in [start, end), in order; re-issued, only what is not done."""
    import json

    from daglake.errors import UsageError
    from daglake.orchestration.backfill import BackfillInterrupted, parse_day
    from daglake.orchestration.backfill import backfill as run_backfill

    if not start or not end:
        raise UsageError("backfill needs --start DATE and --end DATE")
    console = _stderr()

    def progress(outcome: Any, number: int, total: int) -> None:
        if not json_output:
            run = f" run {outcome.run_id}" if outcome.run_id else ""
            console.print(f"[{number}/{total}] {outcome.interval.logical_date}: {outcome.state}{run}", highlight=False)

    try:
        outcomes = run_backfill(
            path,
            parse_day(start, "--start"),
            parse_day(end, "--end"),
            observer=lambda interval: _observer(json_output),
            progress=progress,
        )
    except BackfillInterrupted as stopped:
        if json_output:
            typer.echo(json.dumps([o.as_dict() for o in stopped.outcomes], indent=2))
        raise
    if json_output:
        typer.echo(json.dumps([o.as_dict() for o in outcomes], indent=2))
    raise typer.Exit(0 if all(o.state in ("success", "already_successful") for o in outcomes) else 1)


def _progress(message: str) -> None:
    """What slow preparation is doing, on stderr (stdout stays the command's result)."""
    _stderr().print(message, highlight=False, soft_wrap=True)


def _observer(json_output: bool) -> Any:
    from daglake.cli.console import ConsoleObserver, make_console
    from daglake.events import Observers, RunObserver

    class Started(RunObserver):
        def run_started(self, summary: Any, plan: Any) -> None:
            _started()

    return Observers(Started(), RunObserver() if json_output else ConsoleObserver(make_console()))


def _finish(summary: Any, json_output: bool) -> None:
    import json

    if json_output:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    raise typer.Exit(0 if summary.state in ("success", "dry_run") else 1)


@app.command()
@reports_errors
def lineage(
    target: Annotated[str, typer.Argument(help="A table (ds.table) or a column (ds.table.column).")],
    path: PathArg = ".",
    downstream: Annotated[bool, typer.Option("--downstream", help="The columns computed from it.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    deps: DepsOpt = None,
) -> None:
    """Column-level lineage across files: what a column is computed from, or what depends on it."""
    from daglake.cli.lineage import lineage_report, print_lineage

    print_lineage(lineage_report(Path(path), target, downstream=downstream, deps=deps), json_output)


@app.command()
@reports_errors
def graph(
    path: PathArg = ".",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, mermaid, dot or json.")] = "text",
    select: SelectOpt = None,
    exclude: ExcludeOpt = None,
    deps: DepsOpt = None,
    checks: Annotated[bool, typer.Option("--checks", help="Show data-quality checks too.")] = False,
) -> None:
    """Show the task graph."""
    from daglake.errors import UsageError, ValidationError
    from daglake.graph.dag import DAG
    from daglake.graph.render import FORMATS, render
    from daglake.graph.selection import select as select_tasks
    from daglake.project import load_project
    from daglake.project.validate import problems

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}")
    project = load_project(path, deps_file=deps)
    dag = DAG(project.dependencies())
    found = problems(project, dag, None)
    if found:
        raise ValidationError(found)
    chosen = select_tasks(project, dag, select or [], exclude or [])
    if not checks:
        chosen = {name for name in chosen if project.tasks[name].kind != "check"}
    typer.echo(render(project, dag.subgraph(chosen), fmt))


@app.command()
@reports_errors
def show(
    table: Annotated[str, typer.Argument(help="Table to print, e.g. final.products.")],
    path: PathArg = ".",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 10,
    engine_name: EngineOpt = None,
    target: TargetOpt = None,
    candidate: Annotated[
        bool, typer.Option("--candidate", help="The new version that failed its checks, kept aside.")
    ] = False,
) -> None:
    """Print the first rows of a table in the warehouse (or of its refused candidate)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from daglake.config import engine_settings
    from daglake.engines import create_engine
    from daglake.errors import UsageError
    from daglake.project import load_project
    from daglake.sql.translate import select_all

    project = load_project(path)
    settings = engine_settings(project.config, engine=engine_name, target=target)
    with create_engine(settings, project.root, read_only=True) as engine:
        name = table.lower()
        if candidate:
            sql = engine.candidate_sql(name)
            if sql is None:
                raise UsageError(f"table {table} has no candidate: its last build passed its checks, or it was never refused")
            columns, rows = engine.fetch(sql, limit)
        else:
            if name not in engine.existing_tables():
                raise UsageError(f"table {table} does not exist in the warehouse (run the project first)")
            columns, rows = engine.fetch(select_all(name, engine.dialect), limit)
    output = Table(*(escape(c) for c in columns), show_lines=False, header_style="bold")
    for row in rows:
        output.add_row(*(escape(_cell(value)) for value in row))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=100_000)  # a pipe gets whole values, not "…"
    console.print(output, crop=False)


def _cell(value: object) -> str:
    """A value as a person reads it: ``189.9``, not ``Decimal('189.900000000')`` or ``0E-9``."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if value is None:
        return "NULL"
    return str(value)


from daglake.cli.export import export_app  # noqa: E402 - it uses the decorators above

app.add_typer(export_app, name="export")


def main() -> None:
    # Start-up (imports, the project, its parsed SQL) builds objects that live until the
    # process ends, which collections would only walk: ~50 ms of a cold products run, ~0.2-0.4 s
    # of a first 1,000-task run. Nothing is collected until the command starts its work.
    gc.disable()
    app()


def _started() -> None:
    """Start-up is over: what it built is frozen out of every collection, which start again."""
    gc.freeze()
    gc.enable()


if __name__ == "__main__":  # pragma: no cover
    main()
