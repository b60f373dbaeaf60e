"""Ingestion: every record accepted or quarantined with its reason, nothing lost, no repeats."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daglake.engines.duckdb_json import _CANONICAL, typed_sql
from daglake.lake import Rule
from daglake.lake.json_schema import NOT_UTF8, RecordSchema
from daglake.lake.landing import land, manifest
from daglake.runner import RunOptions, run
from tests.conftest import ProjectFactory

PIPELINE = '''
from pathlib import Path

import daglake
from daglake.lake import Rule, ingest_json, land_and_pending

SCHEMA = {"orderId": "INT64", "fromId": "INT64", "courierId": "INT64", "customerId": "INT64",
          "sent": "TIMESTAMP", "text": "STRING", "urgent": "BOOL"}


@daglake.task(["raw.messages", "quarantine.messages"], zone="raw")
def messages(ctx):
    delivered = sorted((ctx.project_root / "input").glob("messages*"))
    files = land_and_pending(ctx, "chat", delivered, table="raw.messages", quarantine="quarantine.messages")
    ingest_json(
        ctx, files, table="raw.messages", quarantine="quarantine.messages", schema=SCHEMA,
        optional=["text"],
        rules=[Rule("sender is neither the courier nor the customer", "from_id IN (courier_id, customer_id)")],
    )
'''

GOOD = {"orderId": 1, "fromId": 10, "courierId": 10, "customerId": 20, "sent": "2019-08-19T08:01:47Z", "text": "hi", "urgent": False}


def ndjson(records: list[object]) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


@pytest.fixture
def project(make_project: ProjectFactory) -> Path:
    return make_project({"pipeline.py": PIPELINE})


def lake(root: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        base = root / "lake"
        sql = sql.replace("RAW", f"read_parquet('{base}/raw/messages/**/*.parquet', hive_partitioning=true)")
        sql = sql.replace("QUARANTINE", f"read_parquet('{base}/quarantine/messages/**/*.parquet', hive_partitioning=true)")
        return con.execute(sql).fetchall()


def test_each_bad_record_kind_lands_in_quarantine_with_its_reason(project: Path) -> None:
    (project / "input").mkdir()
    records: list[object] = [
        GOOD,
        "{not json",
        {k: v for k, v in GOOD.items() if k != "orderId"},
        GOOD | {"orderId": "abc"},
        GOOD | {"sent": "yesterday"},
        GOOD | {"fromId": 99},
        "",
        [1, 2],
        GOOD | {"orderId": 2, "text": None},
        GOOD | {"urgent": "yes"},
    ]
    (project / "input" / "messages-1.jsonl").write_text(ndjson(records))
    summary = run(project, RunOptions(logical_date="2024-01-31"))
    task = summary.tasks["raw.messages"]
    assert summary.state == "success", task.error
    assert task.metrics == {"input": 9, "accepted": 2, "quarantined": 7}
    assert lake(project, "SELECT order_id, from_id, sent, text, urgent, source_position FROM RAW ORDER BY 1") == [
        (1, 10, lake(project, "SELECT TIMESTAMPTZ '2019-08-19 08:01:47+00'")[0][0], "hi", False, 1),
        (2, 10, lake(project, "SELECT TIMESTAMPTZ '2019-08-19 08:01:47+00'")[0][0], None, False, 9),
    ]
    assert lake(project, "SELECT source_position, reason FROM QUARANTINE ORDER BY 1") == [
        (2, "bad JSON"),
        (3, "missing field orderId"),
        (4, "field orderId: expected INT64, got varchar"),
        (5, "field sent: not a valid TIMESTAMP: yesterday"),
        (6, "sender is neither the courier nor the customer"),
        (8, "not a JSON object"),
        (10, "field urgent: expected BOOL, got varchar"),
    ]
    [(file, day, record)] = lake(project, "SELECT source_file, ingest_date::VARCHAR, record FROM QUARANTINE WHERE source_position = 2")
    assert (file, day, record) == ("messages-1.jsonl", "2024-01-31", "{not json")


def test_arrays_gzip_and_a_malformed_array(project: Path) -> None:
    (project / "input").mkdir()
    with gzip.open(project / "input" / "messages-a.json.gz", "wt") as handle:
        json.dump([GOOD, GOOD | {"orderId": 2}], handle, indent=2)
    with gzip.open(project / "input" / "messages-b.jsonl.gz", "wt") as handle:
        handle.write(ndjson([GOOD | {"orderId": 3}]))
    (project / "input" / "messages-c.json").write_text(
        "[" + json.dumps(GOOD | {"orderId": 4}) + ",\n" + '{"orderId": 5, "broken": ' + "\n]"
    )
    summary = run(project)
    assert summary.state == "success", summary.tasks["raw.messages"].error
    assert summary.tasks["raw.messages"].metrics == {"input": 5, "accepted": 4, "quarantined": 1}
    assert lake(project, "SELECT source_file, order_id FROM RAW ORDER BY 2") == [
        ("messages-a.json.gz", 1),
        ("messages-a.json.gz", 2),
        ("messages-b.jsonl.gz", 3),
        ("messages-c.json", 4),
    ]
    assert lake(project, "SELECT source_file, source_position, reason FROM QUARANTINE") == [
        ("messages-c.json", 2, "bad JSON")
    ]


@pytest.mark.parametrize("compressed", [False, True])
def test_hostile_lines_keep_their_line_numbers(project: Path, compressed: bool) -> None:
    """CRLF endings, whitespace-only lines, a control character no reader may split on, bytes
    that are not UTF-8 and a number out of INT64's range: each line keeps its number."""
    latin1 = json.dumps(GOOD | {"orderId": 3, "text": "caf\u00e9"}).replace("\\u00e9", "\u00e9").encode("latin-1")
    lines = [
        json.dumps(GOOD).encode() + b"\r",
        b"  \t\r",
        json.dumps(GOOD | {"orderId": 2, "text": "a\x1fb"}).replace("\\u001f", "\x1f").encode(),
        latin1,
        json.dumps(GOOD | {"orderId": 2**63}).encode(),
        json.dumps(GOOD | {"orderId": 4}).encode(),
    ]
    content = b"\n".join(lines)  # no newline at the end
    (project / "input").mkdir()
    target = project / "input" / ("messages-x.jsonl.gz" if compressed else "messages-x.jsonl")
    target.write_bytes(gzip.compress(content) if compressed else content)
    summary = run(project)
    task = summary.tasks["raw.messages"]
    assert summary.state == "success", task.error
    assert task.metrics == {"input": 5, "accepted": 2, "quarantined": 3}
    assert lake(project, "SELECT source_position, order_id FROM RAW ORDER BY 1") == [(1, 1), (6, 4)]
    assert lake(project, "SELECT source_position, reason FROM QUARANTINE ORDER BY 1") == [
        (3, "bad JSON"),  # a raw control character in a string
        (4, NOT_UTF8),
        (5, f"field orderId: not an INT64 (out of range or not a whole number): {2**63}"),
    ]
    [(record,)] = lake(project, "SELECT record FROM QUARANTINE WHERE source_position = 4")
    assert '"text": "caf\ufffd"' in record


