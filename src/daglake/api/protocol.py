"""uvicorn's HTTP protocol, answering requests it cannot parse with a JSON error.

uvicorn refuses a request line or headers too long to parse (a query string of ~80 kB) before
the application sees them, with a plain-text 400. SPEC §9 says every error is JSON: the
protocol classes below write ``{"error": {...}}`` instead, 413 when the request line is over
the API's limit (:data:`daglake.api.query.MAX_QUERY_BYTES`), 400 otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from daglake.api.query import MAX_QUERY_BYTES


def _response(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    reason = {400: b"Bad Request", 413: b"Content Too Large"}[status]
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, reason, len(body))
    )
    return head + body


def _refusal(url_length: int | None) -> bytes:
    if url_length is None or url_length > MAX_QUERY_BYTES:
        return _response(
            413, "request_too_large", f"the request line or headers are too long (a query string over {MAX_QUERY_BYTES} bytes?)"
        )
    return _response(400, "bad_request", "the request is not valid HTTP/1.1 (or its headers are too long)")


def protocol_class() -> type[Any]:
    """The protocol uvicorn's ``http="auto"`` would pick, with JSON refusals."""
    try:
        import httptools  # noqa: F401 - only whether it is there
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        class JsonH11Protocol(H11Protocol):
            def send_400_response(self, msg: str) -> None:
                import sys

                hint = getattr(sys.exc_info()[1], "error_status_hint", 400)  # h11: 431 when too long
                self.transport.write(_refusal(None if hint != 400 else 0))
                self.transport.close()

        return JsonH11Protocol

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class JsonHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            url = getattr(self, "url", b"") or b""
            self.transport.write(_refusal(len(url) if len(url) <= MAX_QUERY_BYTES else None))
            self.transport.close()

    return JsonHttpToolsProtocol
