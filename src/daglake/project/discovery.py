"""Find a project's tasks: every ``.sql`` file, its reads and writes, and declared dependencies."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path

from daglake.config import CONFIG_FILE, ProjectConfig, TaskSettings, load_config, task_setting_line
from daglake.errors import Problem
from daglake.events import Progress, said_if_slow
from daglake.files import UnreadableFile, os_reason, read_project_file
from daglake.project.model import Project, Read, Task, default_output
from daglake.sql.cache import AnalysisCache, content_key

SKIPPED_DIRS = {"__pycache__", "node_modules", "venv"}  # at any depth (hidden folders too)
CACHE_FILE = Path(".daglake") / "cache" / "sql-analysis.json"


def load_project(
    path: str | os.PathLike[str] = ".",
    *,
    deps_file: str | None = None,
    use_cache: bool = True,
    write_cache: bool = True,
    progress: Progress | None = None,
) -> Project:
    """Discover the project at ``path``; problems are collected in ``project.problems``.

    ``write_cache=False`` reads the parse cache but never writes it (``--dry-run``);
    ``progress`` hears which file is being parsed when that takes more than a second."""
    root = Path(path)
    if not root.is_dir():
        from daglake.errors import UsageError

        raise UsageError(f"{path}: not a folder")
    problems: list[Problem] = []
    config = load_config(root, problems)
    cache = AnalysisCache(root / CACHE_FILE if use_cache else None)
    project = Project(root=root, config=config, problems=problems, cache=cache)
    for relative in sql_files(root, config, problems):
        _add_task(project, relative, progress)
    for relative in project_files(root, config, ".py", problems):
        _add_python_tasks(project, relative)
    _declared_dependencies(project, deps_file, config.dependencies_file)
    _add_checks(project)
    for name, settings in config.tasks.items():
        task = project.task_for(name)
        if task is not None:
            task.settings = settings
            task.tags.extend(settings.tags)
            if settings.zone and task.kind != "python":
                _make_lake_task(project, task, settings.zone, settings.partition_by)
    if write_cache:
        cache.save()
    return project


def sql_files(root: Path, config: ProjectConfig, problems: list[Problem] | None = None) -> list[str]:
    """Relative POSIX paths of the project's SQL task files, sorted."""
    return project_files(root, config, ".sql", problems)


def project_files(
    root: Path, config: ProjectConfig, suffix: str, problems: list[Problem] | None = None
) -> list[str]:
    """Files ending in ``suffix``, sorted, skipping hidden and excluded folders, the lake, and
    check folders (their SQL files are checks, not tasks). A folder that cannot be read is a
    problem in ``problems`` (raised when there is no list)."""
    found: list[str] = []
    patterns = [p.rstrip("/") for p in config.exclude]
    # relative to the root: the lake, and check folders (their SQL files are checks)
    rooted = {config.lake_root.strip("/"), *(folder.strip("/") for folder in config.check_folders)}

    def excluded(relative: str) -> bool:
        return any(
            fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative, p + "/*") or relative == p
            for p in patterns
        )

    def walk(folder: Path, prefix: str) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problem = Problem(prefix.rstrip("/") or ".", 0, f"cannot read folder: {os_reason(exc)}")
            if problems is None:
                raise UnreadableFile(problem) from exc
            problems.append(problem)
            return
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if entry.name.startswith(".") or excluded(relative):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIPPED_DIRS and relative not in rooted:
                    walk(Path(entry.path), relative + "/")
            elif entry.name.endswith(suffix) and entry.is_file():
                found.append(relative)
            elif entry.name.endswith(suffix) and entry.is_symlink():
                target = os.readlink(entry.path)
                problem = Problem(relative, 0, f"a symbolic link to {target}, which does not exist")
                if problems is None:
                    raise UnreadableFile(problem)
                problems.append(problem)

    walk(root, "")
    return sorted(found)


def _is_seed(relative: str, config: ProjectConfig) -> bool:
    folders = relative.split("/")[:-1]
    return any(
        seed.strip("/") in folders or relative.startswith(seed.strip("/") + "/")
        for seed in config.seeds
    )


