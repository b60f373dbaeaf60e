"""The DAG as text, Mermaid, Graphviz dot, or JSON."""

from __future__ import annotations

import json

from daglake.graph.dag import DAG
from daglake.project.model import Project

FORMATS = ("text", "mermaid", "dot", "json")


def render(project: Project, dag: DAG[str], fmt: str) -> str:
    if fmt == "text":
        return _text(project, dag)
    if fmt == "mermaid":
        return _mermaid(dag)
    if fmt == "dot":
        return _dot(project, dag)
    if fmt == "json":
        return json.dumps(as_json(project, dag), indent=2)
    raise ValueError(f"unknown format {fmt!r}")


def as_json(project: Project, dag: DAG[str]) -> dict[str, object]:
    nodes = []
    for name in dag.topological_order():
        task = project.tasks[name]
        nodes.append(
            {
                "name": name,
                "path": task.path,
                "kind": task.kind,
                "outputs": task.outputs,
                "reads": sorted({r.table for r in task.reads}),
                "upstream": sorted(dag.upstream[name]),
                "tags": task.tags,
            }
        )
    edges = [{"from": u, "to": n} for n in dag.topological_order() for u in sorted(dag.upstream[n])]
    return {"project": project.config.name, "nodes": nodes, "edges": edges}


def _text(project: Project, dag: DAG[str]) -> str:
    lines = []
    for level, group in enumerate(dag.levels()):
        lines.append(f"level {level}:")
        for name in group:
            upstream = sorted(dag.upstream[name])
            suffix = f"  ← {', '.join(upstream)}" if upstream else ""
            lines.append(f"  {name} ({project.tasks[name].path}){suffix}")
    sources = sorted(project.sources())
    if sources:
        lines.append("sources: " + ", ".join(sources))
    return "\n".join(lines)


def _node_id(name: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def _mermaid(dag: DAG[str]) -> str:
    lines = ["graph LR"]
    for name in dag.topological_order():
        lines.append(f'  {_node_id(name)}["{name}"]')
    for name in dag.topological_order():
        for upstream in sorted(dag.upstream[name]):
            lines.append(f"  {_node_id(upstream)} --> {_node_id(name)}")
    return "\n".join(lines)


def _dot(project: Project, dag: DAG[str]) -> str:
    lines = ["digraph daglake {", "  rankdir=LR;", "  node [shape=box];"]
    for name in dag.topological_order():
        shape = ', style="rounded"' if project.tasks[name].is_seed else ""
        lines.append(f'  "{name}" [tooltip="{project.tasks[name].path}"{shape}];')
    for name in dag.topological_order():
        for upstream in sorted(dag.upstream[name]):
            lines.append(f'  "{upstream}" -> "{name}";')
    lines.append("}")
    return "\n".join(lines)
