"""Lake tables: Parquet with Hive partitions, atomic publication, partition overwrite, catalog."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from daglake.history import list_runs
from daglake.lake.catalog import describe_lake_table
from daglake.lake.tables import CRASH_AT_ENV, lake_table
from daglake.runner import RunOptions, run
from tests.conftest import ProjectFactory

TASKS = '''
import os
import daglake


@daglake.task("sales", zone="curated", partition_by=["city"])
def sales(ctx):
    cities = os.environ.get("CITIES", "BCN,MAD").split(",")
    tag = os.environ.get("TAG", "v1")
    values = ", ".join(f"('{c}', {i}, '{tag}')" for c in cities for i in range(3))
    ctx.write("curated.sales", f"SELECT * FROM (VALUES {values}) AS t(city, n, tag)",
              mode=os.environ.get("MODE", "overwrite_partitions"))
    if os.environ.get("FAIL_AFTER_WRITE"):
        raise RuntimeError("failed after writing")
'''


@pytest.fixture
def lake_project(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CITIES", "TAG", "MODE", "FAIL_AFTER_WRITE"):
        monkeypatch.delenv(name, raising=False)
    return make_project(
        {
            "tasks.py": TASKS,
            "res/final/by_city.sql": "SELECT city, COUNT(*) AS n, MIN(tag) AS tag FROM curated.sales GROUP BY 1",
        }
    )


def lake_rows(root: Path) -> list[tuple[object, ...]]:
    glob = root / "lake" / "curated" / "sales" / "**" / "*.parquet"
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT city, count(*), min(tag) FROM read_parquet('{glob}', hive_partitioning = true) "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()


def warehouse(root: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_lake_table_is_partitioned_parquet_readable_by_name(lake_project: Path) -> None:
    summary = run(lake_project)
    assert summary.state == "success", {n: t.error for n, t in summary.tasks.items()}
    table = lake_project / "lake" / "curated" / "sales"
    assert table.is_symlink()
    assert sorted(p.name for p in table.iterdir() if not p.name.startswith(".")) == ["city=BCN", "city=MAD"]
    assert lake_rows(lake_project) == [("BCN", 3, "v1"), ("MAD", 3, "v1")]
    assert warehouse(lake_project, "SELECT * FROM final.by_city ORDER BY city") == [("BCN", 3, "v1"), ("MAD", 3, "v1")]
    assert summary.tasks["curated.sales"].rows is None  # written through ctx.write


def test_overwriting_partitions_leaves_the_others_alone(lake_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(lake_project)
    table = lake_project / "lake" / "curated" / "sales"
    inodes_before = {p.name: p.stat().st_ino for p in (table / "city=BCN").iterdir()}
    monkeypatch.setenv("CITIES", "MAD,VLC")
    monkeypatch.setenv("TAG", "v2")
    assert run(lake_project).state == "success"
    assert lake_rows(lake_project) == [("BCN", 3, "v1"), ("MAD", 3, "v2"), ("VLC", 3, "v2")]
    # the untouched partition is carried over as hard links to the same files, not copies
    assert inodes_before and {p.name: p.stat().st_ino for p in (table / "city=BCN").iterdir()} == inodes_before
    versions = [p.name for p in (lake_project / "lake" / "curated").iterdir() if p.name.startswith(".")]
    assert len(versions) == 1  # the old version is gone, nothing half-written is left


def test_a_partition_is_its_whole_key_not_its_outer_folder(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files ingested on the same day share ``ingest_date=…``: writing one of them must keep
    the others (a regression: only top-level folders were compared)."""
    tasks = (
        "import os\nimport daglake\n\n\n"
        "@daglake.task('raw.files', zone='raw', partition_by=['day', 'file'])\n"
        "def files(ctx):\n"
        "    name = os.environ['FILE']\n"
        "    ctx.write('raw.files', f\"SELECT DATE '2024-01-01' AS day, '{name}' AS file, 1 AS n\")\n"
    )
    root = make_project({"tasks.py": tasks})
    for name in ("a.jsonl", "b.jsonl", "a.jsonl"):
        monkeypatch.setenv("FILE", name)
        assert run(root).state == "success"
    glob = root / "lake" / "raw" / "files" / "**" / "*.parquet"
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT file, n FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY 1").fetchall()
    assert rows == [("a.jsonl", 1), ("b.jsonl", 1)]


