"""Invalid records of every kind a delivery may hold, made from valid ones."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

MESSAGE_FIELDS = (
    "senderAppType",
    "customerId",
    "fromId",
    "toId",
    "chatStartedByMessage",
    "orderId",
    "orderStage",
    "courierId",
    "messageSentTime",
)
MESSAGE_KINDS = (
    "bad JSON",
    "not an object",
    "missing field",
    "null field",
    "mistyped field",
    "unparseable time",
    "sender neither courier nor customer",
)
ORDER_KINDS = ("bad JSON", "not an object", "missing field", "mistyped field")
BAD_TIMES = ("yesterday", "2024-02-30T10:00:00Z", "2024-13-01T00:00:00Z", "10:61:00", "")


def message(rng: random.Random, line: str, *, array: bool) -> tuple[str, str]:
    """``(kind, text)``: the message made invalid in one of the ways real deliveries are. A
    broken line (bad JSON) only in line-delimited files, where it spoils that line alone; in an
    array it would make the rest of the file unreadable."""
    kinds = MESSAGE_KINDS[1:] if array else MESSAGE_KINDS
    kind = kinds[rng.randrange(len(kinds))]
    record: dict[str, Any] = json.loads(line)
    name = MESSAGE_FIELDS[rng.randrange(len(MESSAGE_FIELDS))]
    if kind == "bad JSON":
        return kind, line[: rng.randrange(5, len(line) - 5)]
    if kind == "not an object":  # a list in arrays; a text line (CSV) in line-delimited files
        values = list(record.values())
        return kind, json.dumps(values if array else ",".join(map(str, values)))
    if kind == "missing field":
        del record[name]
    elif kind == "null field":
        record[name] = None
    elif kind == "mistyped field":
        record[name] = mistyped(rng, name, record[name])
    elif kind == "unparseable time":
        record["messageSentTime"] = rng.choice(BAD_TIMES)
    else:
        record["fromId"] = record["customerId"] + record["courierId"]
    return kind, json.dumps(record, separators=(",", ":"))


def order(rng: random.Random, order_id: int, city: str, *, array: bool) -> tuple[str, str]:
    """``(kind, text)``: an orders record made invalid."""
    kinds = ORDER_KINDS[1:] if array else ORDER_KINDS
    kind = kinds[rng.randrange(len(kinds))]
    if kind == "bad JSON":
        return kind, f'{{"orderId":{order_id},"cityCode":"{city}'
    if kind == "not an object":
        return kind, f'[{order_id},"{city}"]' if array else f'"{order_id},{city}"'
    if kind == "missing field":
        return (
            kind,
            f'{{"orderId":{order_id}}}' if rng.random() < 0.5 else f'{{"cityCode":"{city}"}}',
        )
    if rng.random() < 0.5:
        return kind, f'{{"orderId":"{order_id}x","cityCode":"{city}"}}'
    return kind, f'{{"orderId":{order_id},"cityCode":{len(city)}}}'


def mistyped(rng: random.Random, name: str, value: Any) -> Any:
    """A value of the wrong JSON type for the field. Integers become lists or objects, not
    strings or decimals: daglake's ingestion still casts "123" and 12.5 to INT64."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return [value] if rng.random() < 0.5 else {"id": value}
    if name == "messageSentTime":
        return int(dt.datetime.fromisoformat(value).timestamp())
    return rng.choice((1, True, {"name": value}))
