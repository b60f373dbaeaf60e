"""The HTTP API of ``daglake serve`` (issue 6): appends per second with concurrent clients and
their latency, checked for zero loss, next to the floor of bare DuckDB inserting the same rows
in one process; and how fast ``POST /run`` answers 202.

Targets: at least 1,000 appends/s with 8 clients and zero loss; ``POST /run`` under 50 ms.

The server runs as a subprocess (``daglake serve --port 0``) on a copy of examples/products;
clients are threads using keep-alive ``http.client`` connections (the lightest client in the
standard library, so the clients cost the shared machine as little as possible). Each appended
row is unique; afterwards the warehouse is read to count them. Each round starts a fresh server
on a fresh copy of the built project; the floors insert into fresh copies of its warehouse; the
rounds alternate with the floors, the order rotated each round (medians and ranges).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import duckdb
from _common import (
    WORK_DIR,
    Contender,
    alternate,
    copy_products,
    daglake_exe,
    machine,
    seconds,
    span,
    table,
    verdict,
)

TOKEN = "bench-" + secrets.token_hex(8)
WAREHOUSE = Path(".daglake") / "warehouse.duckdb"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


class Server:
    def __init__(self, root: Path) -> None:
        env = {**os.environ, "DAGLAKE_API_TOKEN": TOKEN}
        env.pop("DAGLAKE_STATE_URL", None)
        self.process = subprocess.Popen(
            [daglake_exe(), "serve", str(root), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if "daglake serving" not in first:
            raise SystemExit(f"daglake serve did not start: {first}{self.process.stdout.read()}")
        address = urlparse(first.split(" at ", 1)[1].strip())
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        threading.Thread(target=self.process.stdout.read, daemon=True).start()  # drain

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def request(self, connection: http.client.HTTPConnection, method: str, path: str) -> tuple[int, Any]:
        connection.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def cpu(self) -> float:
        """Seconds of CPU the server process has used (user + system, all threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def appends(server: Server, total: int, clients: int, brand: str) -> tuple[float, list[float], int]:
    """Wall time, per-request latencies and failures for ``total`` appends from ``clients``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    ready = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        connection = server.connection()
        server.request(connection, "GET", "/health")  # connect before the clock starts
        ready.wait()
        for n in range(number, total, clients):
            path = "/products?" + urlencode(row(n, brand))
            started = time.perf_counter()
            status, _ = server.request(connection, "POST", path)
            latencies[number].append(time.perf_counter() - started)
            failures[number] += status != 201
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, [x for part in latencies for x in part], sum(failures)


def row(n: int, brand: str) -> dict[str, str]:
    base = 3_000_000 if brand.startswith("warm") else 1_000_000  # product ids stay unique
    return {"id": str(base + n), "sku": f"{brand}-{n}", "name": f"item {n}", "brand": brand,
            "category_id": "8", "supplier_id": "3", "launched_on": "2024-01-01"}


def stored(root: Path, brand: str, timeout: float = 60) -> tuple[int, int]:
    """(rows, distinct ids) with ``brand``, read once the server has let go of the warehouse."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = duckdb.connect(str(root / WAREHOUSE), read_only=True)
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        found = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM raw.products WHERE brand = $b", {"b": brand}
        ).fetchone()
    finally:
        connection.close()
    assert found is not None
    return int(found[0]), int(found[1])


def floor_inserts(warehouse: Path, total: int, brand: str, *, batch: bool) -> float:
    """Bare DuckDB in one process, same rows, same casts, on ``warehouse`` (a fresh copy): one
    INSERT per row (each its own transaction, as each append is), or all rows in one
    ``executemany`` transaction when ``batch``."""
    columns = list(row(0, brand))
    sql = f"INSERT INTO raw.products ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    rows = [list(row(n, brand).values()) for n in range(total)]
    with duckdb.connect(str(warehouse)) as connection:
        started = time.perf_counter()
        if batch:
            connection.execute("BEGIN")
            connection.executemany(sql, rows)
            connection.execute("COMMIT")
        else:
            for values in rows:
                connection.execute(sql, values)
        return time.perf_counter() - started


def run_latency(server: Server, count: int) -> list[float]:
    """Time to the 202 of ``POST /run``, waiting for each run to end before the next."""
    latencies = []
    connection = server.connection()
    for _ in range(count):
        started = time.perf_counter()
        status, body = server.request(connection, "POST", "/run")
        latencies.append(time.perf_counter() - started)
        assert status == 202, body
        while True:
            _, health = server.request(connection, "GET", "/health")
            if health["run_in_progress"] is None:
                break
            time.sleep(0.02)
        _, run = server.request(connection, "GET", f"/runs/{body['run_id']}")
        if run["state"] != "success":
            failed = [(t["name"], t["error"]) for t in run["tasks"] if t["state"] == "failed"]
            raise SystemExit(f"run {body['run_id']} failed: {failed}")
    connection.close()
    return latencies


