"""1,000 trivial SQL tasks in 10 layers: the whole ``daglake run`` CLI against the floor of a bare
DuckDB script running the same translated statements (the faster of in order on one connection
and daglake's number of cursors layer by layer), and against ``dbt run`` (dbt-duckdb).

Every contender is a subprocess, so interpreter start and imports count for all of them.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from _common import (
    WORK_DIR,
    BenchError,
    Contender,
    alternate,
    as_duckdb_runs_it,
    daglake_exe,
    dbt_exe,
    machine,
    package_version,
    run_timed,
    run_timed_tty,
    seconds,
    table,
    verdict,
)

ROWS = 100
# The floor: daglake's statements on one DuckDB file with nothing around them, two ways. With
# workers 1, every task in topological order on one connection; with N, each layer's tasks
# shared by N cursors of one connection (threads; DuckDB releases the GIL while it works), the
# next layer once the whole layer is done. The faster of the two is the floor.
FLOOR_SCRIPT = """\
import json, sys, threading
import duckdb
plan = json.load(open(sys.argv[1]))
con = duckdb.connect(sys.argv[2])
workers = int(sys.argv[3])
for schema in plan["schemas"]:
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
if workers == 1:
    for sql in plan["statements"]:
        con.execute(sql)
else:
    cursors = [con.cursor() for _ in range(workers)]
    for layer in plan["layers"]:
        pending, lock = iter(layer), threading.Lock()
        def work(cursor):
            while True:
                with lock:
                    task = next(pending, None)
                if task is None:
                    return
                for sql in task:
                    cursor.execute(sql)
        threads = [threading.Thread(target=work, args=(c,)) for c in cursors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for cursor in cursors:
        cursor.close()
con.close()
"""
TARGET_FIRST = 3.0
TARGET_RERUN = 1.5
TARGET_DBT = 10.0
# issue 14 (only what changed runs, start fast)
TARGET_UNCHANGED = 0.5  # seconds, whole process
TARGET_FIRST_14 = 1.5  # x the floor's first run
TARGET_CHANGED = (1.5, 0.3)  # x the floor's time for the changed task and its downstream, + seconds


def layer_width(tasks: int, layers: int, layer: int) -> int:
    return tasks // layers + (1 if layer < tasks % layers else 0)


def graph(tasks: int, layers: int) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """``(layer, index) -> parents``: two distinct tasks of the previous layer, chosen at random
    (fixed seed) so every layer mixes near and far edges."""
    rng = random.Random(20240601)
    nodes: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for layer in range(layers):
        below = layer_width(tasks, layers, layer - 1) if layer else 0
        for index in range(layer_width(tasks, layers, layer)):
            if layer == 0:
                nodes[(layer, index)] = []
            elif below == 1:
                nodes[(layer, index)] = [(layer - 1, 0)]
            else:
                first = index % below
                second = rng.choice([i for i in range(below) if i != first])
                nodes[(layer, index)] = [(layer - 1, first), (layer - 1, second)]
    return nodes


def table_name(node: tuple[int, int]) -> str:
    return f"t{node[1]:04d}"


def task_sql(
    node: tuple[int, int], parents: list[tuple[int, int]], ref: Callable[[tuple[int, int]], str],
    literal: str,
) -> str:
    if not parents:
        return literal
    if len(parents) == 1:
        return f"SELECT id, v + 1 AS v FROM {ref(parents[0])}"
    a, b = (ref(p) for p in parents)
    if node[1] % 2 == 0:
        return f"SELECT a.id, a.v + b.v AS v\nFROM {a} AS a\nJOIN {b} AS b USING (id)\n"
    return (
        f"SELECT id, v FROM {a} WHERE MOD(id, 2) = 0\n"
        f"UNION ALL\nSELECT id, v FROM {b} WHERE MOD(id, 2) = 1\n"
    )


def write_daglake_project(root: Path, nodes: dict[tuple[int, int], list[tuple[int, int]]]) -> None:
    """BigQuery dialect: backtick names, ``UNNEST(GENERATE_ARRAY(...))`` for the literals."""
    literal = f"SELECT id, id * 10 AS v FROM UNNEST(GENERATE_ARRAY(1, {ROWS})) AS id\n"
    for node, parents in nodes.items():
        folder = root / f"l{node[0]}"
        folder.mkdir(parents=True, exist_ok=True)
        sql = task_sql(node, parents, lambda p: f"`l{p[0]}.{table_name(p)}`", literal)
        (folder / f"{table_name(node)}.sql").write_text(sql, encoding="utf-8")


def write_dbt_project(
    root: Path, nodes: dict[tuple[int, int], list[tuple[int, int]]], workers: int
) -> None:
    """The same graph as dbt models (DuckDB SQL, ``{{ ref() }}``, materialized as tables)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "model-paths: ['models']\nmodels:\n  bench:\n    +materialized: table\n",
        encoding="utf-8",
    )
    (root / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: warehouse.duckdb\n      threads: {workers}\n",
        encoding="utf-8",
    )
    literal = f"SELECT range AS id, range * 10 AS v FROM range(1, {ROWS + 1})\n"
    for node, parents in nodes.items():
        folder = root / "models" / f"l{node[0]}"
        folder.mkdir(parents=True, exist_ok=True)
        sql = task_sql(node, parents, lambda p: f"{{{{ ref('l{p[0]}_{table_name(p)}') }}}}", literal)
        (folder / f"l{node[0]}_{table_name(node)}.sql").write_text(sql, encoding="utf-8")


