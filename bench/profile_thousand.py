"""Where ``daglake run`` spends its time on the 1,000-task project: cProfile of the CLI run in
process, main thread (scheduling, console) and worker threads (tasks) reported apart.

Not a benchmark (profiling slows everything down); the evidence behind the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from _common import WORK_DIR, machine
from bench_thousand_tasks import graph, write_daglake_project

DRAIN_THREAD = "profile-pty-drain"


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Like a piped ``daglake run``: file descriptor 1 goes nowhere, so no terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


@contextlib.contextmanager
def stdout_to_terminal() -> Iterator[None]:
    """File descriptor 1 on a pseudo-terminal (drained, discarded): the live progress view."""
    import pty

    sys.stdout.flush()
    controller, terminal = pty.openpty()
    saved = os.dup(1)
    os.dup2(terminal, 1)
    os.environ.update({"COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"})

    def drain() -> None:
        with contextlib.suppress(OSError):
            while os.read(controller, 65536):
                pass

    reader = threading.Thread(target=drain, name=DRAIN_THREAD, daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(terminal)
        os.close(controller)


@contextlib.contextmanager
def profile_threads() -> Iterator[list[cProfile.Profile]]:
    """Every thread started meanwhile runs under its own profiler."""
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        if self.name == DRAIN_THREAD:
            return original(self)
        profiler = cProfile.Profile()
        profiles.append(profiler)
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield profiles
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]


def cli_run(project: Path, workers: int, tty: bool = False) -> float:
    from daglake.cli import main as cli_main

    sys.argv = ["daglake", "run", str(project), "--workers", str(workers)]
    started = time.perf_counter()
    with stdout_to_terminal() if tty else stdout_to_devnull(), contextlib.suppress(SystemExit):
        cli_main()
    return time.perf_counter() - started


def phases(project: Path, repeat: int = 3) -> list[tuple[str, float]]:
    """Wall time of the parse and translate steps alone, without the profiler's distortion."""
    import subprocess

    from daglake.project import load_project
    from daglake.runner import compile_task

    def best(run: object) -> float:
        assert callable(run)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return min(times)

    def compile_all() -> None:
        fresh = load_project(project, use_cache=False)
        started = time.perf_counter()
        for task in fresh.tasks.values():
            compile_task(fresh, task, "duckdb")
        timings.append(time.perf_counter() - started)

    def interpreter(code: str) -> float:
        return best(lambda: subprocess.run([sys.executable, "-c", code], check=True))

    timings: list[float] = []
    rows = [
        ("discovery, no cache: read + parse + analyze every file", best(lambda: load_project(project, use_cache=False))),
        ("discovery, cache warm (the re-run)", best(lambda: load_project(project))),
    ]
    for _ in range(repeat):
        compile_all()
    cache = project / ".daglake" / "cache"
    rows.append(("translate to duckdb (trees kept from discovery)", min(timings)))
    rows.append(("python -c pass", interpreter("pass")))
    rows.append(("python -c 'import duckdb'", interpreter("import duckdb")))
    rows.append(("python -c 'import sqlglot'", interpreter("import sqlglot")))
    rows.append(("python -c 'import daglake.cli, daglake.runner'", interpreter("import daglake.cli, daglake.runner")))
    if cache.exists():
        size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        rows.append((f"(parse cache on disk: {size / 1e6:.1f} MB)", 0.0))
    return rows


def top(stats: pstats.Stats, count: int, sort: str) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    site = str(Path(sys.prefix))
    return "\n".join(line.replace(site, "<venv>").replace(str(Path.cwd()), ".") for line in lines[start:] if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--tty", action="store_true", help="stdout on a pseudo-terminal (live view)")
    parser.add_argument("--save", type=Path, help="folder for first.prof, rerun.prof, ...")
    args = parser.parse_args(argv)

    project = WORK_DIR / "profile" / "daglake"
    shutil.rmtree(project.parent, ignore_errors=True)
    write_daglake_project(project, graph(args.tasks, args.layers))
    print(machine())
    import daglake.cli  # noqa: F401  (imports are `python -X importtime`'s business, not this)

    with stdout_to_devnull(), contextlib.suppress(SystemExit):
        cli_run(project, args.workers)
    print("\nsteps alone, wall time without the profiler (best of 3):")
    for label, seconds in phases(project):
        print(f"  {label:<58} {seconds * 1000:8.0f} ms" if seconds else f"  {label}")

    for phase in ("first", "rerun"):
        if phase == "first":
            shutil.rmtree(project / ".daglake", ignore_errors=True)
        main_profile = cProfile.Profile()
        with profile_threads() as workers:
            main_profile.enable()
            wall = cli_run(project, args.workers, args.tty)
            main_profile.disable()
        where = "on a terminal" if args.tty else "piped"
        print(f"\n##### {phase} run, {where}: {wall:.2f} s wall under the profiler "
              f"({len(workers)} threads besides main)")
        main_stats = pstats.Stats(main_profile)
        print(f"\n--- main thread, by cumulative time (top {args.top})")
        print(top(main_stats, args.top, "cumulative"))
        if workers:
            worker_stats = pstats.Stats(workers[0])
            for extra in workers[1:]:
                worker_stats.add(extra)
            print(f"\n--- worker threads summed, by cumulative time (top {args.top // 2})")
            print(top(worker_stats, args.top // 2, "cumulative"))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            main_stats.dump_stats(args.save / f"{phase}-main.prof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
