"""Seeded, realistic inputs for the courier-chat example, of any size.

``python -m daglake.examples.conversations.generate --messages 1000000 --months 12 --out data``
writes one folder per month (``data/2024-01/``, ...) holding that month's
``customer_courier_chat_messages`` and ``orders`` files, ready to be copied into the project's
``input/`` folder one month at a time. The data has what real deliveries have: conversations of
a few messages between a courier and a customer, replies in the same second as the message
they answer (ties on time, on the first and on the last message), late events (messages of
orders of earlier months), exact duplicates (also re-delivered the next month), orders missing
from the orders files or delivered a month late, and a share of invalid records of every kind.

Output is streamed: memory stays flat whatever the size (a bounded sample of past orders for
late events, a bounded buffer for re-deliveries). Lines are formatted directly, not through
``json.dumps``, so generation runs at tens of MB/s; the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from daglake.examples.conversations import invalid
from daglake.examples.conversations.writer import DAY, Clock, JsonWriter

MESSAGES_FILE = "customer_courier_chat_messages"
ORDERS_FILE = "orders"
CITIES = (
    ("BCN", 18),
    ("MAD", 16),
    ("MIL", 10),
    ("ROM", 8),
    ("LIS", 7),
    ("POR", 4),
    ("VAL", 5),
    ("SEV", 4),
    ("ZAR", 2),
    ("BUC", 6),
    ("KIE", 5),
    ("WAR", 5),
    ("CAI", 4),
    ("CAS", 3),
    ("ABJ", 2),
    ("NBO", 3),
    ("TBS", 2),
    ("BEG", 2),
    ("SOF", 2),
    ("ZAG", 1),
)
# An order moves through these stages; a message carries the stage at the time it was sent.
STAGES = (
    "ACCEPTED",
    "AWAITING_PICKUP",
    "PICKING_UP",
    "PICKED_UP",
    "ARRIVING",
    "DELIVERING",
    "DELIVERED",
)
OUTCOMES = ("DELIVERED", "FAILED", "CANCELLED", "RETURNED")
COURIER_APPS = ("Courier App", "Courier Android", "Courier iOS")
CUSTOMER_APPS = ("Customer iOS", "Customer Android", "Customer Web")
CHUNK = 8192  # messages shuffled together before writing: deliveries are not sorted by time
PAST_ORDERS = 100_000  # sample of earlier months' orders that late events are drawn from
REDELIVERIES = 100_000  # duplicates, and orders records, held back for the next month, at most
TIE = 0.04  # share of replies sent in the same second as the message before


@dataclass
class Options:
    messages: int
    months: int = 12
    seed: int = 0
    start: dt.date = dt.date(2024, 1, 1)
    bad_share: float = 0.01
    late_share: float = 0.05
    duplicate_share: float = 0.01
    missing_city_share: float = 0.02
    late_order_share: float = 0.02
    format: str = "ndjson"
    gzip: bool = False


@dataclass
class Summary:
    """What was written: every count a test or a reader may want to check against the lake."""

    messages: int = 0  # message records written, invalid ones and duplicates included
    orders: int = 0  # orders records written, invalid ones included
    bad_messages: int = 0
    bad_orders: int = 0
    duplicates: int = 0
    late_messages: int = 0
    conversations: int = 0
    orders_without_city: int = 0
    bytes: int = 0  # on disk
    json_bytes: int = 0  # before compression
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    bad_kinds: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Order:
    """An order's conversation state: what the next message (or a late one) continues from."""

    order_id: int
    courier_id: int
    customer_id: int
    courier_app: str
    customer_app: str
    first: int  # epoch seconds of its first message
    last: int  # epoch seconds of its latest message
    stage: int  # index in STAGES
    outcome: str
    length: int  # messages in its conversation

    def heads(self) -> tuple[str, str]:
        """A message's opening up to chatStartedByMessage, sent by the customer or the courier."""
        customer, courier = self.customer_id, self.courier_id
        return (
            f'{{"senderAppType":"{self.customer_app}","customerId":{customer},"fromId":{customer},'
            f'"toId":{courier},"chatStartedByMessage":',
            f'{{"senderAppType":"{self.courier_app}","customerId":{customer},"fromId":{courier},'
            f'"toId":{customer},"chatStartedByMessage":',
        )


