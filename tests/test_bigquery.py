"""The bigquery engine as users meet it: the official client against the local emulator, and a
small proxy in front of it where the emulator cannot answer as BigQuery does (transient 5xx and
429 errors, dry-run byte counts, BigQuery's ``[line:column]`` in error messages)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tests.bigquery_emulator import (
    PROJECT,
    Emulator,
    Proxy,
    Rule,
    bigquery_target,
    comparable_rows,
    read_table,
)
from tests.postgres import free_port
from tests.test_cli_e2e import BUILT_ROWS, SEED_ROWS, copy_example, daglake

GIB = 2**30
INSERT = re.compile(r"/jobs(\?|$)")  # jobs.insert: a job submitted


def client(emulator: Emulator) -> bigquery.Client:
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=emulator.url))  # type: ignore[no-untyped-call]


@pytest.fixture
def on_emulator(bq_emulator: Emulator, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the products example with a target on the emulator, and its dataset prefix."""
    root = copy_example(tmp_path)
    prefix = bq_emulator.prefix()
    bigquery_target(root, bq_emulator.url, prefix)
    return root, prefix


@pytest.fixture
def proxy(bq_emulator: Emulator) -> Iterator[Proxy]:
    with Proxy(bq_emulator.url) as running:
        yield running


def test_the_products_example_gives_the_same_rows_on_duckdb_and_bigquery(bq_emulator: Emulator, tmp_path: Path) -> None:
    root = copy_example(tmp_path, checks=True)
    bigquery_target(root, bq_emulator.url, bq_emulator.prefix())
    assert daglake("run", root).code == 0
    on_bigquery = daglake("run", root, "--target", "emu")
    assert on_bigquery.code == 0, on_bigquery.output
    for table in [*SEED_ROWS, *BUILT_ROWS]:
        duck, big = read_table(root, table), read_table(root, table, target="emu")
        assert set(duck[0]) == set(big[0]), table  # the same columns
        assert comparable_rows(duck) == comparable_rows(big), table


def test_datasets_are_created_with_the_prefix_and_jobs_are_labelled(bq_emulator: Emulator, on_emulator: tuple[Path, str], proxy: Proxy) -> None:
    root, prefix = on_emulator
    bigquery_target(root, proxy.url, prefix, name="proxied")  # the emulator keeps no labels: read what was sent
    result = daglake("run", root, "--target", "proxied", "--json")
    assert result.code == 0, result.output
    bq = client(bq_emulator)
    datasets = {d.dataset_id for d in bq.list_datasets()}
    assert {f"{prefix}raw", f"{prefix}tmp", f"{prefix}final"} <= datasets
    assert not {"raw", "tmp", "final"} & datasets  # nothing written outside this person's datasets
    task = next(t for t in result.json()["tasks"] if t["name"] == "final.products")
    [job_id] = task["attempts"][-1]["job_ids"]
    sent = [json.loads(b) for m, p, b in proxy.requests if m == "POST" and INSERT.search(p) and job_id.encode() in b]
    assert sent[0]["configuration"]["labels"] == {"daglake": "run", "daglake_run": result.json()["run_id"].lower(), "daglake_task": "final_products"}
    shown = daglake("runs", result.json()["run_id"], "--project", root)
    assert f"  final.products {job_id}" in shown.out.splitlines()  # one job per line, never wrapped apart
    log = daglake("logs", result.json()["run_id"], "final.products", "--project", root)
    assert f"-- job {job_id} done" in log.out


def test_unaliased_struct_fields_are_named_as_bigquery_names_them(bq_emulator: Emulator, on_emulator: tuple[Path, str]) -> None:
    root, _ = on_emulator
    (root / "res/tmp/prices.sql").write_text(
        "SELECT v.variant_id, ARRAY_AGG(STRUCT(i.unit_cost, i.currency)) AS prices\n"
        "FROM `raw.purchase_prices` AS i JOIN (SELECT 1001 AS variant_id) AS v USING (variant_id)\n"
        "GROUP BY v.variant_id\n"
    )
    for target in ([], ["--target", "emu"]):
        assert daglake("run", root, *target, "--select", "+tmp.prices").code == 0
    [duck], [big] = read_table(root, "tmp.prices"), read_table(root, "tmp.prices", target="emu")
    assert {tuple(p) for p in big["prices"]} == {("unit_cost", "currency")}
    assert comparable_rows([duck]) == comparable_rows([big])


