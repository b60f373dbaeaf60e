"""End to end: the real ``daglake`` command, run as a subprocess on copies of
``examples/products``, clean and deliberately broken.

Each test checks what a user sees: the exit code (0 ok, 1 a task failed, 2 invalid project or
usage), ``path:line: message`` lines on stderr, never a Python traceback, and the tables left in
the copy's warehouse (read with the ``duckdb`` module once the command has exited).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "products"
WAREHOUSE = Path(".daglake") / "warehouse.duckdb"

SEED_ROWS = {
    "raw.categories": 12,
    "raw.suppliers": 7,
    "raw.products": 13,
    "raw.product_variants": 22,
    "raw.purchase_prices": 32,
    "raw.order_lines": 36,
    "raw.stock_movements": 36,
}
BUILT_ROWS = {
    "tmp.inventory_items": 22,
    "tmp.item_purchase_prices": 22,
    "tmp.stock_levels": 22,
    "tmp.sales_lines": 34,  # 36 order lines, 2 cancelled
    "tmp.category_tree": 12,
    "tmp.product_sales": 22,
    "tmp.supplier_summary": 7,
    "tmp.variants": 22,
    "final.products": 13,
}
ALL_TASKS = set(SEED_ROWS) | set(BUILT_ROWS)
SEEDS = set(SEED_ROWS)
TMP_TASKS = {name for name in BUILT_ROWS if name.startswith("tmp.")}


# --- helpers -----------------------------------------------------------------------------------


def _command() -> list[str]:
    script = Path(sys.executable).with_name("daglake")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]


COMMAND = _command()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)

    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def daglake(*args: object) -> Result:
    """Run the CLI; a Python traceback is a bug whatever the command, so it fails the test."""
    proc = subprocess.run(
        [*COMMAND, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback (most recent call last)" not in result.output, result.output
    return result


def copy_example(destination: Path, *, checks: bool = False) -> Path:
    """The products example; without its checks unless asked, so these tests see one task per
    table (the checks are tested by ``test_example_checks`` and tests/test_checks_run.py)."""
    root = destination / "products"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".daglake", "__pycache__"))
    if not checks:
        shutil.rmtree(root / "checks")
        for beside in root.rglob("*.checks.yml"):
            beside.unlink()
        config = root / "daglake.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text[: text.index("# Data-quality checks")], encoding="utf-8")
    return root


def copy_project(source: Path, destination: Path) -> Path:
    """A copy of an already built project, warehouse included."""
    root = destination / "products"
    shutil.copytree(source, root)
    (root / ".daglake" / "run.lock").unlink(missing_ok=True)
    return root


def query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(root / WAREHOUSE), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def execute(root: Path, *statements: str) -> None:
    connection = duckdb.connect(str(root / WAREHOUSE))
    try:
        for statement in statements:
            connection.execute(statement)
    finally:
        connection.close()


def count(root: Path, table: str) -> int:
    return int(query(root, f"SELECT COUNT(*) FROM {table}")[0][0])


def tables(root: Path) -> set[str]:
    rows = query(root, "SELECT table_schema || '.' || table_name FROM information_schema.tables")
    return {row[0] for row in rows}


def states(summary: dict[str, Any]) -> dict[str, str]:
    return {task["name"]: task["state"] for task in summary["tasks"]}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def problem_line(result: Result, prefix: str) -> str:
    """The one stderr line that starts with ``prefix`` (``path:line:``)."""
    found = [line for line in result.err_lines() if line.startswith(prefix)]
    assert len(found) == 1, f"expected one line starting {prefix!r} on stderr, got:\n{result.err}"
    return found[0]


def assert_invalid(result: Result) -> None:
    """Exit 2, the problems on stderr, nothing on stdout."""
    assert result.code == 2, result.output
    assert result.err_lines(), "no message on stderr"
    assert result.out.strip() == "", f"unexpected stdout:\n{result.out}"


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One copy of the example, built once with --full-refresh; tests must not modify it."""
    root = copy_example(tmp_path_factory.mktemp("built"))
    result = daglake("run", root, "--full-refresh", "--json")
    assert result.code == 0, result.output
    return root, result.json()


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A copy of the example that has never run."""
    return copy_example(tmp_path)


@pytest.fixture
def rebuilt(built: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A private copy of the built project, free to modify."""
    return copy_project(built[0], tmp_path)


# --- a clean run -------------------------------------------------------------------------------


def test_validate_clean_example(fresh: Path) -> None:
    for args in (["validate", fresh], ["validate", "--strict", fresh]):
        result = daglake(*args)
        assert result.code == 0, result.output
        assert "16 tasks" in result.out
        assert result.err == ""


