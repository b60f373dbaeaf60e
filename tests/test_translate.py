"""BigQuery SQL that real projects use must run unchanged on DuckDB with the same result."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest

from daglake.sql.parse import parse_file
from daglake.sql.translate import translate


def run_bigquery(sql: str, default_output: str = "tmp.result") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for schema in ("raw", "tmp", "final"):
        con.execute(f"CREATE SCHEMA {schema}")
    parsed = parse_file(sql, "bigquery")
    assert parsed.errors == []
    for _, statement in translate(parsed, "bigquery", "duckdb", default_output):
        con.execute(statement)
    return con


def rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def types(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def test_ddl_column_list_names_and_types_the_result() -> None:
    con = run_bigquery(
        """
        CREATE OR REPLACE TABLE `raw.products` (id INT64, name STRING, price NUMERIC, ok BOOL) AS
        SELECT 1, 'shoe', 10.5, TRUE UNION ALL
        SELECT 2, 'hat', 3.123456789, FALSE
        """
    )
    assert types(con, "raw.products") == [
        ("id", "BIGINT"),
        ("name", "VARCHAR"),
        ("price", "DECIMAL(38,9)"),
        ("ok", "BOOLEAN"),
    ]
    assert rows(con, "raw.products") == [
        (1, "shoe", Decimal("10.5"), True),
        (2, "hat", Decimal("3.123456789"), False),
    ]


def test_ddl_column_list_with_nested_types_and_a_cte() -> None:
    con = run_bigquery(
        """
        CREATE OR REPLACE TABLE raw.items (id INT64, tags ARRAY<STRING>, size STRUCT<w FLOAT64, h FLOAT64>) AS
        WITH base AS (SELECT 1 AS id)
        SELECT id, ['a', 'b'], STRUCT(1.0 AS w, 2.0 AS h) FROM base
        UNION ALL SELECT 2, [], STRUCT(3.0, 4.0)
        """
    )
    assert rows(con, "raw.items") == [
        (1, ["a", "b"], {"w": 1.0, "h": 2.0}),
        (2, [], {"w": 3.0, "h": 4.0}),
    ]


def test_date_and_timestamp_columns() -> None:
    con = run_bigquery(
        """
        CREATE OR REPLACE TABLE raw.events (day DATE, at TIMESTAMP) AS
        SELECT DATE '2024-01-31', TIMESTAMP '2024-01-31 10:00:00 UTC'
        """
    )
    assert [t for _, t in types(con, "raw.events")] == ["DATE", "TIMESTAMP WITH TIME ZONE"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT SAFE_CAST('x' AS INT64) AS v", [(None,)]),
        ("SELECT SAFE_CAST('12' AS INT64) AS v", [(12,)]),
        ("SELECT name, COUNT(*) AS n FROM raw.t GROUP BY 1", [("a", 2), ("b", 1)]),
        (
            "SELECT name, ARRAY_AGG(STRUCT(id AS item, id * 2 AS twice) ORDER BY id) AS v "
            "FROM raw.t GROUP BY 1",
            [
                ("a", [{"item": 1, "twice": 2}, {"item": 2, "twice": 4}]),
                ("b", [{"item": 3, "twice": 6}]),
            ],
        ),
        ("SELECT t.name FROM `my-project.raw.t` AS t WHERE t.id = 3", [("b",)]),
        ("SELECT IF(id > 1, 'big', 'small') AS size FROM raw.t WHERE id = 1", [("small",)]),
        ("SELECT STRING_AGG(name, ',' ORDER BY id) AS names FROM raw.t", [("a,a,b",)]),
    ],
)
def test_bigquery_constructs_run_on_duckdb(query: str, expected: list[tuple[Any, ...]]) -> None:
    setup = "CREATE TABLE raw.t (id INT64, name STRING) AS SELECT 1, 'a' UNION ALL SELECT 2, 'a' UNION ALL SELECT 3, 'b';\n"
    con = run_bigquery(setup + query)
    assert rows(con, "tmp.result") == expected


def test_bare_query_becomes_its_table() -> None:
    con = run_bigquery("SELECT 1 AS one", default_output="final.things")
    assert rows(con, "final.things") == [(1,)]
