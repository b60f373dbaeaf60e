from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ProjectFactory = Callable[[dict[str, str]], Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write ``{relative path: text}`` into a fresh project folder and return it."""

    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "project"
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return make


from tests.bigquery_emulator import bq_emulator  # noqa: E402, F401 - fixture
from tests.postgres import new_database, postgres_server  # noqa: E402, F401 - fixture
from tests.spark_support import spark  # noqa: E402, F401 - fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with state in SQLite (the default) and again in a real PostgreSQL."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("DAGLAKE_STATE_URL", new_database(server))
    else:
        monkeypatch.delenv("DAGLAKE_STATE_URL", raising=False)
    return str(request.param)