def test_clean_run_builds_every_table(built: tuple[Path, dict[str, Any]]) -> None:
    root, summary = built
    assert summary["state"] == "success"
    assert summary["dry_run"] is False
    assert states(summary) == dict.fromkeys(ALL_TASKS, "success")
    rows = {task["name"]: task["rows"] for task in summary["tasks"]}
    assert rows == {**SEED_ROWS, **BUILT_ROWS}
    assert {*SEED_ROWS, *BUILT_ROWS} <= tables(root)
    for table, expected in {**SEED_ROWS, **BUILT_ROWS}.items():
        assert count(root, table) == expected, table


def test_final_products_has_one_row_per_product(built: tuple[Path, dict[str, Any]]) -> None:
    root, _ = built
    [(rows, distinct, products)] = query(
        root,
        "SELECT COUNT(*), COUNT(DISTINCT product_id), (SELECT COUNT(*) FROM raw.products) "
        "FROM final.products",
    )
    assert rows == distinct == products == 13
    [(nested, variants)] = query(
        root,
        "SELECT (SELECT SUM(len(variants)) FROM final.products), "
        "(SELECT COUNT(*) FROM raw.product_variants)",
    )
    assert nested == variants == 22


def test_final_products_values_computed_by_hand(built: tuple[Path, dict[str, Any]]) -> None:
    """Product 101 (Alpine Trek GTX), from the literal rows of db_init/:

    variants 1001, 1002, 1003; current costs 98.50, 98.50, 99.00 EUR (latest valid_from);
    stock 1001: PAR 10 - 4 shipped - 3 transferred = 3, LYO +3 = 3 -> 6; 1002: 8; 1003: 6;
    completed sales 1001: 189.90 + (189.90 - 19.00) + 2 x 189.90 = 740.60 for 4 units,
    1002: 189.90 (the other order was cancelled), 1003: 194.90 - 19.50 = 175.40;
    revenue 1105.90, cost of goods 4 x 98.50 + 98.50 + 99.00 = 591.50, margin 514.40 (46.5 %).
    """
    root, _ = built
    [row] = query(
        root,
        "SELECT name, category, category_path, supplier, variant_count, stock_on_hand, "
        "variants_out_of_stock, is_in_stock, units_sold, net_revenue, gross_margin, "
        "gross_margin_pct, revenue_rank_in_category, variants "
        "FROM final.products WHERE product_id = 101",
    )
    (name, category, path, supplier, variant_count, stock, out_of_stock, in_stock, units,
     revenue, margin, margin_pct, rank, variants) = row  # fmt: skip
    assert (name, category, path) == (
        "Alpine Trek GTX",
        "Hiking boots",
        "Outdoor > Footwear > Hiking boots",
    )
    assert supplier == {
        "id": 4,
        "name": "Dolomiti Calzature S.r.l.",
        "country": "IT",
        "lead_time_days": 10,
    }
    assert (variant_count, stock, out_of_stock, in_stock, units) == (3, 20, 0, True, 6)
    assert revenue == Decimal("1105.90")
    assert margin == Decimal("514.40")
    assert margin_pct == pytest.approx(46.5)
    assert rank == 1  # 1105.90 beats Summit Pro Leather's 498.00 in Hiking boots
    assert [v["variant_id"] for v in variants] == [1001, 1002, 1003]  # ORDER BY variant_id
    expected = {
        # variant: sku, size, list price, cost in EUR, stock, units sold, net revenue
        1001: ("HB-ALP-01-BRN-42", "42", "189.90", "98.50", 6, 4, "740.60"),
        1002: ("HB-ALP-01-BRN-43", "43", "189.90", "98.50", 8, 1, "189.90"),
        1003: ("HB-ALP-01-GRY-44", "44", "194.90", "99.00", 6, 1, "175.40"),
    }
    for v in variants:
        sku, size, price, cost, stock, units, revenue = expected[v["variant_id"]]
        assert (v["sku"], v["size"], v["stock_on_hand"], v["units_sold"]) == (
            sku,
            size,
            stock,
            units,
        )
        assert v["list_price"] == Decimal(price)
        assert v["unit_cost_eur"] == Decimal(cost)
        assert v["net_revenue"] == Decimal(revenue)
        assert v["is_in_stock"] is True
    assert variants[0]["warehouses"] == [
        {"warehouse": "LYO", "on_hand": 3},
        {"warehouse": "PAR", "on_hand": 3},
    ]


