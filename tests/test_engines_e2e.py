"""The core end-to-end behaviour on every engine: the real ``daglake`` command on copies of
``examples/products``, on embedded DuckDB, on BigQuery (the official client against the local
emulator) and on Spark (local[2]; the command runs in this process to share the test session's
SparkSession), read back through the engine seam itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.bigquery_emulator import Emulator, bigquery_target, comparable_rows, read_table
from tests.spark_support import daglake_in_process, spark_target
from tests.test_cli_e2e import BUILT_ROWS, SEED_ROWS, Result, copy_example, daglake


@dataclass
class EngineUnderTest:
    name: str
    prepare: Callable[[Path], None]  # gives a copied project a target on this engine
    args: tuple[str, ...]  # what `daglake run/show/validate` are given to use it

    def project(self, tmp_path: Path, *, checks: bool = False) -> Path:
        root = copy_example(tmp_path, checks=checks)
        self.prepare(root)
        return root

    def run(self, root: Path, *args: object) -> Result:
        command = daglake_in_process if self.name == "spark" else daglake
        return command("run", root, *self.args, *args)

    def rows(self, root: Path, table: str) -> list[dict[str, Any]]:
        return read_table(root, table, target={"bigquery": "emu", "spark": "spark"}.get(self.name))


@pytest.fixture(params=["duckdb", "bigquery", "spark"])
def engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    if request.param == "duckdb":
        return EngineUnderTest("duckdb", lambda root: None, ())
    if request.param == "spark":
        request.getfixturevalue("spark")
        return EngineUnderTest("spark", spark_target, ("--target", "spark"))
    emulator: Emulator = request.getfixturevalue("bq_emulator")
    return EngineUnderTest("bigquery", lambda root: bigquery_target(root, emulator.url, emulator.prefix()), ("--target", "emu"))


def states(result: Result) -> dict[str, str]:
    return {t["name"]: t["state"] for t in result.json()["tasks"]}


def test_a_clean_run_builds_every_table_with_its_rows(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    result = engine.run(root, "--json")
    assert result.code == 0, result.output
    summary = result.json()
    assert summary["engine"] == engine.name
    assert set(states(result).values()) == {"success"}
    rows = {t["name"]: t["rows"] for t in summary["tasks"]}
    for table, count in {**SEED_ROWS, **BUILT_ROWS}.items():
        assert len(engine.rows(root, table)) == count, table
        assert rows[table] == count, table


def test_final_products_holds_the_values_worked_out_by_hand(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    assert engine.run(root).code == 0
    products = {row["product_id"]: row for row in engine.rows(root, "final.products")}
    parka = products[106]  # two variants, 2 + 1 sold at 449, no discount
    assert (parka["variant_count"], parka["units_sold"], float(parka["net_revenue"])) == (2, 3, 1302.0)
    assert {v["sku"] for v in parka["variants"]} == {"JK-NRD-02-BLK-L", "JK-NRD-02-BLK-XL"}
    assert parka["supplier"]["name"] == "Pacific Textiles Ltd"  # a struct keeps its field names
    socks = products[113]  # launched, never sold, no variants
    assert (socks["variant_count"], socks["units_sold"], socks["is_in_stock"]) == (0, 0, False)
    assert not socks["variants"]


def test_a_re_run_skips_what_did_not_change_and_a_forced_selection_rebuilds_only_itself(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    assert engine.run(root).code == 0
    again = engine.run(root, "--json")
    assert again.code == 0, again.output
    assert {states(again)[t] for t in [*SEED_ROWS, *BUILT_ROWS]} == {"skipped"}
    selected = engine.run(root, "--select", "tmp.category_tree", "--json")
    assert selected.code == 0, selected.output
    assert states(selected) == {"tmp.category_tree": "skipped"}  # unchanged
    forced = engine.run(root, "--select", "tmp.category_tree", "--force", "tmp.category_tree", "--json")
    assert forced.code == 0, forced.output
    assert states(forced) == {"tmp.category_tree": "success"}


def test_a_failing_task_fails_its_branch_only_with_its_file_and_line(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    assert engine.run(root).code == 0
    before = comparable_rows(engine.rows(root, "tmp.category_tree"))
    source = root / "res/tmp/category_tree.sql"
    lines = source.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if text.strip() == "0 AS depth")
    lines.insert(line - 1, "    no_such_column AS broken,")  # in the recursive CTE's first SELECT
    source.write_text("\n".join(lines) + "\n")
    result = engine.run(root, "--json", "--force", "tmp.stock_levels")  # unchanged, it would be skipped
    assert result.code == 1
    tasks = {t["name"]: t for t in result.json()["tasks"]}
    failed = tasks["tmp.category_tree"]
    assert failed["state"] == "failed"
    assert failed["location"] == f"res/tmp/category_tree.sql:{line}", failed
    assert "no_such_column" in failed["error"]
    assert tasks["tmp.stock_levels"]["state"] == "success"  # another branch finishes
    assert tasks["final.products"]["state"] == "upstream_failed"
    assert comparable_rows(engine.rows(root, "tmp.category_tree")) == before  # the old table stays
    if engine.name == "bigquery":
        job = failed["attempts"][-1]["job_ids"][-1]
        assert job and job in failed["error"]


def test_sql_reads_the_logical_date_and_run_id_as_parameters(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    (root / "res/tmp/stamped.sql").write_text(
        "-- the interval this run is for\nSELECT @ds AS ds, DATE_ADD(@ds, INTERVAL 1 MONTH) AS next_ds, @run_id AS run_id\n"
    )
    result = engine.run(root, "--date", "2024-02-29", "--json")
    assert result.code == 0, result.output
    [row] = engine.rows(root, "tmp.stamped")
    assert (str(row["ds"]), str(row["next_ds"]), row["run_id"]) == ("2024-02-29", "2024-03-29", result.json()["run_id"])


PYTHON_TASK = '''
import pyarrow as pa

import daglake


def arrow(result):
    """ctx.sql gives the engine's own result: a DuckDB relation, Arrow on BigQuery, a Spark DataFrame."""
    if isinstance(result, pa.Table):
        return result
    return result.toArrow() if hasattr(result, "toArrow") else result.fetch_arrow_table()


