"""``POST /{table}`` served as plain ASGI, ahead of FastAPI's routing and dependencies.

An append is the one request that arrives by the thousand; FastAPI's middleware, routing and
dependency resolution cost about half the server's CPU per append. The FastAPI route in
:mod:`daglake.api.write` documents the endpoint in the OpenAPI schema; requests are answered
here, with the same token check, the same appender and the same JSON errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from daglake.api.appender import Appender
from daglake.api.auth import check_token
from daglake.api.errors import ApiError
from daglake.api.query import parse_query

log = logging.getLogger("daglake.api")
NOT_TABLES = frozenset({"/run", "/backfill"})  # POST routes of their own


class FastAppend:
    def __init__(self, app: ASGIApp, appender: Appender, token: str) -> None:
        self.app = app
        self.appender = appender
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or path.count("/") != 1
            or len(path) < 2
            or path in NOT_TABLES
        ):
            await self.app(scope, receive, send)
            return
        try:
            check_token(Headers(scope=scope), self.token)
            values = parse_query(scope.get("query_string", b""))
            row = await asyncio.wrap_future(self.appender.submit(path[1:], values))
            await _answer(send, 201, row)
        except ApiError as exc:
            headers = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            await _answer(send, exc.status, exc.as_dict(), headers)
        except Exception as exc:
            log.error("POST %s failed", path, exc_info=exc)
            error = ApiError(500, "internal_error", "internal error (details in the server log)")
            await _answer(send, 500, error.as_dict())


async def _answer(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
