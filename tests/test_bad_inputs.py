"""The corpus of broken projects and bad files (SPEC §12), run through the real ``daglake``.

Each folder under ``tests/bad_inputs/`` is one case:

- ``case.toml``: ``command`` (the CLI arguments; the project is the current directory),
  ``exit`` (the expected exit code), ``stderr`` (fragments that must each appear on stderr, in
  order of appearance not required), optionally ``stdout`` (the same for the standard output,
  where a run's table of tasks goes), ``absent`` (fragments that must not appear),
  ``base`` (``"products"`` copies ``examples/products`` first, ``"empty"`` starts from nothing;
  default ``"products"``), ``prepare`` (run ``daglake run --full-refresh`` on the base before
  the case's files are laid over it, then check the warehouse is unchanged afterwards) and
  ``remove`` (files of the base to delete before the overlay).
- ``project/``: files laid over the base, byte for byte (non-UTF-8 files stay as they are).

Whatever the case, no output may contain a Python traceback.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import pytest

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "bad_inputs"
EXAMPLES = HERE.parent / "examples"
WAREHOUSE = Path(".daglake") / "warehouse.duckdb"


def _command() -> list[str]:
    script = Path(sys.executable).with_name("daglake")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]


def _cases() -> list[Path]:
    return sorted(path for path in CORPUS.iterdir() if (path / "case.toml").is_file())


def _daglake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), *args],
        cwd=root,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,
        check=False,
    )


def _warehouse_digest(root: Path) -> dict[str, str]:
    """Every table of the project's DuckDB warehouse, as a digest of its sorted rows."""
    path = root / WAREHOUSE
    if not path.exists():
        return {}
    digests: dict[str, str] = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            rows = connection.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            text = "\n".join(sorted(repr(row) for row in rows))
            digests[f"{schema}.{table}"] = hashlib.sha256(text.encode()).hexdigest()
    return digests


def _lay_out(case: Path, spec: dict[str, Any], root: Path) -> None:
    base = spec.get("base", "products")
    if base == "empty":
        root.mkdir(parents=True)
    else:
        shutil.copytree(
            EXAMPLES / base, root, ignore=shutil.ignore_patterns(".daglake", "lake", "__pycache__")
        )


def _overlay(case: Path, spec: dict[str, Any], root: Path) -> None:
    for relative in spec.get("remove", []):
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    files = case / "project"
    if files.is_dir():
        shutil.copytree(files, root, dirs_exist_ok=True, symlinks=True)


@pytest.mark.parametrize("case", _cases(), ids=lambda path: path.name)
def test_bad_input(case: Path, tmp_path: Path) -> None:
    spec = tomllib.loads((case / "case.toml").read_text(encoding="utf-8"))
    root = tmp_path / "project"
    _lay_out(case, spec, root)
    before: dict[str, str] = {}
    if spec.get("prepare", False):
        prepared = _daglake(root, "run", ".", "--full-refresh")
        assert prepared.returncode == 0, prepared.stderr
        before = _warehouse_digest(root)
    _overlay(case, spec, root)

    result = _daglake(root, *spec["command"])

    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == spec["exit"], output
    for fragment in spec.get("stderr", []):
        assert fragment in result.stderr, f"{fragment!r} not in stderr:\n{result.stderr}"
    for fragment in spec.get("stdout", []):
        assert fragment in result.stdout, f"{fragment!r} not in stdout:\n{result.stdout}"
    for fragment in spec.get("absent", []):
        assert fragment not in output, f"{fragment!r} in output:\n{output}"
    if spec.get("prepare", False):
        assert _warehouse_digest(root) == before
