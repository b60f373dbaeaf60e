"""The live feed: run and task events from the runner's threads to every ``GET /events``
stream, as server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from daglake.events import Plan, RunObserver, RunSummary, TaskRun

QUEUE_LIMIT = 10_000  # a client this far behind is dropped rather than slowing the run


class EventFeed:
    """Publishers call :meth:`publish` from any thread; each subscriber is an asyncio queue
    filled on the server's event loop. ``None`` in a queue ends its stream."""

    def __init__(self, ping_seconds: float = 15.0) -> None:
        self.ping_seconds = ping_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]] | None]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]] | None]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            if self._closed:
                queue.put_nowait(None)
            else:
                self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, dict[str, Any]] | None]) -> None:
        with self._lock:
            self._queues.discard(queue)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody listens
            loop.call_soon_threadsafe(self._deliver, (kind, data))

    def _deliver(self, item: tuple[str, dict[str, Any]] | None) -> None:
        with self._lock:
            queues = list(self._queues)
        for queue in queues:
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                self.unsubscribe(queue)
                queue.get_nowait()  # make room for the end-of-stream marker
                queue.put_nowait(None)

    def close(self) -> None:
        """End every stream (server shutdown), so no open connection holds the exit."""
        with self._lock:
            self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, None)

    async def stream(self) -> AsyncIterator[str]:
        queue = self.subscribe()
        try:
            yield ": connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=self.ping_seconds)
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if item is None:
                    return
                kind, data = item
                yield f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
        finally:
            self.unsubscribe(queue)


def run_event(summary: RunSummary, state: str | None = None) -> dict[str, Any]:
    data = summary.as_dict()
    data.pop("tasks")
    data["tasks_total"] = len(summary.tasks)
    if state is not None:
        data["state"] = state
    return data


class FeedObserver(RunObserver):
    """A run's events into the feed; also keeps the live summary for ``GET /graph``."""

    def __init__(self, feed: EventFeed) -> None:
        self.feed = feed
        self.summary: RunSummary | None = None
        self.planned = threading.Event()  # the run has chosen its tasks (a selector matched)

    def run_started(self, summary: RunSummary, plan: Plan) -> None:
        self.summary = summary
        self.planned.set()
        self.feed.publish("run", run_event(summary, "running"))

    def task_started(self, task: TaskRun) -> None:
        self._task(task)

    def task_finished(self, task: TaskRun) -> None:
        self._task(task)

    def run_finished(self, summary: RunSummary) -> None:
        self.feed.publish("run", run_event(summary))

    def _task(self, task: TaskRun) -> None:
        run_id = self.summary.run_id if self.summary is not None else None
        self.feed.publish("task", {"run_id": run_id, **task.as_dict()})
