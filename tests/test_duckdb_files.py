"""One DuckDB database per file per process: engines and the API share it, whatever their mode."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from daglake.engine_settings import DuckDBSettings
from daglake.engines import create_engine, duckdb_files
from daglake.engines.base import Engine


def open_engine(root: Path, *, read_only: bool) -> Engine:
    return create_engine(DuckDBSettings(path="warehouse.duckdb"), root, read_only=read_only)


def test_read_only_and_read_write_engines_share_one_database(tmp_path: Path) -> None:
    writer = open_engine(tmp_path, read_only=False)
    writer.fetch("CREATE TABLE t AS SELECT 1 AS x")
    reader = open_engine(tmp_path, read_only=True)  # DuckDB alone refuses this
    assert reader.fetch("SELECT x FROM t")[1] == [(1,)]
    writer.close()
    assert duckdb_files.is_open(tmp_path / "warehouse.duckdb")  # the reader still uses it
    reader.close()
    assert not duckdb_files.is_open(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as other:  # released
        assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_a_writer_waits_for_read_only_users_then_opens_read_write(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    reader = duckdb_files.connect(path, read_only=True)
    opened = threading.Event()

    def write() -> None:
        cursor = duckdb_files.connect(path, read_only=False)
        cursor.execute("CREATE TABLE written AS SELECT 1 AS x")
        opened.set()
        duckdb_files.release(path, cursor)

    thread = threading.Thread(target=write)
    thread.start()
    assert not opened.wait(0.2)  # still read-only while the reader holds it
    duckdb_files.release(path, reader)
    thread.join(timeout=30)
    assert opened.is_set()
    with duckdb.connect(str(path), read_only=True) as check:
        assert check.execute("SELECT x FROM written").fetchone() == (1,)


def test_a_failed_setting_releases_the_file(tmp_path: Path) -> None:
    bad = DuckDBSettings(path="warehouse.duckdb", memory_limit="lots")
    with pytest.raises(Exception, match="memory_limit"):
        create_engine(bad, tmp_path)
    assert not duckdb_files.is_open(tmp_path / "warehouse.duckdb")


def test_an_engine_waits_a_moment_for_another_process_to_let_go(tmp_path: Path) -> None:
    """`daglake run` beside `daglake serve`, which keeps the warehouse open between appends."""
    import subprocess
    import sys

    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.readline()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "held\n"
    timer = threading.Timer(0.3, lambda: (holder.stdin.write("\n"), holder.stdin.flush()))  # type: ignore[union-attr]
    timer.start()
    try:
        with open_engine(tmp_path, read_only=False) as engine:  # waits for the holder
            assert engine.fetch("SELECT 42")[1] == [(42,)]
    finally:
        timer.cancel()
        holder.communicate(timeout=30)


def test_source_versions_are_recorded_only_when_no_other_user_could_have_written(tmp_path: Path) -> None:
    """The stamp keeps the source versions an engine read only when it had the file to
    itself and wrote nothing: another user of the same database (the API's appender) may have
    appended rows after they were read."""
    from daglake.engines import duckdb_stamp

    settings = DuckDBSettings(path="warehouse.duckdb")
    seed = create_engine(settings, tmp_path)
    seed.fetch("CREATE TABLE src AS SELECT 1 AS x")
    seed.close()

    def stamped_versions() -> dict[str, str | None] | None:
        stamp = duckdb_stamp.read(tmp_path, tmp_path / "warehouse.duckdb", settings.options())
        assert stamp is not None and "src" in stamp.tables
        return stamp.versions

    assert stamped_versions() is None  # it wrote
    alone = create_engine(settings, tmp_path, lazy=True)
    assert not duckdb_files.is_open(tmp_path / "warehouse.duckdb")  # the tables are in the stamp
    version = alone.source_versions(["src"])["src"]  # the versions are not: read, so opened
    assert version is not None and duckdb_files.is_open(tmp_path / "warehouse.duckdb")
    alone.close()
    assert stamped_versions() == {"src": version}
    again = create_engine(settings, tmp_path, lazy=True)
    assert again.source_versions(["src"]) == {"src": version} and not duckdb_files.is_open(tmp_path / "warehouse.duckdb")
    again.close()

    run = create_engine(settings, tmp_path)  # the stamp is for lazy engines: this one opens
    read = run.source_versions(["src"])
    other = create_engine(settings, tmp_path)
    other.fetch("INSERT INTO src VALUES (2)")
    other.close()
    run.close()
    assert read["src"] is not None and stamped_versions() is None
