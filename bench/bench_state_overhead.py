"""What durable run state costs: the 1,000-task project's ``daglake run`` with state in SQLite
(the default: runs, task runs and attempts written to ``.daglake/state.db``) against the same
run with state reduced to the minimum (``DAGLAKE_STATE_URL=sqlite://``: an in-memory database,
nothing written to disk), alternated, medians. Target: under 10 % overhead.

The re-run of an unchanged project is the sensitive case (the smallest total, so the largest
share for state). First runs are reported too.
"""

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
from bench_thousand_tasks import graph, remove, write_daglake_project

MINIMAL = {"DAGLAKE_STATE_URL": "sqlite://"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)

    work = WORK_DIR / "state-overhead"
    shutil.rmtree(work, ignore_errors=True)
    durable, minimal = work / "durable", work / "minimal"
    nodes = graph(args.tasks, args.layers)
    for root in (durable, minimal):
        write_daglake_project(root, nodes)
    print(machine())
    print(f"graph: {len(nodes)} SQL tasks, {args.workers} workers, {args.repeat} repetitions (medians)")

    def command(root: object) -> list[str]:
        return [daglake_exe(), "run", str(root), "--workers", str(args.workers), "--json"]

    first = [
        Contender("first run, state in SQLite", lambda: run_timed(command(durable)), remove(durable / ".daglake")),
        Contender(
            "first run, minimal state",
            lambda: run_timed(command(minimal), env=MINIMAL),
            remove(minimal / ".daglake"),
        ),
    ]
    rerun = [
        Contender("re-run, state in SQLite", lambda: run_timed(command(durable))),
        Contender("re-run, minimal state", lambda: run_timed(command(minimal), env=MINIMAL)),
    ]
    alternate([first, rerun], args.repeat, label="state")

    rows = []
    for full, bare in (first, rerun):
        rows.append([full.name, seconds(full.median), full.spread, f"{full.median / bare.median:.3f}x",
                     len(full.samples)])
        rows.append([bare.name, seconds(bare.median), bare.spread, "1.000x", len(bare.samples)])
    print()
    print(table(["contender", "median", "range", "ratio", "runs"], rows))
    print()
    for full, bare in (first, rerun):
        overhead = full.median / bare.median - 1
        print(f"{full.name.split(',')[0]}: state overhead {overhead:+.1%}  {verdict(full.median / bare.median, 1.10)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