def test_batches_give_what_one_batch_gives(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daglake.lake import ingest

    (project / "input").mkdir()
    for n in range(4):
        (project / "input" / f"messages-{n}.jsonl").write_text(ndjson([GOOD | {"orderId": n}, "{bad", GOOD | {"orderId": 10 + n}]))
    monkeypatch.setattr(ingest, "BATCH_BYTES", 1)  # every file a batch of its own
    summary = run(project)
    assert summary.tasks["raw.messages"].metrics == {"input": 12, "accepted": 8, "quarantined": 4}
    assert [r[0] for r in lake(project, "SELECT order_id FROM RAW ORDER BY 1")] == [0, 1, 2, 3, 10, 11, 12, 13]
    assert lake(project, "SELECT source_file, source_position FROM QUARANTINE ORDER BY 1") == [
        (f"messages-{n}.jsonl", 2) for n in range(4)
    ]


def test_a_file_listed_twice_is_ingested_once(make_project: ProjectFactory) -> None:
    root = make_project({"pipeline.py": PIPELINE.replace("ingest_json(\n        ctx, files,", "ingest_json(\n        ctx, files + files,")})
    assert "files + files" in (root / "pipeline.py").read_text()
    (root / "input").mkdir()
    (root / "input" / "messages-1.jsonl").write_text(ndjson([GOOD]))
    summary = run(root)
    assert summary.tasks["raw.messages"].metrics == {"input": 1, "accepted": 1, "quarantined": 0}


def test_a_file_delivered_again_is_not_ingested_twice(project: Path) -> None:
    (project / "input").mkdir()
    (project / "input" / "messages-1.jsonl").write_text(ndjson([GOOD]))
    run(project, RunOptions(logical_date="2024-01-31"))
    again = run(project, RunOptions(logical_date="2024-02-29"))
    assert again.tasks["raw.messages"].metrics == {}  # nothing new to ingest
    (project / "input" / "messages-1.jsonl").write_text(ndjson([GOOD | {"orderId": 7}]))  # new content
    run(project, RunOptions(logical_date="2024-03-31"))
    assert lake(project, "SELECT ingest_date::VARCHAR, order_id FROM RAW ORDER BY 1") == [
        ("2024-01-31", 1),
        ("2024-03-31", 7),
    ]
    landed = manifest(project / "lake", "chat")
    assert [f.ingest_date for f in landed] == ["2024-01-31", "2024-03-31"]
    assert all((project / "lake" / f.path).read_text() for f in landed)


def test_a_file_copied_by_a_run_that_died_before_recording_it_lands_again(project: Path) -> None:
    (project / "input").mkdir()
    (project / "input" / "messages-1.jsonl").write_text(ndjson([GOOD]))
    orphan = project / "lake" / "landing" / "chat" / "ingest_date=2024-01-31" / "messages-1.jsonl"
    orphan.parent.mkdir(parents=True)
    orphan.write_text('{"half a cop')  # copied, then killed before the manifest listed it
    summary = run(project, RunOptions(logical_date="2024-01-31"))
    assert summary.tasks["raw.messages"].metrics == {"input": 1, "accepted": 1, "quarantined": 0}
    [landed] = manifest(project / "lake", "chat")
    assert landed.name == "messages-1.jsonl" and (project / "lake" / landed.path).read_text() == ndjson([GOOD])


def test_an_unchanged_delivery_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daglake.lake import landing

    delivered = tmp_path / "orders.jsonl"
    delivered.write_text(ndjson([GOOD]))
    land(tmp_path / "lake", "chat", [delivered], ingest_date="2024-01-01")
    hashed: list[Path] = []
    monkeypatch.setattr(landing, "_checksum", lambda path, *_: hashed.append(path) or "blake3:x")
    _, repeated = land(tmp_path / "lake", "chat", [delivered], ingest_date="2024-02-01")
    assert len(repeated) == 1 and hashed == []  # same name, size, mtime and inode
    os.utime(delivered, ns=(0, 0))  # touched: now it is read to compare its contents
    land(tmp_path / "lake", "chat", [delivered], ingest_date="2024-03-01")
    assert hashed[0] == delivered


def test_a_manifest_written_with_sha256_still_recognises_its_files(tmp_path: Path) -> None:
    delivered = tmp_path / "orders.jsonl"
    delivered.write_text(ndjson([GOOD]))
    [first], _ = land(tmp_path / "lake", "chat", [delivered], ingest_date="2024-01-01")
    assert first.checksum.startswith("blake3:")
    listing = tmp_path / "lake" / "landing" / "chat" / "_manifest.jsonl"
    record = json.loads(listing.read_text())
    record["sha256"] = hashlib.sha256(delivered.read_bytes()).hexdigest()
    del record["checksum"]
    listing.write_text(json.dumps(record) + "\n")  # as the first releases wrote it
    new, repeated = land(tmp_path / "lake", "chat", [delivered], ingest_date="2024-02-01")
    assert new == [] and [f.checksum for f in repeated] == ["sha256:" + record["sha256"]]


def test_files_landed_by_a_run_that_died_are_ingested_next_time(project: Path) -> None:
    delivered = project / "incoming.jsonl"
    delivered.write_text(ndjson([GOOD]))
    land(project / "lake", "chat", [delivered], ingest_date="2024-01-01")  # then the process died
    summary = run(project)
    assert summary.tasks["raw.messages"].metrics["accepted"] == 1
    assert lake(project, "SELECT source_file FROM RAW") == [("incoming.jsonl",)]


def test_empty_files_and_lists_in_line_files_lose_nothing(project: Path) -> None:
    (project / "input").mkdir()
    (project / "input" / "messages-empty.jsonl").write_text("")
    with gzip.open(project / "input" / "messages-empty.jsonl.gz", "wt") as handle:
        handle.write("")
    (project / "input" / "messages-list.jsonl").write_text(ndjson([[1, 2], GOOD]))
    (project / "input" / "messages-numbers.jsonl").write_text(
        ndjson([GOOD | {"orderId": "1"}, GOOD | {"orderId": 1.5}, GOOD | {"orderId": True}, GOOD | {"orderId": -3}])
    )
    summary = run(project)
    assert summary.state == "success", summary.tasks["raw.messages"].error
    assert summary.tasks["raw.messages"].metrics == {"input": 6, "accepted": 2, "quarantined": 4}
    assert lake(project, "SELECT source_file, order_id FROM RAW ORDER BY 1, 2") == [
        ("messages-list.jsonl", 1),
        ("messages-numbers.jsonl", -3),
    ]
    assert lake(project, "SELECT source_file, source_position, reason FROM QUARANTINE ORDER BY 1, 2") == [
        ("messages-list.jsonl", 1, "not a JSON object"),
        ("messages-numbers.jsonl", 1, "field orderId: expected INT64, got varchar"),
        ("messages-numbers.jsonl", 2, "field orderId: expected INT64, got double"),
        ("messages-numbers.jsonl", 3, "field orderId: expected INT64, got boolean"),
    ]
    again = run(project)  # the empty files were landed and do not block later runs
    assert again.state == "success"


def test_an_unreadable_gz_is_quarantined_whole_and_later_runs_go_on(project: Path) -> None:
    """A truncated, a corrupt and a not-really-gzip ``.gz``: each one quarantined record of
    position 0 naming the problem and its byte offset, the rest of the delivery ingested, the
    counts reconciled, and the next run ingests only what is new."""
    (project / "input").mkdir()
    packed = gzip.compress(ndjson([GOOD | {"orderId": n} for n in range(200)]).encode(), mtime=0)
    flipped = bytearray(packed)
    flipped[40] ^= 0xFF
    (project / "input" / "messages-good.jsonl").write_text(ndjson([GOOD, "{bad"]))
    (project / "input" / "messages-cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    (project / "input" / "messages-flip.jsonl.gz").write_bytes(bytes(flipped))
    (project / "input" / "messages-plain.json.gz").write_text(ndjson([GOOD]))
    summary = run(project, RunOptions(logical_date="2024-01-31"))
    task = summary.tasks["raw.messages"]
    assert summary.state == "success", task.error
    assert task.metrics == {"input": 5, "accepted": 1, "quarantined": 4, "unreadable_files": 3}
    rows = lake(project, "SELECT source_file, source_position, reason, record FROM QUARANTINE ORDER BY 1")
    assert rows[0][0] == "messages-cut.jsonl.gz" and rows[0][1:] == (
        0, f"truncated gzip data: the file ends at byte {len(packed) // 2}, inside the member that starts at byte 0", None
    )
    assert rows[1][0] == "messages-flip.jsonl.gz" and rows[1][1] == 0
    assert rows[1][2].startswith("corrupt gzip data (") and " at byte " in rows[1][2]
    assert 40 <= int(rows[1][2].rpartition(" ")[2]) < len(packed) and rows[1][3] is None  # where it shows
    assert rows[2] == ("messages-good.jsonl", 2, "bad JSON", "{bad")
    assert rows[3] == ("messages-plain.json.gz", 0, "not gzip data: the file does not start with a gzip header", None)
    log = (project / task.attempts[-1].log_path).read_text()
    assert "messages-cut.jsonl.gz: quarantined as a whole: truncated gzip data" in log

    (project / "input" / "messages-next.jsonl").write_text(ndjson([GOOD | {"orderId": 9}]))
    again = run(project, RunOptions(logical_date="2024-02-29"))
    assert again.state == "success", again.tasks["raw.messages"].error
    assert again.tasks["raw.messages"].metrics == {"input": 1, "accepted": 1, "quarantined": 0}


def test_timestamps_follow_rfc_3339(project: Path) -> None:
    """Lowercase ``t``/``z``, a space, no offset (UTC), offsets up to ±23:59 and fractions
    truncated to microseconds are times; an offset beyond ±23:59, hour 24, a date alone or a
    zone name are not, and the reason says which."""
    sent = [
        "2019-08-19t08:01:47z",
        "2019-08-19 08:01:47",
        "2019-08-19T09:01:47.1234569+01:00",
        "2019-08-19T08:01:47-23:59",
        "2019-08-19T08:01:47+24:00",
        "2019-08-19T08:01:47-25:30",
        "2019-08-19T24:00:00Z",
        "2019-08-19",
        "2019-08-19T08:01:47 UTC",
        "2019-02-30T08:01:47Z",
    ]
    (project / "input").mkdir()
    (project / "input" / "messages-t.jsonl").write_text(ndjson([GOOD | {"orderId": n, "sent": s} for n, s in enumerate(sent)]))
    summary = run(project)
    assert summary.state == "success", summary.tasks["raw.messages"].error
    assert lake(project, "SELECT order_id, strftime(sent, '%Y-%m-%d %H:%M:%S.%f') FROM RAW ORDER BY 1") == [
        (0, "2019-08-19 08:01:47.000000"),
        (1, "2019-08-19 08:01:47.000000"),
        (2, "2019-08-19 08:01:47.123456"),
        (3, "2019-08-20 08:00:47.000000"),
    ]
    offset = "field sent: not a valid TIMESTAMP (its UTC offset is beyond ±23:59): "
    assert lake(project, "SELECT source_position, reason FROM QUARANTINE ORDER BY 1") == [
        (5, offset + sent[4]),
        (6, offset + sent[5]),
        *[(n + 1, f"field sent: not a valid TIMESTAMP: {sent[n]}") for n in range(6, 10)],
    ]


@pytest.mark.parametrize("names", [("orders-a.jsonl", "orders-b.jsonl"), ("orders-b.jsonl", "orders-a.jsonl")])
def test_an_order_in_two_orders_files_of_one_run_gets_the_greatest_city_and_a_warning(
    tmp_path: Path, names: tuple[str, str]
) -> None:
    """Whatever the files are called, the city is the greatest code of the run's records for
    the order, and the warning check names the order, both cities and both files; a later run's
    record wins over it."""
    from tests.conversations_support import MESSAGES, copy_example, deliver, run_pipeline
    from tests.conversations_support import lake as lake_table

    root = copy_example(tmp_path / "conversations")
    message = json.dumps({
        "senderAppType": "Courier App", "customerId": 2, "fromId": 1, "toId": 2, "chatStartedByMessage": True,
        "orderId": 7, "orderStage": "ACCEPTED", "courierId": 1, "messageSentTime": "2024-01-05T10:00:00Z",
    })
    first, second = names
    deliver(root, {f"{MESSAGES}.jsonl": [message], first: [json.dumps({"orderId": 7, "cityCode": "MAD"})],
                   second: [json.dumps({"orderId": 7, "cityCode": "BCN"})]})
    summary = run_pipeline(root, "2024-01-31")
    assert lake_table(root, "curated.customer_courier_conversations", "SELECT order_id, city_code FROM t") == [(7, "MAD")]
    [warning] = [t for n, t in summary.tasks.items() if n.startswith("checks/orders_with_two_cities")]
    assert warning.state == "warned" and warning.check is not None
    assert [(r["city_code"], r["source_file"]) for r in warning.check["sample"]] == [
        ("BCN", second),
        ("MAD", first),
    ]
    later_orders = [json.dumps({"orderId": 7, "cityCode": "BCN"}), json.dumps({"orderId": 8, "cityCode": "LIS"})]
    deliver(root, {"orders-c.jsonl": later_orders})  # a later run's record wins
    later = run_pipeline(root, "2024-02-29")
    assert lake_table(root, "curated.customer_courier_conversations", "SELECT order_id, city_code FROM t") == [(7, "BCN")]
    assert [t.state for n, t in later.tasks.items() if n.startswith("checks/orders_with_two_cities")] == ["success"]


def test_a_large_file_read_in_parallel_keeps_every_line_number(project: Path) -> None:
    """DuckDB reads a file of many buffers on every thread; each record's position is still
    its line (blank lines and bad records scattered through the file)."""
    (project / "input").mkdir()
    lines = []
    for number in range(1, 300_001):
        if number % 9_973 == 0:
            lines.append("")
        elif number % 7_919 == 0:
            lines.append("{not json")
        else:
            lines.append(json.dumps(GOOD | {"orderId": number}))
    (project / "input" / "messages-big.jsonl").write_text("\n".join(lines) + "\n")
    summary = run(project)
    assert summary.state == "success", summary.tasks["raw.messages"].error
    assert lake(project, "SELECT count(*) FILTER (WHERE source_position <> order_id), count(*) FROM RAW") == [
        (0, 300_000 - 300_000 // 9_973 - 300_000 // 7_919 + 300_000 // (9_973 * 7_919))
    ]
    bad = [n for n in range(7_919, 300_001, 7_919) if n % 9_973]
    assert lake(project, "SELECT source_position FROM QUARANTINE ORDER BY 1") == [(n,) for n in bad]


def test_a_delivery_on_the_lake_file_system_is_linked_not_copied(tmp_path: Path) -> None:
    delivered = tmp_path / "input" / "a.jsonl"
    delivered.parent.mkdir()
    delivered.write_text(ndjson([GOOD]))
    [landed], _ = land(tmp_path / "lake", "chat", [delivered], ingest_date="2024-01-01")
    path = landed.absolute(tmp_path / "lake")
    assert path.stat().st_ino == delivered.stat().st_ino and path.read_text() == ndjson([GOOD])
    delivered.unlink()  # a delivery removed (or replaced) leaves the landed file as it was
    assert path.read_text() == ndjson([GOOD])


def _array(*elements: str, between: str = ",\n") -> str:
    return "[\n" + between.join(elements) + "\n]\n"


GOOD_2, MISTYPED = json.dumps(GOOD | {"orderId": 2}), json.dumps(GOOD | {"orderId": "x"})
PRETTY_2 = json.dumps(GOOD | {"orderId": 2}, indent=2)


@pytest.mark.parametrize(
    "text",
    [
        _array(json.dumps(GOOD), MISTYPED, "[1, 2]", GOOD_2) + "\n\n",  # one element a line: read as lines
        "\ufeff" + _array(json.dumps(GOOD), MISTYPED, "[1, 2]", GOOD_2),
        _array(json.dumps(GOOD), MISTYPED, "[1, 2]", GOOD_2, between="  ,\n  "),
        _array(json.dumps(GOOD), MISTYPED, "[\n1,\n2\n]", PRETTY_2),  # elements over lines
        _array(json.dumps(GOOD), MISTYPED, "[1, 2]", GOOD_2, between=",\n\n"),  # blank lines inside
        "[" + ", ".join([json.dumps(GOOD), MISTYPED, "[1, 2]", GOOD_2]) + "]",  # one line
    ],
    ids=["lines", "bom", "spaces", "pretty", "blank-lines", "one-line"],
)
def test_a_json_array_gives_its_elements_in_order_whatever_its_layout(project: Path, text: str) -> None:
    (project / "input").mkdir()
    (project / "input" / "messages-a.json").write_text(text, encoding="utf-8")
    summary = run(project)
    assert summary.state == "success", summary.tasks["raw.messages"].error
    assert lake(project, "SELECT source_position, order_id FROM RAW ORDER BY 1") == [(1, 1), (4, 2)]
    assert lake(project, "SELECT source_position, reason FROM QUARANTINE ORDER BY 1") == [
        (2, "field orderId: expected INT64, got varchar"),
        (3, "not a JSON object"),
    ]
    [(record,)] = lake(project, "SELECT record FROM QUARANTINE WHERE source_position = 2")
    assert record == MISTYPED


def test_files_of_any_name_are_their_own_partitions(project: Path) -> None:
    """Plain names are written straight into their partition folders, others by DuckDB's
    partitioned writer (which escapes them); a file of invalid records only has no raw partition."""
    (project / "input").mkdir()
    (project / "input" / "messages-plain.jsonl").write_text(ndjson([GOOD, "{bad"]))
    (project / "input" / "messages with spaces & more.jsonl").write_text(ndjson([GOOD | {"orderId": 2}]))
    (project / "input" / "messages-bad.jsonl").write_text(ndjson(["{bad"]))
    summary = run(project)
    assert summary.state == "success", summary.tasks["raw.messages"].error
    assert lake(project, "SELECT source_file, order_id, source_position FROM RAW ORDER BY 1") == [
        ("messages with spaces & more.jsonl", 2, 1),
        ("messages-plain.jsonl", 1, 1),
    ]
    assert lake(project, "SELECT source_file, source_position, reason FROM QUARANTINE ORDER BY 1") == [
        ("messages-bad.jsonl", 1, "bad JSON"),
        ("messages-plain.jsonl", 2, "bad JSON"),
    ]
    assert not list((project / "lake" / "raw" / "messages").glob("*/source_file=messages-bad.jsonl"))


CANONICAL_SCHEMA = RecordSchema.of(
    {"i": "INT64", "s": "STRING", "b": "BOOL", "t": "TIMESTAMP", "d": "DATE", "f": "FLOAT64", "n": "NUMERIC"},
    optional=["s", "f"],
    rules=[Rule("i is negative", "i >= 0")],
)
_JSON_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["5", "-3", "true", "2019-08-19T08:01:47Z", "2019-08-19t08:01:47.5z", "2019-08-19 08:01:47",
                     "2019-13-01T00:00:00Z", "2019-08-19T08:01:47+05:30", "2019-08-19", "2019-02-30", "a\"b\\c\n"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["i", "x"]), st.integers(), max_size=2),
)
# mostly the declared JSON type (so that most records are canonical), sometimes anything
_DECLARED = {
    "i": st.one_of(st.integers(min_value=-5, max_value=10**6), st.integers(min_value=2**62, max_value=2**64)),
    "s": st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8), st.none()),
    "b": st.booleans(), "t": st.sampled_from(["2019-08-19T08:01:47Z", "2019-08-19t08:01:47.123z", "2019-08-19T08:01:61Z"]),
    "d": st.sampled_from(["2019-08-19", "2019-02-30", "19-08-19"]),
    "f": st.one_of(st.sampled_from([0.5, -2.25, 10.0, None]), st.floats(allow_nan=False, allow_infinity=False)),
    "n": st.one_of(st.sampled_from([3, -7, 12.25, 0.1]), st.integers(min_value=-(10**30), max_value=10**30)),
}


