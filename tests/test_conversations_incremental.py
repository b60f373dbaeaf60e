"""The courier-chat example's incremental invariant, on random events split into random monthly
batches: running the months one by one gives the table a full recomputation gives (the
pipeline's own ``--full-refresh``, one run over every file, and a pure-Python computation),
re-running a month changes nothing, and a bad record never stops a run and always ends in
quarantine."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conversations_support import (
    MESSAGE_TYPES,
    MESSAGES,
    ORDER_TYPES,
    ORDERS,
    Delivered,
    conversations,
    copy_example,
    deliver,
    expected_conversations,
    invalid_positions,
    lake,
    quarantined,
    run_pipeline,
)

STAGES = ("ACCEPTED", "PICKING_UP", "DELIVERING", "DELIVERED")
CITIES = ("BCN", "MAD", "LIS")
SUFFIXES = (".jsonl", ".json", ".ndjson.gz", ".json.gz")
LAKE_TABLES = (
    "raw/customer_courier_chat_messages",
    "raw/orders",
    "quarantine/customer_courier_chat_messages",
    "quarantine/orders",
    "curated/customer_courier_conversations",
    "curated/customer_courier_conversations_batches",
)


@dataclass
class Month:
    messages: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    suffix: str = ".jsonl"


def random_months(seed: int) -> list[Month]:
    """Conversations of a few orders, with ties on time, exact duplicates, late events (any
    message may arrive in any month), orders missing or changing city, and invalid records."""
    rng = random.Random(seed)
    months = [Month(suffix=rng.choice(SUFFIXES)) for _ in range(rng.randint(2, 4))]

    def some_month() -> Month:
        return rng.choice(months)

    for order_id in range(1, rng.randint(6, 16)):
        courier, customer = rng.choice((101, 102, 103)), 200 + order_id
        for _ in range(rng.randint(1, 5)):
            by_courier = rng.random() < 0.5
            text = json.dumps(
                {
                    "senderAppType": "Courier App" if by_courier else "Customer Android",
                    "customerId": customer,
                    "fromId": courier if by_courier else customer,
                    "toId": customer if by_courier else courier,
                    "chatStartedByMessage": rng.random() < 0.3,
                    "orderId": order_id,
                    "orderStage": rng.choice(STAGES),
                    "courierId": courier,
                    "messageSentTime": f"2024-01-0{rng.randint(1, 2)}T10:0{rng.randint(0, 3)}:{rng.choice('03')}0Z",
                }
            )
            some_month().messages.append(text)
            if rng.random() < 0.15:
                some_month().messages.append(text)
        for _ in range(rng.choices((0, 1, 2), (2, 6, 2))[0]):
            some_month().orders.append(
                json.dumps({"orderId": order_id, "cityCode": rng.choice(CITIES)})
            )
    for number, month in enumerate(months):
        array = month.suffix.removesuffix(".gz") == ".json"
        # one invalid record per month at least, so no two months deliver identical files
        month.messages.append(bad_message(rng, number, array))
        month.messages += [
            bad_message(rng, rng.randint(1, 9), array) for _ in range(rng.randint(0, 3))
        ]
        month.orders.append(json.dumps({"orderId": 100 + number}))  # no city: invalid
        for lines in (month.messages, month.orders):
            rng.shuffle(lines)
    return months


def bad_message(rng: random.Random, order_id: int, array: bool) -> str:
    record: dict[str, Any] = {
        "senderAppType": "Courier App",
        "customerId": 200 + order_id,
        "fromId": 900 + order_id,
        "toId": 200 + order_id,
        "chatStartedByMessage": False,
        "orderId": order_id,
        "orderStage": "ACCEPTED",
        "courierId": 101,
        "messageSentTime": "2024-01-01T10:00:00Z",
    }  # a sender who is neither the courier nor the customer
    kind = rng.randrange(6 if array else 7)
    if kind == 1:
        record["fromId"] = record["courierId"]
        record["messageSentTime"] = rng.choice(("yesterday", "2024-02-30T10:00:00Z"))
    elif kind == 2:
        record["fromId"] = record["courierId"]
        del record[rng.choice(list(MESSAGE_TYPES))]
    elif kind == 3:
        record["fromId"] = record["courierId"]
        record["chatStartedByMessage"] = "no"
    elif (
        kind == 4
    ):  # not an object
        return json.dumps(list(record.values()) if array else ",".join(map(str, record.values())))
    elif kind == 5:
        record["fromId"] = record["courierId"]
        record["orderId"] = None
    elif kind == 6:
        return json.dumps(record)[:40]  # broken JSON: only in line-delimited files
    return json.dumps(record)


def files_of(month: Month, tag: str = "") -> dict[str, list[str]]:
    return {
        f"{MESSAGES}{tag}{month.suffix}": month.messages,
        f"{ORDERS}{tag}{month.suffix}": month.orders,
    }


def snapshot(project: Path) -> dict[str, Any]:
    """Everything a run may change in the lake: the table versions and what they hold."""
    return {
        "versions": {t: os.readlink(project / "lake" / t) for t in LAKE_TABLES},
        "conversations": conversations(project),
        "quarantine": (quarantined(project, MESSAGES), quarantined(project, ORDERS)),
        "batches": lake(
            project,
            "curated.customer_courier_conversations_batches",
            "SELECT * FROM t ORDER BY ALL",
        ),
    }


def on(engine: str, request: pytest.FixtureRequest) -> str:
    """``engine``, with the test session's SparkSession started when it is Spark."""
    if engine == "spark":
        request.getfixturevalue("spark")
    return engine


