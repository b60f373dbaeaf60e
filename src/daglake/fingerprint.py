"""Each task's fingerprint, and whether it must run: only what changed runs (SPEC §4).

A fingerprint hashes what decides a task's result: its normalised SQL (or its Python file and
declared tables), its settings, the engine and target, the logical date when it reads ``@ds``,
and the versions of the tables it reads. A table built by a task has that task's fingerprint
as version (so a change flows down the graph, Merkle style), plus the count of API appends to
it; a lake table the version folder it points at; any other table what the engine knows of it
(:meth:`Engine.source_versions`). Engine-neutral: the engine is reached through a callable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daglake.project import Project, Task
    from daglake.state.builds import Build

RUN, SKIP = "run", "skip"
SEED_EXISTS = "seed tables exist (use --full-refresh to reload)"
_CHECK_VOLATILE = re.compile(r"\b(current_(date|time|timestamp|datetime)|now|rand|random|uuid|generate_uuid)\b", re.IGNORECASE)

SourceVersions = Callable[[list[str]], Mapping[str, str | None]]


@dataclass
class Decision:
    """``run`` or ``skip`` for one task, why, and the fingerprint a successful build records."""

    task: str
    action: str
    reason: str
    fingerprint: str
    parts: dict[str, Any] = field(default_factory=dict)
    since: str | None = None  # the run that built what a skipped task keeps

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "action": self.action, "reason": self.reason, "fingerprint": self.fingerprint}


@dataclass
class Inputs:
    """What the decisions read besides the project: the state's builds and append counters,
    the tables that exist, and the engine's view of tables daglake did not build."""

    builds: Mapping[str, Build]
    appends: Mapping[str, int]
    existing: Collection[str]
    source_versions: SourceVersions
    engine: str  # the engine and target: "duckdb:3f2a…"
    logical_date: str
    run_id: str
    full_refresh: bool = False
    forced: Collection[str] = ()


def decide(project: Project, order: list[str], inputs: Inputs) -> dict[str, Decision]:
    """A decision per task of ``order`` (dependencies first), all at once: ``--explain``."""
    decider = Decider(project, set(order), inputs)
    return {name: decider(name) for name in order}


class Decider:
    """Decides a task when it is about to start, its upstream tasks done: a seed table (which
    rows may reach other than by daglake's run) is then read as it now is. Called from the
    workers; a task's upstream decisions are always made before its own."""

    def __init__(self, project: Project, chosen: set[str], inputs: Inputs) -> None:
        import threading

        self.project, self.chosen, self.inputs = project, chosen, inputs
        self.decisions: dict[str, Decision] = {}
        self._versions: dict[str, str] = {}  # task -> the version of what its tables hold after this run
        self._lock = threading.Lock()
        wanted = _sources_needed(project, sorted(chosen), chosen, inputs)
        self._sources: dict[str, str | None] = dict(inputs.source_versions(sorted(wanted))) if wanted else {}

    def __call__(self, name: str) -> Decision:
        """Decided once: the run asks when the task is ready, its executor again when it runs."""
        with self._lock:
            made = self.decisions.get(name)
        if made is not None:
            return made
        task = self.project.tasks[name]
        seeds = sorted({r.table for r in task.reads if self._is_seed_table(r.table)} - set(self._sources))
        if seeds:  # read now: a seed of this run has just been built
            found = self.inputs.source_versions(seeds)
            with self._lock:
                self._sources.update(found)
        parts = _parts(self.project, task, self.inputs, self._versions, self._sources, self.chosen)
        volatile = parts.pop("volatile", None)
        if volatile:
            parts["run"] = self.inputs.run_id  # its readers change with it
        fingerprint = _hash(parts)
        decision = _decision(task, fingerprint, parts, volatile, self.inputs)
        build = self.inputs.builds.get(name)
        kept = decision.action == SKIP and task.is_seed and build is not None
        with self._lock:
            self.decisions[name] = decision
            self._versions[name] = build.fingerprint if kept and build is not None else fingerprint
        return decision

    def _is_seed_table(self, table: str) -> bool:
        producer = self.project.producers.get(table)
        return producer is not None and self.project.tasks[producer].is_seed


def _decision(task: Task, fingerprint: str, parts: dict[str, Any], volatile: str | None, inputs: Inputs) -> Decision:
    build = inputs.builds.get(task.name)
    missing = sorted(o for o in task.outputs if o not in inputs.existing)

    def run(reason: str) -> Decision:
        return Decision(task.name, RUN, reason, fingerprint, parts)

    if task.name in inputs.forced:
        return run("forced (--force)")
    if inputs.full_refresh:
        return run("--full-refresh")
    if task.is_seed:
        return run(f"table {missing[0]} does not exist") if missing else Decision(task.name, SKIP, SEED_EXISTS, fingerprint, parts)
    if volatile:
        return run(f"volatile: {volatile}")
    if missing:
        return run(f"table {missing[0]} does not exist")
    if build is None:
        return run("new task")
    if build.fingerprint != fingerprint:
        return run(changed(task, build.parts, parts))
    return Decision(task.name, SKIP, f"unchanged since run {build.run_id}", fingerprint, parts, build.run_id)


