"""Scheduler overhead alone: no-op callables over a layered DAG, in process.

daglake's ready-queue executor against the floor (a plain topological for-loop, no threads) and
a naive level-by-level ``concurrent.futures.ThreadPoolExecutor`` runner.
"""

from __future__ import annotations

import argparse
import graphlib
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from _common import WORK_DIR, Contender, alternate, machine, span, table, verdict

from daglake.graph.dag import DAG
from daglake.scheduler.executor import execute

TARGET_US = 1000.0
PREFECT_PYTHON = WORK_DIR / "prefect-venv" / "bin" / "python"


def layered(tasks: int, layers: int, seed: int = 7) -> dict[str, set[str]]:
    """``layers`` layers; each node of layer k > 0 depends on 2 random nodes of layer k - 1."""
    rng = random.Random(seed)
    width = tasks // layers
    names = [[f"l{k}.t{i:04d}" for i in range(width + (1 if k < tasks % layers else 0))] for k in range(layers)]
    deps: dict[str, set[str]] = {}
    for k, layer in enumerate(names):
        for node in layer:
            deps[node] = set(rng.sample(names[k - 1], min(2, len(names[k - 1])))) if k else set()
    return deps


def millis(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def noop(node: str) -> None:
    return None


def sleeper(durations: dict[str, float]) -> Callable[[str], None]:
    def run(node: str) -> None:
        time.sleep(durations[node])

    return run


def run_daglake(
    dag: DAG[str], workers: int, task: Callable[[str], None] = noop,
    priority: dict[str, float] | None = None,
) -> Callable[[], float]:
    def measure() -> float:
        started = time.perf_counter()
        result = execute(dag, task, workers=workers, priority=priority)
        elapsed = time.perf_counter() - started
        if not result.ok or len(result.succeeded) != len(dag):
            raise RuntimeError("daglake executor did not run every node")
        return elapsed

    return measure


def run_floor(deps: dict[str, set[str]]) -> Callable[[], float]:
    def measure() -> float:
        started = time.perf_counter()
        for node in graphlib.TopologicalSorter(deps).static_order():
            noop(node)
        return time.perf_counter() - started

    return measure


def run_levels(
    deps: dict[str, set[str]], workers: int, task: Callable[[str], None] = noop
) -> Callable[[], float]:
    """Wait for a whole level before starting the next: what a ready queue avoids."""

    def measure() -> float:
        started = time.perf_counter()
        depth: dict[str, int] = {}
        for node in graphlib.TopologicalSorter(deps).static_order():
            depth[node] = 1 + max((depth[d] for d in deps[node]), default=-1)
        levels: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
        for node, level in depth.items():
            levels[level].append(node)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for level_nodes in levels:
                list(pool.map(task, level_nodes))
        return time.perf_counter() - started

    return measure


def check_order(dag: DAG[str], workers: int) -> None:
    """One run with a recording callable: every node starts after all its dependencies ended."""
    finished: set[str] = set()
    lock = threading.Lock()
    bad: list[str] = []

    def record(node: str) -> None:
        with lock:
            if not dag.upstream[node] <= finished:
                bad.append(node)
        with lock:
            finished.add(node)

    execute(dag, record, workers=workers)
    if bad or len(finished) != len(dag):
        raise RuntimeError(f"executor broke dependency order: {bad[:5]}")


PREFECT_SCRIPT = """\
import json, sys, time
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner
deps = json.load(open(sys.argv[1]))
workers = int(sys.argv[2])

@task
def noop(node):
    return None

@flow(task_runner=ThreadPoolTaskRunner(max_workers=workers), log_prints=False)
def run_all():
    futures = {}
    for node in deps:
        futures[node] = noop.submit(node, wait_for=[futures[d] for d in deps[node]])
    for future in futures.values():
        future.result()

started = time.perf_counter()
run_all()
print(time.perf_counter() - started)
"""


def prefect_seconds(deps: dict[str, set[str]], workers: int) -> float:
    """One Prefect flow run of the same graph (subprocess; only the flow call is timed)."""
    order = list(graphlib.TopologicalSorter(deps).static_order())
    graph_file, script = WORK_DIR / "scheduler-graph.json", WORK_DIR / "scheduler_prefect.py"
    graph_file.write_text(json.dumps({n: sorted(deps[n]) for n in order}), encoding="utf-8")
    script.write_text(PREFECT_SCRIPT, encoding="utf-8")
    env = {"PREFECT_LOGGING_LEVEL": "ERROR", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(PREFECT_PYTHON), str(script), str(graph_file), str(workers)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prefect run failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sleep-ms", type=float, default=20.0,
                        help="second scenario: 1 task in 10 sleeps N ms, the rest up to N/10 (0: skip)")
    parser.add_argument("--prefect", action="store_true",
                        help="also time Prefect from bench/.work/prefect-venv (if installed)")
    args = parser.parse_args(argv)

    deps = layered(args.tasks, args.layers)
    dag = DAG(deps)
    check_order(dag, args.workers)
    n = len(deps)
    print(machine())
    print(f"graph: {n} no-op nodes in {args.layers} layers, 2 dependencies each, "
          f"{args.workers} workers, {args.repeat} repetitions alternating (medians, range min–max)")

    daglake = Contender("daglake execute() (ready queue)", run_daglake(dag, args.workers))
    floor = Contender("floor: topological for-loop, no threads", run_floor(deps))
    levels = Contender("ThreadPoolExecutor, level by level", run_levels(deps, args.workers))
    contenders = [daglake, floor, levels]
    alternate([contenders], args.repeat)

    build = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        DAG(deps).remaining_path({})
        build.append(time.perf_counter() - started)
    build.sort()

    rows: list[list[object]] = []
    for contender in contenders:
        per_task = contender.median / n * 1e6
        over = (contender.median - floor.median) / n * 1e6
        rows.append([contender.name, f"{contender.median * 1000:.2f} ms", span(contender.samples, millis),
                     f"{per_task:.1f} us", f"{over:.1f} us", f"{contender.median / floor.median:.0f}x"])
    if args.prefect:
        if PREFECT_PYTHON.exists():
            samples = [prefect_seconds(deps, args.workers) for _ in range(3)]
            seconds = statistics.median(samples)
            rows.append(["prefect flow, ThreadPoolTaskRunner (3 runs)", f"{seconds * 1000:.0f} ms",
                         span(samples, millis),
                         f"{seconds / n * 1e6:.0f} us", f"{(seconds - floor.median) / n * 1e6:.0f} us",
                         f"{seconds / floor.median:.0f}x"])
        else:
            print("prefect not installed in bench/.work/prefect-venv; skipped")
    print()
    print(table(["contender", "median total", "range", "per task", "over floor", "vs floor"], rows))
    print()
    print(f"DAG construction + critical-path priorities (outside the timings above): "
          f"{build[len(build) // 2] * 1000:.2f} ms")
    per_task = daglake.median / n * 1e6
    print(f"daglake per-task overhead: {per_task:.1f} us  {verdict(per_task, TARGET_US, unit=' us')}")
    print(f"daglake / naive level-by-level pool: {daglake.median / levels.median:.2f}x")
    if args.sleep_ms > 0:
        uneven(deps, dag, args)
    return 0


def uneven(deps: dict[str, set[str]], dag: DAG[str], args: argparse.Namespace) -> None:
    """Uneven tasks (fixed seed): 1 in 10 sleeps ``sleep_ms``, the rest up to a tenth of it.
    A level-by-level runner waits for the slowest task of every level; a ready queue does not."""
    rng = random.Random(11)
    durations = {
        n: (1.0 if rng.random() < 0.1 else rng.random() / 10) * args.sleep_ms / 1000 for n in deps
    }
    priority = dag.remaining_path(durations)
    bound = max(max(priority.values()), sum(durations.values()) / args.workers)
    task = sleeper(durations)
    daglake = Contender("daglake execute() (ready queue, known durations)",
                        run_daglake(dag, args.workers, task, priority))
    blind = Contender("daglake execute() (no durations yet)", run_daglake(dag, args.workers, task))
    levels = Contender("ThreadPoolExecutor, level by level", run_levels(deps, args.workers, task))
    contenders = [daglake, blind, levels]
    alternate([contenders], max(3, args.repeat // 3))
    rows = [[c.name, f"{c.median * 1000:.1f} ms", span(c.samples, millis), f"{c.median / bound:.2f}x"]
            for c in contenders]
    rows.append(["lower bound: max(critical path, work / workers)", f"{bound * 1000:.1f} ms", "", "1.00x"])
    print(f"\nuneven tasks: 1 in 10 sleeps {args.sleep_ms:g} ms, the others 0..{args.sleep_ms / 10:g} ms "
          f"(sum {sum(durations.values()):.2f} s), {args.workers} workers")
    print(table(["contender", "makespan (median)", "range", "vs bound"], rows))


if __name__ == "__main__":
    sys.exit(main())
