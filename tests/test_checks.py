"""Data-quality checks: declared in TOML, YAML or SQL files, run on a real DuckDB, each failing
with the count and sample a person needs, and every declaration mistake reported at its line."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import daglake.checks
from daglake.checks import KINDS, CheckResult, CheckSpec, check_sql, load_checks, run_check
from daglake.checks.declare import TABLE_KEYS, Origin, declare
from daglake.checks.lines import Lines
from daglake.checks.params import KIND_KEYS
from daglake.config import load_config
from daglake.errors import Problem
from tests.conftest import ProjectFactory

NOW = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
TASKS = {
    "res/final/products.sql": "final.products",
    "res/final/order_lines.sql": "final.order_lines",
}
WAREHOUSE = """
CREATE SCHEMA raw;
CREATE SCHEMA final;
CREATE TABLE raw.suppliers (id INTEGER, name VARCHAR);
INSERT INTO raw.suppliers VALUES (1, 'acme'), (2, 'globex'), (NULL, 'unknown');
CREATE TABLE raw.products (id INTEGER);
INSERT INTO raw.products VALUES (1), (2), (3), (4);
CREATE TABLE raw.orders (id INTEGER);
INSERT INTO raw.orders VALUES (1), (2);
CREATE TABLE final.products (
    product_id INTEGER, name VARCHAR, status VARCHAR, supplier_id INTEGER,
    margin_pct DOUBLE, updated_at TIMESTAMP, "select" INTEGER, "unit price" DOUBLE
);
INSERT INTO final.products VALUES
    (1, 'shoe', 'active', 1, 10, '2024-01-01 00:00', 1, 5.0),
    (2, NULL, 'retired', 2, 50, '2024-01-01 06:00', 2, 6.0),
    (2, 'hat', NULL, NULL, NULL, NULL, 3, NULL),
    (3, 'bag', 'lost', 9, 150, '2023-12-31 00:00', 4, 7.5),
    (NULL, 'box', 'active', 1, 20, '2023-12-30 00:00', 5, 1.0),
    (NULL, 'bin', 'active', 2, 30, '2023-12-30 00:00', 6, 2.0);
