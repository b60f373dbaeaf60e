"""Rich rendering of a run: live progress on a terminal, a line per task otherwise, a summary."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from rich.live import Live
    from rich.progress import Progress

from daglake.events import (
    FAILED,
    NOT_STARTED,
    RUNNING,
    SKIPPED,
    SUCCESS,
    UPSTREAM_FAILED,
    WARNED,
    Plan,
    RunObserver,
    RunSummary,
    TaskRun,
)

STYLES = {
    SUCCESS: "green",
    SKIPPED: "cyan",
    WARNED: "yellow",
    FAILED: "bold red",
    UPSTREAM_FAILED: "yellow",
    NOT_STARTED: "dim",
    RUNNING: "blue",
}
SUMMARY_ROWS = 40
PIPE_WIDTH = 160


def make_console(*, stderr: bool = False) -> Console:
    """A console that wraps to the terminal, or to a generous width when piped to a file."""
    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal:
        console = Console(highlight=False, stderr=stderr, width=PIPE_WIDTH)
    return console


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _rows(rows: int | None) -> str:
    return "" if rows is None else f"{rows:,}"


class ConsoleObserver(RunObserver):
    """Live progress while tasks run; the summary table at the end."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.progress: Progress | None = None
        self.bar: Any = None
        self.running: dict[str, TaskRun] = {}

    def run_started(self, summary: RunSummary, plan: Plan) -> None:
        if summary.dry_run:
            self._print_plan(summary, plan)
            return
        self.console.print(
            f"[bold]run {summary.run_id}[/]: {len(summary.tasks)} tasks on {summary.engine}, "
            f"{plan.workers} workers"
        )
        for warning in plan.warnings:
            self.console.print(f"[yellow]{escape(warning)}[/]", soft_wrap=True)
        if self.console.is_terminal:  # the live view's modules only where it is shown
            from rich.live import Live
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.bar = self.progress.add_task("tasks", total=len(summary.tasks))
            self.live = Live(
                get_renderable=self._view, console=self.console, refresh_per_second=8, transient=True
            )
            self.live.start()

    def _view(self) -> Group:
        table = Table.grid(padding=(0, 2))
        now = time.time()
        for task in list(self.running.values())[:12]:
            elapsed = _duration(now - task.started_at) if task.started_at else ""
            table.add_row("[blue]●[/]", escape(task.name), elapsed, f"[dim]{escape(task.path)}[/]")
        if len(self.running) > 12:
            table.add_row("", f"[dim]… and {len(self.running) - 12} more running[/]", "", "")
        assert self.progress is not None
        return Group(self.progress, table)

    def task_started(self, task: TaskRun) -> None:
        self.running[task.name] = task

    def task_finished(self, task: TaskRun) -> None:
        """On a terminal the live view counts successes and only problems are printed above
        it (re-rendering it per line costs milliseconds); piped, one plain line per task."""
        self.running.pop(task.name, None)
        if task.state == FAILED:
            details = f"{task.location}: {task.error}"
        else:
            rows = f"{_rows(task.rows)} row{'s' if task.rows != 1 else ''}" if task.rows is not None else ""
            details = " ".join(x for x in (_duration(task.duration), rows, task.reason or "", quarantined(task)) if x)
        if self.live is None:
            self.console.file.write(f"{task.state:>15} {task.name} {details}\n")
            return
        assert self.progress is not None
        self.progress.advance(self.bar)
        if task.state not in (SUCCESS, SKIPPED):
            style = STYLES.get(task.state, "")
            self.console.print(
                f"[{style}]{task.state:>15}[/] {escape(task.name)} [dim]{escape(details)}[/]", soft_wrap=True
            )

    def run_finished(self, summary: RunSummary) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if summary.dry_run:
            return
        self.console.print(summary_table(summary))
        print_checks(self.console, list(summary.tasks.values()))
        counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts().items()))
        style = "green" if summary.state == SUCCESS else "bold red"
        self.console.print(
            f"[{style}]run {summary.run_id} {summary.state}[/] in {_duration(summary.duration)}: {counts}"
        )

    def _print_plan(self, summary: RunSummary, plan: Plan) -> None:
        self.console.print(
            f"[bold]dry run[/]: {len(summary.tasks)} tasks on {summary.engine}, {plan.workers} workers; "
            "nothing is executed"
        )
        self.console.print("start order (longest remaining path first):")
        for index, name in enumerate(plan.order, start=1):
            self.console.print(f"  {index:>4}. {escape(name)} [dim]({escape(summary.tasks[name].path)})[/]")
        self.console.print("parallel groups:")
        for level, group in enumerate(plan.groups):
            self.console.print(f"  {level}: {escape(', '.join(group))}")
        if summary.estimate is not None:
            self._print_estimate(summary.estimate)

    def _print_estimate(self, estimate: dict[str, Any]) -> None:
        """Bytes per task from the engine's dry run, the total, and what it costs."""
        self.console.print("bytes each task would scan (dry run, nothing billed):")
        for name, task in estimate["tasks"].items():
            scanned = _bytes(task["bytes"]) if task["bytes"] is not None else f"[dim]{escape(task['reason'])}[/]"
            self.console.print(f"  {escape(name)}: {scanned}", soft_wrap=True)
        self.console.print(
            f"total {_bytes(estimate['total_bytes'])} ({estimate['total_bytes']:,} bytes): "
            f"{estimate['cost']:.4f} USD at {estimate['price_per_tib']:g} USD per TiB"
        )


