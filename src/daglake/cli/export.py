"""``daglake export …``: the project written for another orchestrator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from daglake.cli import DepsOpt, PathArg, reports_errors

export_app = typer.Typer(no_args_is_help=True, help="Write the project for another orchestrator.")


@export_app.command()
@reports_errors
def airflow(
    path: PathArg = ".",
    output: Annotated[str, typer.Option("--output", "-o", help="DAG file to write.", metavar="FILE")] = ...,  # type: ignore[assignment]
    daglake: Annotated[
        str | None,
        typer.Option(help="daglake executable the Airflow tasks call (default: this one)."),
    ] = None,
    dag_id: Annotated[str | None, typer.Option("--dag-id", help="Default: the project name.")] = None,
    deps: DepsOpt = None,
) -> None:
    """Write an Airflow DAG file: one BashOperator per task, same dependencies and schedule."""
    from daglake.errors import UsageError, ValidationError
    from daglake.export.airflow import AirflowSettings, render_dag
    from daglake.graph.dag import DAG
    from daglake.project import load_project
    from daglake.project.validate import problems

    project = load_project(path, deps_file=deps)
    dag = DAG(project.dependencies())
    found = problems(project, dag, None)
    if found:
        raise ValidationError(found)
    tasks = dag.subgraph(name for name, task in project.tasks.items() if task.kind != "check")
    settings = AirflowSettings.from_project(project, daglake or _this_daglake(), dag_id)
    target = Path(output)
    try:
        target.write_text(render_dag(project, tasks, settings), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the DAG file ({exc.strerror})") from exc
    typer.echo(f"{target}: Airflow DAG {settings.dag_id!r} with {len(tasks)} tasks")


def _this_daglake() -> str:
    """The ``daglake`` beside the running Python (its virtual environment), else on PATH."""
    import shutil
    import sys

    from daglake.errors import UsageError

    beside = Path(sys.executable).parent / "daglake"
    if beside.is_file():
        return str(beside.absolute())
    found = shutil.which("daglake")
    if found is None:
        raise UsageError("no daglake executable found beside Python or on PATH: pass --daglake PATH")
    return str(Path(found).absolute())
