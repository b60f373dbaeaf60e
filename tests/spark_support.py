"""One SparkSession (``local[2]``) for the whole test session, and the CLI run in process so
that every Spark test shares it: a JVM per ``daglake`` command would cost seconds each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system_deps import unavailable
from tests.test_cli_e2e import Result

# tiny tables: one shuffle partition each, no adaptive re-planning (results are the same)
TEST_CONF = {"spark.sql.shuffle.partitions": "2", "spark.sql.adaptive.enabled": "false"}
SPARK_TOML = '\n[targets.spark]\nengine = "spark"\n\n[targets.spark.spark]\nmaster = "local[2]"\n'


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The process's SparkSession, started by daglake's own engine code."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("pyspark is not installed (requirements-dev.lock has it)", "the spark engine")
    from daglake.engine_settings import SparkSettings
    from daglake.engines.spark_session import java_version, spark_session

    version = java_version()
    if version is None or version < 17:
        unavailable(f"the spark engine needs Java 17 or newer, found {version or 'none'} (scripts/system-deps.sh installs it)", "the spark engine")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = spark_session(SparkSettings(master="local[2]", conf=TEST_CONF), tmp_path_factory.mktemp("spark"))
    yield session


def spark_target(root: Path) -> None:
    """Add ``[targets.spark]`` (local[2]) to the project's daglake.toml."""
    config = root / "daglake.toml"
    text = config.read_text(encoding="utf-8") if config.exists() else ""
    config.write_text(text + SPARK_TOML, encoding="utf-8")


def daglake_in_process(*args: object) -> Result:
    """The CLI in this process (sharing its SparkSession); a traceback fails the test."""
    from typer.testing import CliRunner

    from daglake.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    out = Result(result.exit_code, result.stdout, result.stderr)
    assert "Traceback (most recent call last)" not in out.output, out.output
    return out