@daglake.task("tmp.python_counts", inputs=["raw.products", "raw.categories"])
def counts(ctx):
    products = arrow(ctx.sql("SELECT COUNT(*) AS n FROM `my-project.raw.products`"))
    categories = arrow(ctx.table("raw.categories"))
    assert ctx.native is not None
    return pa.table({"what": ["products", "categories"], "n": [products.column("n")[0].as_py(), categories.num_rows]})
'''


def test_a_python_task_uses_portable_sql_and_returns_rows(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    (root / "res/tmp/python_counts.py").write_text(PYTHON_TASK)
    result = engine.run(root, "--json")
    assert result.code == 0, result.output
    assert states(result)["tmp.python_counts"] == "success"
    rows = {row["what"]: row["n"] for row in engine.rows(root, "tmp.python_counts")}
    assert rows == {"products": SEED_ROWS["raw.products"], "categories": SEED_ROWS["raw.categories"]}
    if engine.name == "bigquery":  # its two queries, the load job and the copy into the table
        task = next(t for t in result.json()["tasks"] if t["name"] == "tmp.python_counts")
        assert len(set(task["attempts"][0]["job_ids"])) == 4, task


def test_the_example_checks_pass(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path, checks=True)
    result = engine.run(root, "--json")
    assert result.code == 0, result.output
    checks = [t for t in result.json()["tasks"] if t["kind"] == "check"]
    assert len(checks) >= 20
    assert {t["state"] for t in checks} == {"success"}


def test_a_dry_run_touches_nothing(engine: EngineUnderTest, tmp_path: Path) -> None:
    root = engine.project(tmp_path)
    result = engine.run(root, "--dry-run", "--json")
    assert result.code == 0, result.output
    assert json.loads(result.out)["state"] == "dry_run"
    with pytest.raises(Exception, match=r"(?i)not found|does not exist|cannot be found"):
        engine.rows(root, "raw.products")
