"""Column lineage (SPEC §4, ``daglake lineage``) against golden files: each folder under
``tests/lineage/`` is a project with an ``expected.json`` of columns and what ``--json``
prints for them (``sources`` and ``filters`` upstream, or ``dependents`` downstream);
``tests/lineage/*.json`` do the same for a project elsewhere in the repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daglake.cli.lineage import lineage_report
from daglake.errors import UsageError

HERE = Path(__file__).resolve().parent / "lineage"
REPO = HERE.parents[1]


def _cases() -> list[tuple[Path, dict[str, Any]]]:
    cases = []
    for expected in sorted([*HERE.glob("*/expected.json"), *HERE.glob("*.json")]):
        spec = json.loads(expected.read_text(encoding="utf-8"))
        root = REPO / spec["project"] if "project" in spec else expected.parent
        cases += [(root, entry) for entry in spec["columns"]]
    return cases


@pytest.mark.parametrize(("root", "expected"), _cases(), ids=lambda c: c["column"] if isinstance(c, dict) else c.name)
def test_a_columns_lineage_is_as_golden(root: Path, expected: dict[str, Any]) -> None:
    report = lineage_report(root, expected["column"], downstream="dependents" in expected, deps=None)
    assert report == expected


def test_a_table_lists_every_column_with_its_lineage() -> None:
    report = lineage_report(HERE / "dropped_downstream", "tmp.wide", downstream=False, deps=None)
    assert report == {"table": "tmp.wide", "columns": {
        "tmp.wide.id": {"sources": ["raw.t.id"], "filters": []},
        "tmp.wide.secret": {"sources": ["raw.t.secret"], "filters": []},
    }}


def test_an_unknown_column_names_the_columns_there_are() -> None:
    with pytest.raises(UsageError, match=r"tmp\.wide has no column nope; its columns: id, secret"):
        lineage_report(HERE / "dropped_downstream", "tmp.wide.nope", downstream=False, deps=None)


def test_the_cli_prints_json_and_text() -> None:
    script = Path(sys.executable).with_name("daglake")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]
    project = str(HERE / "struct_in_array")
    done = subprocess.run([*command, "lineage", "final.lines.currency", project, "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sources"] == ["raw.items.currency", "tmp.orders.items.currency"]
    text = subprocess.run([*command, "lineage", "raw.items.currency", project, "--downstream"], capture_output=True, text=True, check=False)
    assert text.stdout.splitlines() == [
        "raw.items.currency", "  -> final.lines.currency", "  -> tmp.orders.items", "  -> tmp.orders.items.currency",
    ]
    missing = subprocess.run([*command, "lineage", "no.such", project], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no table or column no.such")