def _add_task(project: Project, relative: str, progress: Progress | None = None) -> None:
    from daglake.sql.analysis import SqlAnalysis

    try:
        text = read_project_file(project.root / relative, relative)
    except UnreadableFile as exc:
        project.problems.append(exc.problem)
        project.broken[relative] = {default_output(relative, project.root)}
        return
    output = default_output(relative, project.root)
    dialect = project.config.dialect
    key = content_key(text, dialect, output)
    assert project.cache is not None
    cached = project.cache.get(key)
    parsed = None
    if cached is not None and cached.get("analysis") is not None:
        analysis = SqlAnalysis.from_json(cached["analysis"])
    else:
        from daglake.sql.analysis import analyze
        from daglake.sql.quiet import collector_paused

        with collector_paused(), said_if_slow(progress, f"parsing {relative} ({_size(text)})…"):
            analysis, parsed = analyze(text, dialect, output)
        project.cache.put_analysis(key, analysis.to_json())

    for line, column, message in analysis.errors:
        project.problems.append(Problem(relative, line, f"SQL syntax error: {message}", column))
    if not analysis.statements and not analysis.errors:
        project.problems.append(
            Problem(relative, 1, "no SQL statement in this file: a task builds a table (write a query, or delete the file)")
        )
        project.broken[relative] = set()
        return
    if analysis.has_bare_query and not _is_table_name(output) and not analysis.errors:
        line = next(line for line, kind in analysis.statements if kind == "query")
        project.problems.append(Problem(relative, line, _bad_name(relative, output)))
        project.broken[relative] = set()
        return
    if analysis.errors:
        from daglake.sql.parse import possible_targets

        project.broken[relative] = {output} | possible_targets(text, dialect)
        return
    name = analysis.outputs[0] if analysis.outputs else relative
    task = Task(
        name=name,
        path=relative,
        kind="seed" if _is_seed(relative, project.config) else "sql",
        outputs=list(analysis.outputs),
        reads=[Read(t, line, col) for t, (line, col) in analysis.reads.items()],
        analysis=analysis,
        cache_key=key,
        text=text,
        parsed=parsed,
    )
    _register(project, task)


def _size(text: str) -> str:
    size = len(text.encode())
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _is_table_name(table: str) -> bool:
    return all(_NAME.fullmatch(part) for part in table.split(".")) and table.count(".") == 1


def _bad_name(relative: str, table: str) -> str:
    folder = table.partition(".")[0]
    wrong = "file name" if _NAME.fullmatch(folder) else "folder name"
    return (
        f"{table!r} is not a table name: a bare query builds <folder>.<file name>, and its "
        f"{wrong} must be letters, digits and _ (not starting with a digit); rename it, "
        "or create the table with CREATE TABLE"
    )


def _register(project: Project, task: Task, line: int | None = None) -> None:
    """Add a task; a table that another task already writes is a problem at both places."""
    for table in task.outputs:
        owner = project.producers.get(table)
        if owner is None:
            project.producers[table] = task.name
            continue
        other = project.tasks[owner]
        project.problems.append(
            Problem(
                task.path,
                task.analysis.output_lines.get(table, 0) if line is None else line,
                f"table {table} is written by two tasks: also by "
                f"{other.path}:{other.analysis.output_lines.get(table, 0)}",
            )
        )
        if task.name == table:
            task.name = f"{task.path}:{task.name}"
    project.tasks[task.name] = task


def _add_checks(project: Project) -> None:
    """Each declared check becomes a task reading the table it checks."""
    from daglake.checks.load import load_checks  # the package's queries import sqlglot
    from daglake.sql.analysis import SqlAnalysis

    # a task's primary output (its name, unless a second writer of that table renamed it)
    task_paths = {t.path: t.outputs[0] if t.outputs else t.name for t in project.tasks.values() if t.kind != "python"}
    task_paths.update({path: "" for path in project.broken})  # checked once the file is fixed
    specs, problems = load_checks(project.root, project.config, task_paths, project.cache)
    project.problems.extend(problems)
    for spec in specs:
        tables = [spec.table, *spec.reads]
        project.tasks[spec.name] = Task(
            name=spec.name,
            path=spec.path,
            kind="check",
            outputs=[],
            reads=[Read(table, spec.line, 0) for table in dict.fromkeys(tables)],
            analysis=SqlAnalysis(statements=[(spec.line, "check")]),
            cache_key="",
            text="",
            check=spec,
        )


