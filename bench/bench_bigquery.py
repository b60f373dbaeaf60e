"""A 200-task project on the BigQuery engine (the local emulator): the whole ``daglake run`` CLI
against a bare script that submits the same query jobs through the same official client with
the same concurrency, each job as soon as the jobs it reads are done.

Both are subprocesses (interpreter start and ``import google.cloud.bigquery`` count for both),
both create their datasets if missing and replace every table, on one emulator started here.
What is left between them is daglake's overhead per task: discovery, planning, the source
listing, labels, parameters, state and logs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import (
    REPO_DIR,
    WORK_DIR,
    BenchError,
    Contender,
    alternate,
    daglake_exe,
    machine,
    package_version,
    run_timed,
    seconds,
    table,
    verdict,
)
from bench_thousand_tasks import ROWS, graph, table_name, task_sql, write_daglake_project

TARGET = 1.2
# The bare contender: the client, the datasets, then a ready queue of query jobs on N threads.
BARE_SCRIPT = """\
import json, sys, threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

plan = json.load(open(sys.argv[1]))
client = bigquery.Client(project=plan["project"], credentials=AnonymousCredentials(),
                         client_options=ClientOptions(api_endpoint=plan["endpoint"]))
for dataset in plan["datasets"]:
    client.create_dataset(dataset, exists_ok=True)
tasks, left = plan["tasks"], {name: set(t["reads"]) for name, t in plan["tasks"].items()}
readers = {name: [] for name in tasks}
for name, task in tasks.items():
    for parent in task["reads"]:
        readers[parent].append(name)

def job(name):
    client.query(tasks[name]["sql"]).result()
    return name

with ThreadPoolExecutor(int(sys.argv[2])) as pool:
    running = {pool.submit(job, n) for n, reads in left.items() if not reads}
    while running:
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            finished = future.result()
            for reader in readers[finished]:
                left[reader].discard(finished)
                if not left[reader]:
                    running.add(pool.submit(job, reader))
"""


def write_bare_plan(nodes: dict[tuple[int, int], list[tuple[int, int]]], plan_file: Path,
                    endpoint: str, project: str, prefix: str) -> None:
    """The same queries as the daglake project, on fully qualified prefixed names, each as the
    ``CREATE OR REPLACE TABLE … AS`` job daglake submits for a bare query."""
    literal = f"SELECT id, id * 10 AS v FROM UNNEST(GENERATE_ARRAY(1, {ROWS})) AS id\n"

    def ref(node: tuple[int, int]) -> str:
        return f"`{project}.{prefix}l{node[0]}.{table_name(node)}`"

    tasks = {
        f"l{node[0]}.{table_name(node)}": {
            "sql": f"CREATE OR REPLACE TABLE {ref(node)} AS {task_sql(node, parents, ref, literal)}",
            "reads": [f"l{p[0]}.{table_name(p)}" for p in parents],
        }
        for node, parents in nodes.items()
    }
    datasets = sorted({f"{project}.{prefix}l{layer}" for layer, _ in nodes})
    plan = {"project": project, "endpoint": endpoint, "datasets": datasets, "tasks": tasks}
    plan_file.write_text(json.dumps(plan), encoding="utf-8")


def target_settings(root: Path, endpoint: str, project: str, prefix: str) -> None:
    (root / "daglake.toml").write_text(
        '[project]\nname = "bench_bigquery"\n\n[engine]\nname = "bigquery"\n\n[engine.bigquery]\n'
        f'api_endpoint = "{endpoint}"\nproject = "{project}"\ndataset_prefix = "{prefix}"\n',
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="daglake workers = the bare script's threads")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_DIR))
    from tests.bigquery_emulator import PROJECT, emulator_python, start_emulator

    work = WORK_DIR / "bigquery"
    shutil.rmtree(work, ignore_errors=True)
    project, plan_file, bare_script = work / "daglake", work / "bare-plan.json", work / "bare.py"
    nodes = graph(args.tasks, args.layers)
    write_daglake_project(project, nodes)
    bare_script.write_text(BARE_SCRIPT, encoding="utf-8")
    try:
        python = emulator_python()
    except BaseException as exc:  # the tests' helper fails or skips through pytest
        raise BenchError(f"the BigQuery emulator's venv could not be built: {exc}") from None
    with tempfile.TemporaryDirectory() as scratch:
        emulator = start_emulator(python, Path(scratch) / "emulator.log")
        try:
            target_settings(project, emulator.url, PROJECT, "dl_")
            write_bare_plan(nodes, plan_file, emulator.url, PROJECT, "bare_")
            print(machine() + f", google-cloud-bigquery {package_version('google-cloud-bigquery')}")
            print(f"graph: {len(nodes)} SQL tasks in {args.layers} layers on the emulator at {emulator.url}, "
                  f"{args.workers} concurrent jobs, {args.repeat} repetitions (medians, order rotated)")
            daglake = [daglake_exe(), "run", str(project), "--workers", str(args.workers)]
            bare = [sys.executable, str(bare_script), str(plan_file), str(args.workers)]
            run_timed(daglake)  # untimed: datasets created, parse cache and tables in place for both
            run_timed(bare)
            contenders = [
                Contender("daglake run (bigquery engine)", lambda: run_timed(daglake)),
                Contender("bare client script, same jobs and concurrency", lambda: run_timed(bare)),
            ]
            alternate([contenders], args.repeat, label="daglake/bare")
        finally:
            emulator.stop()
    ours, floor = contenders
    ratio = ours.median / floor.median
    per_task = (ours.median - floor.median) / len(nodes)
    print(table(["contender", "median", "range"], [[c.name, seconds(c.median), c.spread] for c in contenders]))
    print(f"daglake / bare: {ratio:.2f}x, {per_task * 1000:+.1f} ms per task  {verdict(ratio, TARGET)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench_bigquery: {exc}", file=sys.stderr)
        sys.exit(1)
