"""A real ``daglake serve`` and Debian's headless Chromium driven by Playwright, for the web
UI's tests. Playwright never downloads a browser of its own: it launches /usr/bin/chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

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
TOKEN = "ui-test-token"


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine that lacks the browser; in CI (where `make test` installs
    it) the browser tests must run, so a missing browser fails them."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must exercise the web UI in a real browser")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for a test module; each test opens its own page. Not for the whole
    session: Playwright's sync API holds the thread's event loop while it runs."""
    if not CHROMIUM.is_file():
        _unavailable("Chromium not installed (`make test` installs Debian's chromium as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright not installed (it is in requirements-dev.lock)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class Server:
    url: str
    token: str
    root: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> list[str]:
    script = Path(sys.executable).with_name("daglake")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]


@contextmanager
def serve(root: Path, timeout: float = 60.0) -> Iterator[Server]:
    """``daglake serve ROOT`` on a free port of 127.0.0.1, stopped on exit."""
    port = _free_port()
    env = {**os.environ, "DAGLAKE_API_TOKEN": TOKEN}
    log = root.parent / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*_command(), "serve", str(root), "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Server(f"http://127.0.0.1:{port}", TOKEN, root)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"daglake serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                server.get("/health")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"daglake serve did not answer in {timeout:.0f} s:\n{log.read_text()}")
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def screenshot(page: Any, name: str) -> Path:
    """Save the page as test-artifacts/ui/NAME.png (gitignored) and say where."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path