CREATE TABLE final.order_lines (order_id INTEGER, line INTEGER);
INSERT INTO final.order_lines VALUES (1, 1), (1, 2), (1, 2), (2, 1), (2, NULL), (2, NULL);
CREATE TABLE final.empty (updated_at TIMESTAMP);
"""


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(WAREHOUSE)
    yield connection
    connection.close()


def declared(
    make_project: ProjectFactory, files: dict[str, str]
) -> tuple[list[CheckSpec], list[str]]:
    """Load the checks of a project made of ``files``; problems as ``path:line: message``."""
    root = make_project(files)
    config_problems: list[Problem] = []
    config = load_config(root, config_problems)
    assert config_problems == []
    specs, problems = load_checks(root, config, TASKS)
    return specs, [str(p) for p in problems]


def run(con: duckdb.DuckDBPyConnection, spec: CheckSpec, now: datetime = NOW) -> CheckResult:
    def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = con.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()

    return run_check(spec, fetch, now=now)


def one(make_project: ProjectFactory, body: str, table: str = "final.products") -> CheckSpec:
    specs, problems = declared(make_project, {"daglake.toml": f'[checks."{table}"]\n{body}\n'})
    assert problems == []
    assert len(specs) == 1, [s.name for s in specs]
    return specs[0]


def sorted_json(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True)


# declaration, failing count, sample rows (only the columns shown are compared, in any order)
CASES: list[tuple[str, int, list[dict[str, Any]]]] = [
    (
        'not_null = ["product_id"]',
        2,
        [{"product_id": None, "name": "bin"}, {"product_id": None, "name": "box"}],
    ),
    ('not_null = ["select"]', 0, []),
    ('not_null = ["unit price"]', 1, [{"product_id": 2, "unit price": None}]),
    ('unique = ["product_id"]', 1, [{"product_id": 2, "rows": 2}]),
    ('unique = ["name"]', 0, []),
    ('unique = ["unit price"]', 0, []),
    (
        'accepted_values = { status = ["active", "retired"] }',
        1,
        [{"product_id": 3, "status": "lost"}],
    ),
    ('accepted_values = { status = ["active", "retired", "lost"] }', 0, []),
    ('accepted_values = { "unit price" = [1, 2, 5, 6, 7.5] }', 0, []),
    (
        'relationships = { supplier_id = "raw.suppliers.id" }',
        1,
        [{"product_id": 3, "supplier_id": 9}],
    ),
    ('relationships = { "select" = "raw.products.id" }', 2, [{"select": 5}, {"select": 6}]),
    ("row_count = { min = 1, max = 10 }", 0, []),
    ("row_count = { min = 10 }", 1, [{"actual": 6, "min": 10, "max": None}]),
    ("row_count = { max = 3 }", 1, [{"actual": 6, "min": None, "max": 3}]),
    (
        'expression = ["margin_pct BETWEEN 0 AND 100"]',
        2,
        [{"product_id": 2, "margin_pct": None}, {"product_id": 3, "margin_pct": 150.0}],
    ),
    ('expression = ["`unit price` * 2 > 1"]', 1, [{"product_id": 2, "unit price": None}]),
    ('expression = ["SAFE_CAST(status AS INT64) IS NULL"]', 0, []),
    ('freshness = { column = "updated_at", max_age = "36h" }', 0, []),
    (
        'freshness = { column = "updated_at", max_age = "1h" }',
        1,
        [{"latest": "2024-01-01T06:00:00", "cutoff": "2024-01-02T11:00:00+00:00", "max_age": "1h"}],
    ),
    ('reconcile = { table = "raw.products" }', 1, [{"actual": 6, "expected": 4}]),
    ('reconcile = { table = "final.products" }', 0, []),
    (
        'reconcile = { table = "raw.products", key = "product_id", other_key = "id" }',
        2,
        [
            {"missing_from": "final.products", "product_id": 4},
            {"missing_from": "raw.products", "product_id": None},
        ],
    ),
]


@pytest.mark.parametrize(("declaration", "failing", "sample"), CASES)
def test_each_kind_passes_or_fails_with_count_and_sample(
    make_project: ProjectFactory,
    con: duckdb.DuckDBPyConnection,
    declaration: str,
    failing: int,
    sample: list[dict[str, Any]],
) -> None:
    result = run(con, one(make_project, declaration))
    assert result.error is None
    assert (result.passed, result.failing) == (failing == 0, failing)
    shown: set[str] = set().union(*sample)
    got = sorted(({k: row[k] for k in shown} for row in result.sample), key=sorted_json)
    assert got == sorted(sample, key=sorted_json)
    json.dumps(result.as_dict())


def test_reconcile_keys_sample_shows_which_side_lacks_the_key(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    spec = one(
        make_project,
        'reconcile = { table = "raw.suppliers", key = "supplier_id", other_key = "id" }',
    )
    assert spec.reads == ("raw.suppliers",)
    result = run(con, spec)
    # NULL is a key like any other: raw.suppliers has one, final.products has several, so it matches.
    assert result.failing == 1
    assert result.sample == [{"missing_from": "raw.suppliers", "supplier_id": 9}]


def test_composite_unique_skips_keys_with_a_null(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    composite = run(con, one(make_project, 'unique = [["order_id", "line"]]', "final.order_lines"))
    assert (composite.failing, composite.sample) == (1, [{"order_id": 1, "line": 2, "rows": 2}])
    assert composite.name == "final.order_lines: unique(order_id, line)"
    single = run(con, one(make_project, 'unique = ["order_id"]', "final.order_lines"))
    assert single.failing == 2


def test_null_handling_per_kind(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    """NULL fails not_null and expression; unique, accepted_values and relationships skip it."""
    nulls = run(con, one(make_project, 'not_null = ["status"]'))
    assert (nulls.failing, nulls.sample[0]["name"]) == (1, "hat")
    assert run(con, one(make_project, "accepted_values = { supplier_id = [1, 2, 9] }")).passed
    assert (
        run(con, one(make_project, 'relationships = { supplier_id = "raw.products.id" }')).failing
        == 1
    )
    assert run(con, one(make_project, 'unique = [["product_id", "status"]]')).passed
    expression = run(con, one(make_project, "expression = \"status <> 'lost'\""))
    assert sorted(r["name"] for r in expression.sample) == ["bag", "hat"]


def test_freshness_at_a_fixed_now_for_timestamp_timestamptz_and_date(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    con.execute(
        "CREATE TABLE final.events AS SELECT TIMESTAMPTZ '2024-01-01 06:00:00+00' AS at, DATE '2024-01-01' AS day"
    )
    for column, fresh_until in (("at", "2024-01-02 18:00"), ("day", "2024-01-02 12:00")):
        spec = one(
            make_project,
            f'freshness = {{ column = "{column}", max_age = "1d12h" }}',
            "final.events",
        )
        assert run(con, spec, datetime.fromisoformat(fresh_until + "+00:00")).passed
        late = run(con, spec, datetime.fromisoformat(fresh_until + ":01+00:00"))
        assert (late.passed, late.failing) == (False, 1)
    empty = run(
        con,
        one(make_project, 'freshness = { column = "updated_at", max_age = "1w" }', "final.empty"),
    )
    assert empty.sample == [
        {"latest": None, "cutoff": "2023-12-26T12:00:00+00:00", "max_age": "1w"}
    ]


def test_values_are_literals_and_names_are_quoted(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    spec = one(make_project, "accepted_values = { name = [\"x' OR '1'='1\"] }")
    assert run(con, spec).failing == 5
    sql = check_sql(one(make_project, 'not_null = ["select"]'))
    assert '"select" IS NULL' in sql and '"final"."products"' in sql


def test_a_check_that_cannot_run_fails_with_the_engine_message(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    result = run(con, one(make_project, 'not_null = ["no_such_column"]'))
    assert not result.passed and result.error is not None
    assert "no_such_column" in result.error and "LINE 1" not in result.error
    assert result.as_dict()["error"] == result.error


def test_severity_table_default_warn_list_and_explicit_entries(
    make_project: ProjectFactory,
) -> None:
    specs, problems = declared(
        make_project,
        {
            "daglake.toml": """
        [checks."final.products"]
        not_null = ["product_id"]
        unique = ["product_id"]
        row_count = { min = 1, severity = "error" }
        warn = ["unique", "row_count"]

        [[checks."final.products".checks]]
        kind = "expression"
        expression = "price >= 0"
        severity = "warn"
        name = "price is not negative"

        [[checks."final.products".checks]]
        kind = "not_null"
        column = "status"
        where = "status <> 'draft'"

        [checks."final.order_lines"]
        severity = "warn"
        unique = [["order_id", "line"]]
    """
        },
    )
    assert problems == []
    assert {s.name: (s.severity, s.line) for s in specs} == {
        "final.products: not_null(product_id)": ("error", 2),
        "final.products: unique(product_id)": ("warn", 3),
        "final.products: row_count": ("error", 4),
        "final.products: price is not negative": ("warn", 7),
        "final.products: not_null(status where status <> 'draft')": ("error", 13),
        "final.order_lines: unique(order_id, line)": ("warn", 20),
    }
    assert {s.path for s in specs} == {"daglake.toml"}


def test_where_narrows_the_rows_checked(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    spec = one(
        make_project,
        '[[checks."final.products".checks]]\nkind = "not_null"\ncolumn = "name"\nwhere = "status = \'active\'"',
    )
    assert run(con, spec).passed
    spec = one(make_project, "row_count = { max = 2, where = \"status = 'active'\" }")
    assert run(con, spec).sample == [{"actual": 3, "min": None, "max": 2}]


def test_checks_files_beside_a_sql_task(
    make_project: ProjectFactory, con: duckdb.DuckDBPyConnection
) -> None:
    specs, problems = declared(
        make_project,
        {
            "res/final/products.sql": "SELECT 1 AS product_id",
            "res/final/products.checks.yml": """
            not_null: [product_id]
            accepted_values: {status: [active, retired]}
            checks:
              - {kind: relationships, column: supplier_id, to: raw.suppliers.id, severity: warn}
        """,
            "res/final/order_lines.sql": "SELECT 1 AS order_id",
            "res/final/order_lines.checks.toml": """
            unique = [["order_id", "line"]]
            [row_count]
            min = 1
        """,
        },
    )
    assert problems == []
    found = {s.name: (s.path, s.line, s.severity, s.reads) for s in specs}
    assert found == {
        "final.products: not_null(product_id)": ("res/final/products.checks.yml", 1, "error", ()),
        "final.products: accepted_values(status)": (
            "res/final/products.checks.yml",
            2,
            "error",
            (),
        ),
        "final.products: relationships(supplier_id -> raw.suppliers.id)": (
            "res/final/products.checks.yml",
            4,
            "warn",
            ("raw.suppliers",),
        ),
        "final.order_lines: unique(order_id, line)": (
            "res/final/order_lines.checks.toml",
            1,
            "error",
            (),
        ),
        "final.order_lines: row_count": ("res/final/order_lines.checks.toml", 2, "error", ()),
    }
    results = {s.name: run(con, s) for s in specs}
    assert results["final.products: relationships(supplier_id -> raw.suppliers.id)"].failing == 1
    assert results["final.order_lines: row_count"].passed


def test_sql_check_files(make_project: ProjectFactory, con: duckdb.DuckDBPyConnection) -> None:
    specs, problems = declared(
        make_project,
        {
            "checks/margins.sql": "-- Products sold at a loss or absurd margins.\nSELECT product_id, margin_pct\nFROM `final.products`\nWHERE SAFE_CAST(margin_pct AS INT64) > 100\n",
            "checks/orphans/suppliers.sql": """
            -- table: final.products
            -- severity: warn
            SELECT s.id FROM raw.suppliers AS s
            LEFT JOIN final.products AS p ON p.supplier_id = s.id
            WHERE p.supplier_id IS NULL AND s.id IS NOT NULL
        """,
        },
    )
    assert problems == []
    margins, orphans = sorted(specs, key=lambda s: s.name)
    assert (margins.name, margins.table, margins.kind, margins.severity, margins.line) == (
        "checks/margins.sql",
        "final.products",
        "sql",
        "error",
        2,
    )
    assert (orphans.table, orphans.severity, orphans.reads) == (
        "final.products",
        "warn",
        ("raw.suppliers",),
    )
    result = run(con, margins)
    assert (result.failing, result.sample) == (1, [{"product_id": 3, "margin_pct": 150.0}])
    assert run(con, orphans).passed


def problems_of(make_project: ProjectFactory, files: dict[str, str]) -> list[str]:
    return sorted(declared(make_project, files)[1])


def test_every_mistake_in_daglake_toml_is_reported_at_its_line(
    make_project: ProjectFactory,
) -> None:
    found = problems_of(
        make_project,
        {
            "daglake.toml": """
        [checks."final.products"]
        not_nul = ["id"]
        not_null = [
          "id",
          3,
        ]
        unique = []
        accepted_values = { status = "active" }
        relationships = { supplier_id = "suppliers" }
        row_count = { min = 10, max = 1, kind = "row_count" }
        expression = ["price >", "1; DROP TABLE x"]
        freshness = { column = "updated_at", max_age = "soon" }
        reconcile = { key = "id" }
        severity = "fatal"
        warn = ["uniq"]

        [[checks."final.products".checks]]
        kind = "nonsense"

        [[checks."final.products".checks]]
        kind = "unique"
        colums = ["a"]

        [checks."products"]
        not_null = ["id"]
    """
        },
    )
    expected = [
        "daglake.toml:2: final.products: unknown key 'not_nul' (known: not_null, unique",
        "daglake.toml:5: final.products: not_null column must be a column name (a non-empty string), not 3",
        "daglake.toml:7: final.products: unique must be a list of columns or column lists",
        "daglake.toml:8: final.products: accepted_values must be a non-empty list",
        "daglake.toml:9: final.products: relationships target must be 'dataset.table.column', not 'suppliers'",
        "daglake.toml:10: final.products: row_count max (1) is less than min (10)",
        "daglake.toml:10: final.products: unknown key 'kind' for a row_count check",
        "daglake.toml:11: final.products: expression must be a SQL condition: cannot parse 'price >': Required keyword: 'expression' missing for GT",
        "daglake.toml:11: final.products: expression must be a SQL condition: '1; DROP TABLE x' is not a single condition",
        "daglake.toml:12: final.products: max_age must be a duration",
        "daglake.toml:13: final.products: a reconcile check needs 'table'",
        "daglake.toml:14: final.products: severity must be 'error' or 'warn', not 'fatal'",
        "daglake.toml:15: final.products: warn lists unknown kind 'uniq'",
        "daglake.toml:18: final.products: unknown check kind 'nonsense'",
        "daglake.toml:20: final.products: a unique check needs 'columns'",
        "daglake.toml:22: final.products: unknown key 'colums' for a unique check",
        "daglake.toml:24: checks must be under [checks.\"dataset.table\"], not 'products'",
    ]
    assert_reported(found, expected)


def assert_reported(found: list[str], expected: list[str]) -> None:
    """Each expected message prefix matches exactly one problem found, and nothing else is found."""
    left = list(found)
    for start in sorted(expected, key=len, reverse=True):
        match = next((m for m in left if m.startswith(start)), None)
        assert match is not None, f"{start!r} not in\n" + "\n".join(found)
        left.remove(match)
    assert left == []


def test_mistakes_in_files_beside_tasks_and_in_sql_checks(make_project: ProjectFactory) -> None:
    found = problems_of(
        make_project,
        {
            "res/final/products.sql": "SELECT 1 AS id",
            "res/final/products.checks.yml": "not_null: [id]\nunique: [id\nrow_count: {}\n",
            "res/final/order_lines.sql": "SELECT 1 AS id",
            "res/final/order_lines.checks.toml": 'not_null = ["id"]\nunique = ["id"\n',
            "res/final/order_lines.checks.yaml": "checks:\n  - kind: unique\n    columns: [a]\n    severity: loud\n  - just text\nnot_null: [a]\nnot_null: [b]\n",
            "res/final/prices.checks.yml": "not_null: [id]\n",
            "checks/broken.sql": "SELECT FROM WHERE (",
            "checks/two.sql": "SELECT 1;\nDELETE FROM final.products WHERE TRUE",
            "checks/none.sql": "-- severity: maybe\nSELECT 1 AS x",
            "checks/bad_table.sql": "-- table: products\nSELECT * FROM final.products",
        },
    )
    assert_reported(
        found,
        [
            "checks/bad_table.sql:1: -- table: must name 'dataset.table', not 'products'",
            "checks/broken.sql:1:13: SQL syntax error: expected a table name but got 'WHERE'",
            "checks/none.sql:1: severity must be 'error' or 'warn', not 'maybe'",
            "checks/none.sql:2: the check reads no table: name the table it checks with '-- table: dataset.table'",
            "checks/two.sql:2: a check file must hold exactly one query (SELECT or WITH) returning the failing rows",
            "res/final/order_lines.checks.toml:2: invalid TOML: Unclosed array",
            "res/final/order_lines.checks.yaml:4: final.order_lines: severity must be 'error' or 'warn', not 'loud'",
            "res/final/order_lines.checks.yaml:5: final.order_lines: each entry of checks must be a table with a kind",
            "res/final/order_lines.checks.yaml:7: duplicate key 'not_null'",
            "res/final/prices.checks.yml: checks file beside no SQL task (expected prices.sql in the same folder)",
            "res/final/products.checks.yml:3:10: invalid YAML: expected ',' or ']', but got ':'",
        ],
    )


def test_checks_files_in_yaml_are_read_from_the_parse_cache_when_unchanged(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unchanged project imports no PyYAML: a YAML checks file's document, lines and
    problems come from the parse cache, the same as reading it; one JSON cannot give back
    (a date) is read each time."""
    import daglake.checks.load
    from daglake.sql.cache import AnalysisCache

    root = make_project(
        {
            "res/final/products.sql": "SELECT 1 AS id",
            "res/final/products.checks.yml": "not_null: [id]\nunique: [id]\nnot_null: [name]\n",
            "res/final/order_lines.sql": "SELECT 1 AS id",
            "res/final/order_lines.checks.yaml": "checks:\n  - kind: freshness\n    column: updated_at\n    max_age: 1d\n    note: 2024-01-01\n",
        }
    )
    config = load_config(root, [])
    tasks = {"res/final/products.sql": "final.products", "res/final/order_lines.sql": "final.order_lines"}

    def load() -> tuple[list[CheckSpec], list[str]]:
        cache = AnalysisCache(root / "cache.json")
        specs, problems = load_checks(root, config, tasks, cache)
        cache.save()
        return specs, sorted(str(p) for p in problems)

    first = load()
    assert "res/final/products.checks.yml:3: duplicate key 'not_null'" in first[1]
    read: list[str] = []
    real = daglake.checks.load.read_yaml

    def counted(text: str, path: str) -> Any:
        read.append(path)
        return real(text, path)

    monkeypatch.setattr(daglake.checks.load, "read_yaml", counted)
    assert load() == first  # the same checks, the same problems at the same lines
    assert read == ["res/final/order_lines.checks.yaml"]  # the date cannot be kept as JSON
    (root / "res/final/products.checks.yml").write_text("not_null: [id]\n")
    specs, problems = load()
    assert "res/final/products.checks.yml" in read and not any("products.checks.yml" in p for p in problems)
    assert [s.name for s in specs if s.table == "final.products"] == ["final.products: not_null(id)"]


