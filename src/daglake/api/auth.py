"""The API token: who may start runs and append rows.

A bearer token from ``DAGLAKE_API_TOKEN``, else one generated at first start and kept in
``.daglake/api_token`` (mode 0600). Browsers get it the way Jupyter does: the printed URL
carries ``?token=``, which becomes an HttpOnly cookie; a cookie alone never authorizes a POST
without the ``X-Daglake-UI: 1`` header, which another site's form cannot send.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from daglake.api.errors import ApiError, error_response

TOKEN_ENV = "DAGLAKE_API_TOKEN"
TOKEN_FILE = "api_token"
COOKIE = "daglake_token"
UI_HEADER = "x-daglake-ui"

bearer = HTTPBearer(auto_error=False, description="The token printed by `daglake serve`.")


def load_token(state_dir: Path) -> str:
    """``DAGLAKE_API_TOKEN``, else the stored token, else a new one stored atomically."""
    configured = os.environ.get(TOKEN_ENV, "").strip()
    if configured:
        return configured
    path = state_dir / TOKEN_FILE
    stored = _read(path)
    if stored:
        return stored
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    temporary = state_dir / f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never replaces a token another server stored meanwhile
        except FileExistsError:
            return _read(path) or token
    finally:
        temporary.unlink(missing_ok=True)
    return token


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def same_token(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


async def require_token(
    request: Request, _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Dependency of every mutating endpoint (``bearer`` puts the scheme in the OpenAPI)."""
    check_token(request.headers, request.app.state.daglake.token)


def check_token(headers: Headers, token: str) -> None:
    """Raise a 401 :class:`ApiError` unless the request carries ``token``: as a bearer token,
    or as the cookie together with the UI's header."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        if same_token(given.strip(), token):
            return
        raise ApiError(401, "unauthorized", "wrong API token")
    cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
    if cookie is not None and same_token(cookie, token):
        if headers.get(UI_HEADER) == "1":
            return
        raise ApiError(401, "unauthorized", f"a cookie needs the header {UI_HEADER}: 1 too")
    raise ApiError(
        401, "unauthorized", "missing API token: send Authorization: Bearer <token> (printed by daglake serve)"
    )


class TokenLink:
    """ASGI middleware: ``GET /?token=T`` with the right token sets the cookie and redirects
    to ``/`` (so the token leaves the address bar); a wrong one is a 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if not given:
            await self.app(scope, receive, send)
            return
        from starlette.responses import RedirectResponse

        if not same_token(given[-1], self.token):
            response = error_response(ApiError(401, "unauthorized", "wrong API token in the link"))
            await response(scope, receive, send)
            return
        redirect = RedirectResponse("/", status_code=303)
        redirect.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
        await redirect(scope, receive, send)