def test_partition_values_keep_their_type(make_project: ProjectFactory) -> None:
    """A string partition that looks like a number stays a string (DuckDB alone would guess
    BIGINT from the folder name and read "12" back as 12)."""
    root = make_project(
        {
            "tasks.py": (
                "import daglake\n\n\n"
                "@daglake.task('curated.codes', zone='curated', partition_by=['code', 'day'])\n"
                "def codes(ctx):\n"
                "    ctx.write('curated.codes', \"SELECT * FROM (VALUES ('12', DATE '2024-01-02', 1), "
                "(NULL, DATE '2024-01-03', 2)) AS t(code, day, n)\")\n"
            ),
            "res/final/codes.sql": "SELECT code, day, n FROM curated.codes",
        }
    )
    assert run(root).state == "success"
    assert warehouse(root, "SELECT code, day::VARCHAR, n FROM final.codes ORDER BY n") == [
        ("12", "2024-01-02", 1),
        (None, "2024-01-03", 2),
    ]
    assert warehouse(root, "SELECT typeof(code), typeof(day) FROM final.codes LIMIT 1") == [("VARCHAR", "DATE")]


def test_replace_mode_rewrites_the_whole_table(lake_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(lake_project)
    monkeypatch.setenv("CITIES", "VLC")
    monkeypatch.setenv("MODE", "replace")
    run(lake_project)
    assert lake_rows(lake_project) == [("VLC", 3, "v1")]


def test_a_task_failing_after_writing_publishes_nothing(lake_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(lake_project)
    before = os.readlink(lake_project / "lake" / "curated" / "sales")
    monkeypatch.setenv("CITIES", "BCN")
    monkeypatch.setenv("TAG", "v2")
    monkeypatch.setenv("FAIL_AFTER_WRITE", "1")
    summary = run(lake_project)
    assert summary.tasks["curated.sales"].state == "failed"
    assert summary.tasks["final.by_city"].state == "upstream_failed"
    assert os.readlink(lake_project / "lake" / "curated" / "sales") == before
    assert lake_rows(lake_project) == [("BCN", 3, "v1"), ("MAD", 3, "v1")]
    hidden = [p.name for p in (lake_project / "lake" / "curated").iterdir() if p.name.startswith(".")]
    assert hidden == [before]


def test_a_sql_task_can_write_to_the_lake(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "daglake.toml": '[tasks."res/staging/events.sql"]\nzone = "staging"\npartition_by = ["day"]\n',
            "res/staging/events.sql": "SELECT DATE_ADD(DATE '2024-01-01', INTERVAL MOD(x, 2) DAY) AS day, x FROM UNNEST(GENERATE_ARRAY(1, 10)) AS x",
            "res/final/count.sql": "SELECT COUNT(*) AS n FROM staging.events",
        }
    )
    summary = run(root)
    assert summary.state == "success", {n: t.error for n, t in summary.tasks.items()}
    assert summary.tasks["staging.events"].rows == 10
    assert sorted(p.name for p in (root / "lake" / "staging" / "events").iterdir() if not p.name.startswith(".")) == [
        "day=2024-01-01",
        "day=2024-01-02",
    ]
    assert warehouse(root, "SELECT n FROM final.count") == [(10,)]


def test_an_empty_partitioned_result_is_an_empty_table(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "tasks.py": '''
import daglake


@daglake.task("staging.none", zone="staging", partition_by=["k"])
def none(ctx):
    return ctx.sql("SELECT 1 AS k, 'x' AS v WHERE false")
''',
            "res/final/n.sql": "SELECT COUNT(*) AS n FROM staging.none",
        }
    )
    assert run(root).state == "success"
    assert warehouse(root, "SELECT n FROM final.n") == [(0,)]