def test_a_dry_run_prints_the_bytes_each_task_would_scan_and_their_cost(
    bq_emulator: Emulator, on_emulator: tuple[Path, str], proxy: Proxy
) -> None:
    root, prefix = on_emulator
    assert daglake("run", root, "--target", "emu").code == 0
    client(bq_emulator).delete_table(f"{PROJECT}.{prefix}tmp.variants")  # final.products cannot be priced

    def scanned(answer: dict[str, Any], body: bytes) -> dict[str, Any]:
        # BigQuery answers a dry run with what the query would read; the emulator says 0
        statistics = answer.setdefault("statistics", {})
        statistics["totalBytesProcessed"] = str(3 * GIB)
        statistics.setdefault("query", {})["totalBytesProcessed"] = str(3 * GIB)
        return answer

    proxy.rules.append(Rule("POST", r"/jobs", body=r'"dryRun": ?true', rewrite=scanned, times=10**6))
    bigquery_target(root, proxy.url, prefix, name="proxied", price_per_tib=5)
    printed = daglake("run", root, "--target", "proxied", "--dry-run")
    assert printed.code == 0, printed.output
    assert "  tmp.variants: 3.00 GiB" in printed.out
    assert "  final.products: reads tables not built yet: tmp.variants" in printed.out
    assert "total 24.00 GiB (25,769,803,776 bytes): 0.1172 USD at 5 USD per TiB" in printed.out
    as_json = json.loads(daglake("run", root, "--target", "proxied", "--dry-run", "--json").out)["estimate"]
    assert as_json["tasks"]["tmp.variants"] == {"bytes": 3 * GIB, "reason": None}
    assert as_json["total_bytes"] == 8 * 3 * GIB and as_json["cost"] == pytest.approx(24 / 1024 * 5)
    inserted = [json.loads(body) for method, path, body in proxy.requests if method == "POST" and INSERT.search(path)]
    assert inserted and all(job["configuration"]["dryRun"] for job in inserted)  # nothing ran, nothing billed


def test_bigquery_line_and_column_are_mapped_back_to_the_file() -> None:
    """BigQuery's ``[line:column]`` counts in the SQL sent: the user's own text, which starts at
    the statement's line and column, after the ``CREATE OR REPLACE TABLE … AS`` daglake puts
    before a bare query on its first line. (The emulator sends DuckDB's text without a position,
    so this is checked on BigQuery's message as it would arrive.)"""
    from daglake.engines.bigquery_sql import Sent, task_error

    sent = Sent("res/tmp/x.sql", line=4, column=3, offset=40, verbatim=True)
    later = task_error("Unrecognized name: nme at [3:8]", sent, "job-1")
    assert (later.path, later.line, later.column, later.job_id) == ("res/tmp/x.sql", 6, 8, "job-1")
    assert later.message == "Unrecognized name: nme (job job-1)"
    first = task_error("Syntax error: Unexpected keyword FROM at [1:52]", sent, None)
    assert (first.line, first.column) == (4, 52 - 40 + 3 - 1)
    rewritten = task_error("Unrecognized name: nme at [3:8]", Sent("res/tmp/x.sql", 4, 1, 0, False), "j")
    assert (rewritten.line, rewritten.column, rewritten.subject) == (4, None, "nme")  # found by name later


def test_transient_errors_are_retried_and_the_run_succeeds(on_emulator: tuple[Path, str], proxy: Proxy) -> None:
    root, prefix = on_emulator
    proxy.rules += [
        Rule("POST", r"/jobs(\?|$)", status=503, reason="backendError", times=2),
        Rule("POST", r"/jobs(\?|$)", status=429, reason="rateLimitExceeded", times=1),
        Rule("GET", r"/datasets(\?|$)", status=500, reason="internalError", times=1),
    ]

    def backend_error_once(answer: dict[str, Any], body: bytes) -> dict[str, Any]:
        answer["status"] = {"state": "DONE", "errorResult": {"reason": "backendError", "message": "Backend error, retry"}}
        return answer

    proxy.rules.append(Rule("POST", r"/jobs(\?|$)", body="tmp.category_tree|category_tree", rewrite=backend_error_once, times=1))
    bigquery_target(root, proxy.url, prefix, name="proxied")
    result = daglake("run", root, "--target", "proxied", "--json")
    assert result.code == 0, result.output
    assert all(rule.seen == rule.times for rule in proxy.rules)
    assert {len(t["attempts"]) for t in result.json()["tasks"]} == {1}  # retried inside the attempt
    tree = next(t for t in result.json()["tasks"] if t["name"] == "tmp.category_tree")
    assert len(tree["attempts"][0]["job_ids"]) == 2  # the failed job, then the one that ran
    assert len(read_table(root, "tmp.category_tree", target="proxied")) == BUILT_ROWS["tmp.category_tree"]