def test_final_products_edge_cases(built: tuple[Path, dict[str, Any]]) -> None:
    root, _ = built
    # 103 is bought in USD (x 0.92): costs 64.40, 64.40, 66.24; 7 units for 937.65.
    [(revenue, margin)] = query(
        root, "SELECT net_revenue, gross_margin FROM final.products WHERE product_id = 103"
    )
    assert (revenue, margin) == (Decimal("937.65"), Decimal("485.01"))
    # 110's only variant shipped everything it received: out of stock.
    [(stock, in_stock, out)] = query(
        root,
        "SELECT stock_on_hand, is_in_stock, variants_out_of_stock FROM final.products "
        "WHERE product_id = 110",
    )
    assert (stock, in_stock, out) == (0, False, 1)
    # 113 has no variants yet: still one row, with an empty array.
    [(variant_count, units, variants)] = query(
        root,
        "SELECT variant_count, units_sold, variants FROM final.products WHERE product_id = 113",
    )
    assert (variant_count, units, variants) == (0, 0, [])
    # The order of 23:10 UTC on 29 November counts on 30 November in Paris.
    [(last_sold,)] = query(
        root, "SELECT last_sold_on FROM tmp.product_sales WHERE variant_id = 1013"
    )
    assert str(last_sold) == "2024-11-30"


def test_show_prints_rows(built: tuple[Path, dict[str, Any]]) -> None:
    root, _ = built
    result = daglake("show", "final.products", root, "--limit", "20")
    assert result.code == 0, result.output
    assert "Alpine Trek GTX" in result.out
    assert "Merino Hiking Socks" in result.out


def test_show_prints_timestamps(built: tuple[Path, dict[str, Any]]) -> None:
    """BigQuery TIMESTAMP columns (raw.order_lines.ordered_at) print like any other value."""
    root, _ = built
    result = daglake("show", "raw.order_lines", root, "--limit", "40")
    assert result.code == 0, result.output
    assert "2024-10-01 09:12:00" in result.out


# --- seeds -------------------------------------------------------------------------------------


def test_ordinary_run_keeps_rows_appended_to_seed_tables(rebuilt: Path) -> None:
    execute(
        rebuilt,
        "INSERT INTO raw.products VALUES "
        "(114, 'BP-SRR-03', 'Daypack 20', 'Sierra', 8, 3, DATE '2025-04-01', FALSE)",
    )
    result = daglake("run", rebuilt, "--json")
    assert result.code == 0, result.output
    summary_states = states(result.json())
    assert {summary_states[s] for s in SEEDS} == {"skipped"}
    # the new row changed raw.products: its readers run, the others are unchanged
    assert {summary_states[t] for t in BUILT_ROWS} <= {"success", "skipped"}
    assert summary_states["final.products"] == "success"
    assert count(rebuilt, "raw.products") == 14
    assert query(
        rebuilt, "SELECT name, variant_count FROM final.products WHERE product_id = 114"
    ) == [("Daypack 20", 0)]

    result = daglake("run", rebuilt, "--full-refresh", "--json")
    assert result.code == 0, result.output
    assert states(result.json()) == dict.fromkeys(ALL_TASKS, "success")
    assert count(rebuilt, "raw.products") == 13
    assert count(rebuilt, "final.products") == 13


# --- invalid projects: exit 2, every problem located ---------------------------------------------


def test_cycle_names_every_task_and_file(fresh: Path) -> None:
    sales_lines = fresh / "res/tmp/sales_lines.sql"
    edit(
        sales_lines,
        "WHERE status != 'cancelled'",
        "WHERE status != 'cancelled'\n"
        "  AND variant_id IN (SELECT variant_id FROM `tmp.variants` WHERE is_in_stock)",
    )
    for command in ("validate", "run", "graph"):
        result = daglake(command, fresh)
        assert_invalid(result)
        [line] = [line for line in result.err_lines() if "cycle" in line]
        for task, path in (
            ("tmp.sales_lines", "res/tmp/sales_lines.sql"),
            ("tmp.product_sales", "res/tmp/product_sales.sql"),
            ("tmp.variants", "res/tmp/variants.sql"),
        ):
            assert f"{task} ({path})" in line, line
        assert line.count("→") == 3, line
        assert line.startswith(
            ("res/tmp/sales_lines.sql:", "res/tmp/product_sales.sql:", "res/tmp/variants.sql:")
        )
    assert not (fresh / WAREHOUSE).exists()


def test_two_tasks_writing_one_table(fresh: Path) -> None:
    (fresh / "res/tmp/variants_hotfix.sql").write_text(
        "-- Hotfix: variants without sales figures.\n"
        "CREATE OR REPLACE TABLE `tmp.variants` AS\n"
        "SELECT * FROM `tmp.inventory_items`;\n",
        encoding="utf-8",
    )
    result = daglake("validate", fresh)
    assert_invalid(result)
    line = problem_line(result, "res/tmp/variants_hotfix.sql:2:")
    assert "tmp.variants" in line
    assert "res/tmp/variants.sql" in line