@st.composite
def _records(draw: st.DrawFn) -> str:
    fields = list(CANONICAL_SCHEMA.fields)
    record = {f: draw(st.one_of(_DECLARED[f], _JSON_VALUES) if draw(st.integers(0, 9)) == 0 else _DECLARED[f]) for f in fields}
    if draw(st.integers(0, 6)) == 0:
        del record[draw(st.sampled_from(fields))]
    if draw(st.integers(0, 6)) == 0:
        record = dict(reversed(record.items()))
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=draw(st.booleans()))
    return draw(st.sampled_from([text, text, text, text.replace(",", ", "), text + " ", '{"i":1,' + text[1:]]))


def _lines(con: duckdb.DuckDBPyConnection, records: list[str]) -> None:
    """Table ``lines`` as the typing reads a file: record ``n`` at position ``n``; UTC session."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE lines AS SELECT i::BIGINT AS source_position, ($records::VARCHAR[])[i] AS record, "
        "NULL::VARCHAR AS problem FROM range(1, len($records::VARCHAR[]) + 1) t(i)",
        {"records": records},
    )


def _typed_rows(con: duckdb.DuckDBPyConnection, canonical: bool) -> list[tuple[object, ...]]:
    return con.execute(
        f"SELECT * FROM ({typed_sql(CANONICAL_SCHEMA, 'lines', canonical=canonical)}) ORDER BY source_position"
    ).fetchall()


@settings(max_examples=60, deadline=None)
@given(st.lists(_records(), min_size=1, max_size=25))
def test_canonical_records_are_typed_as_the_general_path_types_them(records: list[str]) -> None:
    """The fast path for records in canonical form (read once into native values, kept when
    DuckDB's JSON writer gives the text back) gives the same values, the same ``valid`` and
    the same kept text as the general path, for records of every JSON type, missing or
    reordered fields, blanks, escapes, huge numbers and bad times."""
    with duckdb.connect() as con:
        _lines(con, records)
        assert _typed_rows(con, canonical=True) == _typed_rows(con, canonical=False)


def test_records_in_canonical_form_take_the_fast_path() -> None:
    """The records the property above relies on to exercise the fast path are canonical: DuckDB
    writes them back byte for byte, good and bad values alike."""
    records = [
        '{"i":1,"s":"hi","b":false,"t":"2019-08-19T08:01:47Z","d":"2019-08-19","f":0.5,"n":12.25}',
        '{"i":-1,"s":null,"b":true,"t":"2019-08-19T08:01:61Z","d":"2019-02-30","f":null,"n":3}',
        '{"i":9223372036854775807,"s":"a\\"b\\\\c\\n","b":true,"t":"2019-08-19t08:01:47.5z","d":"2019-08-19","f":1.5,"n":-7}',
    ]
    structure = json.dumps({f: _CANONICAL[t] for f, t in CANONICAL_SCHEMA.fields.items()})
    with duckdb.connect() as con:
        same = con.execute(
            "SELECT list(to_json(from_json(r, $s))::VARCHAR = r) FROM unnest($r::VARCHAR[]) t(r)",
            {"s": structure, "r": records},
        ).fetchone()
        _lines(con, records)
        rows = _typed_rows(con, canonical=True)
    assert same == ([True, True, True],)
    assert [row[-1] for row in rows] == [True, False, True]  # -1 breaks the rule; 61 seconds and Feb 30 are no times
    assert rows[2][4] == 'a"b\\c\n' and rows[2][3] == 9223372036854775807