def test_the_same_check_declared_twice(make_project: ProjectFactory) -> None:
    specs, problems = declared(
        make_project,
        {
            "daglake.toml": '[checks."final.products"]\nnot_null = ["id"]\n',
            "res/final/products.sql": "SELECT 1 AS id",
            "res/final/products.checks.yml": "not_null: [id]\n",
        },
    )
    assert [s.path for s in specs] == ["daglake.toml"]
    assert problems == [
        "res/final/products.checks.yml:1: check 'final.products: not_null(id)' is declared twice "
        "(first at daglake.toml:2); give one a name"
    ]


def test_no_checks_without_declarations(make_project: ProjectFactory) -> None:
    assert declared(make_project, {"res/final/products.sql": "SELECT 1 AS id"}) == ([], [])
    assert set(KIND_KEYS) == set(KINDS) - {"sql"}


def test_fragments_are_translated_from_the_project_dialect(make_project: ProjectFactory) -> None:
    spec = one(make_project, 'expression = ["SAFE_CAST(name AS INT64) IS NULL"]')
    assert "TRY_CAST" in check_sql(spec) and "SAFE_CAST" in check_sql(spec, "bigquery")


def test_results_are_json(make_project: ProjectFactory, con: duckdb.DuckDBPyConnection) -> None:
    result = run(con, one(make_project, 'not_null = ["name"]'))
    data = json.loads(json.dumps(result.as_dict()))
    assert data["sample"][0]["updated_at"] == "2024-01-01T06:00:00"
    assert {
        k: data[k] for k in ("name", "table", "kind", "severity", "passed", "failing", "error")
    } == {
        "name": "final.products: not_null(name)",
        "table": "final.products",
        "kind": "not_null",
        "severity": "error",
        "passed": False,
        "failing": 1,
        "error": None,
    }


