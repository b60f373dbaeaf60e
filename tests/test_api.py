"""The HTTP API (SPEC §9) through real HTTP: ``daglake serve`` in a subprocess on a copy of
``examples/products``, with its real runner, state database and DuckDB warehouse."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_support import TOKEN, EventReader, Server, copy_products, start_server, wait_for

PRODUCT = {"sku": "NEW-1", "name": "Trail Mug", "brand": "Sierra", "category_id": "8", "supplier_id": "3"}
SEEDS = {"raw.categories", "raw.suppliers", "raw.products", "raw.product_variants",
         "raw.purchase_prices", "raw.order_lines", "raw.stock_movements"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the read and error-path tests; its project has been run once."""
    started = start_server(copy_products(tmp_path_factory.mktemp("api"), checks=False))
    with started.client() as client:
        assert client.post("/run", params={"wait": "true"}).json()["state"] == "success"
    yield started
    started.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error ``code`` with ``status``; returns its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()["error"]
    assert body["code"] == code, body
    assert body["message"]
    assert "Traceback" not in response.text
    return dict(body)


# --- reading -----------------------------------------------------------------------------------


def test_health_names_the_project_and_no_run(client: httpx.Client) -> None:
    assert client.get("/health").json() == {
        "status": "ok", "project": "products", "version": "0.1.0", "run_in_progress": None
    }


def test_runs_list_newest_first_and_one_run_with_its_tasks(client: httpx.Client) -> None:
    started = client.post("/run", params={"wait": "true"}).json()
    runs = client.get("/runs", params={"limit": 2}).json()["runs"]
    assert runs[0]["run_id"] == started["run_id"] and runs[0]["trigger"] == "api"
    assert len(runs) == 2 and runs[0]["started_at"] >= runs[1]["started_at"]
    run = client.get(f"/runs/{started['run_id']}").json()
    assert run["state"] == "success" and sum(run["counts"].values()) == len(run["tasks"])
    tasks = {t["name"]: t for t in run["tasks"]}
    assert tasks["final.products"]["rows"] == 13 and tasks["final.products"]["attempts"][0]["number"] == 1
    assert tasks["raw.products"]["state"] == "skipped"  # seeds run only when their table is missing
    error(client.get("/runs/20990101T000000-ffffff"), 404, "unknown_run")


def test_task_log_tail_and_attempts(client: httpx.Client) -> None:
    run_id = client.get("/runs", params={"limit": 1}).json()["runs"][0]["run_id"]
    log = client.get(f"/runs/{run_id}/tasks/final.products/log").json()
    assert log["run_id"] == run_id and log["task"] == "final.products" and log["attempt"] == 1
    assert "succeeded in" in log["lines"][-1] and any("CREATE OR REPLACE TABLE" in x for x in log["lines"])
    by_path = client.get(f"/runs/{run_id}/tasks/res/final/products.sql/log", params={"tail": 1}).json()
    assert by_path["lines"] == log["lines"][-1:]
    error(client.get(f"/runs/{run_id}/tasks/final.products/log", params={"attempt": 2}), 404, "no_log")
    error(client.get(f"/runs/{run_id}/tasks/raw.products/log"), 404, "no_log")  # a skipped seed
    error(client.get(f"/runs/{run_id}/tasks/nope/log"), 404, "unknown_task")
    error(client.get(f"/runs/{run_id}/tasks/final.products/log", params={"tail": 0}), 422, "invalid_request")


def test_graph_has_every_task_with_its_latest_state(client: httpx.Client) -> None:
    graph = client.get("/graph").json()
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert graph["project"] == "products" and {"final.products", "tmp.gate"} <= set(nodes)
    assert set(nodes["final.products"]) == {"name", "path", "kind", "outputs", "reads", "upstream", "tags", "state"}
    assert nodes["final.products"]["state"] == "success" and nodes["final.products"]["tags"] == ["mart"]
    assert {"from": "tmp.variants", "to": "final.products"} in graph["edges"]


def test_lineage_gives_every_tables_columns_and_each_columns_sources(client: httpx.Client) -> None:
    lineage = client.get("/lineage").json()
    assert lineage["tables"]["final.products"][:3] == ["product_id", "sku", "name"]
    assert lineage["tables"]["tmp.gate"] == ["products"]  # a Python task: its columns from the catalog
    category = lineage["columns"]["final.products.category"]
    assert category["sources"] == ["tmp.category_tree.category_name"]  # one step up
    assert "raw.products.category_id" in category["filters"]
    assert lineage["columns"]["tmp.category_tree.category_name"]["sources"] == ["raw.categories.name"]


