"""The data lake on Spark: partitioned Parquet versions published with the lake's own atomic
swap, partitions carried over, partition types kept, empty tables, lake tables read by name;
and a table being written when the process is killed is never seen half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from daglake.lake.tables import CRASH_AT_ENV
from tests.bigquery_emulator import read_table
from tests.conftest import ProjectFactory
from tests.spark_support import daglake_in_process, spark_target

TASKS = '''
import os
import daglake


@daglake.task("sales", zone="curated", partition_by=["city"])
def sales(ctx):
    cities = os.environ.get("CITIES", "BCN,MAD").split(",")
    tag = os.environ.get("TAG", "v1")
    rows = " UNION ALL ".join(f"SELECT '{c}' AS city, {i} AS n, '{tag}' AS tag" for c in cities for i in range(3))
    ctx.write("curated.sales", rows, mode=os.environ.get("MODE", "overwrite_partitions"))
'''

FILES = {
    "tasks.py": TASKS,
    "res/final/by_city.sql": "SELECT city, COUNT(*) AS n, MIN(tag) AS tag FROM curated.sales GROUP BY 1",
    "daglake.toml": '[tasks."res/staging/codes.sql"]\nzone = "staging"\npartition_by = ["code", "day"]\n',
    "res/staging/codes.sql": (
        "SELECT '001' AS code, DATE '2024-01-02' AS day, 1 AS n\n"
        "UNION ALL SELECT CAST(NULL AS STRING), DATE '2024-01-03', 2\n"
    ),
    "res/final/codes.sql": "SELECT code, day, n FROM staging.codes",
}


@pytest.fixture
def lake_project(spark: Any, make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CITIES", "TAG", "MODE"):
        monkeypatch.delenv(name, raising=False)
    root = make_project(FILES)
    spark_target(root)
    return root


def run(root: Path, *args: str) -> None:
    result = daglake_in_process("run", root, "--target", "spark", *args)
    assert result.code == 0, result.output


def lake_rows(root: Path) -> list[tuple[object, ...]]:
    """Read with DuckDB: what any other reader of the lake finds."""
    glob = root / "lake" / "curated" / "sales" / "**" / "*.parquet"
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT city, count(*), min(tag) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY 1 ORDER BY 1"
        ).fetchall()


def test_partitioned_lake_tables_are_written_carried_over_and_read_by_name(lake_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(lake_project)
    table = lake_project / "lake" / "curated" / "sales"
    assert table.is_symlink()
    assert sorted(p.name for p in table.iterdir() if not p.name.startswith(".")) == ["city=BCN", "city=MAD"]
    assert lake_rows(lake_project) == [("BCN", 3, "v1"), ("MAD", 3, "v1")]
    inodes = {p.name: p.stat().st_ino for p in (table / "city=BCN").glob("*.parquet")}
    monkeypatch.setenv("CITIES", "MAD,VLC")
    monkeypatch.setenv("TAG", "v2")
    run(lake_project)
    assert lake_rows(lake_project) == [("BCN", 3, "v1"), ("MAD", 3, "v2"), ("VLC", 3, "v2")]
    assert inodes and {p.name: p.stat().st_ino for p in (table / "city=BCN").glob("*.parquet")} == inodes  # hard links
    by_city = sorted((r["city"], r["n"], r["tag"]) for r in read_table(lake_project, "final.by_city", target="spark"))
    assert by_city == [("BCN", 3, "v1"), ("MAD", 3, "v2"), ("VLC", 3, "v2")]
    assert len([p for p in (lake_project / "lake" / "curated").iterdir() if p.name.startswith(".")]) == 1


def test_partition_values_keep_their_type(lake_project: Path) -> None:
    """Spark alone would read ``code=001`` as the integer 1."""
    run(lake_project)
    rows = sorted(read_table(lake_project, "final.codes", target="spark"), key=lambda r: r["n"])
    assert [(r["code"], str(r["day"]), r["n"]) for r in rows] == [("001", "2024-01-02", 1), (None, "2024-01-03", 2)]
    assert sorted((lake_project / "lake/staging/codes").iterdir())[-2].name.startswith("code=")


def test_an_empty_partitioned_result_is_an_empty_table(spark: Any, make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "tasks.py": (
                "import daglake\n\n\n"
                "@daglake.task('staging.none', zone='staging', partition_by=['k'])\n"
                "def none(ctx):\n"
                "    return ctx.sql(\"SELECT 1 AS k, 'x' AS v FROM (SELECT 1) WHERE false\")\n"
            ),
            "res/final/n.sql": "SELECT COUNT(*) AS n FROM staging.none",
        }
    )
    spark_target(root)
    run(root)
    assert [r["n"] for r in read_table(root, "final.n", target="spark")] == [0]


def test_kill_9_while_a_table_is_published_leaves_the_old_version(lake_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the new version is written and linked but before the swap: every reader
    still sees the old version whole, and the next run publishes normally."""
    run(lake_project)
    link = lake_project / ".daglake/spark-warehouse/final/by_city"
    before = link.resolve()
    crashed = subprocess.run(
        # TAG changes what the task writes behind daglake's back: --force, or it is skipped as unchanged
        [sys.executable, "-m", "daglake", "run", str(lake_project), "--target", "spark", "--select", "final.by_city", "--force", "final.by_city"],
        env=os.environ | {"TAG": "v2", CRASH_AT_ENV: "publish:linked"},
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert link.resolve() == before
    with duckdb.connect() as con:
        assert con.execute(f"SELECT count(*) FROM '{link}/*.parquet'").fetchone() == (2,)
    monkeypatch.setenv("TAG", "v2")
    run(lake_project, "--force", "final.by_city")
    assert sorted(r["tag"] for r in read_table(lake_project, "final.by_city", target="spark")) == ["v2", "v2"]
    assert [p.name for p in link.parent.iterdir() if p.name.startswith(".by_city")] == [link.resolve().name]  # leftovers gone
