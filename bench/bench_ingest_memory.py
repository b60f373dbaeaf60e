"""Ingestion streams: peak memory of ``daglake run`` ingesting one NDJSON file of growing size
(with DuckDB's memory limited), next to the floor of DuckDB's own ``read_json`` into Parquet
with the same limit. Memory must not grow with the file: the peak of the largest file should
stay close to the peak of a file ten times smaller. Both sides alternate, medians and ranges.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _common import WORK_DIR, Contender, alternate, daglake_exe, machine, seconds, table

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


# Runs a command in a fresh python and prints its wall time and peak RSS (MB): ru_maxrss of
# RUSAGE_CHILDREN is a running maximum over reaped descendants, so each run gets its own parent.
TIMER = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
)


def timed(command: list[str], peaks: list[float]) -> float:
    """Wall seconds of ``command`` from a fresh python; its peak RSS (MB) is appended to ``peaks``."""
    out = subprocess.run([sys.executable, "-c", TIMER, *command], check=True, capture_output=True, text=True)
    elapsed, rss = (float(x) for x in out.stdout.split())
    peaks.append(rss)
    return elapsed


def contenders(lines: int, limit: str) -> tuple[Path, tuple[Contender, list[float]], tuple[Contender, list[float]]]:
    """The input file of ``lines`` lines, daglake's contender and the floor's (each with its
    peak RSS per run). daglake starts each run from an empty lake, as a first delivery."""
    work = WORK_DIR / "ingest-memory" / str(lines)
    shutil.rmtree(work, ignore_errors=True)
    (work / "input").mkdir(parents=True)
    source = work / "input" / "messages.jsonl"
    write_lines(source, lines)
    (work / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    (work / "daglake.toml").write_text(f'[engine]\nmemory_limit = "{limit}"\n', encoding="utf-8")
    (work / "floor.py").write_text(FLOOR, encoding="utf-8")
    our_peaks: list[float] = []
    floor_peaks: list[float] = []

    def fresh_lake() -> None:
        for name in ("lake", ".daglake"):
            shutil.rmtree(work / name, ignore_errors=True)

    ours = Contender("daglake", lambda: timed([daglake_exe(), "run", str(work)], our_peaks), fresh_lake)
    floor = Contender(
        "floor",
        lambda: timed([sys.executable, str(work / "floor.py"), str(source), str(work / "floor.parquet"), limit],
                      floor_peaks),
        lambda: (work / "floor.parquet").unlink(missing_ok=True),
    )
    return source, (ours, our_peaks), (floor, floor_peaks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200000,2000000,8000000", help="lines per file, comma separated")
    parser.add_argument("--memory-limit", default="256MB")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side per size (medians)")
    args = parser.parse_args(argv)
    print(machine())
    print(f"{args.repeat} runs of daglake and the floor per size, alternating (order rotated each run); "
          "medians, range min–max")
    rows = []
    peaks = []
    for lines in (int(s) for s in args.sizes.split(",")):
        source, (ours, our_peaks), (floor, floor_peaks) = contenders(lines, args.memory_limit)
        alternate([[ours, floor]], args.repeat, label=f"{lines:,} lines")
        rows.append([
            f"{lines:,} lines ({source.stat().st_size / 1e6:.0f} MB)",
            seconds(ours.median), ours.spread, f"{statistics.median(our_peaks):.0f} MB",
            seconds(floor.median), floor.spread, f"{statistics.median(floor_peaks):.0f} MB",
            f"{ours.median / floor.median:.2f}x",
        ])
        peaks.append(statistics.median(our_peaks))
    print()
    print(table(["input", "daglake", "range", "peak RSS", "read_json floor", "range", "peak RSS", "time ratio"],
                rows))
    print(f"\npeak growth from the smallest to the largest file: {peaks[-1] / peaks[0]:.2f}x "
          f"(DuckDB memory_limit {args.memory_limit}; peaks are medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
