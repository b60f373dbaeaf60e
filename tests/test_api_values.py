"""``POST /{table}`` stores a value exactly or refuses it with 422 naming the column (SPEC §9,
§12): one raw table with a column of each type, the real app served by uvicorn in this process
over real HTTP, the real DuckDB warehouse behind it. A property test throws generated values
at every column; a table of cases pins down the messages."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_support import TOKEN, wait_for

COLUMNS = {
    "i64": "BIGINT", "i32": "INTEGER", "f64": "DOUBLE", "f32": "REAL", "num": "DECIMAL(38, 9)",
    "flag": "BOOLEAN", "s": "VARCHAR", "d": "DATE", "ts": "TIMESTAMP", "tstz": "TIMESTAMPTZ", "b": "BLOB",
}
TABLE = "CREATE OR REPLACE TABLE raw.typed (\n  " + ",\n  ".join(f"{c} {t}" for c, t in COLUMNS.items()) + "\n)\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from daglake.runner import run

    root = tmp_path_factory.mktemp("values") / "typed"
    (root / "db_init").mkdir(parents=True)
    (root / "daglake.toml").write_text('[project]\nname = "typed"\ndialect = "duckdb"\n')
    (root / "db_init" / "typed.sql").write_text(TABLE)
    assert run(root).state == "success"
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[httpx.Client]:
    import uvicorn

    from daglake.api.app import create_app
    from daglake.api.protocol import protocol_class

    root = project
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    app = create_app(root, token=TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http=protocol_class()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        wait_for(lambda: server.started, "the server to start")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
            yield c
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def post(client: httpx.Client, column: str, escaped: str) -> httpx.Response:
    """``POST /typed?<column>=<escaped>``, the value already percent-encoded as sent."""
    return client.post(f"/typed?{column}={escaped}")


def refused(response: httpx.Response, column: str) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()["error"]
    assert body["code"] == "invalid_value" and body["column"] == column, body
    assert f"column {column!r}" in body["message"]
    return str(body["message"])


def same(column: str, sent: str, stored: Any) -> bool:
    """Whether the stored value (as the API answers it) is exactly the value sent."""
    kind = COLUMNS[column]
    if kind in ("BIGINT", "INTEGER", "DECIMAL(38, 9)"):
        return decimal.Decimal(str(stored)) == decimal.Decimal(sent)
    if kind in ("DOUBLE", "REAL"):
        return isinstance(stored, float) and decimal.Decimal(repr(stored)) == decimal.Decimal(sent)
    if kind == "BOOLEAN":
        return stored is (sent.lower() in ("true", "1"))
    if kind == "DATE":
        return dt.date.fromisoformat(stored) == dt.date.fromisoformat(sent)
    if kind in ("TIMESTAMP", "TIMESTAMPTZ"):
        moment = dt.datetime.fromisoformat(sent.upper().replace(" ", "T"))
        if kind == "TIMESTAMP":
            expected = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
            return dt.datetime.fromisoformat(stored) == expected
        return dt.datetime.fromisoformat(stored) == (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    if kind == "BLOB":
        return base64.b64decode(stored) == base64.b64decode(sent, validate=True)
    return bool(stored == sent)


# --- generated values ------------------------------------------------------------------------------

TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")  # encodable, no NUL


@st.composite
def rfc3339(draw: st.DrawFn, *, zone: bool) -> str:
    moment = draw(st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31)))
    text = moment.date().isoformat() + draw(st.sampled_from("Tt ")) + moment.strftime("%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    if zone or draw(st.booleans()):
        text += draw(st.sampled_from(["Z", "z", "+00:00"]) | st.builds("{}{:02d}:{:02d}".format,
                     st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)))
    return text


# values each column must take (the right type, in range, exactly representable)
FITTING: dict[str, st.SearchStrategy[str]] = {
    "i64": st.integers(-(2**63), 2**63 - 1).map(str),
    "i32": st.integers(-(2**31), 2**31 - 1).map(str),
    "f64": st.floats(allow_nan=False, allow_infinity=False).map(repr),
    "f32": st.floats(width=32, allow_nan=False, allow_infinity=False).map(repr),
    "num": st.decimals(min_value=-(10**29) + 1, max_value=10**29 - 1, places=9, allow_nan=False).map(str),
    "flag": st.sampled_from(["true", "false", "1", "0", "TRUE", "False"]),
    "s": st.text(TEXT, max_size=40),
    "d": st.dates().map(dt.date.isoformat),
    "ts": rfc3339(zone=False),
    "tstz": rfc3339(zone=True),
    "b": st.binary(max_size=20).map(lambda raw: base64.b64encode(raw).decode()),
}
# values that may or may not fit: numbers too big or too precise, near-misses of every format
ANYTHING = st.one_of(
    *FITTING.values(),
    st.text(TEXT, max_size=12),
    st.integers(-(2**130), 2**130).map(str),
    st.floats().map(repr),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["1.5", "1e400", "1e-400", " 7", "0x10", "nan", "inf", "+5", "1_000", "1.0", "2024-1-1",
                     "2024-02-30", "2024-01-01T10:00:00+25:00", "2024-01-01T24:00:00", "yes", "AAE=", "A", ""]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(sorted(COLUMNS)), data=st.data())
def test_every_value_is_stored_exactly_or_refused_naming_its_column(
    client: httpx.Client, column: str, data: st.DataObject
) -> None:
    fits = data.draw(st.booleans(), label="fitting")
    sent = data.draw(FITTING[column] if fits else ANYTHING, label="value")
    response = post(client, column, quote(sent, safe=""))
    if response.status_code == 201:
        stored = response.json()[column]
        assert same(column, sent, stored), f"{column} {COLUMNS[column]}: sent {sent!r}, stored {stored!r}"
    else:
        assert not fits, f"{column} {COLUMNS[column]} refused {sent!r}: {response.text}"
        refused(response, column)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=1, max_size=8))
def test_bytes_that_are_not_utf8_or_contain_nul_are_refused(client: httpx.Client, raw: bytes) -> None:
    response = post(client, "s", quote_from_bytes(raw, safe=""))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert "not valid UTF-8" in refused(response, "s")
        return
    if "\x00" in text:
        assert "NUL" in refused(response, "s")
    else:
        assert response.status_code == 201 and response.json()["s"] == text


# --- the messages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "sent", "why"),
    [
        ("i64", "1.5", "is not an integer"),
        ("i64", "9223372036854775808", "is out of range"),
        ("i32", "2147483648", "is out of range"),
        ("f64", "1e400", "is out of range"),
        ("f64", "1.00000000000000001", "would lose precision (stored as 1.0)"),
        ("f64", "1e-400", "would lose precision (stored as 0.0)"),
        ("f64", "nan", "is not a number"),
        ("f32", "0.1", "cannot be stored exactly in a 32-bit float"),
        ("num", "0.0000000001", "has more than 9 decimal places"),
        ("num", "1e29", "is out of range"),
        ("flag", "yes", "is not a boolean (true, false, 1 or 0)"),
        ("d", "2024-02-30", "is not a date of the calendar"),
        ("d", "2024-2-3", "is not a date (YYYY-MM-DD)"),
        ("ts", "2024-01-01T10:00:00+24:00", "has an offset beyond"),
        ("ts", "2024-01-01T10:00:00.1234567", "has more than 6 fractional second digits"),
        ("ts", "2024-01-01", "is not a timestamp (RFC 3339"),
        ("b", "not base64!", "is not base64"),
    ],
)
def test_a_refused_value_names_its_column_and_why(client: httpx.Client, column: str, sent: str, why: str) -> None:
    assert why in refused(post(client, column, quote(sent, safe="")), column)


@pytest.mark.parametrize(
    ("column", "sent", "stored"),
    [
        ("ts", "2024-05-06t10:11:12.5z", "2024-05-06T10:11:12.500000"),
        ("ts", "2024-05-06T10:11:12-02:30", "2024-05-06T12:41:12"),  # offsets become UTC
        ("tstz", "2024-05-06 10:11:12", "2024-05-06T10:11:12+00:00"),  # no offset: UTC
        ("ts", "0999-01-01T00:00:00", "0999-01-01T00:00:00"),
        ("num", "-12.5", -12.5),
        ("i64", "+007", 7),
        ("b", "AP8=", "AP8="),
    ],
)
def test_accepted_spellings_are_stored_as_they_mean(client: httpx.Client, column: str, sent: str, stored: Any) -> None:
    response = post(client, column, quote(sent, safe=""))
    assert response.status_code == 201, response.text
    value = response.json()[column]
    assert (dt.datetime.fromisoformat(value) == dt.datetime.fromisoformat(stored)) if column == "tstz" else value == stored


def test_a_query_string_over_the_limit_is_413_json(client: httpx.Client) -> None:
    from daglake.api.query import MAX_QUERY_BYTES

    response = post(client, "s", "x" * (MAX_QUERY_BYTES + 10))
    assert response.status_code == 413 and response.json()["error"]["code"] == "query_too_long"
    assert post(client, "s", "x" * (MAX_QUERY_BYTES - 10)).status_code == 201


# --- POST /run takes the CLI's options ----------------------------------------------------------------


def test_post_run_takes_date_select_and_full_refresh(client: httpx.Client) -> None:
    response = client.post("/run", params={"wait": "true", "date": "2024-03-01", "select": "raw.typed", "full_refresh": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["logical_date"]) == ("success", "2024-03-01")
    assert [(t["name"], t["state"]) for t in body["tasks"]] == [("raw.typed", "success")]  # reloaded: full refresh
    again = client.post("/run", params={"wait": "true", "exclude": "raw.typed"}).json()
    assert again["state"] == "success" and again["tasks"] == []
    started = client.post("/run", params={"select": "raw.typed"})  # a selector that matches: 202 at once
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "running"
    run_id = started.json()["run_id"]
    ended = wait_for(lambda: (r := client.get(f"/runs/{run_id}").json())["state"] != "running" and r, "the run to end")
    assert ended["state"] == "success"
    wait_for(lambda: client.get("/health").json()["run_in_progress"] is None or None, "the run lock to be let go")


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"colour": "red"}, "unknown_option", "POST /run takes no option 'colour'"),
        ({"fullrefresh": "true"}, "unknown_option", "it takes: wait, date, select, exclude, full_refresh"),
        ({"date": "2024-1-1"}, "invalid_option", "date: not a date in the form YYYY-MM-DD"),
        ({"date": "2024-02-30"}, "invalid_option", "date: not a date"),
        ({"full_refresh": "perhaps"}, "invalid_request", "full_refresh"),
        ({"wait": "true", "select": "no.such"}, "invalid_option", "'no.such' matches no task"),
        ({"select": "no.such"}, "invalid_option", "'no.such' matches no task"),  # refused before the 202
        ({"exclude": "no.such"}, "invalid_option", "'no.such' matches no task"),
    ],
)
def test_post_run_refuses_options_it_does_not_take(client: httpx.Client, params: dict[str, str], code: str, words: str) -> None:
    response = client.post("/run", params=params)
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == code and words in body["message"], body
    assert client.get("/health").json()["run_in_progress"] is None  # nothing started


def test_a_run_whose_process_died_is_shown_failed_not_running(client: httpx.Client, project: Path) -> None:
    """What ``kill -9`` leaves behind: a run recorded ``running`` with a task running, and no
    process holding the run lock. The API shows it failed, as ``daglake runs`` does."""
    from daglake.events import RUNNING, TaskRun
    from daglake.state import RunRecord, StateStore

    store = StateStore(f"sqlite:///{project / '.daglake' / 'state.db'}")
    try:
        record = RunRecord(id="20260101T000000-dead00", project="typed", logical_date="2026-01-01", selection={},
                           state=RUNNING, pid=2**22 + 1)
        store.begin_run(record, [TaskRun(name="raw.typed", path="db_init/typed.sql", state=RUNNING)])
    finally:
        store.close()
    shown = client.get(f"/runs/{record.id}").json()
    assert shown["state"] == "failed" and "died" in shown["error"]
    assert [(t["name"], t["state"]) for t in shown["tasks"]] == [("raw.typed", "failed")]
