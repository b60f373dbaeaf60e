"""A generic directed acyclic graph: cycles, order, ancestry and critical paths."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class DAG(Generic[T]):
    """Nodes and their upstream dependencies; edges to unknown nodes are ignored."""

    def __init__(self, dependencies: Mapping[T, Iterable[T]]) -> None:
        self.upstream: dict[T, set[T]] = {
            node: {d for d in deps if d in dependencies and d != node}
            for node, deps in dependencies.items()
        }
        self.downstream: dict[T, set[T]] = {node: set() for node in self.upstream}
        for node, deps in self.upstream.items():
            for dep in deps:
                self.downstream[dep].add(node)

    def __len__(self) -> int:
        return len(self.upstream)

    def __contains__(self, node: object) -> bool:
        return node in self.upstream

    def cycles(self) -> list[list[T]]:
        """One cycle per strongly connected component, each closed (first node repeated last)."""
        index: dict[T, int] = {}
        low: dict[T, int] = {}
        on_stack: set[T] = set()
        stack: list[T] = []
        components: list[list[T]] = []
        counter = 0
        for start in sorted(self.upstream, key=str):
            if start in index:
                continue
            work: list[tuple[T, list[T]]] = [(start, sorted(self.upstream[start], key=str))]
            index[start] = low[start] = counter
            counter += 1
            stack.append(start)
            on_stack.add(start)
            while work:
                node, pending = work[-1]
                if pending:
                    nxt = pending.pop(0)
                    if nxt not in index:
                        index[nxt] = low[nxt] = counter
                        counter += 1
                        stack.append(nxt)
                        on_stack.add(nxt)
                        work.append((nxt, sorted(self.upstream[nxt], key=str)))
                    elif nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[T] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
        return [self._cycle_within(set(c)) for c in components]

    def _cycle_within(self, component: set[T]) -> list[T]:
        """A simple cycle through the component's smallest node, following read edges."""
        start = min(component, key=str)
        path = [start]
        seen = {start}
        node = start
        while True:
            nexts = sorted((d for d in self.upstream[node] if d in component), key=str)
            if start in nexts and len(path) > 1:
                return [*path, start]
            candidates = [d for d in nexts if d not in seen] or nexts
            node = candidates[0]
            if node in seen:
                return [*path[path.index(node) :], node]
            path.append(node)
            seen.add(node)

    def topological_order(self) -> list[T]:
        remaining = {n: len(d) for n, d in self.upstream.items()}
        ready = sorted((n for n, c in remaining.items() if c == 0), key=str)
        order: list[T] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for child in sorted(self.downstream[node], key=str):
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        return order

    def levels(self) -> list[list[T]]:
        """Groups of nodes that could run at once if every task took the same time."""
        depth: dict[T, int] = {}
        for node in self.topological_order():
            depth[node] = 1 + max((depth[d] for d in self.upstream[node]), default=-1)
        groups: list[list[T]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for node, level in depth.items():
            groups[level].append(node)
        return [sorted(g, key=str) for g in groups]

    def ancestors(self, node: T, depth: int | None = None) -> set[T]:
        """Everything ``node`` depends on, or only up to ``depth`` edges away (``2+x``)."""
        return self._reach(node, self.upstream, depth)

    def descendants(self, node: T, depth: int | None = None) -> set[T]:
        """Everything that depends on ``node``, or only up to ``depth`` edges away (``x+2``)."""
        return self._reach(node, self.downstream, depth)

    @staticmethod
    def _reach(node: T, edges: Mapping[T, set[T]], depth: int | None = None) -> set[T]:
        """Breadth first, so a node is reached at its shortest distance."""
        seen: set[T] = set()
        frontier = set(edges.get(node, ()))
        distance = 1
        while frontier and (depth is None or distance <= depth):
            seen |= frontier
            frontier = {n for current in frontier for n in edges[current]} - seen - {node}
            distance += 1
        return seen

    def remaining_path(self, durations: Mapping[T, float], default: float = 1.0) -> dict[T, float]:
        """For each node, the longest duration from its start to the end of the graph."""
        result: dict[T, float] = {}
        for node in reversed(self.topological_order()):
            tail = max((result[c] for c in self.downstream[node]), default=0.0)
            result[node] = durations.get(node, default) + tail
        return result

    def subgraph(self, nodes: Iterable[T]) -> DAG[T]:
        keep = set(nodes)
        return DAG({n: self.upstream[n] & keep for n in self.upstream if n in keep})