def test_syntax_error_has_file_and_line(fresh: Path) -> None:
    path = fresh / "res/tmp/item_purchase_prices.sql"
    edit(
        path,
        "previous_unit_cost) * 100, 1) AS cost_change_pct",
        "previous_unit_cost) * 100, 1 AS cost_change_pct",
    )
    line = line_of(path, "AS cost_change_pct")
    for command in ("validate", "run"):
        result = daglake(command, fresh)
        assert_invalid(result)
        message = problem_line(result, f"res/tmp/item_purchase_prices.sql:{line}:")
        assert "syntax error" in message.lower()


def test_missing_source_points_at_the_reading_line(fresh: Path) -> None:
    path = fresh / "res/tmp/returns.sql"
    path.write_text(
        "-- Returned units per variant, from the returns service.\n"
        "SELECT variant_id, SUM(quantity) AS units_returned\n"
        "FROM `raw.returns`\n"
        "GROUP BY 1\n",
        encoding="utf-8",
    )
    for command in ("validate", "run"):
        result = daglake(command, fresh)
        assert_invalid(result)
        message = problem_line(result, "res/tmp/returns.sql:3:")
        assert "raw.returns" in message


def test_unknown_dependency_in_config(fresh: Path) -> None:
    config = fresh / "daglake.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[tasks."res/tmp/variants.sql"]\n'
            'depends_on = ["tmp/item_purchase_prices.sql", "tmp/price_overrides.sql"]\n'
        )
    result = daglake("validate", fresh)
    assert_invalid(result)
    message = problem_line(result, f"daglake.toml:{line_of(config, 'depends_on')}:")
    assert "tmp/price_overrides.sql" in message
    assert "tmp/item_purchase_prices.sql" not in message


def test_unknown_dependency_in_deps_file(fresh: Path) -> None:
    deps = fresh / "deps.json"
    deps.write_text(
        "{\n"
        '  "tmp/variants.sql": ["tmp/item_purchase_prices.sql"],\n'
        '  "res/final/products.sql": ["tmp/variants.sql", "tmp/product_ranking.sql"]\n'
        "}\n",
        encoding="utf-8",
    )
    result = daglake("validate", fresh, "--deps", deps)
    assert_invalid(result)
    [message] = [line for line in result.err_lines() if "tmp/product_ranking.sql" in line]
    assert message.startswith(f"{deps}:3:"), message
    # Without the bad entry the same file is accepted and adds an edge.
    deps.write_text('{"tmp/variants.sql": ["tmp/item_purchase_prices.sql"]}\n', encoding="utf-8")
    assert daglake("validate", fresh, "--deps", deps).code == 0


def test_deps_file_is_relative_to_the_current_folder(fresh: Path, tmp_path: Path) -> None:
    """``--deps FILE`` is an argument like any other: found from where the command is typed,
    not inside the project (whose own deps.json here would be accepted)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (fresh / "deps.json").write_text('{"tmp/variants.sql": ["tmp/item_purchase_prices.sql"]}\n', encoding="utf-8")
    (elsewhere / "deps.json").write_text('{\n  "tmp/variants.sql": ["tmp/nowhere.sql"]\n}\n', encoding="utf-8")
    proc = subprocess.run(
        [*COMMAND, "validate", str(fresh), "--deps", "deps.json"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "deps.json:2: unknown task 'tmp/nowhere.sql' in dependencies of res/tmp/variants.sql"
    )
    proc = subprocess.run(
        [*COMMAND, "validate", str(fresh), "--deps", "missing.json"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("missing.json: dependencies file cannot read: no such file or directory"), proc.stderr


def test_the_readmes_explicit_dependencies_example_passes_strict_validation(fresh: Path) -> None:
    """The JSON example under "Explicit dependencies" in README.md, on the products example."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Explicit dependencies**") :]
    block = section[section.index("```json") + len("```json") : section.index("```", section.index("```json") + 7)]
    example = json.loads(block)
    assert example, "the README's example declares no dependency"
    (fresh / "deps.json").write_text(block, encoding="utf-8")
    result = daglake("validate", fresh, "--strict", "--deps", fresh / "deps.json")
    assert result.code == 0, result.output


def test_version_alone_prints_the_version() -> None:
    from daglake import __version__

    result = daglake("--version")
    assert (result.code, result.out, result.err) == (0, f"daglake {__version__}\n", "")


def test_invalid_toml_has_line_and_column(fresh: Path) -> None:
    config = fresh / "daglake.toml"
    edit(config, "workers = 4", "workers = ")
    result = daglake("validate", fresh)
    assert_invalid(result)
    message = problem_line(result, f"daglake.toml:{line_of(config, 'workers =')}:")
    assert message.split(":")[2].strip().isdigit(), f"no column in {message!r}"
    assert "TOML" in message