def test_the_catalog_describes_every_table(lake_project: Path) -> None:
    summary = run(lake_project, RunOptions(logical_date="2024-02-01"))
    catalog = json.loads((lake_project / "lake" / "_catalog" / "catalog.json").read_text())
    sales = catalog["tables"]["curated.sales"]
    assert sales["zone"] == "curated"
    assert sales["storage"] == "lake"
    assert sales["path"] == "lake/curated/sales"
    assert sales["partitions"] == ["city=BCN", "city=MAD"]
    assert sales["rows"] == 6
    assert sum(f["rows"] for f in sales["files"]) == 6
    assert all(f["path"].startswith("city=") and f["bytes"] > 0 for f in sales["files"])
    assert {(c["name"], c["type"]) for c in sales["schema"]} == {("city", "VARCHAR"), ("n", "INTEGER"), ("tag", "VARCHAR")}
    assert sorted(f["rows"] for f in sales["files"]) == [3, 3]
    assert sales["task"] == "curated.sales"
    assert sales["task_path"] == "tasks.py"
    assert sales["last_run"] == summary.run_id
    report = catalog["tables"]["final.by_city"]
    assert report["zone"] == "warehouse"
    assert report["rows"] == 2
    assert report["upstream"] == ["curated.sales"]
    assert [c["name"] for c in report["schema"]] == ["city", "n", "tag"]
    # the next run rewrites the table: a new version, described anew (an unchanged one is reused)
    (lake_project / "lake" / "_catalog" / "catalog.json").write_text(
        json.dumps(catalog | {"tables": catalog["tables"] | {"curated.sales": sales | {"rows": -1}}})
    )
    run(lake_project, RunOptions(logical_date="2024-02-01"))
    again = json.loads((lake_project / "lake" / "_catalog" / "catalog.json").read_text())["tables"]
    assert again["curated.sales"]["version"] != sales["version"]
    assert again["curated.sales"]["rows"] == 6
    table = lake_table(lake_project / "lake", "curated.sales")
    def not_asked(_table: object) -> list[Any]:
        raise AssertionError("an unchanged version is not described again")

    reused = describe_lake_table(table, lake_project / "lake", not_asked, not_asked, again["curated.sales"] | {"rows": -1})
    assert reused["rows"] == -1


def test_first_run_of_tasks_publishing_to_a_new_zone_at_once(make_project: ProjectFactory) -> None:
    tasks = "import daglake\n" + "".join(
        f"\n\n@daglake.task('raw.t{i}', zone='raw')\ndef t{i}(ctx):\n    return ctx.sql('SELECT {i} AS x')\n"
        for i in range(6)
    )
    root = make_project({"tasks.py": tasks})
    for _ in range(3):
        summary = run(root)
        assert summary.state == "success", {n: t.error for n, t in summary.tasks.items()}
        assert all(len(t.attempts) == 1 for t in summary.tasks.values())
        import shutil

        shutil.rmtree(root / "lake")
        shutil.rmtree(root / ".daglake")


def test_appended_writes_publish_together_replacing_the_partitions_they_cover(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = (
        "import os\nimport daglake\n\n\n"
        "@daglake.task('raw.b', zone='raw', partition_by=['k'])\n"
        "def b(ctx):\n"
        "    for key in os.environ['KEYS'].split(','):\n"
        "        ctx.write('raw.b', f\"SELECT '{key}' AS k, '{os.environ['TAG']}' AS tag\", append=True)\n"
    )
    root = make_project({"tasks.py": tasks})
    for keys, tag in (("a,b", "v1"), ("b,c", "v2")):
        monkeypatch.setenv("KEYS", keys)
        monkeypatch.setenv("TAG", tag)
        assert run(root).state == "success"
    glob = root / "lake" / "raw" / "b" / "**" / "*.parquet"
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT k, tag FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY 1").fetchall()
    assert rows == [("a", "v1"), ("b", "v2"), ("c", "v2")]


def test_a_table_written_twice_in_a_task_keeps_the_last_write(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "tasks.py": '''
import daglake


@daglake.task("staging.x", zone="staging")
def x(ctx):
    ctx.write("staging.x", "SELECT 1 AS v")
    ctx.write("staging.x", "SELECT 2 AS v")
''',
            "res/final/v.sql": "SELECT v FROM staging.x",
        }
    )
    assert run(root).state == "success"
    assert warehouse(root, "SELECT v FROM final.v") == [(2,)]


