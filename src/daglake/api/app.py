"""The FastAPI application of ``daglake serve``: one project, its runs, appends and live feed."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from daglake.api import errors
from daglake.api.appender import Appender
from daglake.api.auth import TokenLink
from daglake.api.events import EventFeed
from daglake.api.fast_append import FastAppend
from daglake.api.runs import RunManager
from daglake.config import engine_settings, warehouse_location

if TYPE_CHECKING:
    from daglake.config import ProjectConfig
    from daglake.orchestration.schedule import Clock
    from daglake.orchestration.scheduled_runs import ScheduledRuns
    from daglake.state import StateStore


@dataclass
class ApiContext:
    """What every endpoint shares; ``request.app.state.daglake``."""

    root: Path
    config: ProjectConfig
    token: str
    feed: EventFeed
    runs: RunManager
    appender: Appender
    clock: Clock | None = None
    scheduled: ScheduledRuns | None = None
    backfill: threading.Thread | None = None
    _store: StateStore | None = None
    _store_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def project(self) -> str:
        return self.config.name

    @property
    def warehouse(self) -> Path:
        return self.root / warehouse_location(self.config)

    @contextlib.contextmanager
    def state(self) -> Iterator[StateStore]:
        """The run history; one connection, one request at a time (SQLite or PostgreSQL)."""
        from daglake.state import StateStore, state_url

        with self._store_lock:
            if self._store is None:
                self._store = StateStore(state_url(self.root, self.config.state_url))
            self.runs.reap(self._store, self.project)  # a killed run is not shown running
            yield self._store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None


async def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.daglake
    return found


def create_app(
    root: Path, *, token: str, ping_seconds: float = 15.0, clock: Clock | None = None
) -> FastAPI:
    """The API for the project at ``root``; mutating endpoints need ``token``. With a
    ``schedule`` in the config it starts due runs, reading the time from ``clock``."""
    from daglake import __version__
    from daglake.api import read, write
    from daglake.config import load_config
    from daglake.errors import Problem, ValidationError

    problems: list[Problem] = []
    config = load_config(root, problems)
    if problems:
        raise ValidationError(problems)
    feed = EventFeed(ping_seconds)
    ctx = ApiContext(
        root=root,
        config=config,
        token=token,
        feed=feed,
        runs=RunManager(root, feed),
        appender=Appender(engine_settings(config), root, root / ".daglake"),
        clock=clock,
    )
    if config.schedule is not None:
        from daglake.orchestration.schedule import project_schedule
        from daglake.orchestration.scheduled_runs import ScheduledRuns

        schedule = project_schedule(config)
        assert schedule is not None
        ctx.scheduled = ScheduledRuns(root, schedule, ctx.runs, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        feed.bind(asyncio.get_running_loop())
        ctx.appender.start()
        if ctx.scheduled is not None:
            ctx.scheduled.start()
        try:
            yield
        finally:
            if ctx.scheduled is not None:
                await asyncio.to_thread(ctx.scheduled.stop)
            feed.close()
            await asyncio.to_thread(ctx.appender.stop)
            ctx.close()

    app = FastAPI(
        title=f"daglake: {config.name}",
        version=__version__,
        description="Run the project, append rows to its raw tables, read its runs and catalogue.",
        lifespan=lifespan,
    )
    app.state.daglake = ctx
    errors.install(app)
    app.add_middleware(TokenLink, token=token)
    app.add_middleware(FastAppend, appender=ctx.appender, token=token)  # outermost: added last
    app.include_router(read.router)
    app.include_router(write.router)

    from daglake import ui

    ui.mount(app)  # last: the UI's own routes come after every API route
    return app
