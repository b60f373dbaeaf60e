"""The courier-chat generator: seeded, streaming, realistic; its monthly folders run through the
example pipeline month by month give the table computed independently from its files, and
exactly its invalid records end in quarantine."""

from __future__ import annotations

import gzip
import json
import shutil
import tracemalloc
from pathlib import Path

import pytest

from daglake.examples.conversations import generate as generator
from daglake.examples.conversations import invalid
from daglake.examples.conversations.generate import Options, generate, main
from tests.conversations_support import (
    MESSAGES,
    ORDERS,
    Delivered,
    conversations,
    copy_example,
    expected_conversations,
    lake,
    quarantined,
    run_pipeline,
)


def records(path: Path) -> list[str]:
    text = (
        gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ).decode()
    if text.startswith("["):
        return [json.dumps(element) for element in json.loads(text)]
    return text.splitlines()


def test_the_same_seed_gives_the_same_files(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate(tmp_path / name, Options(messages=3000, months=2, seed=seed))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jsonl"))
    assert [str(f) for f in files] == [
        "2024-01/customer_courier_chat_messages.jsonl",
        "2024-01/orders.jsonl",
        "2024-02/customer_courier_chat_messages.jsonl",
        "2024-02/orders.jsonl",
    ]
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
    assert (tmp_path / "a" / files[0]).read_bytes() != (tmp_path / "c" / files[0]).read_bytes()


def test_it_writes_the_requested_messages_with_every_kind_of_oddity(tmp_path: Path) -> None:
    summary = generate(tmp_path, Options(messages=20_000, months=3, seed=1, bad_share=0.05))
    lines = [
        line
        for month in sorted(tmp_path.iterdir())
        for line in records(month / f"{MESSAGES}.jsonl")
    ]
    assert len(lines) == summary.messages == 20_000
    assert summary.duplicates > 0 and summary.late_messages > 0 and summary.orders_without_city > 0
    kinds = {
        kind.removeprefix("messages: ") for kind in summary.bad_kinds if kind.startswith("messages")
    }
    assert kinds == set(invalid.MESSAGE_KINDS)
    assert sum(summary.bad_kinds.values()) == summary.bad_messages + summary.bad_orders
    months = {
        line.partition('"messageSentTime":"')[2][:7] for line in lines if line.endswith('Z"}')
    }
    assert {"2024-01", "2024-02", "2024-03"} <= months


def test_memory_does_not_grow_with_the_number_of_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "PAST_ORDERS", 200)
    monkeypatch.setattr(generator, "REDELIVERIES", 100)
    monkeypatch.setattr(generator, "CHUNK", 1000)
    peaks = []
    for messages in (5_000, 30_000):
        tracemalloc.start()
        generate(tmp_path / str(messages), Options(messages=messages, months=2, seed=3))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        shutil.rmtree(tmp_path / str(messages))
    assert peaks[1] < 1.5 * peaks[0]


@pytest.mark.parametrize("options", ["--format ndjson", "--format array --gzip"])
def test_its_months_run_through_the_pipeline(tmp_path: Path, options: str) -> None:
    data = tmp_path / "data"
    assert (
        main(f"--messages 4000 --months 3 --seed 5 --out {data} --bad-share 0.03 {options}".split())
        == 0
    )
    summary = generate(
        tmp_path / "again",
        Options(
            messages=4000,
            months=3,
            seed=5,
            bad_share=0.03,
            format=options.split()[1],
            gzip="gzip" in options,
        ),
    )
    project = copy_example(tmp_path / "conversations")
    messages: list[Delivered] = []
    orders: list[Delivered] = []
    for month in sorted(data.iterdir()):
        date = f"{month.name}-28"
        delivered = sorted(month.iterdir())
        for path in delivered:
            shutil.copy(path, project / "input" / path.name)
            source = messages if path.name.startswith(MESSAGES) else orders
            source.append(Delivered(date, path.name, records(path)))
        run_pipeline(project, date)
        for path in delivered:
            (project / "input" / path.name).unlink()
    assert len(quarantined(project, MESSAGES)) == summary.bad_messages
    assert len(quarantined(project, ORDERS)) == summary.bad_orders
    [(raw,)] = lake(project, "raw.customer_courier_chat_messages", "SELECT count(*) FROM t")
    assert raw == summary.messages - summary.bad_messages
    assert conversations(project) == expected_conversations(messages, orders)
