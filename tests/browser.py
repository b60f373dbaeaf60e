"""Debian's headless Chromium driven by Playwright, and the real ``daglake serve`` of
tests/api_support.py, for the web UI's tests. Playwright never downloads a browser of its own:
it launches /usr/bin/chromium."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import Server, start_server
from tests.system_deps import unavailable

PURPOSE = "the web UI in a real browser"

CHROMIUM = Path("/usr/bin/chromium")
# What this machine's closed network needs: no GPU, no QUIC, no calls home at start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "ui"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for a test module; each test opens its own page. Not for the whole
    session: Playwright's sync API holds the thread's event loop while it runs."""
    if not CHROMIUM.is_file():
        unavailable("Chromium not installed (`make test` installs Debian's chromium as root)", PURPOSE)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright not installed (it is in requirements-dev.lock)", PURPOSE)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@contextmanager
def serve(root: Path) -> Iterator[Server]:
    """``daglake serve ROOT`` (tests/api_support.py starts it and checks it exits cleanly)."""
    server = start_server(root)
    try:
        yield server
    finally:
        server.stop()


def get(server: Server, path: str) -> Any:
    with server.client(token=None) as client:
        response = client.get(path)
        response.raise_for_status()
        return response.json()


def screenshot(page: Any, name: str) -> Path:
    """Save the page as test-artifacts/ui/NAME.png (gitignored) and say where."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path
