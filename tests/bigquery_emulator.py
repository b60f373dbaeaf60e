"""A BigQuery emulator on 127.0.0.1 for the tests (one per test session), and a small proxy in
front of it that answers as real BigQuery would where the emulator cannot: transient 5xx/429
errors, dry-run byte counts, error messages with BigQuery's ``[line:column]``.

The emulator is bqemulator in its own virtual environment (scripts/bqemu-venv.sh builds it);
the official client reaches it with anonymous credentials and ``api_endpoint``.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import free_port
from tests.system_deps import unavailable

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "daglake-test"
_prefixes = itertools.count(1)


def emulator_python() -> Path:
    built = subprocess.run(["bash", str(ROOT / "scripts/bqemu-venv.sh")], capture_output=True, text=True, timeout=900, check=False)
    if built.returncode != 0:
        tail = "\n".join(built.stderr.splitlines()[-5:])
        unavailable(f"scripts/bqemu-venv.sh failed: {tail}", "the bigquery engine")
    return Path(built.stdout.strip().splitlines()[-1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/bigquery/v2/projects/{PROJECT}/datasets", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]

    def prefix(self) -> str:
        """A dataset prefix no other test of the session uses: tests share one emulator."""
        return f"t{next(_prefixes)}_"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_emulator(python: Path, log: Path, timeout: float = 90) -> Emulator:
    """bqemulator on a free port of 127.0.0.1, once it answers; its output goes to ``log``.
    Raises RuntimeError with the log's end when it does not start."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(python), str(ROOT / "scripts/bqemu_launch.py"), "--port", str(port), "--project", PROJECT],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the BigQuery emulator did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)  # polling a starting server: nothing to wait on but its port
    return Emulator(url, process)


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    python = emulator_python()
    try:
        emulator = start_emulator(python, tmp_path_factory.mktemp("bqemu") / "emulator.log")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield emulator
    finally:
        emulator.stop()


def bigquery_target(root: Path, url: str, prefix: str, name: str = "emu", **extra: Any) -> None:
    """Add ``[targets.<name>]`` on the emulator to the project's daglake.toml."""
    settings = {"api_endpoint": url, "project": PROJECT, "dataset_prefix": prefix, "retry_deadline": 20, **extra}
    lines = [f"\n[targets.{name}]", 'engine = "bigquery"', f"\n[targets.{name}.bigquery]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    config = root / "daglake.toml"
    config.write_text((config.read_text() if config.exists() else "") + "\n".join(lines) + "\n")


@dataclass
class Rule:
    """What the proxy does to requests it matches: fail ``times`` with ``status``, or rewrite
    the emulator's answer with ``rewrite``."""

    method: str
    path: str  # a regular expression searched in the path
    body: str = ""  # a regular expression searched in the request body
    status: int = 0
    reason: str = "backendError"
    times: int = 1
    rewrite: Callable[[dict[str, Any], bytes], dict[str, Any]] | None = None
    seen: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return method == self.method and re.search(self.path, path) is not None and re.search(self.body, body.decode(errors="replace")) is not None


@dataclass
class Proxy:
    """An HTTP proxy on 127.0.0.1 in front of the emulator, with rules applied in order."""

    target: str
    rules: list[Rule] = field(default_factory=list)
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append((self.command, self.path, body))
                for rule in proxy.rules:
                    if rule.status and rule.seen < rule.times and rule.matches(self.command, self.path, body):
                        rule.seen += 1
                        error = {"error": {"code": rule.status, "message": f"injected {rule.status}", "errors": [{"reason": rule.reason, "message": "injected by the test proxy"}]}}
                        self._answer(rule.status, json.dumps(error).encode(), "application/json")
                        return
                status, answer, kind = proxy.forward(self.command, self.path, dict(self.headers), body)
                for rule in proxy.rules:
                    if rule.rewrite is not None and rule.seen < rule.times and rule.matches(self.command, self.path, body) and kind.startswith("application/json") and answer:
                        rule.seen += 1
                        answer = json.dumps(rule.rewrite(json.loads(answer), body)).encode()
                self._answer(status, answer, kind)

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        host = self.target.removeprefix("http://")
        connection = http.client.HTTPConnection(host, timeout=60)
        keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "accept-encoding")}
        connection.request(method, path, body=body or None, headers=keep)
        answer = connection.getresponse()
        data = answer.read()
        connection.close()
        return answer.status, data, answer.getheader("Content-Type") or ""

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def read_table(root: Path, table: str, target: str | None = None) -> list[dict[str, Any]]:
    """Every row of ``table`` as the project's engine (or ``target``'s) returns it, read through
    daglake's own engine seam: the same code for DuckDB and BigQuery."""
    from daglake.config import engine_settings
    from daglake.engines import create_engine
    from daglake.project import load_project
    from daglake.sql.translate import select_all

    project = load_project(root, write_cache=False)
    settings = engine_settings(project.config, target=target)
    with create_engine(settings, root, read_only=True) as engine:
        engine.existing_tables()  # BigQuery: learn the project's datasets
        columns, rows = engine.fetch(select_all(table, engine.dialect))
    return [dict(zip(columns, row, strict=True)) for row in rows]


def comparable(value: Any) -> Any:
    """A value as both engines should agree on it (SPEC §5): numbers to 6 decimals, arrays as
    sets, NULL and an empty array alike, struct fields by name, times in UTC."""
    import datetime as dt
    from decimal import Decimal

    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return tuple(sorted((k, comparable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        items = sorted((comparable(v) for v in value), key=repr)
        return tuple(items) if items else None
    return repr(value)


def comparable_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(sorted((k, comparable(v)) for k, v in row.items())) for row in rows), key=repr)
