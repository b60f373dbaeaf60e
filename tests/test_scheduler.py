"""The ready-queue executor on plain callables: timing, concurrency, failures, priority."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daglake.graph.dag import DAG
from daglake.scheduler.executor import execute

SKEWED = {"a1": 0.1, "a2": 1.0, "b1": 1.0, "b2": 0.1}


def sleeper(durations: dict[str, float]):  # type: ignore[no-untyped-def]
    def run(node: str) -> str:
        time.sleep(durations[node])
        return node

    return run


def test_makespan_is_the_critical_path_not_level_by_level() -> None:
    dag = DAG({"a1": [], "a2": ["a1"], "b1": [], "b2": ["b1"]})
    started = time.perf_counter()
    result = execute(dag, sleeper(SKEWED), workers=2)
    makespan = time.perf_counter() - started
    assert result.ok
    # critical path 1.1 s; a level-by-level runner needs max(0.1, 1.0) + max(1.0, 0.1) = 2.0 s
    assert 1.1 <= makespan < 1.5


def test_at_most_workers_tasks_run_at_once() -> None:
    dag = DAG({f"t{i}": [] for i in range(12)} | {"end": [f"t{i}" for i in range(12)]})
    lock = threading.Lock()
    running = 0
    peak = 0

    def run(node: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    result = execute(dag, run, workers=3)
    assert result.ok
    assert peak == 3


def test_more_workers_than_tasks_start_no_idle_threads() -> None:
    """``--workers 100000`` on a small project used to start 100000 threads (seconds of start-up,
    then "can't start new thread" past the system's limit): one thread per task at most."""
    before = threading.active_count()
    seen: list[int] = []
    result = execute(DAG({"a": [], "b": [], "c": ["a"]}), lambda node: seen.append(threading.active_count()), workers=100_000)
    assert result.failed == {}
    assert max(seen) <= before + 3


def test_a_task_starts_the_moment_its_last_dependency_finishes() -> None:
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}

    def run(node: str) -> None:
        starts[node] = time.perf_counter()
        time.sleep({"slow": 0.5, "fast": 0.05, "after_fast": 0.05}[node])
        ends[node] = time.perf_counter()

    dag = DAG({"slow": [], "fast": [], "after_fast": ["fast"]})
    execute(dag, run, workers=2)
    assert starts["after_fast"] - ends["fast"] < 0.05
    assert ends["after_fast"] < ends["slow"]


def test_failure_blocks_downstream_and_independent_branches_finish() -> None:
    dag = DAG({"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"]})

    def run(node: str) -> str:
        if node == "a":
            raise RuntimeError("boom")
        return node

    result = execute(dag, run, workers=2)
    assert set(result.succeeded) == {"x", "y"}
    assert isinstance(result.failed["a"], RuntimeError)
    assert str(result.failed["a"]) == "boom"
    assert result.upstream_failed == {"b": "a", "c": "a"}
    assert result.not_started == []


def test_fail_fast_starts_nothing_new() -> None:
    dag = DAG({"a": [], "b": ["a"], "x": [], "y": ["x"], "z": ["y"]})

    def run(node: str) -> None:
        if node == "a":
            raise RuntimeError("boom")
        time.sleep(0.05)

    result = execute(dag, run, workers=1, priority={"a": 10, "b": 9, "x": 1, "y": 1, "z": 1}, fail_fast=True)
    assert list(result.failed) == ["a"]
    assert result.succeeded == {}
    assert sorted(result.not_started) == ["x", "y", "z"]


def test_longest_remaining_path_starts_first() -> None:
    order: list[str] = []
    dag = DAG({"short": [], "long1": [], "long2": ["long1"], "long3": ["long2"]})
    execute(dag, order.append, workers=1)
    assert order[0] == "long1"


def test_priority_uses_durations() -> None:
    order: list[str] = []
    dag = DAG({"a": [], "b": []})
    execute(dag, order.append, workers=1, priority=dag.remaining_path({"a": 1.0, "b": 5.0}))
    assert order == ["b", "a"]


def test_the_longest_path_starts_first_even_when_its_names_sort_last() -> None:
    """Without the priority, ties go by name and the chain z1 -> z2 -> z3 would start last."""
    order: list[str] = []
    dag = DAG({"a1": [], "a2": [], "a3": [], "z1": [], "z2": ["z1"], "z3": ["z2"]})
    execute(dag, lambda n: None, workers=1, on_start=order.append)
    # z3's remaining path (1) ties the a's: ties go in the order they became ready
    assert order == ["z1", "z2", "a1", "a2", "a3", "z3"]


def test_the_priority_shortens_the_makespan_when_names_sort_against_the_critical_path() -> None:
    """Two workers; by name a1, a2 would go first and the chain z1 -> z2 would run after them."""
    durations = {"a1": 0.3, "a2": 0.3, "z1": 0.3, "z2": 0.3}
    dag = DAG({"a1": [], "a2": [], "z1": [], "z2": ["z1"]})
    started = time.perf_counter()
    assert execute(dag, sleeper(durations), workers=2).ok
    makespan = time.perf_counter() - started
    # critical path first: z1 | a1, then z2 | a2 = 0.6 s; by name: 0.9 s
    assert 0.6 <= makespan < 0.8


DAGLAKE = [sys.executable, "-m", "daglake"]
SLEEPERS = """
import time

import daglake
import pyarrow as pa


def sleeper(name, seconds):
    @daglake.task(name)
    def work(ctx):
        time.sleep(seconds)
        return pa.table({"slept": [seconds]})

    return work


a1, a2, a3, a4 = (sleeper(f"w.a{i}", 0.25) for i in range(1, 5))
z = sleeper("w.z", 1.0)
"""