def test_mistakes_in_a_toml_beside_a_task_point_at_their_lines(
    make_project: ProjectFactory,
) -> None:
    specs, problems = declared(
        make_project,
        {
            "res/final/products.sql": "SELECT 1 AS id",
            "res/final/products.checks.toml": """
            not_null = ["id"]

            [freshness]
            column = "updated_at"
            max_age = 36

            [[checks]]
            kind = "accepted_values"
            column = "status"
            values = []

            [[checks]]
            kind = "relationships"
            column = "supplier_id"
            to = "raw.suppliers.id"
            severity = "warn"
        """,
        },
    )
    assert problems == [
        'res/final/products.checks.toml:5: final.products: max_age must be a duration such as "36h", "2d" or "1d12h" (units s, m, h, d, w), not 36',
        "res/final/products.checks.toml:10: final.products: accepted_values must be a non-empty list of strings, numbers or booleans (quote dates), not []",
    ]
    assert [(s.name, s.line, s.severity) for s in specs] == [
        ("final.products: not_null(id)", 1, "error"),
        ("final.products: relationships(supplier_id -> raw.suppliers.id)", 12, "warn"),
    ]


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["id", "a.b.c", "raw.x", "36h", "warn", "error", "x > 1", *KIND_KEYS])
)
KEYS = st.sampled_from(
    [
        *TABLE_KEYS,
        "column",
        "columns",
        "values",
        "to",
        "min",
        "max",
        "expression",
        "max_age",
        "table",
        "key",
        "other_key",
        "kind",
        "name",
        "where",
        "id",
    ]
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


NAMES = st.text(min_size=1, max_size=8) | st.sampled_from(
    ["id", "select", "unit price", 'a"b', "`x`"]
)
PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "column": NAMES,
    "columns": st.lists(NAMES, min_size=1, max_size=3),
    "values": st.lists(
        st.integers() | st.floats() | st.text(max_size=5) | st.booleans(), max_size=3
    ),
    "to": st.sampled_from(["raw.x.id", "p.raw.x.id", "x.id"]) | st.text(max_size=10),
    "min": st.integers(-1, 10**20),
    "max": st.integers(-1, 10**20),
    "expression": st.sampled_from(["x > 1", "a IS NULL OR b", "SAFE_CAST(x AS INT64) = 1"])
    | st.text(max_size=10),
    "where": st.sampled_from(["x > 1", "status = 'a'"]) | st.text(max_size=10),
    "max_age": st.sampled_from(["36h", "1d12h", "0.5s", "5000000w"]) | st.text(max_size=5),
    "table": st.sampled_from(["raw.x", "p.raw.x", "x"]) | st.text(max_size=8),
    "key": NAMES | st.lists(NAMES, max_size=2),
    "other_key": NAMES | st.lists(NAMES, max_size=2),
    "severity": st.sampled_from(["warn", "error", "loud"]),
    "name": st.text(max_size=8),
}
ENTRY = st.one_of(
    *[
        st.fixed_dictionaries(
            {"kind": st.just(kind)},
            optional={k: PARAMS[k] for k in (*keys, "severity", "where", "name")},
        )
        for kind, keys in KIND_KEYS.items()
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5), st.lists(ENTRY, max_size=4))
@example(body={"row_count": {"min": None}}, entries=[])  # once an exception: no bound at all
def test_any_declaration_gives_specs_or_problems_never_an_exception(
    body: dict[str, Any], entries: list[dict[str, Any]]
) -> None:
    """Whatever a user writes, declaring never raises, and whatever is accepted builds a query."""
    if entries:
        body["checks"] = entries
    specs, problems = declare(
        "final.products", body, Origin("x.checks.yml", Lines({}), (), "bigquery")
    )
    assert all(p.path == "x.checks.yml" for p in problems)
    for spec in specs:
        assert spec.kind in KINDS and spec.severity in ("error", "warn")
        assert check_sql(spec, now=NOW).startswith("SELECT")


def test_the_documented_examples_are_valid(make_project: ProjectFactory) -> None:
    blocks = re.findall(r"::\n\n((?: {7}.*\n|\n)+)", daglake.checks.__doc__ or "")
    toml, yml, *_ = (textwrap.dedent(b) for b in blocks)
    specs, problems = declared(make_project, {"daglake.toml": toml})
    assert (len(specs), problems) == (11, [])
    specs, problems = declared(
        make_project, {"daglake.toml": "", "res/final/products.checks.yml": yml}
    )
    assert (len(specs), problems) == (3, [])