def _daglake(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daglake", "run", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("TAG", "CITIES", "MODE", CRASH_AT_ENV)} | env,
    )


def _leftovers(root: Path) -> list[str]:
    curated = root / "lake" / "curated"
    return sorted(p.name for p in curated.iterdir() if p.name.startswith(".sales."))


V1 = [("BCN", 3, "v1"), ("MAD", 3, "v1")]


@pytest.mark.parametrize(
    ("moment", "readers_see", "left"),
    [
        ("publish:linked", "v1", [".sales.link-", ".sales.v", ".sales.v"]),  # new link, old and new versions
        ("publish:swapped", "v2", [".sales.v", ".sales.v"]),  # the new version and the old one
    ],
)
def test_kill_9_during_a_lake_publish_leaves_a_whole_version(
    lake_project: Path, moment: str, readers_see: str, left: list[str]
) -> None:
    """Killed just before the symlink swap readers see the old version, just after it the new
    one; never a mix. The next run removes what the dead one left and publishes normally."""
    assert _daglake(lake_project).returncode == 0
    assert lake_rows(lake_project) == V1
    crashed = _daglake(lake_project, TAG="v2", **{CRASH_AT_ENV: moment})
    assert crashed.returncode == -signal.SIGKILL
    assert lake_rows(lake_project) == [("BCN", 3, readers_see), ("MAD", 3, readers_see)]
    assert [name.rstrip("0123456789abcdef") for name in _leftovers(lake_project)] == left
    again = _daglake(lake_project, TAG="v3")
    assert again.returncode == 0, again.stderr
    assert lake_rows(lake_project) == [("BCN", 3, "v3"), ("MAD", 3, "v3")]
    [version] = _leftovers(lake_project)
    assert (lake_project / "lake" / "curated" / "sales").resolve().name == version
    assert [r.state for r in list_runs(lake_project)] == ["success", "failed", "success"]


def test_kill_9_at_random_moments_of_a_lake_write(lake_project: Path) -> None:
    assert _daglake(lake_project).returncode == 0
    rng = random.Random(20261206)
    for _ in range(6):
        process = subprocess.Popen(
            [sys.executable, "-m", "daglake", "run", str(lake_project)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ | {"TAG": "v2"},
        )
        time.sleep(rng.uniform(0.2, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        rows = lake_rows(lake_project)
        assert rows in (V1, [("BCN", 3, "v2"), ("MAD", 3, "v2")])
        assert _daglake(lake_project).returncode == 0  # back to v1 for the next trial
        assert len(_leftovers(lake_project)) == 1


def test_the_duckdb_engine_counts_parquet_rows_as_their_footers_say(tmp_path: Path) -> None:
    """The catalog's row counts: DuckDB's own footer reader (no pyarrow to import), or, for a
    name DuckDB would read as a pattern, the footers through pyarrow."""
    from daglake.engine_settings import DuckDBSettings
    from daglake.engines import create_engine
    from daglake.engines.base import Engine

    engine = create_engine(DuckDBSettings(path=":memory:"), tmp_path)
    paths = [tmp_path / name for name in ("a.parquet", "b [copy].parquet", "c.parquet")]
    for count, path in zip((1, 8, 15), paths, strict=True):
        engine.fetch(f"COPY (SELECT range AS x FROM range({count})) TO '{path}' (FORMAT parquet)")
    try:
        assert engine.parquet_rows([paths[0], paths[2]]) == [1, 15]
        assert engine.parquet_rows(paths) == [1, 8, 15]
        assert Engine.parquet_rows(engine, paths) == [1, 8, 15]
        assert engine.parquet_rows([]) == []
    finally:
        engine.close()
