"""The real ``daglake serve`` in a subprocess on a copy of ``examples/products``, and helpers
to talk to it over HTTP. Every wait is on a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import httpx

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "products"
WAREHOUSE = Path(".daglake") / "warehouse.duckdb"
TOKEN = "test-token-" + "x" * 20
T = TypeVar("T")

# A Python task that keeps the run going while the file ``hold`` exists in the project, so a
# test can act "while a run is in progress" for as long as it needs.
GATE_TASK = '''
"""Test hook: holds the run while the file ``hold`` exists (tests/api_support.py)."""
import time

import daglake


@daglake.task("tmp.gate")  # reads no table: it runs every time (only what changed runs)
def gate(ctx):
    hold = ctx.project_root / "hold"
    (ctx.project_root / "gate-reached").write_text(ctx.run_id)
    deadline = time.monotonic() + 120
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return ctx.sql("SELECT 1 AS products")
'''


def daglake_command() -> list[str]:
    script = Path(sys.executable).with_name("daglake")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]


def copy_products(destination: Path, *, checks: bool = True) -> Path:
    """The products example plus the gate task; without its data-quality checks if asked (tests
    that append half-empty rows would fail them, and a failed run is not what they test)."""
    root = destination / "products"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".daglake", "lake", "__pycache__"))
    (root / "res" / "tmp" / "gate.py").write_text(GATE_TASK, encoding="utf-8")
    config = root / "daglake.toml"
    text = config.read_text(encoding="utf-8")
    mart = '[tasks."res/final/products.sql"]\n'
    assert mart in text
    # final.products (and its checks, which reconcile it with raw.products) waits for the gate,
    # so rows appended while a run is held all reach it in that run
    config.write_text(text.replace(mart, mart + 'depends_on = ["tmp.gate"]\n'), encoding="utf-8")
    if not checks:
        shutil.rmtree(root / "checks")
        config = root / "daglake.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text[: text.index("# Data-quality checks")], encoding="utf-8")
    return root


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Server:
    root: Path
    url: str
    token: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def client(self, *, token: str | None = "default", **kwargs: Any) -> httpx.Client:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.pump is not None:
            self.pump.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        assert "Traceback" not in "".join(self.output), "".join(self.output)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Runs started inside stay in progress (at task tmp.gate) until the block ends."""
        hold = self.root / "hold"
        (self.root / "gate-reached").unlink(missing_ok=True)
        hold.touch()
        try:
            yield
        finally:
            hold.unlink(missing_ok=True)

    def wait_gate(self, timeout: float = 60) -> str:
        """Until a run held by :meth:`holding` is at its gate task (the warehouse is open);
        returns that run's id."""
        reached = self.root / "gate-reached"
        return wait_for(lambda: reached.exists() and reached.read_text(), "a run to reach tmp.gate", timeout)

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no run is in progress (this server's or another process's)."""
        with self.client() as client:
            wait_for(lambda: client.get("/health").json()["run_in_progress"] is None, "the run to end", timeout)

    def finished_run(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """``GET /runs/{run_id}`` once the run has ended and let go of the run lock (its
        record says how it ended a moment before)."""
        self.wait_idle(timeout)
        with self.client() as client:
            return wait_for(
                lambda: (r := client.get(f"/runs/{run_id}").json())["state"] != "running" and r,
                f"run {run_id} to end",
                timeout,
            )

    def query(self, sql: str, timeout: float = 30) -> list[tuple[Any, ...]]:
        """Read the warehouse from this process, once the server has let go of the file."""

        def attempt() -> list[tuple[Any, ...]] | None:
            try:
                connection = duckdb.connect(str(self.root / WAREHOUSE), read_only=True)
            except duckdb.IOException:
                return None
            try:
                return connection.execute(sql).fetchall() or [()]
            finally:
                connection.close()

        return wait_for(attempt, "the server to release the warehouse", timeout)


def start_server(root: Path, *args: str, token: str | None = TOKEN, timeout: float = 60) -> Server:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGLAKE_API_TOKEN", "DAGLAKE_STATE_URL")}
    if token is not None:
        env["DAGLAKE_API_TOKEN"] = token
    process = subprocess.Popen(
        [*daglake_command(), "serve", str(root), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=timeout)
    except queue.Empty:
        Server(root, "", "", process, output, reader).stop()
        raise AssertionError("daglake serve printed nothing") from None
    if first is None or "daglake serving" not in first:
        Server(root, "", "", process, output, reader).stop()
        raise AssertionError(f"daglake serve did not start: {''.join(output)}")
    address = first.split(" at ", 1)[1].strip()
    base, _, printed_token = address.partition("/?token=")
    server = Server(root, base, printed_token, process, output, reader)
    with httpx.Client(base_url=base, timeout=5) as client:

        def healthy() -> bool:
            try:
                return client.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "GET /health", timeout)
    return server


class EventReader:
    """``GET /events`` read on a thread: each event as ``(kind, data)`` in :attr:`events`."""

    def __init__(self, server: Server) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._client = server.client(token=None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.connected.wait(30), "GET /events did not connect"

    def _read(self) -> None:
        try:
            self._stream()
        except (httpx.HTTPError, RuntimeError):
            if not self._stop.is_set():
                raise

    def _stream(self) -> None:
        with self._client.stream("GET", "/events", timeout=httpx.Timeout(30, read=60)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = ""
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    kind = line[len("event: "):]
                elif line.startswith("data: "):
                    self.events.put((kind, json.loads(line[len("data: "):])))
                if self._stop.is_set():
                    return

    def until(self, match: Callable[[str, dict[str, Any]], bool], timeout: float = 60) -> list[tuple[str, dict[str, Any]]]:
        """Every event up to and including the first that ``match`` accepts."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout} s; saw {seen}")
            kind, data = self.events.get(timeout=left)
            seen.append((kind, data))
            if match(kind, data):
                return seen

    def close(self) -> None:
        self._stop.set()
        self._client.close()
