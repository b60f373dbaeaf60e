"""The GET endpoints: health, run history and logs, the graph, tasks, tables, the live feed.
Readable without a token (SPEC §9: only mutating endpoints need one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from daglake.api.app import ApiContext, context
from daglake.api.errors import ApiError
from daglake.api.runs import outcome_error
from daglake.api.tables import list_tables
from daglake.lock import holder
from daglake.orchestration.alerts import read_alerts

router = APIRouter()
Context = Annotated[ApiContext, Depends(context)]


@router.get("/health", tags=["server"])
def health(ctx: Context) -> dict[str, Any]:
    """Whether the server is up, and the run in progress (this server's or another process's)."""
    from daglake import __version__

    active = ctx.runs.current
    running = active.run_id if active is not None else None
    if running is None:
        owner = holder(ctx.root / ".daglake")
        running = str(owner["run_id"]) if owner and "run_id" in owner else None
    return {"status": "ok", "project": ctx.project, "version": __version__, "run_in_progress": running}


@router.get("/runs", tags=["runs"])
def runs(ctx: Context, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """Past and current runs, newest first."""
    with ctx.state() as store:
        return {"runs": [r.as_dict() for r in store.list_runs(ctx.project, limit)]}


@router.get("/runs/{run_id}", tags=["runs"])
def run_detail(ctx: Context, run_id: str) -> dict[str, Any]:
    """One run and its tasks: states, attempts, durations, rows, checks, metrics."""
    active = ctx.runs.get(run_id)
    live = active.summary if active is not None else None
    with ctx.state() as store:
        record = store.get_run(run_id)
        if record is not None and record.project == ctx.project:
            tasks = {t.name: t for t in store.task_runs(run_id)}
            if live is not None:  # the state store is written in batches: the live run is newer
                tasks.update(dict(live.tasks))
            alerts = read_alerts(ctx.root, run_id)
            return record.as_dict() | {"tasks": [t.as_dict() for t in tasks.values()], "alerts": alerts}
    if active is None:
        raise ApiError(404, "unknown_run", f"no run {run_id} in project {ctx.project}")
    error = outcome_error(active)  # refused before it was recorded, or not recorded yet
    return {
        "run_id": run_id,
        "project": ctx.project,
        "state": "failed" if error else "running",
        "trigger": "api",
        "error": error,
        "counts": {},
        "tasks": [],
    }


@router.get("/runs/{run_id}/tasks/{task:path}/log", tags=["runs"])
def task_log(
    ctx: Context,
    run_id: str,
    task: str,
    attempt: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    tail: Annotated[int, Query(ge=1, le=100_000)] = 200,
) -> dict[str, Any]:
    """The last ``tail`` lines of a task's log in a run (its latest attempt by default)."""
    with ctx.state() as store:
        tasks = store.task_runs(run_id)
    found = next((t for t in tasks if t.name == task or t.path == task), None)
    if found is None:
        raise ApiError(404, "unknown_task", f"run {run_id} has no task {task}")
    attempts = [a for a in found.attempts if attempt is None or a.number == attempt]
    if not attempts or attempts[-1].log_path is None:
        which = f"attempt {attempt}" if attempt else "any attempt"
        raise ApiError(404, "no_log", f"task {found.name} has no log for {which} in run {run_id} (state {found.state})")
    chosen = attempts[-1]
    assert chosen.log_path is not None
    try:
        text = (ctx.root / chosen.log_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        raise ApiError(404, "no_log", f"the log {chosen.log_path} is gone (logs of old runs are pruned)") from None
    return {"run_id": run_id, "task": found.name, "attempt": chosen.number, "lines": text.splitlines()[-tail:]}


@router.get("/graph", tags=["project"])
def graph(ctx: Context) -> dict[str, Any]:
    """The task graph, each task with its state in the current or latest run."""
    from daglake.graph.render import as_json

    project, dag = _project(ctx)
    data = as_json(project, dag)
    states = _latest_states(ctx)
    for node in data["nodes"]:  # type: ignore[attr-defined]
        node["state"] = states.get(node["name"])
    return data


@router.get("/tasks/{name:path}", tags=["project"])
def task_detail(ctx: Context, name: str) -> dict[str, Any]:
    """A task by name, table, path or unique path suffix, with its source text."""
    project, dag = _project(ctx)
    task = project.task_for(name)
    if task is None:
        raise ApiError(404, "unknown_task", f"no task {name} in project {ctx.project}")
    return {
        "name": task.name,
        "path": task.path,
        "kind": task.kind,
        "outputs": task.outputs,
        "reads": sorted({r.table for r in task.reads}),
        "upstream": sorted(dag.upstream[task.name]),
        "tags": task.tags,
        "source": task.text or _file_text(project.root, task.path),
    }


@router.get("/lineage", tags=["project"])
def lineage(ctx: Context) -> dict[str, Any]:
    """Column lineage of the whole project: each table's columns, and for each column
    (``dataset.table.column``) the columns it is computed from and its join and filter keys,
    one step up (follow ``sources`` for the rest)."""
    from daglake.lake.catalog import catalog_columns
    from daglake.project.lineage import project_lineage

    project, dag = _project(ctx)
    found = project_lineage(project, dag.topological_order(), catalog_columns(ctx.root / project.config.lake_root))
    return {
        "tables": found.columns,
        "columns": {
            name: {"sources": sorted(edges.sources), "filters": sorted(edges.filters)}
            for name, edges in sorted(found.direct.items())
        },
    }


def _file_text(root: Any, path: str) -> str:
    """A Python task's module (SQL tasks carry their text already)."""
    try:
        return str((root / path.partition(":")[0]).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""


@router.get("/tables", tags=["project"])
def tables(ctx: Context) -> dict[str, Any]:
    """The lake catalogue and the warehouse's tables, with rows and columns."""
    return list_tables(ctx.root, ctx.config)


@router.get("/events", tags=["runs"], response_class=StreamingResponse)
async def events(ctx: Context) -> StreamingResponse:
    """Server-sent events: ``run`` at a run's start and end, ``task`` at each task's start and
    end, and a ``: ping`` comment every 15 s."""
    return StreamingResponse(
        ctx.feed.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _project(ctx: ApiContext) -> tuple[Any, Any]:
    from daglake.errors import ValidationError
    from daglake.graph.dag import DAG
    from daglake.project import load_project
    from daglake.project.validate import problems

    project = load_project(ctx.root, write_cache=False)
    dag = DAG(project.dependencies())
    found = problems(project, dag, None)
    if found:
        raise ValidationError(found)
    return project, dag


def _latest_states(ctx: ApiContext) -> dict[str, str]:
    active = ctx.runs.current
    if active is not None and active.summary is not None:
        return {name: t.state for name, t in list(active.summary.tasks.items())}
    with ctx.state() as store:
        latest = store.latest_run(ctx.project)
        return {t.name: t.state for t in store.task_runs(latest.id)} if latest else {}


@router.get("/schedule", tags=["runs"])
def schedule(ctx: Context, next: Annotated[int, Query(ge=1, le=100)] = 5) -> dict[str, Any]:
    """The project's schedule, time zone and catch-up, and its next intervals: each with the
    logical date its run gets and when that run starts (the end of the interval)."""
    from daglake.orchestration.listing import schedule_listing
    from daglake.orchestration.schedule import Clock

    return schedule_listing(ctx.config, (ctx.clock or Clock()).now(), next)