def changed(task: Task, before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """What differs between two fingerprints' parts, in words."""
    if before.get("code") != now.get("code"):
        return f"{task.path} changed"
    old, new = before.get("inputs", {}), now.get("inputs", {})
    tables = sorted(t for t in {*old, *new} if old.get(t) != new.get(t))
    if tables:
        shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
        return f"input{'s' if len(tables) > 1 else ''} {shown} changed"
    if before.get("date") != now.get("date"):
        return f"logical date changed ({before.get('date')} → {now.get('date')}; it reads @ds)"
    if before.get("settings") != now.get("settings"):
        return "its settings changed"
    if before.get("engine") != now.get("engine"):
        return "the engine or target changed"
    return "its fingerprint changed"


def _parts(
    project: Project,
    task: Task,
    inputs: Inputs,
    versions: Mapping[str, str],
    sources: Mapping[str, str | None],
    chosen: set[str],
) -> dict[str, Any]:
    code, volatile, dated = _code(project, task)
    tables: dict[str, str] = {}
    for read in task.reads:
        tables[read.table] = _table_version(project, read.table, inputs, versions, sources, chosen)
    for upstream in sorted(task.declared):
        tables[f"task:{upstream}"] = versions.get(upstream) or _built(inputs, upstream) or "unbuilt"
    unknown = sorted(t for t, v in tables.items() if v == "unknown")
    if unknown and not volatile:
        volatile = f"cannot tell whether {unknown[0]} changed"
    settings = {
        "kind": task.kind,
        "outputs": task.outputs,
        "zone": task.zone,
        "partition_by": task.partition_by,
        "views": task.analysis.views,
    }
    return {
        "code": code,
        "settings": _hash(settings),
        "engine": inputs.engine,
        "date": inputs.logical_date if dated else None,
        "inputs": tables,
        "volatile": volatile,
    }


def _code(project: Project, task: Task) -> tuple[str, str | None, bool]:
    """The hash of what the task runs, why it is not deterministic, and whether it reads @ds."""
    if task.check is not None:
        spec = task.check
        described = json.dumps(
            [spec.name, spec.table, spec.kind, spec.severity, dict(spec.params), list(spec.reads), spec.source_dialect],
            sort_keys=True,
            default=str,
        )
        volatile = None
        if spec.kind == "freshness":
            volatile = "a freshness check depends on the time"
        elif _CHECK_VOLATILE.search(described):
            volatile = "its SQL reads the time or random values"
        return _hash(described), volatile, False
    if task.kind == "python":
        try:
            source = (project.root / task.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            source = ""
        # one reading no table makes its data from what daglake cannot see (files, the
        # network, the environment): it always runs
        volatile = None if task.reads else "a Python task reading no table (what it fetches is not tracked)"
        return _hash([source, task.outputs, sorted(r.table for r in task.reads)]), volatile, False
    analysis = task.analysis
    normal = analysis.normal or _hash(task.text)  # an analysis cached before normal forms
    return normal, analysis.volatile, "ds" in analysis.parameters


def _table_version(
    project: Project,
    table: str,
    inputs: Inputs,
    versions: Mapping[str, str],
    sources: Mapping[str, str | None],
    chosen: set[str],
) -> str:
    producer = project.producers.get(table)
    base: str | None
    if producer is not None and project.tasks[producer].is_seed and sources.get(table):
        base = f"{sources[table]}/{versions.get(producer) or _built(inputs, producer)}"  # rows added by anyone
    elif producer is not None and producer in versions:
        base = versions[producer]
    elif producer is not None and producer not in chosen and _built(inputs, producer):
        base = _built(inputs, producer)
    else:
        base = _lake_version(project, table) or sources.get(table)
    if base is None:
        return "unknown"
    appended = inputs.appends.get(table)
    return f"{base}+{appended}" if appended else base


def _sources_needed(project: Project, order: list[str], chosen: set[str], inputs: Inputs) -> set[str]:
    """Tables read whose version only the engine knows: no task of this run or earlier build
    made them, and they are not lake tables."""
    wanted: set[str] = set()
    for name in order:
        for read in project.tasks[name].reads:
            producer = project.producers.get(read.table)
            if producer is not None and (producer in chosen or _built(inputs, producer)):
                continue
            if read.table in inputs.existing and _lake_version(project, read.table) is None:
                wanted.add(read.table)
    return wanted


def _built(inputs: Inputs, task: str) -> str | None:
    build = inputs.builds.get(task)
    return build.fingerprint if build is not None else None


def _lake_version(project: Project, table: str) -> str | None:
    """The version folder a lake table's link points at: a new one at every publish."""
    if "." not in table:
        return None
    from daglake.lake.tables import ZONES, lake_table

    if table.split(".")[0] not in ZONES:
        return None
    current = lake_table(project.root / project.config.lake_root, table).current_version()
    return f"lake:{current.name}" if current is not None else None


def _hash(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