@dataclass
class ServeRound:
    """What one round of appends and ``POST /run`` against a fresh server measured."""

    wall: float
    latencies: list[float]
    failures: int
    cpu: float
    runs: list[float]
    stored: int
    distinct: int


def serve_round(base: Path, root: Path, args: argparse.Namespace) -> ServeRound:
    """A fresh copy of the built project, a fresh server, a warm-up, the timed appends, the
    ``POST /run`` latencies; then the server stops and the stored rows are counted."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    server = Server(root)
    try:
        appends(server, 200, args.clients, f"warm{secrets.token_hex(2)}")  # imports, opens everything
        brand = f"bench{secrets.token_hex(3)}"
        cpu = server.cpu()
        wall, latencies, failures = appends(server, args.appends, args.clients, brand)
        cpu = server.cpu() - cpu
        runs = run_latency(server, args.runs)
    finally:
        server.stop()
    count, distinct = stored(root, brand)
    shutil.rmtree(root)
    return ServeRound(wall, latencies, failures, cpu, runs, count, distinct)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20, help="POST /run per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the API and of each floor, alternating")
    args = parser.parse_args(argv)

    work = WORK_DIR / "api"
    shutil.rmtree(work, ignore_errors=True)
    base = copy_products(work / "products")
    subprocess.run([daglake_exe(), "run", str(base)], check=True, capture_output=True)
    print(machine())
    print(f"{args.appends} appends from {args.clients} clients and {args.runs} POST /run per round; "
          f"{args.repeat} rounds of the API and of each floor, alternating (order rotated each round)")

    rounds: list[ServeRound] = []

    def api() -> float:
        rounds.append(serve_round(base, work / "serving", args))
        return rounds[-1].wall

    copy = work / "floor.duckdb"

    def fresh_copy() -> None:
        shutil.copy(base / WAREHOUSE, copy)
        Path(f"{copy}.wal").unlink(missing_ok=True)

    def floor(batch: bool) -> Callable[[], float]:
        return lambda: floor_inserts(copy, args.appends, f"floor{secrets.token_hex(2)}", batch=batch)

    served = Contender(f"daglake serve, POST /{{table}}, {args.clients} clients", api)
    single = Contender("floor: DuckDB, one INSERT per row, one process", floor(False), fresh_copy)
    batch = Contender("floor: DuckDB, executemany, one transaction", floor(True), fresh_copy)
    alternate([[served, single, batch]], args.repeat, label="rounds")

    latencies = [x for r in rounds for x in r.latencies]
    runs = [x for r in rounds for x in r.runs]

    def rate(c: Contender) -> str:
        return f"{args.appends / c.median:,.0f}"

    def rates(c: Contender) -> str:
        return span([args.appends / x for x in c.samples], lambda v: f"{v:,.0f}")

    print()
    print(table(
        ["contender", "rows/s (median)", "range", "time", "p50", "p99"],
        [
            [served.name, rate(served), rates(served), seconds(served.median),
             ms(statistics.median(latencies)), ms(percentile(latencies, 0.99))],
            [single.name, rate(single), rates(single), seconds(single.median), "", ""],
            [batch.name, rate(batch), rates(batch), seconds(batch.median), "", ""],
        ],
    ))
    print("(p50 and p99 of every append of every round)")
    print()
    p99s = [percentile(r.runs, 0.99) for r in rounds]
    print(table(["POST /run (202), all rounds", "p50", "p99", "max", "runs", "p99 per round"],
                [["answer time", ms(statistics.median(runs)), ms(percentile(runs, 0.99)), ms(max(runs)),
                  len(runs), span(p99s, ms)]]))
    print()
    whole = all(r.stored == r.distinct == args.appends and not r.failures for r in rounds)
    print("stored rows per round: " + ", ".join(f"{r.stored} ({r.distinct} distinct, {r.failures} failed)"
                                                 for r in rounds)
          + f": {'zero loss' if whole else 'LOSS OR DUPLICATES'}")
    appends_per_s = args.appends / served.median
    print(f"appends/s (median of {len(rounds)}): {appends_per_s:,.0f}  "
          f"{verdict(appends_per_s, 1000, at_least=True, unit='/s')}")
    cpu = statistics.median(r.cpu / args.appends for r in rounds)
    share = statistics.median(r.cpu / r.wall for r in rounds)
    print(f"server CPU per append (median): {cpu * 1e6:.0f} µs ({share:.0%} of one core during the appends)")
    print(f"API rate / floor rate: {single.median / served.median:.2f}x one INSERT per row, "
          f"{batch.median / served.median:.2f}x executemany")
    print(f"POST /run p99: {ms(percentile(runs, 0.99))}  {verdict(percentile(runs, 0.99) * 1000, 50, unit=' ms')}")
    return 0 if whole else 1


if __name__ == "__main__":
    sys.exit(main())