def quarantined(task: TaskRun) -> str:
    """What an ingestion task quarantined (its metrics), so a bad delivery shows in the run."""
    count = task.metrics.get("quarantined") or 0
    if not count:
        return ""
    whole = task.metrics.get("unreadable_files") or 0
    files = f" ({whole} unreadable file{'s' if whole != 1 else ''} whole)" if whole else ""
    return f"{count} quarantined{files}"


def summary_table(summary: RunSummary) -> Table:
    table = Table(title=None, show_edge=False, header_style="bold")
    table.add_column("task")
    table.add_column("state")
    table.add_column("duration", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("detail")
    tasks = list(summary.tasks.values())
    shown = tasks
    if len(tasks) > SUMMARY_ROWS:
        problems = [t for t in tasks if t.state not in (SUCCESS, SKIPPED)]
        slowest = sorted((t for t in tasks if t.state == SUCCESS), key=lambda t: -(t.duration or 0))
        shown = (problems + slowest)[:SUMMARY_ROWS]
    for task in shown:
        detail = f"{task.location}: {task.error}" if task.error else " ".join(filter(None, (task.reason, quarantined(task))))
        table.add_row(
            escape(task.name),
            f"[{STYLES.get(task.state, '')}]{task.state}[/]",
            _duration(task.duration),
            _rows(task.rows),
            escape(detail),
        )
    if len(shown) < len(tasks):
        hidden = len(tasks) - len(shown)
        skipped = sum(1 for t in tasks if t.state == SKIPPED)
        table.caption = f"{hidden - skipped} more succeeded (slowest shown)" if not skipped else (
            f"{hidden} more: {hidden - skipped} succeeded, {skipped} skipped (unchanged)" if hidden > skipped else f"{hidden} more skipped (unchanged)"
        )
    return table


def print_checks(console: Console, tasks: list[TaskRun]) -> None:
    """A line per check result, with up to five failing rows under each one that failed."""
    checks = [t for t in tasks if t.check is not None]
    if not checks:
        return
    passed = sum(1 for t in checks if t.check and t.check["passed"])
    console.print(f"[bold]checks[/]: {passed} passed, {len(checks) - passed} did not")
    for task in checks:
        result = task.check or {}
        if result.get("passed"):
            continue
        style = "yellow" if result.get("severity") == "warn" else "bold red"
        detail = result.get("error") or f"{result.get('failing')} failing"
        console.print(
            f"  [{style}]✗ {escape(task.name)}[/] ({result.get('severity')}): {escape(str(detail))}",
            soft_wrap=True,
        )
        for row in result.get("sample", []):
            console.print(f"      [dim]{escape(json.dumps(row, default=str))}[/]", soft_wrap=True)
