"""The ready-queue executor on plain callables: timing, concurrency, failures, priority."""

from __future__ import annotations

import threading
import time

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


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        execute(DAG({"a": []}), lambda n: n, workers=0)
