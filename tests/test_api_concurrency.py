"""The API under concurrency: many runs requested at once, thousands of appends during a run, a
CLI run next to the server, and schemathesis fuzzing the OpenAPI schema."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_support import Server, copy_products, daglake_command, start_server

pytestmark = pytest.mark.slow
CLIENTS = 8
APPENDS = 2000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = start_server(copy_products(tmp_path))
    with started.client() as client:
        assert client.post("/run", params={"wait": "true"}).json()["state"] == "success"
    yield started
    (started.root / "hold").unlink(missing_ok=True)
    started.stop()


def test_twenty_concurrent_run_requests_start_exactly_one(server: Server) -> None:
    def start(_: int) -> httpx.Response:
        with server.client() as client:
            return client.post("/run")

    with server.holding(), ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(start, range(20)))
        assert Counter(a.status_code for a in answers) == {202: 1, 409: 19}
        run_id = next(a.json()["run_id"] for a in answers if a.status_code == 202)
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["error"] == answer.json()["error"] | {"code": "run_in_progress", "run_id": run_id}
    assert server.finished_run(run_id)["state"] == "success"
    with server.client() as client:
        assert len([r for r in client.get("/runs").json()["runs"] if r["run_id"] == run_id]) == 1


def test_two_thousand_appends_from_eight_clients_during_a_run_all_land_once(server: Server) -> None:
    def append(client_number: int) -> list[tuple[int, dict[str, Any]]]:
        stored = []
        with server.client() as client:
            for n in range(client_number, APPENDS, CLIENTS):
                row = {"id": str(100_000 + n), "sku": f"BULK-{n}", "name": f"bulk {n}", "brand": "Bulk",
                       "category_id": "8", "supplier_id": "3", "launched_on": "2024-01-01"}
                answer = client.post("/products", params=row)
                stored.append((answer.status_code, answer.json()))
                if n % 97 == 0:  # a bad value now and then fails alone, not its batch
                    bad = client.post("/products", params={"id": f"bad {n}"})
                    stored.append((bad.status_code, bad.json()))
        return stored

    with server.holding(), server.client() as client:
        run_id = client.post("/run").json()["run_id"]
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [a for part in pool.map(append, range(CLIENTS)) for a in part]
        assert client.get("/health").json()["run_in_progress"] == run_id  # appends overlapped the run
    good = [body for status, body in answers if status == 201]
    bad = [body for status, body in answers if status != 201]
    assert len(good) == APPENDS and sorted(b["id"] for b in good) == list(range(100_000, 100_000 + APPENDS))
    assert {b["error"]["code"] for b in bad} == {"invalid_value"} and len(bad) == len(range(0, APPENDS, 97))
    run = server.finished_run(run_id)
    assert run["state"] == "success", [(t["name"], t["error"]) for t in run["tasks"] if t["state"] == "failed"]
    rows = server.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM raw.products WHERE brand = 'Bulk'")
    assert rows == [(APPENDS, APPENDS, 100_000, 100_000 + APPENDS - 1)]
    assert server.query("SELECT count(*) FROM final.products WHERE brand = 'Bulk'") == [(APPENDS,)]


def test_a_cli_run_in_progress_makes_post_run_409_naming_it(server: Server) -> None:
    with server.holding():
        cli = subprocess.Popen([*daglake_command(), "run", str(server.root)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            with server.client() as client:
                cli_run = server.wait_gate()  # the CLI run has the warehouse open
                assert client.get("/health").json()["run_in_progress"] == cli_run
                conflict = client.post("/run")
                body = conflict.json()["error"]
                assert conflict.status_code == 409 and body["code"] == "run_in_progress"
                assert body["run_id"] == cli_run and body["pid"] == cli.pid and cli_run in body["message"]
                busy = client.post("/products", params={"name": "during the CLI run"})
                assert busy.status_code == 409 and busy.json()["error"]["code"] == "warehouse_busy"
                assert busy.json()["error"]["run_id"] == cli_run
                assert client.get("/tables").json()["warehouse"] == "busy"
        finally:
            (server.root / "hold").unlink(missing_ok=True)
            output, _ = cli.communicate(timeout=120)
        assert cli.returncode == 0, output
    with server.client() as client:
        assert client.post("/run", params={"wait": "true"}).json()["state"] == "success"
        assert client.post("/products", params={"id": "4242", "name": "after the CLI"}).status_code == 201


def test_a_cli_run_works_beside_an_idle_server(server: Server) -> None:
    with server.client() as client:
        for n in range(20):
            assert client.post("/products", params={"id": str(5000 + n), "sku": f"IDLE-{n}", "name": "idle",
                                                   "brand": "Idle", "category_id": "8", "supplier_id": "3"}).status_code == 201
    server.query("SELECT 1")  # the server has let go of the warehouse: it is idle
    done = subprocess.run([*daglake_command(), "run", str(server.root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert server.query("SELECT count(*) FROM final.products WHERE brand = 'Idle'") == [(20,)]
    with server.client() as client:
        assert client.get("/runs", params={"limit": 1}).json()["runs"][0]["trigger"] == "cli"


def test_schemathesis_finds_no_server_error(server: Server) -> None:
    """Property-based requests generated from /openapi.json (with the token): no 5xx, within a
    40 s budget. /events is left out: it streams until the client leaves."""
    st = shutil.which("schemathesis", path=str(Path(daglake_command()[0]).parent)) or "schemathesis"
    done = subprocess.run(
        [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "--exclude-path", "/events", "--max-examples", "20", "--header", f"Authorization: Bearer {server.token}",
         "--phases", "examples,coverage,fuzzing", "--workers", "1", "--no-color", "--request-timeout", "60",
         "--max-time", "40"],
        capture_output=True, text=True, timeout=300, cwd=server.root.parent,  # its cache goes there
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    server.wait_idle()
