"""`daglake export airflow`: the DAG file is loaded by a real Apache Airflow 3, installed in its
own virtual environment by scripts/airflow-venv.sh, and states the same tasks, edges,
schedule and retries as `daglake graph --format json`; its commands really run the tasks."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daglake.export.airflow import AirflowSettings, airflow_id, render_dag, task_ids
from tests.conftest import ProjectFactory
from tests.system_deps import unavailable
from tests.test_cli_e2e import daglake

ROOT = Path(__file__).resolve().parent.parent

PROJECT = {
    "daglake.toml": """
        [project]
        name = "tiny shop"
        dialect = "duckdb"
        schedule = "0 3 * * *"

        [run]
        retries = 2
        retry_delay = 30

        [tasks."res/mart/orders_by_customer.sql"]
        retries = 5
        retry_delay = 7.5
    """,
    "res/raw/customers.sql": "SELECT 1 AS id, 'Ada' AS name UNION ALL SELECT 2, 'Lin'\n",
    "res/raw/orders.sql": "SELECT 10 AS id, 1 AS customer_id, 5.0 AS total\n",
    "res/mart/orders_by_customer.sql": """
        SELECT c.id, c.name, count(o.id) AS orders
        FROM raw.customers AS c LEFT JOIN raw.orders AS o ON o.customer_id = c.id
        GROUP BY c.id, c.name
    """,
    "res/mart/report.sql": "SELECT count(*) AS customers FROM mart.orders_by_customer\n",
}

# Loads the DAG file with Airflow's own DagBag and prints what Airflow understood of it.
LOAD_DAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    timetable = dag.timetable
    dags[dag_id] = {
        "timetable": type(timetable).__name__,
        "expression": getattr(timetable, "expression", None),
        "timezone": str(getattr(timetable, "timezone", "")),
        "start_date": dag.start_date.isoformat(),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "tasks": {
            task.task_id: {
                "upstream": sorted(task.upstream_task_ids),
                "retries": task.retries,
                "retry_delay": task.retry_delay.total_seconds(),
                "operator": type(task).__name__,
                "bash_command": task.bash_command,
            }
            for task in dag.tasks
        },
    }
errors = {path: str(error) for path, error in bag.import_errors.items()}
print(json.dumps({"errors": errors, "dags": dags}))
"""


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """The virtual environment's Python, built once (minutes) and reused while the pinned list
    is unchanged."""
    try:
        built = subprocess.run(
            ["bash", str(ROOT / "scripts/airflow-venv.sh")],
            capture_output=True, text=True, timeout=1800, check=False,
        )
    except subprocess.TimeoutExpired:
        unavailable("installing Apache Airflow took over 30 minutes", "the Airflow export")
    if built.returncode != 0:
        tail = "\n".join(built.stderr.splitlines()[-5:])
        unavailable(f"scripts/airflow-venv.sh failed: {tail}", "the Airflow export")
    return Path(built.stdout.strip().splitlines()[-1])


