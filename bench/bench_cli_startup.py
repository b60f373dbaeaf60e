"""``daglake --help`` start-up: a new process each time, against ``python -c pass``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from _common import (
    Contender,
    alternate,
    daglake_exe,
    dbt_exe,
    machine,
    run_timed,
    table,
    verdict,
)

TARGET_SECONDS = 0.3


def import_costs(command: list[str], top: int) -> list[tuple[int, int, str]]:
    """``python -X importtime``: the ``top`` modules by cumulative microseconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    costs = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:"):].split("|"))
        costs.append((int(cumulative_us), int(self_us), name))
    return sorted(costs, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--skip-dbt", action="store_true")
    parser.add_argument("--imports", type=int, default=12, help="show the N costliest imports")
    args = parser.parse_args(argv)

    daglake = daglake_exe()
    contenders = [
        Contender("daglake --help", lambda: run_timed([daglake, "--help"])),
        Contender("floor: python -c pass", lambda: run_timed([sys.executable, "-c", "pass"])),
        Contender("python -c 'import duckdb'", lambda: run_timed([sys.executable, "-c", "import duckdb"])),
    ]
    dbt_note = "dbt skipped (--skip-dbt)"
    if not args.skip_dbt:
        dbt, dbt_note = dbt_exe(install=False)
        if dbt is not None:
            contenders.append(Contender("dbt --help", lambda: run_timed([dbt, "--help"])))
    print(machine())
    print(f"{args.repeat} runs of each, alternating (medians); {dbt_note}")
    alternate([contenders], args.repeat)

    ours, floor = contenders[0], contenders[1]
    rows = [
        [c.name, f"{c.median * 1000:.0f} ms", f"{min(c.samples) * 1000:.0f}–{max(c.samples) * 1000:.0f} ms",
         f"{(c.median - floor.median) * 1000:+.0f} ms", f"{c.median / ours.median:.2f}x"]
        for c in contenders
    ]
    print()
    print(table(["command", "median", "range", "over floor", "vs daglake"], rows))
    print()
    print(f"daglake --help: {ours.median * 1000:.0f} ms  {verdict(ours.median, TARGET_SECONDS, unit=' s')}")
    if args.imports:
        print("\ncostliest imports of `daglake --help` (python -X importtime, one run):")
        import_rows = [[name, f"{cum / 1000:.1f} ms", f"{own / 1000:.1f} ms"]
                       for cum, own, name in import_costs([daglake, "--help"], args.imports)]
        print(table(["module", "cumulative", "self"], import_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