def write_floor_plan(project_root: Path, plan_file: Path, changed: str | None = None) -> int:
    """daglake's own translated statements, in topological order and grouped by task in DAG
    layers, for the bare DuckDB script; with ``changed`` (a task), only it and its downstream:
    what an edit of its file makes run."""
    from daglake.graph.dag import DAG
    from daglake.project import load_project
    from daglake.runner import compile_task

    project = load_project(project_root, use_cache=False)
    if project.problems:
        raise BenchError(f"generated project has problems: {project.problems[:3]}")
    dag = DAG(project.dependencies())
    if changed is not None:
        dag = dag.subgraph({changed} | dag.descendants(changed))
    per_task = {
        name: [as_duckdb_runs_it(s) for s in compile_task(project, project.tasks[name], "duckdb").statements]
        for name in dag.topological_order()
    }
    statements = [sql for task in per_task.values() for sql in task]
    layers = [[per_task[name] for name in layer] for layer in dag.levels()]
    schemas = sorted({n.split(".")[0] for n in project.tasks})
    plan = {"schemas": schemas, "statements": statements, "layers": layers}
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    return len(statements)


def remove(*paths: Path) -> Callable[[], None]:
    def prepare() -> None:
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    return prepare


def edit(path: Path) -> Callable[[], None]:
    """A real change of ``path`` before each run (a different constant each time, never only
    layout or comments, which change nothing that runs)."""
    original = path.read_text(encoding="utf-8")
    count = [0]

    def prepare() -> None:
        count[0] += 1
        path.write_text(original.replace("SELECT ", f"SELECT {count[0]} AS edit, ", 1), encoding="utf-8")

    return prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of daglake and the floor")
    parser.add_argument("--dbt-repeat", type=int, default=2,
                        help="repetitions of dbt and its paired daglake runs (over a minute each: 2 at least)")
    parser.add_argument("--workers", type=int, default=4, help="daglake workers = dbt threads")
    parser.add_argument("--skip-dbt", action="store_true")
    args = parser.parse_args(argv)
    if args.layers < 1 or args.tasks < args.layers:
        parser.error("need at least one task per layer")

    work = WORK_DIR / "thousand"
    shutil.rmtree(work, ignore_errors=True)
    project, dbt_root = work / "daglake", work / "dbt"
    plan_file, floor_script = work / "floor-plan.json", work / "floor.py"
    nodes = graph(args.tasks, args.layers)
    write_daglake_project(project, nodes)
    count = write_floor_plan(project, plan_file)
    middle_task = f"l{args.layers // 2}.{table_name((args.layers // 2, 0))}"
    changed_plan = work / "floor-plan-changed.json"
    changed_count = write_floor_plan(project, changed_plan, middle_task)
    floor_script.write_text(FLOOR_SCRIPT, encoding="utf-8")

    print(machine())
    print(
        f"graph: {len(nodes)} SQL tasks in {args.layers} layers ({count} statements), "
        f"{args.workers} workers, {args.repeat} repetitions (medians, order rotated each repetition)"
    )
    daglake = [daglake_exe(), "run", str(project), "--workers", str(args.workers)]
    middle = project / f"l{args.layers // 2}" / f"{table_name((args.layers // 2, 0))}.sql"
    state = project / ".daglake"

    def floor(label: str, workers: int) -> tuple[Contender, Contender]:
        """(new file, re-run) of the bare script with ``workers`` cursors (1: one connection)."""
        database = work / f"floor-{workers}.duckdb"
        command = [sys.executable, str(floor_script), str(plan_file), str(database), str(workers)]
        return (
            Contender(f"floor: {label}, new file", lambda: run_timed(command), remove(database)),
            Contender(f"floor: {label}, re-run", lambda: run_timed(command)),
        )

    serial = floor("bare duckdb, in order on one connection", 1)
    cursors = floor(f"bare duckdb, {args.workers} cursors layer by layer", args.workers)
    # the floor of an edit: the changed task and its downstream only, on the built database
    changed_floor = Contender(
        f"floor: bare duckdb, the changed task and its downstream ({changed_count} statements), re-run",
        lambda: run_timed([sys.executable, str(floor_script), str(changed_plan),
                           str(work / f"floor-{args.workers}.duckdb"), str(args.workers)]),
    )
    first = [
        Contender("daglake run, first (no .daglake/)", lambda: run_timed(daglake), remove(state)),
        serial[0], cursors[0],
    ]
    rerun = [  # --full-refresh: every task runs again, as the floor's re-run does
        Contender("daglake run --full-refresh, re-run (cache kept)", lambda: run_timed([*daglake, "--full-refresh"])),
        serial[1], cursors[1],
    ]
    extra = [
        Contender("daglake run --json, re-run (no console output)", lambda: run_timed([*daglake, "--json", "--full-refresh"])),
        Contender("daglake run, re-run, on a terminal (live view)", lambda: run_timed_tty([*daglake, "--full-refresh"])),
        # only what changed runs: nothing, then one file of the middle layer and its downstream
        Contender("daglake run, unchanged re-run (every task skipped)", lambda: run_timed(daglake)),
        Contender("daglake run, one middle-layer file changed", lambda: run_timed(daglake), edit(middle)),
    ]
    alternate([first, [*rerun, *extra, changed_floor]], args.repeat, label="daglake/floor")

    dbt_pairs: list[tuple[Contender, Contender]] = []
    dbt_note = "dbt skipped (--skip-dbt)"
    if not args.skip_dbt:
        dbt, dbt_note = dbt_exe(install=True)
        if dbt is not None:
            write_dbt_project(dbt_root, nodes, args.workers)
            command = [dbt, "run", "--project-dir", str(dbt_root), "--profiles-dir", str(dbt_root)]
            version = package_version("dbt-core")
            dbt_note += f" (dbt-core {version})" if version != "not installed" else ""
            dbt_first = Contender(
                "dbt run, first (no target/)",
                lambda: run_timed(command, cwd=dbt_root),
                remove(dbt_root / "target", dbt_root / "logs", dbt_root / "warehouse.duckdb"),
            )
            dbt_rerun = Contender("dbt run, re-run (partial parse)", lambda: run_timed(command, cwd=dbt_root))
            again_first = Contender("daglake run, first (no .daglake/)", lambda: run_timed(daglake), remove(state))
            again_rerun = Contender("daglake run, re-run (cache kept)", lambda: run_timed(daglake))
            dbt_pairs = [(dbt_first, again_first), (dbt_rerun, again_rerun)]
            alternate([list(pair) for pair in dbt_pairs], args.dbt_repeat, label="dbt/daglake")
    print(dbt_note)

    # The fair floor of each kind: the faster of the two bare ways (by median).
    fair_first = min(first[1:], key=lambda c: c.median)
    fair_rerun = min(rerun[1:], key=lambda c: c.median)
    rows: list[list[object]] = []
    for group, fair in ((first, fair_first), (rerun, fair_rerun)):
        for contender in group:
            ratio = "1.00x (the floor)" if contender is fair else f"{contender.median / fair.median:.2f}x floor"
            rows.append([contender.name, seconds(contender.median), contender.spread, ratio, len(contender.samples)])
    for contender in extra:
        ratio = f"{contender.median / fair_rerun.median:.2f}x floor"
        rows.append([contender.name, seconds(contender.median), contender.spread, ratio, len(contender.samples)])
    rows.append([changed_floor.name, seconds(changed_floor.median), changed_floor.spread,
                 "the floor of an edit", len(changed_floor.samples)])
    for theirs, ours in dbt_pairs:
        rows.append([theirs.name, seconds(theirs.median), theirs.spread,
                     f"{theirs.median / ours.median:.2f}x daglake", len(theirs.samples)])
        rows.append([f"{ours.name}, paired with dbt", seconds(ours.median), ours.spread, "1.00x daglake",
                     len(ours.samples)])
    print()
    print(table(["contender", "median", "range", "ratio", "runs"], rows))
    print()
    print(f"floor, first run: {fair_first.name} ({seconds(fair_first.median)}; in order "
          f"{seconds(serial[0].median)}, {args.workers} cursors {seconds(cursors[0].median)})")
    print(f"floor, re-run:    {fair_rerun.name} ({seconds(fair_rerun.median)}; in order "
          f"{seconds(serial[1].median)}, {args.workers} cursors {seconds(cursors[1].median)})")
    first_ratio = first[0].median / fair_first.median
    rerun_ratio = rerun[0].median / fair_rerun.median
    print(f"daglake first run / floor: {first_ratio:.2f}x  {verdict(first_ratio, TARGET_FIRST)}")
    print(f"daglake re-run / floor:    {rerun_ratio:.2f}x  {verdict(rerun_ratio, TARGET_RERUN)}")
    unchanged, changed = extra[2], extra[3]
    allowed = TARGET_CHANGED[0] * changed_floor.median + TARGET_CHANGED[1]
    print(f"unchanged re-run: {seconds(unchanged.median)}  "
          f"{'met' if unchanged.median <= TARGET_UNCHANGED else 'MISSED'} (target <= {TARGET_UNCHANGED} s)")
    print(f"one middle-layer file changed: {seconds(changed.median)} against {seconds(allowed)} allowed "
          f"({TARGET_CHANGED[0]}x the floor of the edit {seconds(changed_floor.median)} + {TARGET_CHANGED[1]} s)  "
          f"{'met' if changed.median <= allowed else 'MISSED'}")
    print(f"daglake first run / floor (issue 14): {first_ratio:.2f}x  {verdict(first_ratio, TARGET_FIRST_14)}")
    for label, (theirs, ours) in zip(("first run", "re-run"), dbt_pairs, strict=False):
        ratio = theirs.median / ours.median
        print(f"dbt / daglake, {label}: {ratio:.2f}x  {verdict(ratio, TARGET_DBT, at_least=True)}")
    per_task = 1000 / len(nodes)
    print(
        f"per task: daglake first {first[0].median * per_task:.2f} ms, "
        f"re-run {rerun[0].median * per_task:.2f} ms, floor {fair_rerun.median * per_task:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
