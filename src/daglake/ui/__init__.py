"""The web UI: one HTML page, its CSS and ES modules, served from the package's data.

No CDN and no build step: the layout libraries are vendored minified under
``static/vendor/`` (see the README there), so the UI works on a machine without internet.
"""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.responses import Response

STATIC_PREFIX = "/ui/static"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8",
}
# Page and modules may be cached but revalidated, so an upgraded daglake is seen at once.
_CACHE = {"Cache-Control": "no-cache"}
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def asset(relative: str) -> bytes | None:
    """The bytes of ``static/<relative>``, or None when there is no such file (or the path
    tries to leave the folder)."""
    parts = PurePosixPath(relative).parts
    if not parts or any(part in ("..", ".", "") or part.startswith(".") for part in parts):
        return None
    node = resources.files(__name__).joinpath("static", *parts)
    if not node.is_file():
        return None
    return node.read_bytes()


def media_type(relative: str) -> str:
    return _MEDIA_TYPES.get(PurePosixPath(relative).suffix, "application/octet-stream")


def mount(app: FastAPI) -> None:
    """Register ``GET /`` (the page) and ``GET /ui/static/{path}`` (its assets) on ``app``.
    Called last by the API's app factory, after every API route."""
    from starlette.responses import JSONResponse, Response

    def not_found(path: str) -> Response:
        message = f"no UI asset {path!r}"
        return JSONResponse({"error": {"code": "not_found", "message": message}}, status_code=404)

    async def index() -> Response:
        body = asset("index.html")
        if body is None:  # an installation that lost its package data
            return not_found("index.html")
        return Response(body, media_type=_MEDIA_TYPES[".html"], headers={**_CACHE, **_SECURITY})

    async def static(path: str) -> Response:
        body = asset(path)
        if body is None:
            return not_found(path)
        return Response(body, media_type=media_type(path), headers={**_CACHE, **_SECURITY})

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route(STATIC_PREFIX + "/{path:path}", static, methods=["GET"], include_in_schema=False)