def test_invalid_json_has_line_and_column(fresh: Path) -> None:
    deps = fresh / "deps.json"
    deps.write_text(
        '{\n  "tmp/variants.sql": ["tmp/item_purchase_prices.sql"],\n}\n', encoding="utf-8"
    )
    result = daglake("run", fresh, "--deps", deps)
    assert_invalid(result)
    message = problem_line(result, f"{deps}:3:1:")
    assert "JSON" in message
    assert not (fresh / WAREHOUSE).exists()


def test_unknown_config_key(fresh: Path) -> None:
    config = fresh / "daglake.toml"
    edit(config, "workers = 4", "workers = 4\nparallelism = 8")
    result = daglake("validate", fresh)
    assert_invalid(result)
    message = problem_line(result, f"daglake.toml:{line_of(config, 'parallelism')}:")
    assert "parallelism" in message
    assert "workers" in message  # the known keys are listed


def test_messages_keep_square_brackets(fresh: Path) -> None:
    """Messages name config sections as ``[run]`` / ``[sources]``; the terminal must show them."""
    edit(fresh / "daglake.toml", "workers = 4", "workers = 4\nparallelism = 8")
    result = daglake("validate", fresh)
    assert "[run]" in problem_line(result, "daglake.toml:")

    edit(fresh / "daglake.toml", "workers = 4\nparallelism = 8", "workers = 4")
    (fresh / "res/tmp/returns.sql").write_text("SELECT * FROM `raw.returns`\n", encoding="utf-8")
    result = daglake("validate", fresh)
    assert "[sources]" in problem_line(result, "res/tmp/returns.sql:1:")


def test_every_problem_is_reported_in_one_run(fresh: Path) -> None:
    config = fresh / "daglake.toml"
    edit(config, "workers = 4", "workers = 4\nparallelism = 8")
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[tasks."res/tmp/variants.sql"]\ndepends_on = ["tmp/price_overrides.sql"]\n')
    prices = fresh / "res/tmp/item_purchase_prices.sql"
    edit(
        prices,
        "previous_unit_cost) * 100, 1) AS cost_change_pct",
        "previous_unit_cost) * 100, 1 AS cost_change_pct",
    )
    (fresh / "res/tmp/variants_hotfix.sql").write_text(
        "CREATE OR REPLACE TABLE `tmp.variants` AS SELECT * FROM `tmp.inventory_items`;\n",
        encoding="utf-8",
    )
    edit(
        fresh / "res/tmp/sales_lines.sql",
        "WHERE status != 'cancelled'",
        "WHERE status != 'cancelled'\n"
        "  AND variant_id IN (SELECT variant_id FROM `tmp.product_sales`)",
    )
    (fresh / "deps.json").write_text('{"tmp/variants.sql": [}\n', encoding="utf-8")

    result = daglake("run", fresh, "--deps", fresh / "deps.json")
    assert_invalid(result)
    lines = result.err_lines()
    expected = {
        "unknown config key": f"daglake.toml:{line_of(config, 'parallelism')}:",
        "unknown dependency": f"daglake.toml:{line_of(config, 'depends_on')}:",
        "syntax error": f"res/tmp/item_purchase_prices.sql:{line_of(prices, 'AS cost_change_pct')}:",
        "duplicate output": "res/tmp/variants_hotfix.sql:1:",
        "invalid JSON": f"{fresh / 'deps.json'}:1:",
    }
    for what, prefix in expected.items():
        assert any(line.startswith(prefix) for line in lines), (
            f"{what} ({prefix}) missing:\n{result.err}"
        )
    assert any("cycle" in line and "tmp.sales_lines" in line for line in lines), result.err


def test_missing_source_is_reported_with_other_problems(fresh: Path) -> None:
    """A missing source is found even when the project has other problems too."""
    edit(fresh / "daglake.toml", "workers = 4", "workers = 4\nparallelism = 8")
    (fresh / "res/tmp/returns.sql").write_text(
        "SELECT variant_id, COUNT(*) AS returns\nFROM `raw.returns`\nGROUP BY 1\n", encoding="utf-8"
    )
    result = daglake("validate", fresh)
    assert_invalid(result)
    problem_line(result, "daglake.toml:")
    problem_line(result, "res/tmp/returns.sql:2:")


# --- a task that fails at run time -------------------------------------------------------------


