"""Run every benchmark in turn (``make bench``); each prints its own table and verdicts."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-dbt", action="store_true", help="do not install or time dbt")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions")
    args = parser.parse_args(argv)

    dbt = ["--skip-dbt"] if args.skip_dbt else []
    quick = args.quick
    runs = [
        ("bench_cli_startup.py", [*dbt, *(["--repeat", "5"] if quick else [])]),
        ("bench_scheduler.py", ["--repeat", "5"] if quick else []),
        ("bench_thousand_tasks.py",
         [*dbt, *(["--tasks", "200", "--repeat", "2"] if quick else [])]),
        ("bench_products.py", ["--repeat", "3"] if quick else []),
        ("bench_state_overhead.py", ["--tasks", "200", "--repeat", "2"] if quick else []),
        ("bench_ingest_memory.py", ["--sizes", "20000,200000", "--repeat", "1"] if quick else []),
        ("bench_conversations.py", ["--messages", "50000", "--repeat", "1", "--skip-spark"] if quick else []),
        ("bench_big_file.py", ["--rows", "10000", "--repeat", "1"] if quick else []),
        ("bench_api.py", ["--appends", "1000", "--runs", "5", "--repeat", "1"] if quick else []),
        ("bench_bigquery.py", ["--tasks", "40", "--repeat", "1"] if quick else []),
        ("bench_source_versions.py", ["--rows", "10000,100000", "--emulator-rows", "1000", "--tables", "10", "--repeat", "1"] if quick else []),
    ]
    failed = []
    for script, extra in runs:
        print(f"\n=== {script} {' '.join(extra)}".rstrip(), flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(BENCH_DIR / script), *extra])
        print(f"=== {script}: {time.perf_counter() - started:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
