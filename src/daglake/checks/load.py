"""Collect a project's checks from their three homes: ``daglake.toml``, a checks file beside a
SQL task, and the ``.sql`` files of the check folders."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from daglake.checks.declare import Origin, declare
from daglake.checks.lines import Lines, read_toml, read_yaml, toml_lines
from daglake.checks.params import Judge, condition_error
from daglake.checks.spec import CheckSpec, split_table
from daglake.checks.sqlfile import check_files, load_sql_check
from daglake.config import CONFIG_FILE, ProjectConfig
from daglake.errors import Problem
from daglake.files import UnreadableFile, read_project_file
from daglake.sql.cache import AnalysisCache

BESIDE_SUFFIXES = (".checks.toml", ".checks.yml", ".checks.yaml")


def load_checks(
    root: Path, config: ProjectConfig, task_paths: Mapping[str, str], cache: AnalysisCache | None = None
) -> tuple[list[CheckSpec], list[Problem]]:
    """Every check declared in the project, and every mistake in the declarations.

    ``task_paths`` maps each SQL task's relative path to its primary output table: a file
    ``<stem>.checks.yml`` beside ``<stem>.sql`` checks that table; an empty table is a SQL file
    that does not parse (reported already), whose checks wait until it does. Whether a checked table is
    produced by anything is left to the caller, who knows the graph."""
    specs: list[CheckSpec] = []
    problems: list[Problem] = []
    dialect = config.dialect

    def judge(text: Any) -> str | None:
        if cache is None or not isinstance(text, str):
            return condition_error(text, dialect)
        verdict: str | None = cache.remembered("check condition", text, dialect, lambda: condition_error(text, dialect))
        return verdict

    _from_config(config, specs, problems, judge)
    _from_beside_files(root, config.dialect, task_paths, specs, problems, judge, cache)
    for relative in check_files(root, config.check_folders):
        spec, found = load_sql_check(root, relative, config.dialect, cache)
        problems.extend(found)
        if spec is not None:
            specs.append(spec)
    return _without_duplicates(specs, problems), problems


def _from_config(config: ProjectConfig, specs: list[CheckSpec], problems: list[Problem], judge: Judge | None) -> None:
    if not config.checks:
        return
    lines = toml_lines(config.text)
    for name, body in config.checks.items():
        origin = Origin(CONFIG_FILE, lines, ("checks", name), config.dialect, judge)
        parts = split_table(name)
        if parts is None or len(parts) < 2:
            problems.append(
                Problem(
                    CONFIG_FILE,
                    origin.line(),
                    f'checks must be under [checks."dataset.table"], not {name!r}',
                )
            )
            continue
        _declare(".".join(parts), body, origin, specs, problems)


def _from_beside_files(
    root: Path,
    dialect: str,
    task_paths: Mapping[str, str],
    specs: list[CheckSpec],
    problems: list[Problem],
    judge: Judge | None,
    cache: AnalysisCache | None,
) -> None:
    stems = {
        path.removesuffix(".sql"): table
        for path, table in task_paths.items()
        if path.endswith(".sql")
    }
    folders = sorted({PurePosixPath(stem).parent for stem in stems})
    for folder in folders:
        directory = root / folder
        if not directory.is_dir():
            continue
        for file in sorted(directory.iterdir()):
            suffix = next((s for s in BESIDE_SUFFIXES if file.name.endswith(s)), None)
            if suffix is None or not file.is_file():
                continue
            relative = (folder / file.name).as_posix()
            stem = relative.removesuffix(suffix)
            if stem not in stems:
                expected = PurePosixPath(stem).name + ".sql"
                problems.append(
                    Problem(
                        relative,
                        0,
                        f"checks file beside no SQL task (expected {expected} in the same folder)",
                    )
                )
                continue
            if not stems[stem]:
                continue
            data, lines, found = _read(root / relative, relative, suffix, cache)
            problems.extend(found)
            if data is not None:
                _declare(stems[stem], data, Origin(relative, lines, (), dialect, judge), specs, problems)


def _read(path: Path, relative: str, suffix: str, cache: AnalysisCache | None) -> tuple[Any, Lines, list[Problem]]:
    try:
        text = read_project_file(path, relative)
    except UnreadableFile as exc:
        return None, Lines({}), [exc.problem]
    if suffix.endswith(".toml"):
        return read_toml(text, relative)
    if cache is None:
        return read_yaml(text, relative)
    read: list[tuple[Any, Lines, list[Problem]]] = []  # when it was read just now

    def reading() -> dict[str, Any] | None:
        read.append(read_yaml(text, relative))
        return _as_json(read[0])

    remembered = cache.remembered(f"yaml document {relative}", text, "", reading)
    if read:
        return read[0]
    return _from_json(remembered) if remembered is not None else read_yaml(text, relative)


def _as_json(read: tuple[Any, Lines, list[Problem]]) -> dict[str, Any] | None:
    """A YAML file's reading as the parse cache keeps it (PyYAML is ~12 ms to import on a run
    that changed nothing), or None when JSON would not give the same document back (a date, a
    number as a key): such a file is read again each time."""
    data, lines, problems = read
    try:
        same = json.loads(json.dumps(data)) == data
    except (TypeError, ValueError):
        same = False
    if not same:
        return None
    found = [[list(path), line] for path, line in lines.found.items()]
    return {"data": data, "lines": found, "problems": [[p.path, p.line, p.message, p.column] for p in problems]}


def _from_json(kept: dict[str, Any]) -> tuple[Any, Lines, list[Problem]]:
    lines = Lines({tuple(path): line for path, line in kept["lines"]})
    return kept["data"], lines, [Problem(*problem) for problem in kept["problems"]]


def _declare(
    table: str, body: Any, origin: Origin, specs: list[CheckSpec], problems: list[Problem]
) -> None:
    found, trouble = declare(table, body, origin)
    specs.extend(found)
    problems.extend(trouble)


def _without_duplicates(specs: list[CheckSpec], problems: list[Problem]) -> list[CheckSpec]:
    """Names identify checks in the run history, so the same check twice is a mistake."""
    first: dict[str, CheckSpec] = {}
    for spec in specs:
        if spec.name in first:
            earlier = first[spec.name]
            problems.append(
                Problem(
                    spec.path,
                    spec.line,
                    f"check '{spec.name}' is declared twice (first at {earlier.path}:{earlier.line}); give one a name",
                )
            )
        else:
            first[spec.name] = spec
    return list(first.values())