# Spark costs seconds a run: one seed, of two months (a JSON array, then gzipped lines), its
# monthly batches and re-runs
@pytest.mark.parametrize(
    ("engine", "seed"), [("duckdb", 1), ("duckdb", 2), ("duckdb", 3), ("spark", 3)]
)
def test_monthly_batches_equal_a_full_recomputation(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str, seed: int
) -> None:
    engine = on(engine, request)
    months = random_months(seed)
    project = copy_example(tmp_path / "monthly")
    messages: list[Delivered] = []
    orders: list[Delivered] = []
    for number, month in enumerate(months, start=1):
        # two batches a day, sharing ingest_date (the second one's files named apart)
        date, tag = f"2024-{(number + 1) // 2:02d}-28", "" if number % 2 else "-b"
        deliver(project, files_of(month, tag))
        run_pipeline(project, date, engine=engine)
        messages.append(Delivered(date, f"{MESSAGES}{tag}{month.suffix}", month.messages))
        orders.append(Delivered(date, f"{ORDERS}{tag}{month.suffix}", month.orders))
        assert conversations(project) == expected_conversations(messages, orders)
        assert {q[:3] for q in quarantined(project, MESSAGES)} == invalid_positions(
            messages, MESSAGE_TYPES
        )
        assert {q[:3] for q in quarantined(project, ORDERS)} == invalid_positions(
            orders, ORDER_TYPES
        )

        if engine == "spark" and number < len(months):
            continue  # Spark costs seconds a run: the re-runs of the last month only
        before = snapshot(project)
        run_pipeline(project, date, engine=engine)  # the same month again
        run_pipeline(project, f"2024-{number:02d}-29", engine=engine)  # and its files delivered again
        assert snapshot(project) == before

    if engine == "spark":
        return  # a full run on Spark is the first month's and test_spark_conversations.py's
    expected = expected_conversations(messages, orders)
    run_pipeline(project, "2024-12-31", full_refresh=True, engine=engine)
    assert conversations(project) == expected

    at_once = copy_example(tmp_path / "at_once")
    deliver(at_once, {k: v for n, m in enumerate(months) for k, v in files_of(m, f"-{n}").items()})
    run_pipeline(at_once, "2024-12-31", engine=engine)
    assert conversations(at_once) == expected


@pytest.mark.parametrize("engine", ["duckdb"])  # on Spark: the late cities of the property test above
def test_a_city_delivered_later_moves_the_order_and_empties_the_null_partition(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    engine = on(engine, request)
    project = copy_example(tmp_path / "conversations")
    first = json.dumps(
        {
            "senderAppType": "Courier App",
            "customerId": 2,
            "fromId": 1,
            "toId": 2,
            "chatStartedByMessage": True,
            "orderId": 7,
            "orderStage": "ACCEPTED",
            "courierId": 1,
            "messageSentTime": "2024-01-01T10:00:00Z",
        }
    )
    deliver(project, {f"{MESSAGES}.jsonl": [first]})
    run_pipeline(project, "2024-01-31", engine=engine)
    assert [r[:2] for r in conversations(project)] == [(7, None)]
    deliver(project, {"orders.jsonl": [json.dumps({"orderId": 7, "cityCode": "BCN"})]})
    summary = run_pipeline(project, "2024-02-29", engine=engine)
    assert summary.tasks["curated.customer_courier_conversations"].metrics["orders_recomputed"] == 1
    assert [r[:2] for r in conversations(project)] == [(7, "BCN")]
    table = project / "lake" / "curated" / "customer_courier_conversations"
    assert sorted(p.name for p in table.iterdir() if p.is_dir()) == ["city_code=BCN"]


def test_full_refresh_recomputes_every_order(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "conversations")
    month = random_months(1)[0]
    deliver(project, files_of(month))
    first = run_pipeline(project, "2024-01-31")
    orders = first.tasks["curated.customer_courier_conversations"].metrics["orders_recomputed"]
    again = run_pipeline(project, "2024-01-31", full_refresh=True)
    assert (
        again.tasks["curated.customer_courier_conversations"].metrics["orders_recomputed"]
        == orders
        > 0
    )