class Generator:
    """Writes the months one after the other, every file streamed as it is generated."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.random = random.Random(options.seed)
        self.clock = Clock()
        self.summary = Summary()
        self.next_order_id = 10_000_000 + self.random.randrange(1_000_000)
        expected_orders = max(100, options.messages // 4)
        self.couriers = (1_000_000, max(50, expected_orders // 40))  # first id, how many
        self.customers = (50_000_000, max(100, expected_orders // 2))
        self.past: list[Order] = []
        self.redelivered: list[str] = []
        self.late_orders: list[str] = []
        self.final = False
        self.array = False
        self.city_names = [name for name, _ in CITIES]
        self.city_weights = list(itertools.accumulate(weight for _, weight in CITIES))

    # -- the month loop ------------------------------------------------------------------------

    def run(self, out: Path) -> Summary:
        started = time.perf_counter()
        options = self.options
        per_month, extra = divmod(options.messages, options.months)
        month = options.start.replace(day=1)
        for index in range(options.months):
            following = (month + dt.timedelta(days=32)).replace(day=1)
            final = index == options.months - 1
            self.month(
                out / month.strftime("%Y-%m"), month, following, per_month + (index < extra), final
            )
            month = following
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def month(self, folder: Path, start: dt.date, end: dt.date, budget: int, final: bool) -> None:
        """One month's files; in the last month nothing is held back for a next one."""
        folder.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.array = array = self.options.format == "array"
        suffix = (".json" if array else ".jsonl") + (".gz" if self.options.gzip else "")
        messages = JsonWriter(folder / f"{MESSAGES_FILE}{suffix}", array, self.options.gzip)
        orders = JsonWriter(folder / f"{ORDERS_FILE}{suffix}", array, self.options.gzip)
        order_lines, self.late_orders = self.late_orders, []
        chunk, self.redelivered = self.redelivered[:budget], []
        budget -= len(chunk)
        sample: list[Order] = []  # a uniform sample of this month's orders, for later late events
        started = 0
        first = int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp())
        last = int(dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC).timestamp()) - 3 * 3600
        self.clock.cover(
            first - 31 * DAY, last + 31 * DAY
        )  # conversations run past the month's end
        rand = self.random.random
        late_share = self.options.late_share if self.past else 0.0
        unusual = self.options.bad_share + self.options.duplicate_share
        while budget > 0:
            order = self.new_order(first, last)
            self.sample(sample, order, seen=started)
            started += 1
            self.order_record(order, order_lines)
            for line in self.conversation(order):
                while budget > 0 and rand() < late_share:
                    budget -= self.unusual(self.late_message(), chunk, budget, rand())
                    self.summary.late_messages += 1
                if budget <= 0:
                    break
                chance = rand()
                if chance >= unusual:
                    chunk.append(line)
                    budget -= 1
                else:
                    budget -= self.unusual(line, chunk, budget, chance)
            if len(chunk) >= CHUNK:
                self.random.shuffle(chunk)
                messages.write(chunk)
                chunk.clear()
                orders.write(order_lines)
                order_lines.clear()
        self.random.shuffle(chunk)
        messages.write(chunk)
        orders.write(order_lines)
        self.summary.messages += messages.records
        self.summary.orders += orders.records
        self.remember(sample)
        for writer in (messages, orders):
            self.summary.bytes += writer.close()
            self.summary.json_bytes += writer.json_bytes
            self.summary.files.append(str(writer.path))

    def unusual(self, line: str, chunk: list[str], budget: int, chance: float) -> int:
        """Add a message line to the chunk, corrupted or duplicated as ``chance`` falls;
        returns how many lines of the month's budget it used."""
        options = self.options
        if chance < options.bad_share:
            chunk.append(self.corrupt_message(line))
            return 1
        chunk.append(line)
        if budget < 2 or chance >= options.bad_share + options.duplicate_share:
            return 1
        self.summary.duplicates += 1
        if not self.final and self.random.random() < 0.25 and len(self.redelivered) < REDELIVERIES:
            self.redelivered.append(line)  # delivered again with next month's file
            return 1
        chunk.append(line)
        return 2

    def sample(self, sample: list[Order], order: Order, seen: int) -> None:
        """Reservoir sampling: each of the ``seen + 1`` orders so far equally likely kept."""
        if len(sample) < PAST_ORDERS:
            sample.append(order)
            return
        slot = int(self.random.random() * (seen + 1))
        if slot < PAST_ORDERS:
            sample[slot] = order

    def remember(self, sample: list[Order]) -> None:
        """Keep a bounded sample of earlier orders for late events, favouring recent months."""
        self.past.extend(sample)
        if len(self.past) > PAST_ORDERS:
            self.past = self.random.sample(self.past, PAST_ORDERS)

    # -- orders and conversations --------------------------------------------------------------

    def new_order(self, first: int, last: int) -> Order:
        rand = self.random.random
        self.next_order_id += 1 + int(rand() * 3)
        sent = first + int(rand() * (last - first))
        outcome = OUTCOMES[0] if rand() < 0.9 else OUTCOMES[1 + int(rand() * (len(OUTCOMES) - 1))]
        self.summary.conversations += 1
        return Order(
            order_id=self.next_order_id,
            courier_id=self.couriers[0] + int(rand() * self.couriers[1]),
            customer_id=self.customers[0] + int(rand() * self.customers[1]),
            courier_app=COURIER_APPS[int(rand() * 3)],
            customer_app=CUSTOMER_APPS[int(rand() * 3)],
            first=sent,
            last=sent,
            stage=int(rand() * 3),
            outcome=outcome,
            length=1 + min(int(self.random.expovariate(0.25)), 40),
        )

    def order_record(self, order: Order, lines: list[str]) -> None:
        """The order's line for this month's orders file; none when its city is never
        delivered, and held for next month's file when it arrives late."""
        rand = self.random.random
        if rand() < self.options.missing_city_share:
            self.summary.orders_without_city += 1
            return
        city = self.city_names[bisect.bisect(self.city_weights, rand() * self.city_weights[-1])]
        line = f'{{"orderId":{order.order_id},"cityCode":"{city}"}}'
        if rand() < self.options.bad_share:
            line = self.corrupt_order(order.order_id, city)
        if (
            not self.final
            and rand() < self.options.late_order_share
            and len(self.late_orders) < REDELIVERIES
        ):
            self.late_orders.append(line)
        else:
            lines.append(line)

    def conversation(self, order: Order) -> list[str]:
        """The order's messages in time order: the first one starts the chat, replies mostly
        alternate, and the stage moves forward as the delivery goes on."""
        rand, log, days, times = self.random.random, math.log, self.clock.days, self.clock.times
        heads = order.heads()
        body = f',"orderId":{order.order_id},"orderStage":"'
        tail = f'","courierId":{order.courier_id},"messageSentTime":"'
        by_courier = rand() < 0.6
        length, sent, stage = order.length, order.last, order.stage
        stamp = days[sent // DAY] + times[sent % DAY]
        lines = [f'{heads[by_courier]}true{body}{STAGES[stage]}{tail}{stamp}"}}']
        for index in range(1, length):
            sent += 0 if rand() < TIE else 1 + int(-90 * log(1 - rand()))
            if rand() < 0.75:
                by_courier = not by_courier
            if rand() < 0.35 and stage < len(STAGES) - 2:
                stage += 1
            name = order.outcome if index == length - 1 and length > 3 else STAGES[stage]
            stamp = days[sent // DAY] + times[sent % DAY]
            lines.append(f'{heads[by_courier]}false{body}{name}{tail}{stamp}"}}')
        order.last, order.stage = sent, stage
        return lines

    def late_message(self) -> str:
        """A message of an earlier month's order, delivered this month: mostly a follow-up
        after its last message, sometimes one sent before its first (a chat start that
        went missing, now starting the conversation earlier)."""
        rand = self.random.random
        order = self.past[int(rand() * len(self.past))]
        if rand() < 0.1:
            order.first -= 1 + int(rand() * 600)
            sent = order.first
        else:
            order.last += 0 if rand() < TIE else 1 + int(rand() * 3600)
            sent = order.last
        return (
            f'{order.heads()[rand() < 0.5]}false,"orderId":{order.order_id},"orderStage":"{order.outcome}",'
            f'"courierId":{order.courier_id},"messageSentTime":"{self.clock(sent)}"}}'
        )

    def corrupt_message(self, line: str) -> str:
        kind, text = invalid.message(self.random, line, array=self.array)
        self.count_bad(f"messages: {kind}")
        self.summary.bad_messages += 1
        return text

    def corrupt_order(self, order_id: int, city: str) -> str:
        kind, text = invalid.order(self.random, order_id, city, array=self.array)
        self.count_bad(f"orders: {kind}")
        self.summary.bad_orders += 1
        return text

    def count_bad(self, kind: str) -> None:
        self.summary.bad_kinds[kind] = self.summary.bad_kinds.get(kind, 0) + 1


def generate(out: Path, options: Options) -> Summary:
    """Write ``options.months`` monthly folders of inputs under ``out``."""
    if options.messages < 0 or options.months < 1:
        raise ValueError("--messages must be at least 0 and --months at least 1")
    return Generator(options).run(out)


def parse_args(argv: list[str] | None = None) -> tuple[Path, Options]:
    parser = argparse.ArgumentParser(
        prog="python -m daglake.examples.conversations.generate",
        description="Generate monthly courier-chat input files (messages and orders).",
    )
    parser.add_argument("--messages", type=int, required=True, help="message records in all")
    parser.add_argument("--months", type=int, default=12, help="monthly batches (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the monthly folders")
    parser.add_argument("--start", default="2024-01", help="first month, YYYY-MM (default 2024-01)")
    parser.add_argument("--bad-share", type=float, default=0.01, help="invalid records (0.01)")
    parser.add_argument(
        "--late-share", type=float, default=0.05, help="messages of earlier months' orders (0.05)"
    )
    parser.add_argument(
        "--duplicate-share", type=float, default=0.01, help="exact duplicates (0.01)"
    )
    parser.add_argument(
        "--missing-city-share",
        type=float,
        default=0.02,
        help="orders never in an orders file (0.02)",
    )
    parser.add_argument(
        "--late-order-share", type=float, default=0.02, help="orders records a month late (0.02)"
    )
    parser.add_argument("--format", choices=("ndjson", "array"), default="ndjson")
    parser.add_argument("--gzip", action="store_true", help="gzip the files")
    args = parser.parse_args(argv)
    for name in (
        "bad_share",
        "late_share",
        "duplicate_share",
        "missing_city_share",
        "late_order_share",
    ):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    try:
        start = dt.date.fromisoformat(args.start + "-01")
    except ValueError:
        parser.error(f"--start {args.start!r} is not a month in the form YYYY-MM")
    if args.messages < 0 or args.months < 1:
        parser.error("--messages must be at least 0 and --months at least 1")
    return args.out, Options(
        messages=args.messages,
        months=args.months,
        seed=args.seed,
        start=start,
        bad_share=args.bad_share,
        late_share=args.late_share,
        duplicate_share=args.duplicate_share,
        missing_city_share=args.missing_city_share,
        late_order_share=args.late_order_share,
        format=args.format,
        gzip=args.gzip,
    )


def main(argv: list[str] | None = None) -> int:
    out, options = parse_args(argv)
    summary = generate(out, options)
    rate = summary.json_bytes / max(summary.seconds, 1e-9) / 1e6
    compressed = f", {summary.bytes / 1e6:.1f} MB gzipped" if options.gzip else ""
    print(
        f"{summary.messages} messages ({summary.bad_messages} invalid, {summary.duplicates} duplicates, "
        f"{summary.late_messages} late) and {summary.orders} orders records in {options.months} "
        f"months under {out}: {summary.json_bytes / 1e6:.1f} MB of JSON{compressed} "
        f"in {summary.seconds:.1f} s ({rate:.0f} MB/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
