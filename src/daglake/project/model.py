"""A project as discovered: its tasks, which task produces which table, and the edges."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daglake.config import ProjectConfig, TaskSettings
from daglake.errors import Problem

if TYPE_CHECKING:
    from daglake.checks import CheckSpec
    from daglake.sql.analysis import SqlAnalysis
    from daglake.sql.cache import AnalysisCache
    from daglake.sql.parse import ParsedFile


def default_output(relative: str, root: Path) -> str:
    """The table a bare query builds: ``<parent folder>.<file stem>`` (``res/tmp/x.sql`` → ``tmp.x``)."""
    folders, _, file = relative.rpartition("/")  # string work: pathlib costs ~20 µs per file
    folder = folders.rpartition("/")[2] if folders else root.resolve().name
    return f"{folder}.{os.path.splitext(file)[0]}".lower()


@dataclass
class Read:
    """Where a task reads a table: for messages that point at the line."""

    table: str
    line: int
    column: int


@dataclass
class Task:
    name: str
    path: str
    kind: str  # "sql" | "seed"
    outputs: list[str]
    reads: list[Read]
    analysis: SqlAnalysis
    cache_key: str
    text: str
    tags: list[str] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)  # explicit upstream task names
    parsed: ParsedFile | None = None  # kept from discovery so translation needs no re-parse
    settings: TaskSettings | None = None  # its [tasks."..."] entry in daglake.toml
    function: Callable[..., Any] | None = None  # a Python task's function
    zone: str | None = None  # a lake zone: outputs are Parquet in lake/<zone>/<table>
    partition_by: list[str] = field(default_factory=list)
    check: CheckSpec | None = None  # a data-quality check: runs after its table is built

    @property
    def is_seed(self) -> bool:
        return self.kind == "seed"

    def default_output(self, root: Path) -> str:
        return default_output(self.path, root)

    def line_of_read(self, table: str) -> int:
        return next((r.line for r in self.reads if r.table == table), 0)


@dataclass
class Project:
    root: Path
    config: ProjectConfig
    tasks: dict[str, Task] = field(default_factory=dict)
    producers: dict[str, str] = field(default_factory=dict)  # table -> task name
    problems: list[Problem] = field(default_factory=list)
    cache: AnalysisCache | None = None
    # files that could not be read or parsed (their own problem is reported) -> tables they
    # may create: no second problem about their checks or their readers
    broken: dict[str, set[str]] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root / ".daglake"

    def inferred_upstream(self, task: Task) -> set[str]:
        return {
            self.producers[r.table]
            for r in task.reads
            if r.table in self.producers and self.producers[r.table] != task.name
        }

    def upstream(self, task: Task) -> set[str]:
        return self.inferred_upstream(task) | task.declared

    def dependencies(self) -> dict[str, set[str]]:
        """Upstream tasks of every task; a task reading a table waits for that table's
        error-severity checks (unless the check itself depends on the task)."""
        deps = {name: self.upstream(task) for name, task in self.tasks.items()}
        blocking: dict[str, list[str]] = {}
        for name, task in self.tasks.items():
            if task.check is not None and task.check.severity == "error":
                blocking.setdefault(task.check.table, []).append(name)
        if not blocking:
            return deps
        from daglake.graph.dag import DAG

        base = DAG(deps)
        for name, task in self.tasks.items():
            if task.check is not None:
                continue
            for read in task.reads:
                for check in blocking.get(read.table, ()):
                    if name not in base.ancestors(check):
                        deps[name].add(check)
        return deps

    def sources(self) -> dict[str, list[tuple[Task, Read]]]:
        """Tables read by some task and written by none, with every place that reads them."""
        found: dict[str, list[tuple[Task, Read]]] = {}
        for task in self.tasks.values():
            for read in task.reads:
                if read.table not in self.producers:
                    found.setdefault(read.table, []).append((task, read))
        return found

    def task_for(self, ref: str) -> Task | None:
        """A task by name, table, path, or unique path suffix."""
        ref = ref.strip()
        if ref in self.tasks:
            return self.tasks[ref]
        lowered = ref.lower()
        if lowered in self.producers:
            return self.tasks[self.producers[lowered]]
        normalized = ref.replace("\\", "/").lstrip("./")
        by_path = [t for t in self.tasks.values() if t.path == normalized]
        if by_path:
            return by_path[0]
        suffix = [t for t in self.tasks.values() if t.path.endswith("/" + normalized)]
        return suffix[0] if len(suffix) == 1 else None
