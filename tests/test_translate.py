"""BigQuery SQL that real projects use must run unchanged on DuckDB with the same result."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from daglake.sql.parse import parse_file
from daglake.sql.translate import translate, translate_with_warnings

SETUP = (
    "CREATE TABLE raw.t (id INT64, name STRING) AS "
    "SELECT 1, 'a' UNION ALL SELECT 2, 'a' UNION ALL SELECT 3, 'b';\n"
)


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
        ("SELECT SAFE_DIVIDE(id, id - 1) AS v FROM raw.t", [(1.5,), (2.0,), (None,)]),
        ("SELECT IFNULL(NULL, 3) AS v", [(3,)]),
        ("SELECT DATE(TIMESTAMP '2024-01-01 23:30:00 UTC', 'Europe/Paris') AS v", [(date(2024, 1, 2),)]),
        (
            "SELECT TIMESTAMP_DIFF(TIMESTAMP '2024-01-01 10:00:00', TIMESTAMP '2024-01-01 09:59:00.5', SECOND) AS s, "
            "TIMESTAMP_DIFF(TIMESTAMP '2001-02-01 01:00:00', TIMESTAMP '2001-02-01 00:00:01', HOUR) AS h",
            [(59, 0)],  # whole units elapsed, not boundaries crossed
        ),
        (
            "SELECT DATE_DIFF(DATE '2024-03-01', DATE '2024-02-01', DAY) AS d, "
            "DATE_DIFF(DATE '2017-10-15', DATE '2017-10-14', WEEK) AS w",
            [(29, 1)],  # DATE_DIFF counts boundaries; weeks start on Sunday
        ),
        (
            "SELECT PARSE_DATE('%Y%m%d', '20240131') AS p, FORMAT_DATE('%Y-%m', DATE '2024-01-31') AS f, "
            "SAFE.PARSE_DATE('%Y%m%d', 'nope') AS bad",
            [(date(2024, 1, 31), "2024-01", None)],
        ),
        ("SELECT id FROM raw.t WHERE REGEXP_CONTAINS(name, r'^b')", [(3,)]),
        (
            "SELECT SPLIT('a,b,,c', ',') AS parts, ARRAY_LENGTH(SPLIT('a,b', ',')) AS n",
            [(["a", "b", "", "c"], 2)],
        ),
        ("SELECT x FROM UNNEST(GENERATE_ARRAY(1, 5)) AS x WHERE x > 3", [(4,), (5,)]),
        ("SELECT s.a, s.b FROM (SELECT STRUCT(1 AS a, 'x' AS b) AS s)", [(1, "x")]),
        (
            "SELECT * FROM raw.t QUALIFY ROW_NUMBER() OVER (PARTITION BY name ORDER BY id DESC) = 1",
            [(2, "a"), (3, "b")],
        ),
        ("SELECT id FROM raw.t EXCEPT DISTINCT SELECT 1", [(2,), (3,)]),
        ("SELECT * EXCEPT (id) FROM raw.t", [("a",), ("a",), ("b",)]),
        ("SELECT * REPLACE (UPPER(name) AS name) FROM raw.t WHERE id = 3", [(3, "B")]),
    ],
)
def test_bigquery_constructs_run_on_duckdb(query: str, expected: list[tuple[Any, ...]]) -> None:
    con = run_bigquery(SETUP + query)
    assert rows(con, "tmp.result") == expected


@pytest.mark.parametrize(
    ("query", "expected", "expected_types"),
    [
        (  # an array of structs unnests into one column per field; later tuples take the names
            "SELECT * FROM UNNEST([STRUCT(1 AS a, 'x' AS b), (2, 'y')])",
            [(1, "x"), (2, "y")],
            ["BIGINT", "VARCHAR"],
        ),
        (
            "SELECT a, b FROM UNNEST([STRUCT(1 AS a, 'x' AS b), (2, 'y')]) WHERE a = 2",
            [(2, "y")],
            ["BIGINT", "VARCHAR"],
        ),
        (
            "SELECT s.b, pos FROM UNNEST([STRUCT(1 AS a, 'x' AS b), (2, 'y')]) AS s WITH OFFSET AS pos",
            [("x", 0), ("y", 1)],
            ["VARCHAR", "BIGINT"],
        ),
        (  # WITH OFFSET numbers from 0
            "SELECT x, pos FROM UNNEST(['a', 'b']) AS x WITH OFFSET AS pos",
            [("a", 0), ("b", 1)],
            ["VARCHAR", "BIGINT"],
        ),
        (
            "SELECT t.id, c, i FROM raw.t, UNNEST(SPLIT(t.name || 'z', '')) AS c WITH OFFSET AS i "
            "WHERE t.id = 3",
            [(3, "b", 0), (3, "z", 1)],
            ["BIGINT", "VARCHAR", "BIGINT"],
        ),
        (
            "SELECT t.id, c, o FROM raw.t LEFT JOIN UNNEST(IF(t.id = 1, ['q'], [])) AS c "
            "WITH OFFSET AS o ON TRUE",
            [(1, "q", 0), (2, None, None), (3, None, None)],
            ["BIGINT", "VARCHAR", "BIGINT"],
        ),
        (
            "SELECT FORMAT('%s (%d)', name, id) AS v FROM raw.t WHERE id = 3",
            [("b (3)",)],
            ["VARCHAR"],
        ),
        (
            "SELECT FORMAT('%.2f|%5d|%-3s|%%|%t|%t|%t', 3.14159, 42, 'ab', 2.5, NULL, NUMERIC '1.50') AS v",
            [("3.14|   42|ab |%|2.5|NULL|1.5",)],
            ["VARCHAR"],
        ),
        (  # Sunday = 1; WEEK counts Sunday-started weeks from 0; ISO week and year
            "SELECT d, EXTRACT(DAYOFWEEK FROM d), EXTRACT(WEEK FROM d), EXTRACT(WEEK(MONDAY) FROM d), "
            "EXTRACT(ISOWEEK FROM d), EXTRACT(ISOYEAR FROM d) "
            "FROM UNNEST([DATE '2024-01-06', DATE '2024-01-07', DATE '2024-12-30', DATE '2021-01-01']) AS d",
            [
                (date(2021, 1, 1), 6, 0, 0, 53, 2020),
                (date(2024, 1, 6), 7, 0, 1, 1, 2024),
                (date(2024, 1, 7), 1, 1, 1, 1, 2024),
                (date(2024, 12, 30), 2, 52, 53, 1, 2025),
            ],
            ["DATE", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT"],
        ),
        (
            "SELECT EXTRACT(MILLISECOND FROM ts), EXTRACT(MICROSECOND FROM ts), EXTRACT(DATE FROM ts) "
            "FROM (SELECT TIMESTAMP '2024-01-01 10:00:05.123456' AS ts)",
            [(123, 123456, date(2024, 1, 1))],
            ["BIGINT", "BIGINT", "DATE"],
        ),
        (  # date functions on a DATE return a DATE (2024-05-15 is a Wednesday)
            "SELECT DATE_TRUNC(DATE '2024-05-15', MONTH), DATE_TRUNC(DATE '2024-05-15', QUARTER), "
            "DATE_TRUNC(DATE '2024-05-15', YEAR), DATE_TRUNC(DATE '2024-05-15', WEEK), "
            "DATE_TRUNC(DATE '2024-05-15', WEEK(MONDAY)), DATE_TRUNC(DATE '2024-05-15', ISOYEAR), "
            "DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH), DATE_SUB(DATE '2024-03-01', INTERVAL 1 DAY), "
            "LAST_DAY(DATE '2024-02-10')",
            [
                (
                    date(2024, 5, 1),
                    date(2024, 4, 1),
                    date(2024, 1, 1),
                    date(2024, 5, 12),
                    date(2024, 5, 13),
                    date(2024, 1, 1),
                    date(2024, 2, 29),
                    date(2024, 2, 29),
                    date(2024, 2, 29),
                )
            ],
            ["DATE"] * 9,
        ),
        (  # the same on columns, whose type the translation cannot see; TIMESTAMPs stay TIMESTAMPs
            "WITH v AS (SELECT DATE '2024-05-15' AS d, TIMESTAMP '2024-05-15 10:30:00' AS ts) "
            "SELECT DATE_TRUNC(d, MONTH), DATE_ADD(d, INTERVAL 1 DAY), DATE_TRUNC(ts, MONTH), "
            "TIMESTAMP_TRUNC(ts, DAY), TIMESTAMP_ADD(ts, INTERVAL 1 HOUR) FROM v",
            [
                (
                    date(2024, 5, 1),
                    date(2024, 5, 16),
                    datetime(2024, 5, 1, tzinfo=UTC),
                    datetime(2024, 5, 15, tzinfo=UTC),
                    datetime(2024, 5, 15, 11, 30, tzinfo=UTC),
                )
            ],
            ["DATE", "DATE"] + ["TIMESTAMP WITH TIME ZONE"] * 3,
        ),
        (  # the "latest value" idiom
            "SELECT name, ARRAY_AGG(id ORDER BY id DESC LIMIT 1)[OFFSET(0)] AS latest FROM raw.t GROUP BY name",
            [("a", 2), ("b", 3)],
            ["VARCHAR", "BIGINT"],
        ),
        (
            "SELECT ARRAY_AGG(v IGNORE NULLS ORDER BY id DESC LIMIT 2) AS v "
            "FROM (SELECT id, IF(id = 3, NULL, CONCAT(name, CAST(id AS STRING))) AS v FROM raw.t)",
            [(["a2", "a1"],)],
            ["VARCHAR[]"],
        ),
        (
            "SELECT ARRAY_AGG(id ORDER BY id)[SAFE_OFFSET(5)], ARRAY_AGG(id ORDER BY id)[ORDINAL(1)], "
            "ARRAY_AGG(id ORDER BY id)[OFFSET(2)], ARRAY_AGG(DISTINCT name IGNORE NULLS ORDER BY name) "
            "FROM raw.t",
            [(None, 1, 3, ["a", "b"])],
            ["BIGINT", "BIGINT", "BIGINT", "VARCHAR[]"],
        ),
        ("SELECT COUNTIF(id > 1) AS n FROM raw.t", [(2,)], ["BIGINT"]),
        (  # number literals are INT64 and FLOAT64
            "SELECT 1 AS i, 1.5 AS f, IF(id > 2, 1, 0) AS flag, [1, 2] AS arr, STRUCT(1 AS x) AS s "
            "FROM raw.t WHERE id = 3",
            [(1, 1.5, 1, [1, 2], {"x": 1})],
            ["BIGINT", "DOUBLE", "BIGINT", "BIGINT[]", "STRUCT(x BIGINT)"],
        ),
        (  # BigQuery prints FLOAT64 in the shortest form that reads back, NUMERIC without trailing 0s
            "SELECT CAST(12 AS STRING), CAST(TRUE AS STRING), CAST(1.5 AS STRING), "
            "CAST(CAST(3 AS FLOAT64) AS STRING), CAST(1 / 3 AS STRING), CAST(1e20 AS STRING), "
            "CAST(NUMERIC '10.50' AS STRING), CAST(NUMERIC '10' AS STRING)",
            [("12", "true", "1.5", "3", "0.33333333333333331", "1e+20", "10.5", "10")],
            ["VARCHAR"] * 8,
        ),
        (  # the same on columns of unknown type; FLOAT64 to INT64 rounds halves away from zero
            "SELECT CAST(f AS STRING), CAST(n AS STRING), CAST(i AS STRING), SAFE_CAST(s AS STRING), "
            "CAST(f AS INT64), CAST(-f AS INT64), CAST(s AS INT64) "
            "FROM (SELECT 2.5 AS f, CAST(1.10 AS NUMERIC) AS n, 7 AS i, '8' AS s)",
            [("2.5", "1.1", "7", "8", 3, -3, 8)],
            ["VARCHAR"] * 4 + ["BIGINT"] * 3,
        ),
    ],
)
def test_bigquery_results_and_types_on_duckdb(
    query: str, expected: list[tuple[Any, ...]], expected_types: list[str]
) -> None:
    con = run_bigquery(SETUP + query)
    assert rows(con, "tmp.result") == expected
    assert [t for _, t in types(con, "tmp.result")] == expected_types


@pytest.mark.parametrize(
    "elements",
    ["STRUCT(1, 'x'), (2, 'y')", "STRUCT(1, 'x'), STRUCT(2, 'y')", "STRUCT(1 AS p, 'x' AS q), (2, 'y')"],
)
def test_ddl_column_list_over_unnest_of_structs(elements: str) -> None:
    con = run_bigquery(
        f"CREATE OR REPLACE TABLE raw.pairs (a INT64, b STRING) AS SELECT * FROM UNNEST([{elements}])"
    )
    assert rows(con, "raw.pairs") == [(1, "x"), (2, "y")]
    assert types(con, "raw.pairs") == [("a", "BIGINT"), ("b", "VARCHAR")]


def test_current_date_is_utc() -> None:
    before = datetime.now(UTC).date()
    con = run_bigquery("SELECT CURRENT_DATE() AS today")
    after = datetime.now(UTC).date()
    assert rows(con, "tmp.result")[0][0] in (before, after)
    assert types(con, "tmp.result") == [("today", "DATE")]


def test_translation_warnings_are_returned_not_printed(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sql = SETUP + (
        "CREATE OR REPLACE TABLE final.latest PARTITION BY day CLUSTER BY name\n"
        "OPTIONS (description = 'storage hints DuckDB has no use for') AS\n"
        "SELECT name, day, ARRAY_AGG(id ORDER BY id DESC LIMIT 1)[OFFSET(0)] AS id\n"
        "FROM (SELECT *, DATE '2024-01-01' AS day FROM raw.t) GROUP BY name, day;\n"
        "SELECT name, FARM_FINGERPRINT(name) AS f, MAX(id IGNORE NULLS) AS m FROM raw.t GROUP BY name"
    )
    parsed = parse_file(sql, "bigquery")
    statements, warnings = translate_with_warnings(parsed, "bigquery", "duckdb", "tmp.result")
    assert translate(parsed, "bigquery", "duckdb", "tmp.result") == statements
    con = duckdb.connect()
    for schema in ("raw", "tmp", "final"):
        con.execute(f"CREATE SCHEMA {schema}")
    for _, statement in statements:
        con.execute(statement)

    assert rows(con, "final.latest") == [("a", date(2024, 1, 1), 2), ("b", date(2024, 1, 1), 3)]
    assert [t for _, t in types(con, "tmp.result")] == ["VARCHAR", "BIGINT", "BIGINT"]
    assert [line for line, _ in warnings] == [6, 6]
    assert "FARM_FINGERPRINT" in warnings[0][1]
    assert "IGNORE NULLS" in warnings[1][1]
    assert capsys.readouterr().err == ""
    assert caplog.records == []


def test_bare_query_becomes_its_table() -> None:
    con = run_bigquery("SELECT 1 AS one", default_output="final.things")
    assert rows(con, "final.things") == [(1,)]


def test_literal_rows_of_a_seed_insert_translate_as_the_rows_of_any_statement() -> None:
    """The rows of ``INSERT … VALUES`` are kept out of the rewrites (a big seed file's cost);
    the same rows in a query, which goes through every rewrite, give the same values."""
    rows = "(1, 'a', -2.5, DATE '2024-01-31', TIMESTAMP '2024-01-31 10:00:00+00', NULL, TRUE)"
    seed = (
        "CREATE TABLE raw.t (i INT64, s STRING, f FLOAT64, d DATE, ts TIMESTAMP, n STRING, b BOOL);\n"
        f"INSERT INTO raw.t (i, s, f, d, ts, n, b) VALUES {rows}, {rows.replace('1,', '2,', 1)}"
    )
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA raw")
    for _, sql in translate(parse_file(seed, "bigquery"), "bigquery", "duckdb", "raw.t"):
        connection.execute(sql)
    assert connection.execute("SELECT i, s, f, d, CAST(ts AS VARCHAR), n, b FROM raw.t ORDER BY i").fetchall() == [
        (1, "a", -2.5, date(2024, 1, 31), "2024-01-31 10:00:00+00", None, True),
        (2, "a", -2.5, date(2024, 1, 31), "2024-01-31 10:00:00+00", None, True),
    ]
    [(_, mixed)] = translate(parse_file("INSERT INTO raw.t (s) VALUES (CAST(1.5 AS STRING))", "bigquery"), "bigquery", "duckdb", "raw.t")
    assert "1.5" in mixed and mixed != "INSERT INTO raw.t (s) VALUES (CAST(1.5 AS TEXT))"  # a rewritten cast: not set aside