def load_in_airflow(python: Path, dag_file: Path, home: Path) -> dict[str, Any]:
    env = {"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    loaded = subprocess.run(
        [str(python), "-c", LOAD_DAG, str(dag_file)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    result: dict[str, Any] = json.loads(loaded.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_airflow_loads_the_exported_dag_as_daglake_sees_it(
    airflow_python: Path, make_project: ProjectFactory, tmp_path: Path
) -> None:
    root = make_project(PROJECT)
    dag_file = tmp_path / "dags" / "tiny_shop.py"
    dag_file.parent.mkdir()
    exported = daglake("export", "airflow", root, "-o", dag_file)
    assert exported.code == 0, exported.output
    graph = daglake("graph", root, "--format", "json").json()

    loaded = load_in_airflow(airflow_python, dag_file, tmp_path / "airflow-home")
    assert loaded["errors"] == {}
    assert list(loaded["dags"]) == ["tiny_shop"]
    dag = loaded["dags"]["tiny_shop"]

    ids = {node["name"]: airflow_id(node["name"]) for node in graph["nodes"]}
    assert set(dag["tasks"]) == set(ids.values()) == {
        "raw_customers", "raw_orders", "mart_orders_by_customer", "mart_report",
    }
    for node in graph["nodes"]:
        task = dag["tasks"][ids[node["name"]]]
        assert task["upstream"] == sorted(ids[name] for name in node["upstream"])
        assert task["operator"] == "BashOperator"
        assert f" --select {node['name']} --date {{{{ ds }}}}" in task["bash_command"]
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert len(edges) == 3

    # a data-interval timetable, so that {{ ds }} is the interval's start, daglake's logical date
    assert dag["timetable"] == "CronDataIntervalTimetable"
    assert dag["expression"] == "0 3 * * *"
    assert dag["timezone"] == "UTC"
    assert dag["start_date"] == "2024-01-01T00:00:00+00:00"
    assert (dag["catchup"], dag["max_active_runs"], dag["max_active_tasks"]) == (False, 1, 1)
    retries = {tid: (t["retries"], t["retry_delay"]) for tid, t in dag["tasks"].items()}
    assert retries == {
        "raw_customers": (2, 30.0), "raw_orders": (2, 30.0), "mart_report": (2, 30.0),
        "mart_orders_by_customer": (5, 7.5),
    }

    # the command Airflow would run builds the table, for the date Airflow would give it
    command = dag["tasks"]["raw_customers"]["bash_command"].replace("{{ ds }}", "2024-03-01")
    ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    runs = daglake("runs", "--project", root, "--json").json()
    assert [(r["logical_date"], r["state"]) for r in runs] == [("2024-03-01", "success")]


@pytest.mark.slow
def test_unscheduled_project_exports_no_schedule(
    airflow_python: Path, make_project: ProjectFactory, tmp_path: Path
) -> None:
    files = dict(PROJECT)
    files["daglake.toml"] = '[project]\nname = "adhoc"\ndialect = "duckdb"\n'
    root = make_project(files)
    dag_file = tmp_path / "adhoc.py"
    assert daglake("export", "airflow", root, "-o", dag_file, "--daglake", "/opt/my daglake").code == 0
    dag = load_in_airflow(airflow_python, dag_file, tmp_path / "airflow-home")["dags"]["adhoc"]
    assert dag["timetable"] == "NullTimetable"
    # paths with spaces reach bash as one word each
    assert dag["tasks"]["raw_orders"]["bash_command"].startswith(f"'/opt/my daglake' run {root.resolve()} ")


def test_export_is_deterministic(make_project: ProjectFactory, tmp_path: Path) -> None:
    root = make_project(PROJECT)
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    assert daglake("export", "airflow", root, "-o", first).code == 0
    assert daglake("export", "airflow", root, "-o", second).code == 0
    text = first.read_text(encoding="utf-8")
    assert text == second.read_text(encoding="utf-8")
    assert "daglake" not in [line.split()[1] for line in text.splitlines() if line.startswith(("import ", "from "))]
    compile(text, str(first), "exec")


def test_task_ids_are_python_names_and_unique() -> None:
    assert airflow_id("final.products") == "final_products"
    assert airflow_id("2024.sales") == "t_2024_sales"
    assert airflow_id("x.class") == "x_class"
    assert airflow_id("dag") == "dag_task"
    assert task_ids(["a.b_c", "a_b.c", "a.b.c"]) == {"a.b_c": "a_b_c", "a_b.c": "a_b_c_2", "a.b.c": "a_b_c_3"}


@pytest.mark.slow
def test_time_zone_start_date_and_catchup_reach_airflow(
    airflow_python: Path, make_project: ProjectFactory, tmp_path: Path
) -> None:
    from daglake.graph.dag import DAG
    from daglake.project import load_project

    project = load_project(make_project(PROJECT))
    settings = AirflowSettings(
        dag_id="paris", daglake="/usr/bin/daglake", schedule="@monthly",
        start_date=datetime(2025, 7, 1, 2, 30), timezone="Europe/Paris", catchup=True,
    )
    dag_file = tmp_path / "paris.py"
    dag_file.write_text(render_dag(project, DAG(project.dependencies()), settings), encoding="utf-8")
    dag = load_in_airflow(airflow_python, dag_file, tmp_path / "airflow-home")["dags"]["paris"]
    assert (dag["expression"], dag["timezone"], dag["catchup"]) == ("0 0 1 * *", "Europe/Paris", True)
    assert dag["start_date"] == "2025-07-01T00:30:00+00:00"  # 02:30 in Paris, summer time


def test_an_unwritable_output_is_one_line(make_project: ProjectFactory, tmp_path: Path) -> None:
    root = make_project(PROJECT)
    target = tmp_path / "missing" / "dag.py"
    result = daglake("export", "airflow", root, "-o", target)
    assert result.code == 2
    assert result.err_lines() == [f"error: {target}: cannot write the DAG file (No such file or directory)"]
