"""Big SQL files (SPEC §12): parsed in time proportional to their size, once per content, and
a line on stderr while parsing takes more than a second."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daglake import events
from daglake.project import load_project
from tests.conftest import ProjectFactory

ROWS = 40_000  # about 2 MB of INSERT … VALUES


def _seed(rows: int) -> str:
    values = ",\n".join(f"  ({i}, 'sku-{i:07d}', {i % 97}.25, DATE '2024-01-{1 + i % 28:02d}')" for i in range(rows))
    return (
        "CREATE OR REPLACE TABLE raw.items (id INT64, sku STRING, price NUMERIC, day DATE);\n"
        f"INSERT INTO raw.items (id, sku, price, day) VALUES\n{values};\n"
    )


def _daglake(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    script = Path(sys.executable).with_name("daglake")
    started = time.perf_counter()
    result = subprocess.run(
        [str(script), *args], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )
    return result, time.perf_counter() - started


def test_slow_work_says_what_it_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "SLOW", 0.0)
    heard: list[str] = []
    said = threading.Event()

    def progress(line: str) -> None:
        heard.append(line)
        said.set()

    with events.said_if_slow(progress, "parsing big.sql (8.6 MB)…"):
        assert said.wait(10), "the progress line never came"
    assert heard == ["parsing big.sql (8.6 MB)…"]


def test_quick_work_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "SLOW", 0.05)
    heard: list[str] = []
    with events.said_if_slow(heard.append, "parsing small.sql…"):
        pass
    deadline = threading.Event()
    deadline.wait(0.2)  # past SLOW: a timer that was not cancelled would have fired by now
    assert heard == []


def test_discovery_names_the_file_it_is_parsing(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "SLOW", 0.0)
    root = make_project({"res/seeds/items.sql": _seed(2_000)})
    heard: list[str] = []
    project = load_project(root, progress=heard.append)
    assert project.problems == []
    # the timer runs on its own thread; parsing 2,000 rows outlasts a zero-second timer
    assert any(line.startswith("parsing res/seeds/items.sql (") for line in heard), heard


@pytest.mark.slow
def test_a_two_megabyte_file_is_parsed_once_in_bounded_time(make_project: ProjectFactory) -> None:
    text = _seed(ROWS)
    assert len(text) > 2_000_000
    root = make_project(
        {"res/seeds/items.sql": text, "res/tmp/priced.sql": "SELECT id, price FROM raw.items WHERE price > 50"}
    )
    first, cold = _daglake(root, "validate", ".")
    assert first.returncode == 0, first.stderr
    assert cold < 30, f"validating 2 MB took {cold:.1f} s"  # 8.6 MB takes 8.6 s here
    again, warm = _daglake(root, "validate", ".")
    assert again.returncode == 0, again.stderr
    assert warm < cold / 2, f"the parse is not cached: {cold:.2f} s, then {warm:.2f} s"
    run, _ = _daglake(root, "run", ".")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 success" in run.stdout, run.stdout
