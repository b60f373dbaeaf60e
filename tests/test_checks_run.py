"""Checks as tasks in a run: blocking, warnings, stored results, selection, validation."""

from __future__ import annotations

import pytest

from daglake.errors import ValidationError
from daglake.history import run_details
from daglake.runner import RunOptions, run
from tests.conftest import ProjectFactory

PROJECT = {
    "daglake.toml": """
        [checks."tmp.orders"]
        not_null = ["customer"]
        unique = ["id"]
        warn = ["unique"]
        row_count = { min = 1 }
    """,
    "res/tmp/orders.sql": "SELECT 1 AS id, 'ann' AS customer UNION ALL SELECT 2, 'bob' UNION ALL SELECT 2, 'cy'",
    "res/tmp/customers.sql": "SELECT 'ann' AS name UNION ALL SELECT 'bob'",
    "res/tmp/customers.checks.yml": "relationships: {name: tmp.orders.customer}\n",
    "res/final/report.sql": "SELECT COUNT(*) AS n FROM tmp.orders",
    "res/final/other.sql": "SELECT COUNT(*) AS n FROM tmp.customers",
    "checks/no_negative_ids.sql": "-- severity: error\nSELECT * FROM tmp.orders WHERE id < 0",
}


def test_warnings_report_and_errors_block(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    summary = run(root)
    states = {name: task.state for name, task in summary.tasks.items()}
    assert states == {
        "tmp.orders": "success",
        "tmp.customers": "success",
        "tmp.orders: not_null(customer)": "success",
        "tmp.orders: unique(id)": "warned",
        "tmp.orders: row_count": "success",
        "tmp.customers: relationships(name -> tmp.orders.customer)": "success",
        "checks/no_negative_ids.sql": "success",
        "final.report": "success",
        "final.other": "success",
    }
    assert summary.state == "success"
    unique = summary.tasks["tmp.orders: unique(id)"].check
    assert unique is not None
    assert (unique["passed"], unique["failing"], unique["sample"]) == (False, 1, [{"id": 2, "rows": 2}])


def test_a_failed_error_check_blocks_the_tables_readers(make_project: ProjectFactory) -> None:
    root = make_project(
        PROJECT
        | {
            "res/tmp/orders.sql": "SELECT 1 AS id, 'ann' AS customer UNION ALL SELECT 2, NULL "
            "UNION ALL SELECT 3, 'bob'"
        }
    )
    summary = run(root)
    assert summary.state == "failed"
    failed = summary.tasks["tmp.orders: not_null(customer)"]
    assert failed.state == "failed"
    assert failed.error == "check failed: 1 failing row"
    assert failed.location == "daglake.toml:2"
    assert summary.tasks["final.report"].state == "upstream_failed"
    assert summary.tasks["tmp.orders"].state == "failed"  # its new version was not published
    assert summary.tasks["tmp.orders: row_count"].state == "success"  # judged the same new version
    assert summary.tasks["tmp.orders: unique(id)"].state == "upstream_failed"  # a warning: not audited
    # tmp.customers' relationships check reads the refused tmp.orders, so it and final.other
    # (which waits for tmp.customers' error checks) are blocked; tmp.customers itself is built
    assert summary.tasks["tmp.customers"].state == "success"
    assert summary.tasks["final.other"].state == "upstream_failed"
    stored = {t.name: t for t in run_details(root, summary.run_id).tasks}
    check = stored["tmp.orders: not_null(customer)"].check
    assert check is not None
    assert check["sample"] == [{"id": 2, "customer": None}]
    assert check["severity"] == "error"


def test_selecting_a_table_brings_its_checks(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT)
    run(root)
    chosen = set(run(root, RunOptions(select=["tmp.orders"])).tasks)
    assert chosen == {
        "tmp.orders",
        "tmp.orders: not_null(customer)",
        "tmp.orders: unique(id)",
        "tmp.orders: row_count",
        "checks/no_negative_ids.sql",
    }


def test_a_check_on_a_table_nothing_builds_is_a_problem(make_project: ProjectFactory) -> None:
    root = make_project(PROJECT | {"daglake.toml": '[checks."tmp.ghost"]\nnot_null = ["x"]\n'})
    with pytest.raises(ValidationError) as caught:
        run(root)
    assert any(
        str(p).startswith("daglake.toml:2: table tmp.ghost does not exist") for p in caught.value.problems
    )