def test_engine_error_fails_its_branch_only_and_keeps_the_old_table(rebuilt: Path) -> None:
    stock_sql = "SELECT variant_id, on_hand, warehouses FROM tmp.stock_levels ORDER BY variant_id"
    before = query(rebuilt, stock_sql)
    final_before = query(rebuilt, "SELECT product_id, stock_on_hand FROM final.products ORDER BY 1")
    stock_levels = rebuilt / "res/tmp/stock_levels.sql"
    edit(stock_levels, "WHEN 'receipt' THEN quantity", "WHEN 'receipt' THEN qty")

    result = daglake("run", rebuilt, "--json")
    assert result.code == 1, result.output
    summary = result.json()
    assert summary["state"] == "failed"
    got = states(summary)
    assert got["tmp.stock_levels"] == "failed"
    assert got["tmp.variants"] == got["final.products"] == "upstream_failed"
    for independent in (
        "tmp.inventory_items",
        "tmp.item_purchase_prices",
        "tmp.sales_lines",
        "tmp.category_tree",
        "tmp.product_sales",
        "tmp.supplier_summary",
    ):
        assert got[independent] == "skipped", independent  # unchanged: only what changed runs
    failed = next(t for t in summary["tasks"] if t["name"] == "tmp.stock_levels")
    assert failed["location"].startswith("res/tmp/stock_levels.sql:"), failed
    assert "qty" in failed["error"]
    blocked = next(t for t in summary["tasks"] if t["name"] == "final.products")
    assert "tmp.stock_levels" in blocked["reason"]

    # The previous versions are intact, not half-written or dropped.
    assert query(rebuilt, stock_sql) == before
    assert (
        query(rebuilt, "SELECT product_id, stock_on_hand FROM final.products ORDER BY 1")
        == final_before
    )

    # Without --json the terminal names the file and the engine's message.
    result = daglake("run", rebuilt)
    assert result.code == 1
    assert "res/tmp/stock_levels.sql:" in result.output
    assert "qty" in result.output


def test_engine_error_quoting_odd_data_is_reported_not_crashed(tmp_path: Path) -> None:
    """Engine messages quote data; whatever it holds, the run reports it and exits 1."""
    project = tmp_path / "codes"
    (project / "tmp").mkdir(parents=True)
    (project / "tmp" / "codes.sql").write_text(
        "SELECT CAST(code AS INT64) AS code FROM UNNEST(['12', '[/n/a]', '[b]']) AS code\n",
        encoding="utf-8",
    )
    result = daglake("run", project)
    assert result.code == 1, result.output
    assert "tmp/codes.sql:1" in result.output
    assert "[/n/a]" in result.output


# --- selection ---------------------------------------------------------------------------------


SELECTIONS: dict[str, tuple[list[str], set[str]]] = {
    "table": (["-s", "tmp.variants"], {"tmp.variants"}),
    "path": (["-s", "res/final/products.sql"], {"final.products"}),
    "path glob": (["-s", "res/tmp/stock_*.sql"], {"tmp.stock_levels"}),
    "table glob": (
        ["-s", "tmp.s*"],
        {"tmp.sales_lines", "tmp.stock_levels", "tmp.supplier_summary"},
    ),
    "folder glob": (["-s", "res/tmp/*"], TMP_TASKS),
    "+x": (
        ["-s", "+tmp.product_sales"],
        {
            "tmp.product_sales",
            "tmp.sales_lines",
            "tmp.inventory_items",
            "raw.order_lines",
            "raw.product_variants",
            "raw.products",
        },
    ),
    "x+": (
        ["-s", "tmp.item_purchase_prices+"],
        {"tmp.item_purchase_prices", "tmp.supplier_summary", "tmp.variants", "final.products"},
    ),
    "+x minus glob": (["-s", "+final.products", "-x", "db_init/*"], TMP_TASKS | {"final.products"}),
    "glob minus x+": (["-s", "res/tmp/*", "-x", "tmp.variants+"], TMP_TASKS - {"tmp.variants"}),
    "exclude only": (["-x", "raw.*"], ALL_TASKS - SEEDS),
    "two selects": (
        ["-s", "tmp.category_tree", "-s", "tmp.stock_levels"],
        {"tmp.category_tree", "tmp.stock_levels"},
    ),
    "tag": (["-s", "tag:mart"], {"final.products"}),
    "a,b (intersection)": (
        ["-s", "res/tmp/*,+tmp.product_sales"],
        {"tmp.product_sales", "tmp.sales_lines", "tmp.inventory_items"},
    ),
    "1+x": (
        ["-s", "1+tmp.variants"],
        {"tmp.variants", "tmp.inventory_items", "tmp.item_purchase_prices", "tmp.product_sales", "tmp.stock_levels"},
    ),
    "x+1": (
        ["-s", "tmp.inventory_items+1"],
        {"tmp.inventory_items", "tmp.product_sales", "tmp.supplier_summary", "tmp.variants"},
    ),
    "@x minus glob": (["-s", "@tmp.stock_levels", "-x", "raw.*"], ALL_TASKS - SEEDS),
}


