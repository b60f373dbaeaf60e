"""The courier-chat example's table, column by column, on hand-written conversations: each
order below exercises one rule of the contract (SPEC §7)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from daglake.events import RunSummary
from daglake.runner import RunOptions, run
from tests.conversations_support import (
    COLUMNS,
    MESSAGES,
    Row,
    copy_example,
    deliver,
    lake,
    quarantined,
    run_pipeline,
)

COURIER, CUSTOMER = 100, 200


def at(clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2024-01-05T{clock}+00:00")


def message(
    order: int, by: str, clock: str, *, stage: str = "ACCEPTED", starts: bool = False, **extra: Any
) -> str:
    sender, receiver = (COURIER, CUSTOMER) if by == "courier" else (CUSTOMER, COURIER)
    record = {
        "senderAppType": "Courier App" if by == "courier" else "Customer iOS",
        "customerId": CUSTOMER,
        "fromId": sender,
        "toId": receiver,
        "chatStartedByMessage": starts,
        "orderId": order,
        "orderStage": stage,
        "courierId": COURIER,
        "messageSentTime": f"2024-01-05T{clock}Z",
    }
    return json.dumps(record | extra)


MESSAGE_LINES = [
    # 1: the courier writes first, the customer answers 90 s later
    message(1, "courier", "10:00:00", starts=True),
    message(1, "customer", "10:01:30", stage="PICKING_UP"),
    # 2: the customer writes first; the courier answers twice
    message(2, "customer", "11:00:00", starts=True),
    message(2, "courier", "11:00:45"),
    message(2, "courier", "11:05:00", stage="DELIVERED"),
    # 3: nobody answers the courier
    message(3, "courier", "12:00:00", starts=True),
    message(3, "courier", "12:03:00", stage="ARRIVING"),
    # 4 and 5: both write in the first second; chatStartedByMessage says who started
    message(4, "courier", "13:00:00"),
    message(4, "customer", "13:00:00", starts=True),
    message(5, "courier", "13:00:00", starts=True),
    message(5, "customer", "13:00:00"),
    # 6: two messages in the last second: the greatest stage by string order wins
    message(6, "courier", "14:00:00", starts=True),
    message(6, "customer", "14:10:00", stage="DELIVERED"),
    message(6, "courier", "14:10:00", stage="DELIVERING"),
    # 7: an exact duplicate counts once, a message differing in one field counts
    message(7, "customer", "15:00:00", starts=True),
    message(7, "customer", "15:00:00", starts=True),
    message(7, "courier", "15:02:00"),
    message(7, "courier", "15:02:00", stage="PICKING_UP"),
    # 8: not in any orders file: kept, without a city
    message(8, "courier", "16:00:00", starts=True),
    # 9: the latest message decides the stage, not the greatest stage overall
    message(9, "courier", "17:00:00", stage="PICKING_UP", starts=True),
    message(9, "customer", "17:30:00", stage="ACCEPTED"),
    # 10: a time with an offset is stored in UTC
    message(10, "courier", "20:00:00", starts=True, messageSentTime="2024-01-05T20:00:00+02:00"),
    message(10, "customer", "18:00:30"),
    # 11: a tie on the first message and nobody flagged as starter: courier, as documented
    message(11, "customer", "19:00:00"),
    message(11, "courier", "19:00:00"),
    # invalid records: quarantined, never counted
    message(1, "courier", "09:00:00", fromId=999),  # line 26: a third party writes into order 1
    message(12, "courier", "09:00:00", fromId=999),  # order 12 has no valid message at all
    '{"orderId": 1, "broken',
    message(1, "courier", "09:00:00", messageSentTime="yesterday"),
    json.dumps(
        {k: v for k, v in json.loads(message(1, "courier", "09:00:00")).items() if k != "courierId"}
    ),
    message(1, "courier", "09:00:00", chatStartedByMessage="yes"),
]
ORDER_LINES = [
    json.dumps({"orderId": n, "cityCode": "BCN" if n % 2 else "MAD"})
    for n in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11)
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunSummary]:
    root = copy_example(tmp_path_factory.mktemp("semantics") / "conversations")
    deliver(
        root,
        {f"{MESSAGES}.jsonl": MESSAGE_LINES, "orders.json": ORDER_LINES, "orders-none.jsonl": []},
    )
    return root, run_pipeline(root, "2024-01-31")


@pytest.fixture(scope="module")
def project(built: tuple[Path, RunSummary]) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def rows(project: Path) -> dict[int, dict[str, Any]]:
    found = lake(
        project, "curated.customer_courier_conversations", f"SELECT {', '.join(COLUMNS)} FROM t"
    )
    return {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in found}


def pick(row: dict[str, Any], *columns: str) -> Row:
    return tuple(row[c] for c in columns)


def test_the_table_has_exactly_the_contract_columns(project: Path) -> None:
    described = lake(project, "curated.customer_courier_conversations", "DESCRIBE SELECT * FROM t")
    assert {name: kind for name, kind, *_ in described} == {
        "order_id": "BIGINT",
        "city_code": "VARCHAR",
        "first_courier_message": "TIMESTAMP WITH TIME ZONE",
        "first_customer_message": "TIMESTAMP WITH TIME ZONE",
        "num_messages_courier": "BIGINT",
        "num_messages_customer": "BIGINT",
        "first_message_by": "VARCHAR",
        "conversation_started_at": "TIMESTAMP WITH TIME ZONE",
        "first_responsetime_delay_seconds": "BIGINT",
        "last_message_time": "TIMESTAMP WITH TIME ZONE",
        "last_message_order_stage": "VARCHAR",
    }


def test_one_row_per_order_with_valid_messages(rows: dict[int, dict[str, Any]]) -> None:
    assert sorted(rows) == list(range(1, 12))  # order 12 wrote only an invalid message


def test_courier_first(rows: dict[int, dict[str, Any]]) -> None:
    assert rows[1] == {
        "order_id": 1,
        "city_code": "BCN",
        "first_courier_message": at("10:00:00"),
        "first_customer_message": at("10:01:30"),
        "num_messages_courier": 1,
        "num_messages_customer": 1,
        "first_message_by": "courier",
        "conversation_started_at": at("10:00:00"),
        "first_responsetime_delay_seconds": 90,
        "last_message_time": at("10:01:30"),
        "last_message_order_stage": "PICKING_UP",
    }


def test_customer_first(rows: dict[int, dict[str, Any]]) -> None:
    row = rows[2]
    assert pick(
        row, "first_message_by", "conversation_started_at", "first_responsetime_delay_seconds"
    ) == ("customer", at("11:00:00"), 45)
    assert pick(row, "num_messages_courier", "num_messages_customer", "first_courier_message") == (
        2,
        1,
        at("11:00:45"),
    )
    assert pick(row, "last_message_time", "last_message_order_stage", "city_code") == (
        at("11:05:00"),
        "DELIVERED",
        "MAD",
    )


def test_no_reply_leaves_the_delay_null(rows: dict[int, dict[str, Any]]) -> None:
    row = rows[3]
    assert pick(row, "first_message_by", "first_customer_message", "num_messages_customer") == (
        "courier",
        None,
        0,
    )
    assert row["first_responsetime_delay_seconds"] is None
    assert pick(row, "num_messages_courier", "last_message_time", "last_message_order_stage") == (
        2,
        at("12:03:00"),
        "ARRIVING",
    )


def test_a_tie_on_the_first_message_goes_to_who_started_the_chat(
    rows: dict[int, dict[str, Any]],
) -> None:
    assert pick(rows[4], "first_message_by", "first_responsetime_delay_seconds") == ("customer", 0)
    assert pick(rows[5], "first_message_by", "first_responsetime_delay_seconds") == ("courier", 0)
    assert pick(rows[11], "first_message_by", "first_responsetime_delay_seconds") == ("courier", 0)


def test_a_tie_on_the_last_message_goes_to_the_greatest_stage(
    rows: dict[int, dict[str, Any]],
) -> None:
    assert pick(rows[6], "last_message_time", "last_message_order_stage") == (
        at("14:10:00"),
        "DELIVERING",
    )
    assert rows[9]["last_message_order_stage"] == "ACCEPTED"  # latest, though not greatest


def test_exact_duplicates_count_once(rows: dict[int, dict[str, Any]]) -> None:
    assert pick(rows[7], "num_messages_customer", "num_messages_courier") == (1, 2)
    assert pick(rows[7], "first_message_by", "first_responsetime_delay_seconds") == (
        "customer",
        120,
    )


def test_an_order_missing_from_orders_is_kept_in_the_null_partition(
    project: Path, rows: dict[int, dict[str, Any]]
) -> None:
    assert rows[8]["city_code"] is None
    partitions = sorted(
        p.name
        for p in (project / "lake/curated/customer_courier_conversations").iterdir()
        if p.is_dir()
    )
    assert partitions == ["city_code=BCN", "city_code=MAD", "city_code=__HIVE_DEFAULT_PARTITION__"]


def test_times_are_utc(rows: dict[int, dict[str, Any]]) -> None:
    assert pick(rows[10], "first_courier_message", "first_customer_message") == (
        at("18:00:00"),
        at("18:00:30"),
    )
    assert rows[10]["first_courier_message"].utcoffset() == dt.timedelta(0)


def test_invalid_records_are_quarantined_with_reason_and_position(project: Path) -> None:
    assert quarantined(project, MESSAGES) == {
        ("2024-01-31", f"{MESSAGES}.jsonl", 26, "sender is neither the courier nor the customer"),
        ("2024-01-31", f"{MESSAGES}.jsonl", 27, "sender is neither the courier nor the customer"),
        ("2024-01-31", f"{MESSAGES}.jsonl", 28, "bad JSON"),
        (
            "2024-01-31",
            f"{MESSAGES}.jsonl",
            29,
            "field messageSentTime: not a valid TIMESTAMP: yesterday",
        ),
        ("2024-01-31", f"{MESSAGES}.jsonl", 30, "missing field courierId"),
        (
            "2024-01-31",
            f"{MESSAGES}.jsonl",
            31,
            "field chatStartedByMessage: expected BOOL, got varchar",
        ),
    }
    [(records,)] = lake(project, "raw.customer_courier_chat_messages", "SELECT count(*) FROM t")
    assert records == len(MESSAGE_LINES) - 6


def test_checks_pass_and_the_missing_city_warns(built: tuple[Path, RunSummary]) -> None:
    summary = built[1]
    checks = {n: t for n, t in summary.tasks.items() if t.check is not None}
    assert len(checks) == 10
    warned = {n for n, t in checks.items() if t.state == "warned"}
    assert warned == {
        "curated.customer_courier_conversations: orders without a city (not in any orders file yet)"
    }
    [failing] = [t.check for t in checks.values() if t.state == "warned"]
    assert failing is not None and failing["failing"] == 1


def test_numbers_of_the_wrong_json_type_are_quarantined(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "conversations")
    lines = [
        message(1, "courier", "09:00:00", orderId="1"),
        message(2, "courier", "09:00:00", courierId=100.5),
        message(3, "courier", "09:00:00", toId=True),
    ]
    deliver(root, {f"{MESSAGES}.jsonl": lines})
    run_pipeline(root, "2024-01-31")
    assert {position for _, _, position, _ in quarantined(root, MESSAGES)} == {1, 2, 3}
    assert lake(root, "curated.customer_courier_conversations", "SELECT count(*) FROM t") == [(0,)]


def test_a_list_opening_a_line_delimited_file_loses_nothing(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "conversations")
    lines = ['["not", "an", "object"]', message(1, "courier", "09:00:00", starts=True)]
    deliver(root, {f"{MESSAGES}.jsonl": lines})
    run_pipeline(root, "2024-01-31")
    assert {(p, r) for _, _, p, r in quarantined(root, MESSAGES)} == {(1, "not a JSON object")}
    assert lake(root, "curated.customer_courier_conversations", "SELECT order_id FROM t") == [(1,)]


def test_the_reconciliation_check_finds_an_order_without_its_row(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "conversations")
    deliver(root, {f"{MESSAGES}.jsonl": MESSAGE_LINES, "orders.json": ORDER_LINES})
    assert run_pipeline(root, "2024-01-31").state == "success"
    table = root / "lake" / "curated" / "customer_courier_conversations"
    [lost] = [p for p in table.resolve().glob("city_code=*/*.parquet") if "BCN" in str(p)]
    lost.unlink()  # the rows of one city vanish from the published table
    check = "checks/message_counts_match_raw.sql"
    # the table changed behind daglake's back: its check would be skipped as unchanged
    summary = run(root, RunOptions(select=[check], force=[check], logical_date="2024-01-31"))
    result = summary.tasks[check].check
    assert summary.tasks[check].state == "failed" and result is not None
    assert {row["problem"] for row in result["sample"]} == {"an order with events has no row"}