def test_a_sql_error_is_never_retried(on_emulator: tuple[Path, str], proxy: Proxy) -> None:
    root, prefix = on_emulator
    (root / "res/tmp/broken.sql").write_text("SELECT nope FROM `raw.products`\n")
    bigquery_target(root, proxy.url, prefix, name="proxied")
    result = daglake("run", root, "--target", "proxied", "--select", "+tmp.broken", "--json")
    assert result.code == 1
    broken = next(t for t in result.json()["tasks"] if t["name"] == "tmp.broken")
    assert len(broken["attempts"][0]["job_ids"]) == 1
    assert sum(1 for m, p, b in proxy.requests if m == "POST" and b"nope" in b) == 1


def test_maximum_bytes_billed_is_sent_with_every_job(on_emulator: tuple[Path, str], proxy: Proxy) -> None:
    root, prefix = on_emulator
    bigquery_target(root, proxy.url, prefix, name="proxied", maximum_bytes_billed=10 * GIB)
    assert daglake("run", root, "--target", "proxied").code == 0
    jobs = [json.loads(b) for m, p, b in proxy.requests if m == "POST" and INSERT.search(p)]
    assert len(jobs) >= len(BUILT_ROWS) + len(SEED_ROWS)
    assert {job["configuration"]["query"].get("maximumBytesBilled") for job in jobs} == {str(10 * GIB)}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "engine.bigquery.credentials: key.json: no such file"),
        ("{not json", "engine.bigquery.credentials: key.json: not a JSON key file"),
        ('{"type": "service_account", "project_id": "p"}', "engine.bigquery.credentials: key.json: not a service-account key"),
    ],
)
def test_a_wrong_key_file_is_one_clear_line(tmp_path: Path, key: str | None, message: str) -> None:
    root = copy_example(tmp_path)
    if key is not None:
        (root / "key.json").write_text(key)
    config = root / "daglake.toml"
    config.write_text(config.read_text() + '\n[targets.prod]\nengine = "bigquery"\n[targets.prod.bigquery]\nproject = "acme"\ncredentials = "key.json"\n')
    result = daglake("run", root, "--target", "prod")
    assert result.code == 2
    assert len(result.err_lines()) == 1 and result.err_lines()[0].startswith(f"error: {message}"), result.err


def test_an_unreachable_endpoint_is_one_clear_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    bigquery_target(root, f"http://127.0.0.1:{free_port()}", "x_", retry_deadline=1)
    result = daglake("run", root, "--target", "emu")
    assert result.code == 2
    [line] = result.err_lines()
    assert line.startswith("error: listing datasets on http://127.0.0.1:") and "failed" in line, line


