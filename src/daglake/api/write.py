"""The mutating endpoints, behind the token: start a run, append a row to a raw table."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from daglake.api.app import ApiContext, context
from daglake.api.auth import require_token
from daglake.api.errors import ApiError, from_daglake
from daglake.errors import DaglakeError, UsageError

log = logging.getLogger("daglake.api")
router = APIRouter(dependencies=[Depends(require_token)])
Context = Annotated[ApiContext, Depends(context)]

RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Started: `{\"run_id\", \"state\": \"running\", \"url\"}`"},
    401: {"description": "Missing or wrong token"},
    409: {"description": "A run is in progress: `error.run_id` names it"},
    422: {"description": "An option `daglake run` does not take here, or a value it refuses"},
}
RUN_OPTIONS = ("wait", "date", "select", "exclude", "full_refresh")
PLAN_TIMEOUT_S = 60.0  # a run given selectors answers once it has chosen its tasks


@router.post("/run", tags=["runs"], status_code=202, responses=RUN_RESPONSES)
async def start_run(
    ctx: Context,
    request: Request,
    wait: Annotated[bool, Query(description="Answer when the run ends, with its summary.")] = False,
    date: Annotated[str | None, Query(description="Logical date, YYYY-MM-DD (`--date`).")] = None,
    select: Annotated[list[str] | None, Query(description="Tasks to run, repeatable (`--select`).")] = None,
    exclude: Annotated[list[str] | None, Query(description="Tasks to leave out, repeatable (`--exclude`).")] = None,
    full_refresh: Annotated[bool, Query(description="Rebuild seeds too (`--full-refresh`).")] = False,
) -> JSONResponse:
    """Start a run of the project as ``daglake run`` does, with its options ``date``, ``select``,
    ``exclude`` and ``full_refresh`` (seeds run only when their tables are missing unless
    ``full_refresh``, so appended rows survive). Any other parameter is refused (422)."""
    unknown = sorted({name for name, _ in request.query_params.multi_items()} - set(RUN_OPTIONS))
    if unknown:
        raise ApiError(
            422, "unknown_option", f"POST /run takes no option {unknown[0]!r} (it takes: {', '.join(RUN_OPTIONS)})",
            options=list(RUN_OPTIONS),
        )
    if date is not None:
        import datetime as dt

        try:
            date = dt.date.fromisoformat(date).isoformat() if len(date) == 10 else None
        except ValueError:
            date = None
        if date is None:
            raise ApiError(422, "invalid_option", "date: not a date in the form YYYY-MM-DD", option="date")
    active = ctx.runs.start(logical_date=date, select=select or [], exclude=exclude or [], full_refresh=full_refresh)
    body = {"run_id": active.run_id, "state": "running", "url": f"/runs/{active.run_id}"}
    if not wait and not (select or exclude):
        return JSONResponse(body, status_code=202, background=BackgroundTask(active.go))
    active.go()
    try:
        if not wait:  # a selector that matches nothing is refused now, not in the run's history
            await asyncio.to_thread(active.wait_planned, PLAN_TIMEOUT_S)
            if not active.outcome.done() or active.outcome.exception() is None:
                return JSONResponse(body, status_code=202)
        summary = await asyncio.wrap_future(active.outcome)
    except DaglakeError as exc:
        if type(exc) is UsageError:  # an option the run refused: a selector matching no task
            raise ApiError(422, "invalid_option", str(exc)) from None
        raise from_daglake(exc) from None
    return JSONResponse(summary.as_dict(), status_code=200)


BACKFILL_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Started: `{\"state\": \"running\", \"intervals\": [...]}`; each interval's run appears in `/runs`"},
    400: {"description": "A start or end that is not a date, or an end not after the start"},
    401: {"description": "Missing or wrong token"},
    409: {"description": "A backfill is already in progress"},
}


@router.post("/backfill", tags=["runs"], status_code=202, responses=BACKFILL_RESPONSES)
async def start_backfill(
    ctx: Context,
    start: Annotated[str, Query(description="First logical date, YYYY-MM-DD (included).")],
    end: Annotated[str, Query(description="Last logical date, YYYY-MM-DD (excluded).")],
) -> JSONResponse:
    """Run every scheduled interval in ``[start, end)`` in order, in the background, as
    ``daglake backfill`` does: intervals already successful are skipped."""
    import threading

    from daglake.orchestration.backfill import backfill, backfill_schedule, parse_day

    try:
        first, last = parse_day(start, "start"), parse_day(end, "end")
        intervals = backfill_schedule(ctx.config).between(first, last)
    except DaglakeError as exc:
        raise from_daglake(exc) from None
    if ctx.backfill is not None and ctx.backfill.is_alive():
        raise ApiError(409, "backfill_in_progress", "a backfill is in progress; wait for it to finish")

    def work() -> None:
        try:
            backfill(ctx.root, first, last, patient=True)  # a scheduled run may be going
        except Exception:  # a run refused midway ends the backfill; the server log says why
            log.exception("backfill %s..%s stopped", first, last)

    ctx.backfill = threading.Thread(target=work, name=f"daglake-backfill-{first}", daemon=False)
    ctx.backfill.start()
    body = {"state": "running", "start": first.isoformat(), "end": last.isoformat(), "intervals": [i.as_dict() for i in intervals]}
    return JSONResponse(body, status_code=202)


APPEND_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "The stored row, read back from the table"},
    401: {"description": "Missing or wrong token"},
    404: {"description": "No table `raw.<table_name>`"},
    409: {"description": "Another process holds the warehouse"},
    422: {"description": "An unknown column (the body lists the valid ones) or a value the column's type refuses"},
}


@router.post("/{table_name}", tags=["tables"], status_code=201, responses=APPEND_RESPONSES)
async def append_row(
    ctx: Context,
    request: Request,
    table_name: Annotated[str, Path(description="A table of the `raw` schema.")],
) -> JSONResponse:
    """Append one row to ``raw.<table_name>``: every query parameter is a column and its value
    (``?id=7&name=Tent``); columns not given are NULL. (Served by
    :class:`daglake.api.fast_append.FastAppend`; this route documents it and is its fallback.)"""
    from daglake.api.query import parse_query

    values = parse_query(request.scope.get("query_string", b""))
    future = ctx.appender.submit(table_name, values)
    try:
        row = await asyncio.wrap_future(future)
    except ApiError:
        raise
    return JSONResponse(row, status_code=201)