def test_task_by_name_or_path_with_its_source(client: httpx.Client) -> None:
    task = client.get("/tasks/final.products").json()
    assert task["path"] == "res/final/products.sql" and "tmp.variants" in task["upstream"]
    assert task["source"].startswith("-- The product catalogue")
    assert client.get("/tasks/res/final/products.sql").json()["name"] == "final.products"
    gate = client.get("/tasks/tmp.gate").json()
    assert gate["kind"] == "python" and '@daglake.task("tmp.gate"' in gate["source"]  # its module
    error(client.get("/tasks/no.such"), 404, "unknown_task")


def test_tables_merge_catalogue_and_warehouse(client: httpx.Client) -> None:
    body = client.get("/tables").json()
    assert body["warehouse"] == "ok"
    tables = {t["name"]: t for t in body["tables"]}
    assert SEEDS | {"final.products", "tmp.gate"} <= set(tables)
    products = tables["raw.products"]
    assert products["appendable"] and products["zone"] == "warehouse" and products["task"] == "raw.products"
    assert [c["name"] for c in products["columns"]][:3] == ["id", "sku", "name"]
    assert not tables["final.products"]["appendable"] and tables["final.products"]["rows"] >= 13


def test_openapi_and_docs(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/run", "/{table_name}", "/runs", "/runs/{run_id}", "/graph", "/tables", "/health", "/events"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_client_mistakes_are_json_errors(client: httpx.Client) -> None:
    error(client.get("/runs", params={"limit": "many"}), 422, "invalid_request")
    error(client.get("/no/such/page"), 404, "not_found")
    error(client.delete("/health"), 405, "method_not_allowed")
    error(client.post("/run", params={"wait": "perhaps"}), 422, "invalid_request")
    error(client.patch("/runs"), 405, "method_not_allowed")
    error(client.put("/products", params={"id": "1"}), 405, "method_not_allowed")
    error(client.post("/health/deeper", params={"id": "1"}), 404, "not_found")


# --- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/run", "/products?name=x"])
def test_mutations_need_the_right_token(server: Server, path: str) -> None:
    with server.client(token=None) as anonymous, server.client(token="wrong-token") as wrong:
        missing = anonymous.post(path)
        error(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        error(wrong.post(path), 401, "unauthorized")
        error(anonymous.post(path, headers={"Authorization": "Bearer t\u00e9st".encode("latin-1")}), 401, "unauthorized")
        error(anonymous.post(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
        assert anonymous.get("/health").json()["run_in_progress"] is None  # nothing started


def test_link_with_token_sets_a_strict_http_only_cookie(server: Server) -> None:
    with server.client(token=None, follow_redirects=False) as browser:
        error(browser.get("/", params={"token": "wrong"}), 401, "unauthorized")
        assert "daglake_token" not in browser.cookies
        redirect = browser.get("/", params={"token": server.token})
        assert redirect.status_code == 303 and redirect.headers["location"] == "/"
        cookie = redirect.headers["set-cookie"]
        assert cookie.startswith(f"daglake_token={server.token};")
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
        assert browser.get("/").status_code == 200
        error(browser.post("/products", params={"name": "cookie only"}), 401, "unauthorized")
        stored = browser.post("/products", params={"name": "from the UI"}, headers={"X-Daglake-UI": "1"})
        assert stored.status_code == 201 and stored.json()["name"] == "from the UI"
        error(browser.post("/run"), 401, "unauthorized")
        started = browser.post("/run", params={"wait": "true"}, headers={"X-Daglake-UI": "1"})
        assert started.status_code == 200 and started.json()["state"] == "success"


def test_generated_token_is_stored_0600_and_reused(tmp_path: Path) -> None:
    root = copy_products(tmp_path)
    first = start_server(root, token=None)
    try:
        path = root / ".daglake" / "api_token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().strip() == first.token and len(first.token) >= 40
        with first.client() as client:
            assert client.post("/run").status_code == 202
        first.wait_idle()
    finally:
        first.stop()
    second = start_server(root, token=None)
    second.stop()
    assert second.token == first.token
    assert first.token != TOKEN


# --- appending ---------------------------------------------------------------------------------


def test_append_returns_the_stored_row(client: httpx.Client) -> None:
    response = client.post("/products", params={"id": "9001", "launched_on": "2024-05-06", "is_discontinued": "true", **PRODUCT})
    assert response.status_code == 201, response.text
    assert response.json() == {
        "id": 9001, "sku": "NEW-1", "name": "Trail Mug", "brand": "Sierra", "category_id": 8,
        "supplier_id": 3, "launched_on": "2024-05-06", "is_discontinued": True,
    }
    loose = client.post("/PRODUCTS", params={"ID": "9002", "Name": "case does not matter"}).json()
    assert loose["id"] == 9002 and loose["sku"] is None  # columns not given are NULL


def test_append_refuses_unknown_tables_columns_and_bad_values(client: httpx.Client) -> None:
    unknown = error(client.post("/nonexistent", params={"id": "1"}), 404, "unknown_table")
    assert "products" in unknown["tables"]
    error(client.post("/final.products", params={"product_id": "1"}), 404, "unknown_table")
    column = error(client.post("/products", params={"colour": "red"}), 422, "unknown_column")
    assert column["columns"] == ["id", "sku", "name", "brand", "category_id", "supplier_id", "launched_on", "is_discontinued"]
    for field, value in [("id", "abc"), ("id", "1.5e400"), ("launched_on", "2024-13-45"), ("is_discontinued", "maybe"), ("id", "")]:
        bad = error(client.post("/products", params={field: value}), 422, "invalid_value")
        assert field in bad["message"], bad
    error(client.post("/products?id=1&id=2"), 422, "duplicate_column")
    error(client.post("/products"), 422, "no_values")


def test_append_stores_exactly_or_refuses_naming_the_column(client: httpx.Client) -> None:
    """No rounding (``1.5`` in an INT64), no replacement characters, no NUL (issue 13)."""
    for query, column, why in [
        ("id=1.5", "id", "is not an integer"),
        ("id=99999999999999999999", "id", "is out of range"),
        ("name=caf%E9", "name", "not valid UTF-8 (byte 0xe9 at offset 3)"),
        ("name=a%00b", "name", "contains a NUL character"),
        ("is_discontinued=yes", "is_discontinued", "is not a boolean"),
        ("launched_on=2024-02-30", "launched_on", "is not a date of the calendar"),
    ]:
        bad = error(client.post(f"/products?{query}"), 422, "invalid_value")
        assert bad["column"] == column and why in bad["message"], bad
    stored = client.post("/products?id=9200&name=caf%C3%A9&is_discontinued=0").json()
    assert (stored["id"], stored["name"], stored["is_discontinued"]) == (9200, "caf\u00e9", False)


@pytest.mark.parametrize("size", [100_000, 1_000_000])
def test_a_huge_query_string_is_a_json_413(server: Server, size: int) -> None:
    """Over uvicorn's own limit the server answers before the app: still JSON."""
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            f"POST /products?name={'x' * size} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"content-type: application/json" in head.lower()
    assert httpx.Response(413, content=body).json()["error"]["code"] == "request_too_large"


def test_post_run_refuses_an_option_it_does_not_take(client: httpx.Client) -> None:
    refused = error(client.post("/run", params={"select": "final.products", "dry_run": "true"}), 422, "unknown_option")
    assert refused["options"] == ["wait", "date", "select", "exclude", "full_refresh"]
    assert client.get("/health").json()["run_in_progress"] is None


@pytest.mark.parametrize(
    "table",
    ["products;DROP TABLE raw.products;--", 'products"; DROP TABLE raw.products; --', "products' OR '1'='1", "main.products"],
)
def test_injection_in_the_table_name_is_an_unknown_table(server: Server, client: httpx.Client, table: str) -> None:
    error(client.post("/" + httpx.URL(table).raw_path.decode(), params={"name": "x"}), 404, "unknown_table")
    assert client.post("/products", params={"name": "still there"}).status_code == 201


def test_injection_in_column_names_and_values_is_inert(server: Server, client: httpx.Client) -> None:
    evil = "x'); DROP TABLE raw.products;--"
    stored = client.post("/products", params={"id": "9100", "name": evil, "brand": 'b"; DELETE FROM raw.products; --'})
    assert stored.status_code == 201 and stored.json()["name"] == evil
    error(client.post("/products", params={"name) VALUES ('x'); DROP TABLE raw.products;--": "1"}), 422, "unknown_column")
    error(client.post("/products", params={'"id"': "1"}), 422, "unknown_column")
    error(client.post("/products", params={"id": "1); DROP TABLE raw.products;--"}), 422, "invalid_value")
    server.wait_idle()
    rows = server.query("SELECT name, brand FROM raw.products WHERE id = 9100")
    assert rows == [(evil, 'b"; DELETE FROM raw.products; --')]
    assert server.query("SELECT count(*) >= 13 FROM raw.products") == [(True,)]


# --- runs ------------------------------------------------------------------------------------------


def test_post_run_answers_202_and_the_run_finishes(server: Server, client: httpx.Client) -> None:
    started = client.post("/run")
    assert started.status_code == 202
    body = started.json()
    assert body["state"] == "running" and body["url"] == f"/runs/{body['run_id']}"
    done = server.finished_run(body["run_id"])
    assert done["state"] == "success" and done["trigger"] == "api" and done["tasks"]


def test_post_run_wait_answers_with_the_summary(client: httpx.Client) -> None:
    summary = client.post("/run", params={"wait": "true"})
    assert summary.status_code == 200
    body = summary.json()
    assert body["state"] == "success" and body["counts"].get("failed", 0) == 0
    assert {t["name"] for t in body["tasks"]} >= {"final.products", "tmp.gate"}


def test_a_second_run_while_one_is_in_progress_is_409_naming_it(server: Server, client: httpx.Client) -> None:
    with server.holding():
        run_id = client.post("/run").json()["run_id"]
        conflict = error(client.post("/run"), 409, "run_in_progress")
        assert conflict["run_id"] == run_id and run_id in conflict["message"]
        assert client.get("/health").json()["run_in_progress"] == run_id
        server.wait_gate()  # the seeds have run: the run's detail shows them done, not pending
        live = {t["name"]: t["state"] for t in client.get(f"/runs/{run_id}").json()["tasks"]}
        assert live["raw.products"] in ("success", "skipped") and live["tmp.gate"] == "running"
    assert server.finished_run(run_id)["state"] == "success"


def test_appended_rows_survive_a_run_and_reach_final_products(server: Server, client: httpx.Client) -> None:
    assert client.post("/products", params={"id": "777", **PRODUCT, "sku": "MUG-777"}).status_code == 201
    summary = client.post("/run", params={"wait": "true"}).json()
    assert summary["state"] == "success"
    server.wait_idle()
    assert server.query("SELECT name, category FROM final.products WHERE product_id = 777") == [("Trail Mug", "Backpacks")]


def test_events_stream_a_run_and_its_tasks(server: Server, client: httpx.Client) -> None:
    reader = EventReader(server)
    try:
        run_id = client.post("/run").json()["run_id"]
        seen = reader.until(lambda kind, data: kind == "run" and data["state"] != "running")
    finally:
        reader.close()
    runs = [data for kind, data in seen if kind == "run" and data["run_id"] == run_id]
    assert [r["state"] for r in runs] == ["running", "success"]
    assert runs[-1]["counts"]["success"] + runs[-1]["counts"].get("skipped", 0) == runs[0]["tasks_total"]
    tasks = [data for kind, data in seen if kind == "task"]
    assert all(t["run_id"] == run_id for t in tasks)
    final = [t["state"] for t in tasks if t["name"] == "final.products"]
    assert final == ["running", "success"]
    assert {t["name"] for t in tasks} >= {"tmp.gate", "raw.products"}


def test_a_broken_project_is_refused_as_json_and_the_server_keeps_going(tmp_path: Path) -> None:
    server = start_server(copy_products(tmp_path, checks=False))
    broken = server.root / "res" / "tmp" / "broken.sql"
    try:
        broken.write_text("SELECT id FROM raw.products WHERE\n", encoding="utf-8")
        with server.client() as client:
            waited = error(client.post("/run", params={"wait": "true"}), 422, "invalid_project")
            assert [p["path"] for p in waited["problems"]] == ["res/tmp/broken.sql"]
            error(client.get("/graph"), 422, "invalid_project")
            reader = EventReader(server)
            try:
                started = client.post("/run")
                assert started.status_code == 202  # the lock was free; validation comes after
                run_id = started.json()["run_id"]
                seen = reader.until(lambda kind, data: kind == "run" and data["run_id"] == run_id)
            finally:
                reader.close()
            assert seen[-1][1]["state"] == "failed" and seen[-1][1]["error"]["code"] == "invalid_project"
            refused = server.finished_run(run_id)
            assert refused["state"] == "failed" and refused["error"]["problems"][0]["path"] == "res/tmp/broken.sql"
            broken.unlink()
            assert client.post("/run", params={"wait": "true"}).json()["state"] == "success"
    finally:
        server.stop()


def test_events_send_a_ping_comment_while_idle(tmp_path: Path) -> None:
    """In process, with a short ping interval (the server's is 15 s)."""
    import socket
    import threading

    import uvicorn

    from daglake.api.app import create_app

    app = create_app(copy_products(tmp_path), token=TOKEN, ping_seconds=0.1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: server.started, "the server to start")
            with client.stream("GET", "/events") as response:
                lines = response.iter_lines()
                assert next(lines) == ": connected"
                assert [line for _, line in zip(range(4), lines, strict=False) if line] == [": ping", ": ping"]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