def test_a_project_with_lake_tables_is_refused_at_validation(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    (root / "res/curated").mkdir()
    (root / "res/curated/orders.sql").write_text("SELECT 1 AS id\n")
    config = root / "daglake.toml"
    text = config.read_text().replace("[run]", '[engine]\nname = "bigquery"\n\n[engine.bigquery]\nproject = "acme"\n\n[run]')
    config.write_text(text + '\n[tasks."res/curated/orders.sql"]\nzone = "curated"\n')
    result = daglake("validate", root)
    assert result.code == 2
    assert "res/curated/orders.sql:1: curated.orders is a curated lake table; the bigquery engine has no data lake yet" in result.err


def test_api_appends_go_through_parameterized_dml(on_emulator: tuple[Path, str]) -> None:
    """What `POST /{table}` calls on BigQuery: the row as stored, bad values refused whole."""
    from daglake.config import engine_settings
    from daglake.engines import create_engine
    from daglake.engines.base import AppendError
    from daglake.project import load_project

    root, _ = on_emulator
    assert daglake("run", root, "--target", "emu", "--select", "raw.products").code == 0
    settings = engine_settings(load_project(root, write_cache=False).config, target="emu")
    with create_engine(settings, root) as engine:
        writer = engine.row_writer()
        name, columns = writer.columns("raw", "PRODUCTS") or ("", [])
        assert name == "products" and [c.name for c in columns][:3] == ["id", "sku", "name"]
        stored = writer.insert("raw", name, ["id", "name", "launched_on"], [{"id": "9001", "name": "x'); DROP TABLE raw.products; --", "launched_on": "2024-05-06"}], precise=False)
        assert stored == [{  # every column, as DuckDB's RETURNING * gives it
            "id": 9001, "sku": None, "name": "x'); DROP TABLE raw.products; --", "brand": None, "category_id": None,
            "supplier_id": None, "launched_on": __import__("datetime").date(2024, 5, 6), "is_discontinued": None,
        }]
        with pytest.raises(AppendError) as refused:
            writer.insert("raw", name, ["id"], [{"id": "9002"}, {"id": "abc"}], precise=True)
        assert refused.value.kind == "invalid_value"
        assert "products" in writer.tables("raw")
    ids = {row["id"] for row in read_table(root, "raw.products", target="emu")}
    assert 9001 in ids and 9002 not in ids  # all or none


def test_a_failing_job_names_the_file_line_and_column_bigquery_points_at(on_emulator: tuple[Path, str], proxy: Proxy) -> None:
    """End to end through the proxy, which answers with BigQuery's own message for the job: the
    position BigQuery gives counts in the SQL sent, and the user sees it in their file."""
    root, prefix = on_emulator
    (root / "res/tmp/broken.sql").write_text("-- a name misspelt on line 4\nSELECT\n  id,\n  nme\nFROM `raw.products`\n")
    sent: list[str] = []

    def as_bigquery_says_it(answer: dict[str, Any], body: bytes) -> dict[str, Any]:
        if body:
            sent.append(json.loads(body)["configuration"]["query"]["query"])
        failed = '"error' in json.dumps(answer) and "nme" in json.dumps(answer)
        if not (sent and failed):
            return answer
        at = sent[-1].index("nme")
        line, column = sent[-1].count("\n", 0, at) + 1, at - sent[-1].rfind("\n", 0, at)
        message = f"Unrecognized name: nme at [{line}:{column}]"

        def rewrite(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: message if k == "message" else rewrite(v) for k, v in value.items()}
            return [rewrite(v) for v in value] if isinstance(value, list) else value

        return dict(rewrite(answer))

    proxy.rules.append(Rule("POST", r"/jobs(\?|$)", body="nme", rewrite=as_bigquery_says_it, times=50))
    proxy.rules.append(Rule("GET", r"/(jobs|queries)/", rewrite=as_bigquery_says_it, times=50))
    bigquery_target(root, proxy.url, prefix, name="proxied")
    result = daglake("run", root, "--target", "proxied", "--select", "+tmp.broken", "--json")
    assert result.code == 1, result.output
    broken = next(t for t in result.json()["tasks"] if t["name"] == "tmp.broken")
    [job] = broken["attempts"][0]["job_ids"]
    assert broken["error"] == f"Unrecognized name: nme (job {job})", broken
    assert broken["location"] == "res/tmp/broken.sql:4:3", broken
    plain = daglake("run", root, "--target", "proxied", "--select", "tmp.broken")
    assert "res/tmp/broken.sql:4:3: Unrecognized name: nme (job " in " ".join(plain.output.split()), plain.output


def test_the_api_appends_on_bigquery_and_post_run_carries_the_rows_to_final_products(bq_emulator: Emulator, tmp_path: Path) -> None:
    """`daglake serve --target` on the emulator: the same 201/404/422 answers as on DuckDB,
    `GET /tables` from BigQuery's listing, and an appended row in final.products after a run."""
    from tests.api_support import copy_products, start_server
    from tests.test_api import PRODUCT

    root = copy_products(tmp_path, checks=False)
    (root / "db_init/photos.sql").write_text("CREATE TABLE raw.photos (id INT64, data BYTES);\n")
    bigquery_target(root, bq_emulator.url, bq_emulator.prefix())
    server = start_server(root, "--target", "emu")
    try:
        with server.client() as client:
            assert client.post("/run", params={"wait": "true"}).json()["state"] == "success"
            stored = client.post("/products", params={"id": "777", **PRODUCT, "sku": "MUG-777", "launched_on": "2024-05-06"})
            assert stored.status_code == 201, stored.text
            assert stored.json() == {**PRODUCT, "id": 777, "sku": "MUG-777", "category_id": 8, "supplier_id": 3, "launched_on": "2024-05-06", "is_discontinued": None}
            assert client.post("/nonexistent", params={"id": "1"}).json()["error"]["code"] == "unknown_table"
            assert client.post("/products", params={"colour": "red"}).status_code == 422
            bad = client.post("/products", params={"id": "abc"})
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_value"
            photo = client.post("/photos", params={"id": "1", "data": "AAH/"})  # bytes as base64, both ways
            assert photo.status_code == 201, photo.text
            assert photo.json() == {"id": 1, "data": "AAH/"}
            not_base64 = client.post("/photos", params={"id": "2", "data": "not base64!"})
            assert not_base64.status_code == 422 and "is not base64 (BYTES)" in not_base64.json()["error"]["message"]
            tables = {t["name"]: t for t in client.get("/tables").json()["tables"]}
            assert tables["raw.products"]["appendable"] and not tables["final.products"]["appendable"]
            assert client.post("/run", params={"wait": "true"}).json()["state"] == "success"
    finally:
        server.stop()
    mart = {row["product_id"]: row for row in read_table(root, "final.products", target="emu")}
    assert mart[777]["name"] == "Trail Mug" and mart[777]["category"] == "Backpacks"
