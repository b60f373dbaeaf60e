"""Ingestion streams: peak memory of ``daglake run`` ingesting one NDJSON file of growing size
(with DuckDB's memory limited), next to the floor of DuckDB's own ``read_json`` into Parquet
with the same limit. Memory must not grow with the file: the peak of the largest file should
stay close to the peak of a file ten times smaller.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from _common import WORK_DIR, daglake_exe, machine, seconds, table

PIPELINE = '''
import daglake
from daglake.lake import ingest_json, land_and_pending


@daglake.task(["raw.messages", "quarantine.messages"], zone="raw")
def messages(ctx):
    delivered = sorted((ctx.project_root / "input").glob("*.jsonl"))
    files = land_and_pending(ctx, "chat", delivered, table="raw.messages", quarantine="quarantine.messages")
    ingest_json(ctx, files, table="raw.messages", quarantine="quarantine.messages",
                schema={"orderId": "INT64", "fromId": "INT64", "sent": "TIMESTAMP", "text": "STRING"})
'''

FLOOR = """
import sys, duckdb
con = duckdb.connect()
con.execute(f"SET memory_limit = '{sys.argv[3]}'")
con.execute(f"COPY (SELECT * FROM read_json('{sys.argv[1]}', columns={{'orderId': 'BIGINT', "
            f"'fromId': 'BIGINT', 'sent': 'TIMESTAMPTZ', 'text': 'VARCHAR'}})) TO '{sys.argv[2]}' (FORMAT parquet)")
"""


def write_lines(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(
                f'{{"orderId": {i // 7}, "fromId": {i % 97}, "sent": "2019-08-19T08:01:{i % 60:02d}Z", '
                f'"text": "message number {i} about the order"}}\n'
            )


def measure(lines: int, limit: str) -> tuple[float, float, float, float]:
    """One size in fresh processes (ru_maxrss of children is a running maximum, so each size
    runs in its own python that reports back)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "started = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    work = WORK_DIR / "ingest-memory" / str(lines)
    shutil.rmtree(work, ignore_errors=True)
    (work / "input").mkdir(parents=True)
    write_lines(work / "input" / "messages.jsonl", lines)
    (work / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    (work / "daglake.toml").write_text(f'[engine]\nmemory_limit = "{limit}"\n', encoding="utf-8")
    (work / "floor.py").write_text(FLOOR, encoding="utf-8")
    results = []
    for command in (
        [daglake_exe(), "run", str(work)],
        [sys.executable, str(work / "floor.py"), str(work / "input" / "messages.jsonl"), str(work / "floor.parquet"), limit],
    ):
        out = subprocess.run([sys.executable, "-c", code, *command], check=True, capture_output=True, text=True)
        elapsed, rss = (float(x) for x in out.stdout.split())
        results.extend([elapsed, rss])
    return results[0], results[1], results[2], results[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200000,2000000,8000000", help="lines per file, comma separated")
    parser.add_argument("--memory-limit", default="256MB")
    args = parser.parse_args(argv)
    print(machine())
    rows = []
    peaks = []
    for lines in (int(s) for s in args.sizes.split(",")):
        ours, our_rss, floor, floor_rss = measure(lines, args.memory_limit)
        size = (WORK_DIR / "ingest-memory" / str(lines) / "input" / "messages.jsonl").stat().st_size
        rows.append([f"{lines:,} lines ({size / 1e6:.0f} MB)", seconds(ours), f"{our_rss:.0f} MB", seconds(floor), f"{floor_rss:.0f} MB", f"{ours / floor:.2f}x"])
        peaks.append(our_rss)
    print()
    print(table(["input", "daglake", "daglake peak RSS", "read_json floor", "floor peak RSS", "time ratio"], rows))
    print(f"\npeak growth from the smallest to the largest file: {peaks[-1] / peaks[0]:.2f}x "
          f"(DuckDB memory_limit {args.memory_limit})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