@pytest.fixture(scope="module")
def dry_runs(built: tuple[Path, dict[str, Any]]) -> dict[str, Result]:
    """Every selection as a dry run of the built project; read-only, so run side by side."""
    root, _ = built
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            case: pool.submit(daglake, "run", root, *args, "--dry-run", "--json")
            for case, (args, _) in SELECTIONS.items()
        }
    return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", list(SELECTIONS))
def test_select_and_exclude(dry_runs: dict[str, Result], case: str) -> None:
    result = dry_runs[case]
    assert result.code == 0, result.output
    summary = result.json()
    assert summary["dry_run"] is True
    assert set(states(summary)) == SELECTIONS[case][1]
    assert set(states(summary).values()) == {"pending"}


def test_selected_run_rebuilds_only_the_selection(rebuilt: Path) -> None:
    marker = "INSERT INTO {} (variant_id) VALUES (-1)"
    execute(rebuilt, marker.format("tmp.product_sales"), marker.format("tmp.variants"))
    result = daglake("run", rebuilt, "--select", "tmp.stock_levels+", "--force", "tmp.stock_levels+", "--json")
    assert result.code == 0, result.output
    assert states(result.json()) == dict.fromkeys(
        {"tmp.stock_levels", "tmp.variants", "final.products"}, "success"
    )
    assert count(rebuilt, "tmp.product_sales WHERE variant_id = -1") == 1  # not selected: untouched
    assert count(rebuilt, "tmp.variants WHERE variant_id = -1") == 0  # rebuilt


def test_selection_needing_unbuilt_upstream_is_refused(fresh: Path) -> None:
    result = daglake("run", fresh, "--select", "tmp.variants")
    assert_invalid(result)
    variants = fresh / "res/tmp/variants.sql"
    message = problem_line(result, f"res/tmp/variants.sql:{line_of(variants, 'tmp.stock_levels')}:")
    assert "+tmp.variants" in message  # says how to build it


def test_unknown_selector_is_a_usage_error(built: tuple[Path, dict[str, Any]]) -> None:
    result = daglake("run", built[0], "--select", "tmp.nothing_like_this", "--dry-run")
    assert_invalid(result)
    assert "tmp.nothing_like_this" in result.err


# --- dry run, JSON, usage ----------------------------------------------------------------------


def test_dry_run_touches_nothing(fresh: Path) -> None:
    result = daglake("run", fresh, "--dry-run", "--full-refresh")
    assert result.code == 0, result.output
    for name in ALL_TASKS:
        assert name in result.out
    assert not (fresh / WAREHOUSE).exists()

    result = daglake("run", fresh, "--dry-run", "--json")
    assert result.code == 0, result.output
    assert states(result.json()) == dict.fromkeys(ALL_TASKS, "pending")
    assert not (fresh / WAREHOUSE).exists()


def test_dry_run_leaves_a_built_warehouse_alone(rebuilt: Path) -> None:
    execute(rebuilt, "INSERT INTO raw.products (id, name) VALUES (999, 'marker')")
    execute(rebuilt, "INSERT INTO tmp.variants (variant_id) VALUES (-1)")
    result = daglake("run", rebuilt, "--dry-run", "--full-refresh")
    assert result.code == 0, result.output
    assert count(rebuilt, "raw.products WHERE id = 999") == 1
    assert count(rebuilt, "tmp.variants WHERE variant_id = -1") == 1


def test_json_summary_shape(built: tuple[Path, dict[str, Any]]) -> None:
    _, summary = built
    assert {"run_id", "project", "engine", "state", "counts", "tasks", "logical_date"} <= set(
        summary
    )
    assert summary["project"] == "products"
    assert summary["engine"] == "duckdb"
    assert summary["counts"] == {"success": 16}
    for task in summary["tasks"]:
        assert {"name", "path", "state", "duration", "rows", "error"} <= set(task)
        assert task["error"] is None
        assert task["duration"] >= 0
    paths = {task["name"]: task["path"] for task in summary["tasks"]}
    assert paths["tmp.variants"] == "res/tmp/variants.sql"
    assert paths["raw.products"] == "db_init/products.sql"
    # Tasks are listed in an order that respects dependencies.
    order = [task["name"] for task in summary["tasks"]]
    assert (
        order.index("tmp.inventory_items")
        < order.index("tmp.variants")
        < order.index("final.products")
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "{root}", "--date", "2024-13-01"], "--date"),
        (["graph", "{root}", "--format", "png"], "--format"),
        (["run", "{root}/does-not-exist"], "not a folder"),
        (["show", "tmp.nothing_like_this", "{root}"], "tmp.nothing_like_this"),
        (["run", "{root}", "--engine", "oracle"], "oracle"),
        (["run", "{root}", "--workers", "0"], "--workers"),
    ],
)
def test_usage_errors_exit_2(rebuilt: Path, args: list[str], needle: str) -> None:
    execute(rebuilt, "INSERT INTO tmp.variants (variant_id) VALUES (-1)")
    result = daglake(*(a.format(root=rebuilt) for a in args))
    assert_invalid(result)
    assert needle in result.err
    assert count(rebuilt, "tmp.variants WHERE variant_id = -1") == 1  # nothing was run


