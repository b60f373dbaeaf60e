"""Serving the API with uvicorn on a socket bound before start, so ``--port 0`` works and the
printed URL names the real port."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from daglake.api.app import create_app
from daglake.api.auth import load_token
from daglake.api.events import EventFeed


class _Server(uvicorn.Server):
    """Ends the live streams first on shutdown: an open ``/events`` would hold it otherwise."""

    feed: EventFeed | None = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.feed is not None:
            self.feed.close()
        await super().shutdown(sockets)


def serve(
    path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8181,
    *,
    announce: Callable[[str], Any] = lambda line: None,
    log_level: str = "warning",
) -> None:
    """Serve the project at ``path`` until interrupted; ``announce`` gets the URL with the token."""
    from daglake.errors import UsageError

    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{path}: not a folder")
    token = load_token(root / ".daglake")
    app = create_app(root, token=token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so; without it
    # every response waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    from daglake.api.protocol import protocol_class

    config = uvicorn.Config(
        app,
        http=protocol_class(),  # requests it cannot parse answered as JSON
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # served to this machine or a trusted network, not behind a proxy
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = _Server(config)
    server.feed = app.state.daglake.feed
    shown = f"[{host}]" if ":" in host else host
    _settle()
    announce(f"daglake serving {app.state.daglake.project} at http://{shown}:{bound}/?token={token}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        gc.unfreeze()  # let the interpreter free them at exit


def _settle() -> None:
    """Import what runs need, then exempt everything loaded so far from the garbage collector:
    a full collection over FastAPI's and sqlglot's objects paused answers by up to ~0.1 s."""
    import daglake.graph.render
    import daglake.runner
    import daglake.state.recorder  # noqa: F401 - imported for its objects, frozen below

    gc.collect()
    gc.freeze()
