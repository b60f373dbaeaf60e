"""Shared helpers for the benchmarks: timing subprocesses, alternating contenders, tables."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
BIN_DIR = Path(sys.executable).parent
DBT_VENV = WORK_DIR / "dbt-venv"
DBT_REQUIREMENTS = ["dbt-duckdb", "dbt-core<1.11"]
QUIET_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "DO_NOT_TRACK": "1",
    "NO_COLOR": "1",
}


class BenchError(RuntimeError):
    """A contender failed; the benchmark stops with its output."""


def daglake_exe() -> str:
    """The ``daglake`` script of the interpreter running the benchmark (the project's venv)."""
    found = BIN_DIR / "daglake"
    if found.exists():
        return str(found)
    on_path = shutil.which("daglake")
    if on_path is None:
        raise BenchError("daglake is not installed in this interpreter's environment")
    return on_path


def install_venv(venv: Path, requirements: Sequence[str]) -> str | None:
    """Create ``venv`` with ``requirements`` for a contender; None when it worked, else why not
    (the half-made venv is removed)."""
    print(f"installing {' '.join(requirements)} into {venv} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", *requirements],
            check=True, capture_output=True, text=True, timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        shutil.rmtree(venv, ignore_errors=True)
        return " | ".join(line for line in str(detail).splitlines() if "is ignored" not in line)[-400:]
    return None


def dbt_exe(install: bool) -> tuple[str | None, str]:
    """``dbt`` from ``bench/.work/dbt-venv`` (created when ``install``), or None and why not."""
    exe = DBT_VENV / "bin" / "dbt"
    if exe.exists():
        return str(exe), "dbt-duckdb from bench/.work/dbt-venv"
    if not install:
        return None, "dbt not installed (bench/.work/dbt-venv missing)"
    failure = install_venv(DBT_VENV, DBT_REQUIREMENTS)
    if failure is not None:
        return None, f"dbt-duckdb could not be installed: {failure}"
    return str(exe), "dbt-duckdb from bench/.work/dbt-venv (installed now)"


def run_timed_tty(command: Sequence[str], *, cwd: Path | None = None) -> float:
    """Like :func:`run_timed` with stdout and stderr on a pseudo-terminal, as a user at a terminal
    sees it (live progress); the output is drained and discarded."""
    import pty
    import threading

    controller, terminal = pty.openpty()
    env = {**os.environ, **QUIET_ENV, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)

    def drain() -> None:
        try:
            while os.read(controller, 65536):
                pass
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    started = time.perf_counter()
    try:
        done = subprocess.run(list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=terminal, stderr=terminal)
        elapsed = time.perf_counter() - started
    finally:
        os.close(terminal)
        reader.join(timeout=5)
        os.close(controller)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {done.returncode} (on a terminal)")
    return elapsed


def run_timed(
    command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> float:
    """Wall time of one subprocess in seconds; raises :class:`BenchError` when it fails."""
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    started = time.perf_counter()
    done = subprocess.run(
        list(command), cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        output = done.stdout.decode(errors="replace")[-3000:]
        raise BenchError(f"{' '.join(command)} exited {done.returncode}:\n{output}")
    return elapsed


@dataclass
class Contender:
    """Something to time: ``prepare`` runs untimed before each ``measure``."""

    name: str
    measure: Callable[[], float]
    prepare: Callable[[], None] = lambda: None
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> str:
        """The range of the samples, ``min-max``, in :func:`seconds`."""
        return span(self.samples)


def span(samples: Sequence[float], show: Callable[[float], str] | None = None) -> str:
    """``min–max`` of ``samples`` (one value when there is one sample): the range reported next
    to every median, so a reader sees how much the shared machine moved the figures."""
    show = show or seconds
    low, high = min(samples), max(samples)
    return show(low) if len(samples) == 1 else f"{show(low)}–{show(high)}"


def alternate(groups: Sequence[Sequence[Contender]], repeat: int, *, label: str = "") -> None:
    """Run every group ``repeat`` times; within a group the order rotates each repetition, so
    background load on a shared machine falls on all contenders alike."""
    for rep in range(repeat):
        for group in groups:
            shift = rep % len(group)
            for contender in [*group[shift:], *group[:shift]]:
                contender.prepare()
                contender.samples.append(contender.measure())
        if label:
            done = ", ".join(f"{c.name} {c.samples[-1]:.3f}s" for g in groups for c in g)
            print(f"  {label} rep {rep + 1}/{repeat}: {done}", flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ) + " |"

    separator = "|" + "|".join(
        ("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)
    ) + "|"
    return "\n".join([line(cells[0]), separator, *(line(r) for r in cells[1:])])


def verdict(value: float, target: float, *, at_least: bool = False, unit: str = "x") -> str:
    met = value >= target if at_least else value <= target
    bound = ">=" if at_least else "<="
    return f"{'met' if met else 'MISSED'} (target {bound} {target:g}{unit})"


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value * 1000 < 999.5 else f"{value:.2f} s"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def revision() -> str:
    """The commit measured, and whether daglake's sources differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO_DIR,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}"


def copy_products(destination: Path) -> Path:
    """A fresh copy of ``examples/products`` at ``destination``, without state or lake."""
    shutil.copytree(REPO_DIR / "examples" / "products", destination, ignore=shutil.ignore_patterns(".daglake", "lake"))
    return destination


def as_duckdb_runs_it(statement: Any) -> str:
    """A daglake statement as the DuckDB engine sends it: a bare query replaces its table."""
    if statement.kind == "materialize":
        return f"CREATE OR REPLACE TABLE {statement.target} AS {statement.query}"
    return str(statement.query)


def machine() -> str:
    return (
        f"machine: {platform.system()} {platform.machine()}, nproc {len(os.sched_getaffinity(0))}, "
        f"python {platform.python_version()}, duckdb {package_version('duckdb')}, "
        f"sqlglot {package_version('sqlglot')}, daglake {package_version('daglake')} "
        f"at {revision()}; load average {os.getloadavg()[0]:.1f} at start"
    )