def _make_lake_task(project: Project, task: Task, zone: str, partition_by: list[str]) -> None:
    """A SQL task whose result lives in the lake: one query, its table named ``zone.x``."""
    line = task.analysis.statements[0][0] if task.analysis.statements else 1
    if len(task.analysis.statements) != 1 or not task.analysis.has_bare_query:
        project.problems.append(
            Problem(task.path, line, f"a task in lake zone {zone} must hold exactly one query (SELECT/WITH)")
        )
        return
    if task.outputs[0].split(".")[0] != zone:
        project.problems.append(
            Problem(task.path, line, f"its table {task.outputs[0]} must be in dataset {zone} (its lake zone): put the file in a folder named {zone}")
        )
        return
    task.zone, task.partition_by = zone, list(partition_by)


def _add_python_tasks(project: Project, relative: str) -> None:
    from daglake.pytasks import discover
    from daglake.sql.analysis import SqlAnalysis

    for found in discover(project.root, relative, project.problems):
        spec = found.spec
        analysis = SqlAnalysis(
            outputs=list(spec.outputs),
            output_lines={o: found.line for o in spec.outputs},
            reads={t: (line, 0) for t, line in found.reads.items()},
        )
        task = Task(
            name=spec.outputs[0],
            path=relative,
            kind="python",
            outputs=list(spec.outputs),
            reads=[Read(t, line, 0) for t, line in found.reads.items()],
            analysis=analysis,
            cache_key="",
            text="",
            tags=list(spec.tags),
            function=found.function,
            zone=spec.zone,
            partition_by=list(spec.partition_by),
        )
        task.settings = TaskSettings(retries=spec.retries, retry_delay=spec.retry_delay)
        _register(project, task, found.line)


def _declared_dependencies(project: Project, deps_file: str | None, configured: str | None) -> None:
    """``deps_file`` (``--deps``) is relative to the current folder, as a command's argument
    is; ``configured`` (``dependencies_file`` in daglake.toml) to the project root."""
    for ref, settings in project.config.tasks.items():
        line = task_setting_line(project.root, ref, "depends_on")
        _declare(project, CONFIG_FILE, ref, settings.depends_on, lambda _v, n=line: n)
    if deps_file:
        full, shown = Path(deps_file).absolute(), _shown_from_cwd(deps_file)
    elif configured:
        path = Path(configured)
        full, shown = (path if path.is_absolute() else project.root / path), configured
    else:
        return
    try:
        text = read_project_file(full, shown)
    except UnreadableFile as exc:
        problem = exc.problem
        project.problems.append(Problem(problem.path, problem.line, f"dependencies file {problem.message}", problem.column))
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        project.problems.append(Problem(shown, exc.lineno, f"invalid JSON: {exc.msg}", exc.colno))
        return
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in data.values()
    ):
        project.problems.append(
            Problem(shown, 1, 'dependencies must be an object like {"task.sql": ["upstream.sql"]}')
        )
        return
    for ref, upstream in data.items():
        _declare(project, shown, ref, upstream, lambda value: _json_line(text, value))


def _shown_from_cwd(given: str) -> str:
    """A path as messages name it: relative to the current folder when inside it."""
    path = Path(given)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _declare(project: Project, source: str, ref: str, upstream: list[str], line_of: object) -> None:
    assert callable(line_of)
    task = project.task_for(ref)
    if task is None:
        project.problems.append(Problem(source, line_of(ref), f"unknown task '{ref}'"))
        return
    for item in upstream:
        dependency = project.task_for(item)
        if dependency is None:
            project.problems.append(
                Problem(source, line_of(item), f"unknown task '{item}' in dependencies of {task.path}")
            )
        elif dependency.name != task.name:
            task.declared.add(dependency.name)


def _json_line(text: str, value: str) -> int:
    index = text.find(json.dumps(value))
    return text.count("\n", 0, index) + 1 if index >= 0 else 0
