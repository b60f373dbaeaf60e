"""Placeholder for the web UI (the UI branch replaces this module): ``GET /`` says so."""

from __future__ import annotations

from typing import Any

PAGE = "<!doctype html><title>daglake</title><h1>daglake UI</h1><p>The API is at <a href=/docs>/docs</a>.</p>"


def mount(app: Any) -> None:
    """Register ``GET /`` on the FastAPI ``app``; called last by the API's app factory."""
    from fastapi.responses import HTMLResponse

    app.add_api_route("/", lambda: HTMLResponse(PAGE), methods=["GET"], include_in_schema=False)
