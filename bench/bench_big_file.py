"""One big SQL file (an 8.6 MB ``INSERT … VALUES`` seed): ``daglake validate`` cold and warm
and ``daglake run`` after it, against a bare script parsing the same file with sqlglot once
(the floor: what any sqlglot-based tool pays) and DuckDB running it directly."""

from __future__ import annotations

import argparse
import shutil
import sys

from _common import (
    WORK_DIR,
    Contender,
    alternate,
    daglake_exe,
    machine,
    run_timed,
    seconds,
    table,
    verdict,
)

TARGET_SECONDS = 10.0  # validate, cold, for the 8.6 MB file (was 2 m 44 s)

FLOOR = """
import sys, sqlglot
text = open(sys.argv[1], encoding="utf-8").read()
sqlglot.parse(text, read="bigquery")
"""
DUCKDB = """
import sys, duckdb
text = open(sys.argv[1], encoding="utf-8").read()
text = text.replace("INT64", "BIGINT").replace("STRING", "VARCHAR").replace("NUMERIC", "DECIMAL(38, 9)")
connection = duckdb.connect()
connection.execute("CREATE SCHEMA raw")
connection.execute(text)
"""


def write_project(rows: int) -> tuple[int, str]:
    """The project folder and the seed's size in bytes."""
    root = WORK_DIR / "big_file"
    shutil.rmtree(root, ignore_errors=True)
    (root / "res" / "seeds").mkdir(parents=True)
    (root / "res" / "tmp").mkdir(parents=True)
    values = ",\n".join(
        f"  ({i}, 'sku-{i:09d}-{i % 7919:04d}', {i % 997}.25, DATE '2024-{1 + i % 12:02d}-{1 + i % 28:02d}', "
        f"'a description of item number {i}')"
        for i in range(rows)
    )
    text = (
        "CREATE OR REPLACE TABLE raw.items (id INT64, sku STRING, price NUMERIC, day DATE, note STRING);\n"
        f"INSERT INTO raw.items (id, sku, price, day, note) VALUES\n{values};\n"
    )
    (root / "res" / "seeds" / "items.sql").write_text(text, encoding="utf-8")
    (root / "res" / "tmp" / "priced.sql").write_text("SELECT id, price FROM raw.items WHERE price > 50\n")
    return len(text.encode()), str(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=84_000, help="84,000 rows make 8.6 MB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    size, root = write_project(args.rows)
    seed = f"{root}/res/seeds/items.sql"
    daglake = daglake_exe()
    cache = WORK_DIR / "big_file" / ".daglake"
    cold = Contender(
        "daglake validate, cold", lambda: run_timed([daglake, "validate", root]),
        prepare=lambda: shutil.rmtree(cache, ignore_errors=True),
    )
    warm = Contender("daglake validate, warm", lambda: run_timed([daglake, "validate", root]))
    run = Contender("daglake run (after validate)", lambda: run_timed([daglake, "run", root]))
    floor = Contender("floor: sqlglot.parse once", lambda: run_timed([sys.executable, "-c", FLOOR, seed]))
    duck = Contender("duckdb: execute the file", lambda: run_timed([sys.executable, "-c", DUCKDB, seed]))
    print(machine())
    print(f"seed file: {size / 1e6:.1f} MB, {args.rows:,} rows; {args.repeat} repetitions (medians)")
    alternate([[cold, warm, run], [floor, duck]], args.repeat, label="big file")
    rows = [[c.name, seconds(c.median), c.spread, f"{c.median / floor.median:.2f}x"]
            for c in (cold, warm, run, floor, duck)]
    print()
    print(table(["contender", "median", "range", "vs floor"], rows))
    print()
    print(f"validate, cold: {seconds(cold.median)}  {verdict(cold.median, TARGET_SECONDS, unit=' s')}")
    print(f"validate, warm (parse cached): {warm.median / cold.median:.2f}x of cold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
