"""A ready-queue executor: a node starts the moment its last dependency finishes.

Never level by level. Among ready nodes the one with the longest remaining path goes first, so
the makespan approaches the critical path. Knows nothing of tasks, SQL or engines: it runs
callables over a :class:`~daglake.graph.dag.DAG`.
"""

from __future__ import annotations

import contextlib
import heapq
import queue
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from daglake.graph.dag import DAG

T = TypeVar("T", bound=Hashable)


@dataclass
class ExecutionResult(Generic[T]):
    """What ran, what failed (with the real exception), and what was skipped because of it."""

    succeeded: dict[T, Any] = field(default_factory=dict)
    failed: dict[T, BaseException] = field(default_factory=dict)
    upstream_failed: dict[T, T] = field(default_factory=dict)  # node -> failed ancestor
    not_started: list[T] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.upstream_failed or self.not_started)


class ReadyQueue(Generic[T]):
    """Nodes whose dependencies are all done, highest priority first (ties: insertion order)."""

    def __init__(self, priority: Mapping[T, float]) -> None:
        self._priority = priority
        self._heap: list[tuple[float, int, T]] = []
        self._counter = 0

    def push(self, node: T) -> None:
        heapq.heappush(self._heap, (-self._priority.get(node, 0.0), self._counter, node))
        self._counter += 1

    def pop(self) -> T:
        return heapq.heappop(self._heap)[2]

    def pop_entry(self) -> tuple[float, int, T]:
        """The next node with its place, for :meth:`restore` when it must wait."""
        return heapq.heappop(self._heap)

    def restore(self, entries: list[tuple[float, int, T]]) -> None:
        for entry in entries:
            heapq.heappush(self._heap, entry)

    def __len__(self) -> int:
        return len(self._heap)


def execute(
    dag: DAG[T],
    run: Callable[[T], Any],
    *,
    workers: int = 4,
    priority: Mapping[T, float] | None = None,
    fail_fast: bool = False,
    on_start: Callable[[T], None] | None = None,
    on_finish: Callable[[T, Any, BaseException | None], None] | None = None,
    on_blocked: Callable[[T, T], None] | None = None,
    on_round: Callable[[], None] | None = None,
    inline: Callable[[T], bool] | None = None,
) -> ExecutionResult[T]:
    """Run ``run(node)`` for every node on ``workers`` threads, dependencies first.

    A node whose dependency failed is not run (``upstream_failed``); independent branches go on
    unless ``fail_fast``, which stops starting new nodes after the first failure. A failure
    whose exception lists direct dependents in ``released`` lets those run all the same. A
    node's dependents start only after ``on_finish`` has returned for it; the next node to
    start is then the ready one with the longest remaining path. ``on_round`` is called once
    per scheduling round, after the round's ``on_finish``/``on_start`` calls and before its
    nodes are handed to the workers (the run commits what it recorded there: one transaction
    per round). Nodes that finished together are handled in one round. A node for which
    ``inline`` says so (a skip: nothing to wait for) runs on the calling thread as soon as it is
    ready, taking no worker and no round trip through the queues.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    priorities = priority if priority is not None else dag.remaining_path({})
    result: ExecutionResult[T] = ExecutionResult()
    remaining = {node: len(deps) for node, deps in dag.upstream.items()}
    ready: ReadyQueue[T] = ReadyQueue(priorities)
    for node in dag.topological_order():
        if remaining[node] == 0:
            ready.push(node)
    done: queue.SimpleQueue[tuple[T, Any, BaseException | None]] = queue.SimpleQueue()
    stopping = False
    running = 0
    here: dict[T, bool] = {}  # ``inline``'s answer, asked once per node: a ready node waits many rounds

    def outcome(node: T) -> tuple[T, Any, BaseException | None]:
        try:
            return node, run(node), None
        except BaseException as exc:  # reported to the caller as the node's failure
            return node, None, exc

    def work(node: T) -> None:
        done.put(outcome(node))

    threads = _WorkerPool(max(1, min(workers, len(dag))), work)  # --workers 100000: no idle threads

    def run_here(node: T) -> None:
        record_end(*outcome(node))  # as on a worker, without the round trip

    def dispatch() -> None:
        nonlocal running
        starting: list[T] = []
        waiting: list[tuple[float, int, T]] = []
        while ready and not stopping:
            entry = ready.pop_entry()
            node = entry[2]
            if node not in here:
                here[node] = inline is not None and inline(node)
            if not here[node] and running >= workers:
                waiting.append(entry)  # every worker busy: inline nodes behind it may still go
                continue
            if on_start is not None:
                on_start(node)
            if here[node]:
                run_here(node)
                continue
            starting.append(node)
            running += 1
        ready.restore(waiting)
        if on_round is not None:
            on_round()
        for node in starting:
            threads.submit(node)

    def record_end(node: T, value: Any, error: BaseException | None) -> None:
        nonlocal stopping
        blocked: list[T] = []
        released: set[T] = set()
        if error is None:
            result.succeeded[node] = value
        else:
            result.failed[node] = error
            # dependents the failure names as still to run (they report on it)
            released = set(getattr(error, "released", ())) & set(dag.downstream[node])
            blocked = [
                d for d in sorted(dag.descendants(node), key=str)
                if d not in result.upstream_failed and d not in released
            ]
            for name in blocked:
                result.upstream_failed[name] = node
            if fail_fast or isinstance(error, (KeyboardInterrupt, SystemExit)):
                stopping = True
        if on_finish is not None:  # first: readers start once the end is recorded
            on_finish(node, value, error)
        freed = list(dag.downstream[node]) if error is None else sorted(released, key=str)
        for child in freed:
            remaining[child] -= 1
            if remaining[child] == 0 and child not in result.upstream_failed:
                ready.push(child)
        if on_blocked is not None:
            for name in blocked:
                on_blocked(name, node)

    try:
        while True:
            dispatch()
            if running == 0:
                break
            batch = [done.get()]
            with contextlib.suppress(queue.Empty):
                while True:  # whatever else finished meanwhile joins this round
                    batch.append(done.get_nowait())
            for node, value, error in batch:
                running -= 1
                record_end(node, value, error)
    except BaseException:
        stopping = True
        raise
    finally:
        threads.close()
    finished = set(result.succeeded) | set(result.failed) | set(result.upstream_failed)
    result.not_started = [n for n in dag.topological_order() if n not in finished]
    return result


class _WorkerPool(Generic[T]):
    """Long-lived daemon threads fed by one queue: cheaper per task than a future per node."""

    def __init__(self, size: int, work: Callable[[T], None]) -> None:
        self._inbox: queue.SimpleQueue[tuple[T] | None] = queue.SimpleQueue()
        self._work = work
        self._threads = [
            threading.Thread(target=self._loop, name=f"daglake-worker-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            self._work(item[0])

    def submit(self, node: T) -> None:
        self._inbox.put((node,))

    def close(self) -> None:
        for _ in self._threads:
            self._inbox.put(None)
        for thread in self._threads:
            thread.join()