# --- graph -------------------------------------------------------------------------------------


def test_graph_json(built: tuple[Path, dict[str, Any]]) -> None:
    result = daglake("graph", built[0], "--format", "json")
    assert result.code == 0, result.output
    graph = result.json()
    nodes = {node["name"]: node for node in graph["nodes"]}
    assert set(nodes) == ALL_TASKS
    assert nodes["tmp.variants"]["upstream"] == [
        "tmp.inventory_items",
        "tmp.item_purchase_prices",
        "tmp.product_sales",
        "tmp.stock_levels",
    ]
    assert nodes["tmp.inventory_items"]["reads"] == ["raw.product_variants", "raw.products"]
    assert nodes["raw.products"]["kind"] == "seed"
    assert nodes["final.products"]["tags"] == ["mart"]
    edges = {(edge["from"], edge["to"]) for edge in graph["edges"]}
    assert ("tmp.variants", "final.products") in edges
    assert ("raw.products", "tmp.inventory_items") in edges  # `my-project.raw.products`
    assert len(edges) == sum(len(node["upstream"]) for node in nodes.values()) == 19


def test_graph_text_mermaid_dot(built: tuple[Path, dict[str, Any]]) -> None:
    root, _ = built
    text = daglake("graph", root)
    assert text.code == 0, text.output
    levels = text.out.split("level ")[1:]
    assert len(levels) == 5  # seeds, then four levels of transformations
    assert "final.products (res/final/products.sql)" in levels[4]
    assert "tmp.variants" in levels[3]

    mermaid = daglake("graph", root, "--format", "mermaid")
    assert mermaid.code == 0
    assert mermaid.out.startswith("graph LR")
    assert "n_tmp_variants --> n_final_products" in mermaid.out
    assert mermaid.out.count("-->") == 19

    dot = daglake("graph", root, "--format", "dot")
    assert dot.code == 0
    assert dot.out.startswith("digraph")
    assert '"tmp.variants" -> "final.products";' in dot.out
    assert dot.out.count("->") == 19

    selected = daglake("graph", root, "--format", "json", "--select", "+tmp.stock_levels")
    assert {node["name"] for node in selected.json()["nodes"]} == {
        "tmp.stock_levels",
        "raw.stock_movements",
    }


def test_readme_shows_the_current_graph(fresh: Path) -> None:
    mermaid = daglake("graph", fresh, "--format", "mermaid")
    assert mermaid.code == 0, mermaid.output
    readme = (fresh / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid.out.strip()}\n```" in readme


def test_example_checks(tmp_path: Path) -> None:
    root = copy_example(tmp_path, checks=True)
    result = daglake("run", root, "--json")
    assert result.code == 0, result.output
    summary = result.json()
    checks = [t for t in summary["tasks"] if t["check"] is not None]
    assert len(checks) >= 15
    assert all(t["check"]["passed"] for t in checks)
    execute(root, "UPDATE raw.product_variants SET product_id = 999 WHERE id = 1001")
    result = daglake("run", root, "--json")
    assert result.code == 1
    failed = {t["name"]: t for t in result.json()["tasks"] if t["state"] == "failed"}
    assert "raw.product_variants: relationships(product_id -> raw.products.id)" in failed
    readers = states(result.json())
    assert readers["tmp.inventory_items"] == "upstream_failed"
    result = daglake("run", root)
    assert "✗ raw.product_variants: relationships(product_id -> raw.products.id) (error): 1 failing" in result.out


GC_PROBE = '''
import gc

import daglake


@daglake.task("tmp.collector")
def collector(ctx):
    return ctx.sql(f"SELECT {gc.isenabled()} AS enabled, {gc.get_freeze_count()} AS frozen")
'''


def test_the_command_collects_garbage_once_the_run_has_started(tmp_path: Path) -> None:
    """Start-up collects nothing (what it builds lives until exit); once the run starts, what
    start-up built is frozen out of collections and the collector is on again."""
    root = tmp_path / "project"
    (root / "res").mkdir(parents=True)
    (root / "res" / "collector.py").write_text(GC_PROBE, encoding="utf-8")
    result = daglake("run", root)
    assert result.code == 0, result.output
    with duckdb.connect(str(root / ".daglake" / "warehouse.duckdb"), read_only=True) as connection:
        [(enabled, frozen)] = connection.execute("SELECT enabled, frozen FROM tmp.collector").fetchall()
    assert enabled is True
    assert frozen > 10_000  # the modules, classes and functions start-up made