def test_a_second_run_starts_the_task_that_took_longest_in_the_first(tmp_path: Path) -> None:
    """Through the real CLI: the first run knows no durations (all tasks alike, by name: w.z
    last); the second orders by the first's durations, starts w.z first and ends sooner."""
    root = tmp_path / "sleepers"
    root.mkdir()
    (root / "daglake.toml").write_text("[run]\nworkers = 2\n")
    (root / "tasks.py").write_text(SLEEPERS)

    def run_once() -> tuple[float, dict[str, float]]:
        done = subprocess.run([*DAGLAKE, "run", str(root), "--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        return summary["duration"], {t["name"]: t["started_at"] for t in summary["tasks"]}

    first_makespan, first = run_once()
    assert first["w.z"] > max(first["w.a1"], first["w.a2"])
    second_makespan, second = run_once()
    assert second["w.z"] <= min(second.values())
    # first: a1 | a2, a3 | a4, then z alone = 1.5 s; second: z | a1..a4 = 1.0 s
    assert second_makespan < first_makespan - 0.3


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        execute(DAG({"a": []}), lambda n: n, workers=0)


class _Refused(Exception):
    """A failure that lets the checks judging it run (an audit refusing a new version)."""

    released = ("check_a", "elsewhere")


def test_a_failure_may_release_direct_dependents_that_report_on_it() -> None:
    dag = DAG({"a": [], "check_a": ["a"], "reader": ["a", "check_a"], "elsewhere": [], "b": []})
    ran: list[str] = []

    def run(node: str) -> str:
        ran.append(node)
        if node == "a":
            raise _Refused("not published")
        return node

    result = execute(dag, run, workers=1)
    assert set(result.failed) == {"a"}
    assert "check_a" in result.succeeded  # released: a direct dependent of the failure
    assert result.upstream_failed == {"reader": "a"}  # a reader stays blocked
    assert "elsewhere" in result.succeeded and ran.count("elsewhere") == 1  # not a dependent: runs once


def test_each_round_is_settled_before_its_tasks_run() -> None:
    """``on_round`` comes after the round's starts and ends and before any of its tasks runs:
    a task runs only after its own start and its inputs' ends were settled (the run commits
    them there), and the three tasks started together settle in one round."""
    dag = DAG({"a": [], "b": [], "c": [], "d": ["a", "b", "c"], "e": ["d"]})
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    release = threading.Event()

    def note(kind: str, node: str = "") -> None:
        with lock:
            events.append((kind, node))

    def run(node: str) -> str:
        if node in "abc":
            release.wait(10)  # a, b and c finish together, once all three are running
        note("run", node)
        return node

    def start(node: str) -> None:
        note("start", node)
        if node == "c":
            release.set()

    result = execute(
        dag, run, workers=3, on_start=start,
        on_finish=lambda node, value, error: note("finish", node), on_round=lambda: note("round"),
    )
    assert set(result.succeeded) == set("abcde")
    with lock:
        order = list(events)

    def settled_before(event: tuple[str, str], node: str) -> bool:
        """A round between ``event`` and the moment ``node`` runs."""
        first, ran = order.index(event), order.index(("run", node))
        return first < ran and ("round", "") in order[first:ran]

    for node in "abcde":
        assert settled_before(("start", node), node), order
    for parent, child in (("a", "d"), ("b", "d"), ("c", "d"), ("d", "e")):
        assert settled_before(("finish", parent), child), order
    first_round = order.index(("round", ""))
    assert sorted(order[:first_round]) == [("start", n) for n in "abc"], order


def test_inline_nodes_run_on_the_calling_thread_without_taking_a_worker() -> None:
    """Skips (``inline``) run where ``execute`` was called, the moment they are ready, in
    dependency order, while the one worker is busy; an inline failure blocks its dependents
    like any other."""
    dag = DAG({"slow": [], "s1": [], "s2": ["s1"], "s3": ["s2"], "sbad": ["s1"], "after": ["sbad"], "end": ["slow", "s3"]})
    caller = threading.current_thread()
    threads: dict[str, threading.Thread] = {}
    finished: list[str] = []
    release = threading.Event()

    def run(node: str) -> str:
        threads[node] = threading.current_thread()
        if node == "slow":
            assert release.wait(10), "the skips waited for the busy worker"
        if node == "sbad":
            raise ValueError("broken")
        return node

    def finish(node: str, value: object, error: BaseException | None) -> None:
        finished.append(node)
        if node == "s3":
            release.set()  # every skip done while the only worker still runs "slow"

    result = execute(dag, run, workers=1, inline=lambda node: node.startswith("s") and node != "slow",
                     on_finish=finish)
    assert set(result.succeeded) == {"slow", "s1", "s2", "s3", "end"}
    assert isinstance(result.failed["sbad"], ValueError) and result.upstream_failed == {"after": "sbad"}
    assert {node for node, thread in threads.items() if thread is caller} == {"s1", "s2", "s3", "sbad"}
    assert threads["slow"] is not caller and threads["end"] is not caller
    assert finished.index("s1") < finished.index("s2") < finished.index("s3") < finished.index("slow")


def test_inline_is_asked_once_per_node_however_long_it_waits_for_a_worker() -> None:
    """A layer of 200 ready nodes behind one worker waits 200 rounds; asking ``inline`` again
    each round made 1,000 tasks cost 64,000 skip decisions."""
    dag = DAG({f"n{i:03}": [] for i in range(200)} | {"end": [f"n{i:03}" for i in range(200)]})
    asked: list[str] = []

    def inline(node: str) -> bool:
        asked.append(node)
        return node.endswith("7")  # every tenth node is a skip

    result = execute(dag, lambda node: node, workers=1, inline=inline)
    assert set(result.succeeded) == set(dag.upstream)
    assert sorted(asked) == sorted(dag.upstream)
