"""Faults injected for real, through the real CLI (SPEC §12): files root may not read (the
command runs with every capability dropped by ``setpriv``, so permissions bind root too) and
full disks (a small ``tmpfs``) under the warehouse, the lake and the state database.

Each fault gives one line naming what was refused, no traceback, exit 2 when the project
cannot be read and 1 when a run fails on the way, with the run recorded as failed wherever
the state database can still be written."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NO_CAPABILITIES = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("daglake")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "daglake.cli"]


def _can_drop_capabilities() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*NO_CAPABILITIES, "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_setpriv = pytest.mark.skipif(not _can_drop_capabilities(), reason="setpriv cannot drop capabilities here")


def daglake(root: Path, *args: str, unprivileged: bool = True) -> subprocess.CompletedProcess[str]:
    prefix = NO_CAPABILITIES if unprivileged and _can_drop_capabilities() else []
    result = subprocess.run(
        [*prefix, *_command(), *args], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A file system of ``size`` at ``path``, unmounted afterwards whatever happens."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Take every free byte of ``folder``'s file system."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * 4096)


@pytest.fixture
def products(tmp_path: Path) -> Path:
    root = tmp_path / "products"
    shutil.copytree(EXAMPLES / "products", root, ignore=shutil.ignore_patterns(".daglake", "lake", "__pycache__"))
    return root


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def _last_run(root: Path) -> dict[str, object]:
    listed = daglake(root, "runs", "--json", unprivileged=False)
    runs: list[dict[str, object]] = json.loads(listed.stdout)
    return runs[0]


@needs_setpriv
def test_an_unreadable_sql_file_is_one_line_and_exit_2(products: Path) -> None:
    (products / "res/tmp/variants.sql").chmod(0)
    result = daglake(products, "validate", ".")
    assert result.returncode == 2
    assert "res/tmp/variants.sql: cannot read: permission denied" in result.stderr
    assert "does not exist" not in result.stderr  # its readers wait for it, no second problem
    assert "beside no SQL task" not in result.stderr


@needs_setpriv
def test_an_unreadable_folder_is_one_line_and_exit_2(products: Path) -> None:
    (products / "res/final").chmod(0)
    try:
        result = daglake(products, "validate", ".")
    finally:
        (products / "res/final").chmod(0o755)
    assert result.returncode == 2
    assert "res/final: cannot read folder: permission denied" in result.stderr


@needs_setpriv
def test_an_unreadable_config_is_one_line_and_exit_2(products: Path) -> None:
    (products / "daglake.toml").chmod(0)
    result = daglake(products, "validate", ".")
    assert result.returncode == 2
    assert _error_lines(result)[0] == "daglake.toml: cannot read: permission denied"


@needs_setpriv
def test_an_unreadable_state_folder_is_one_line_and_exit_2(products: Path) -> None:
    assert daglake(products, "run", ".", unprivileged=False).returncode == 0
    (products / ".daglake").chmod(0)
    try:
        result = daglake(products, "run", ".")
    finally:
        (products / ".daglake").chmod(0o755)
    assert result.returncode == 2
    assert _error_lines(result) == ["error: .daglake/run.lock: permission denied"]


@needs_setpriv
def test_a_read_only_state_database_fails_the_run_with_one_line(products: Path) -> None:
    assert daglake(products, "run", ".", unprivileged=False).returncode == 0
    (products / ".daglake/state.db").chmod(0o444)
    result = daglake(products, "run", ".")
    assert result.returncode == 1
    assert _error_lines(result) == ["error: state database sqlite:///.daglake/state.db: attempt to write a readonly database"]


def test_a_full_disk_under_the_warehouse_fails_the_run_and_records_it(products: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "1m") as mount:
        (products / "daglake.toml").write_text(
            (products / "daglake.toml").read_text() + f'\n[engine.duckdb]\npath = "{mount}/warehouse.duckdb"\n'
        )
        (products / "res/tmp/huge.sql").write_text(
            "SELECT i, repeat('x', 200) || CAST(i AS STRING) AS filler FROM UNNEST(GENERATE_ARRAY(1, 200000)) AS i\n"
        )
        result = daglake(products, "run", ".", unprivileged=False)
    assert result.returncode == 1, result.stderr
    output = result.stdout.replace("\n", " ")  # the run's table wraps long messages
    assert "res/tmp/huge.sql:1: TransactionContext Error: Failed to commit" in output  # one statement: its own commit
    assert "No space left on device" in " ".join(output.split())
    run = _last_run(products)
    assert run["state"] == "failed"


def test_a_full_disk_under_the_lake_fails_the_run_and_records_it(products: Path, tmp_path: Path) -> None:
    (products / "res/curated").mkdir()
    (products / "res/curated/wide.sql").write_text(
        "SELECT i, repeat('y', 300) || CAST(i AS STRING) AS filler FROM UNNEST(GENERATE_ARRAY(1, 100000)) AS i\n"
    )
    (products / "daglake.toml").write_text(
        (products / "daglake.toml").read_text() + '\n[tasks."res/curated/wide.sql"]\nzone = "curated"\n'
    )
    with tmpfs(products / "lake", "256k"):
        result = daglake(products, "run", ".", unprivileged=False)
        assert result.returncode == 1, result.stderr
    output = " ".join(result.stdout.split())
    assert "res/curated/wide.sql" in output
    assert "no space left on device" in output.lower()
    run = _last_run(products)
    assert run["state"] == "failed"


def test_a_full_disk_under_the_state_database_is_one_line(products: Path, tmp_path: Path) -> None:
    """SQLite needs room for its write-ahead log to open at all: the run is refused before it
    starts (nothing to record it in), with the database named."""
    with tmpfs(tmp_path / "state", "8m") as mount:
        (products / "daglake.toml").write_text(
            (products / "daglake.toml").read_text() + f'\n[state]\nurl = "sqlite:///{mount}/state.db"\n'
        )
        assert daglake(products, "run", ".", unprivileged=False).returncode == 0
        fill(mount)
        result = daglake(products, "run", ".", "--full-refresh", unprivileged=False)
        as_json = daglake(products, "run", ".", "--json", unprivileged=False)
    assert result.returncode == 2, result.stderr
    assert _error_lines(result) == [f"error: cannot open the state database sqlite:///{mount}/state.db: disk I/O error"]
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["code"] == "environment"  # the machine refused, not the command line


FILL_TASK = '''import contextlib
from pathlib import Path

import daglake


@daglake.task("tmp.fill", inputs=["tmp.variants"])
def fill(ctx):
    """Takes every free byte of the state database's disk, once, in the middle of the run."""
    marker = Path("{mount}/filled")
    if not marker.exists():
        marker.touch()
        with contextlib.suppress(OSError), open("{mount}/filler", "wb", buffering=0) as handle:
            while True:
                handle.write(bytes(4096))
    return ctx.sql("SELECT 1 AS x")
'''


def test_the_state_disk_filling_during_a_run_fails_it_and_retry_finishes_it(products: Path, tmp_path: Path) -> None:
    """A task fills the state database's disk mid-run: the run stops with one line naming the
    database, exit 1; once there is room again the run shows failed (its process is gone),
    what finished before stays recorded as success, and ``retry`` runs exactly the rest."""
    with tmpfs(tmp_path / "state", "8m") as mount:
        (products / "daglake.toml").write_text(
            (products / "daglake.toml").read_text() + f'\n[state]\nurl = "sqlite:///{mount}/state.db"\n'
        )
        (products / "res/tmp/fill.py").write_text(FILL_TASK.replace("{mount}", str(mount)))
        (products / "res/final/after_fill.sql").write_text("SELECT x FROM tmp.fill\n")
        result = daglake(products, "run", ".", unprivileged=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert _error_lines(result) == [f"error: state database sqlite:///{mount}/state.db: database or disk is full"]

        (mount / "filler").unlink()  # room again
        run = _last_run(products)
        assert run["state"] == "failed"
        shown = daglake(products, "runs", str(run["run_id"]), unprivileged=False)
        assert shown.returncode == 0, shown.stderr
        details = json.loads(daglake(products, "runs", str(run["run_id"]), "--json", unprivileged=False).stdout)
        states = {t["name"]: t["state"] for t in details["tasks"]}
        done = {name for name, state in states.items() if state == "success"}
        assert "raw.products" in done and "tmp.variants" in done
        assert states["final.after_fill"] == "pending"

        retried = daglake(products, "retry", "--json", unprivileged=False)
        assert retried.returncode == 0, retried.stdout + retried.stderr
        summary = json.loads(retried.stdout)
        assert {t["state"] for t in summary["tasks"]} == {"success"}
        # the summary shows the whole run: what ran now started after the retry did
        again = {t["name"] for t in summary["tasks"] if t["started_at"] >= summary["started_at"]}
        assert sorted(again) == sorted(set(states) - done), retried.stdout  # exactly what had not finished


def test_a_run_through_the_api_on_a_full_state_disk_ends_failed(products: Path, tmp_path: Path) -> None:
    """The server's machine refusing (not the client's mistake): the run started by ``POST /run``
    ends failed in the history and the live feed with the database named, and the server goes on."""
    from tests.api_support import EventReader, start_server

    with tmpfs(tmp_path / "state", "8m") as mount:
        (products / "daglake.toml").write_text(
            (products / "daglake.toml").read_text() + f'\n[state]\nurl = "sqlite:///{mount}/state.db"\n'
        )
        (products / "res/tmp/fill.py").write_text(FILL_TASK.replace("{mount}", str(mount)))
        server = start_server(products)
        try:
            events = EventReader(server)
            with server.client() as client:
                answer = client.post("/run")
                assert answer.status_code == 202, answer.text
                run_id = answer.json()["run_id"]
                ended = events.until(lambda kind, data: kind == "run" and "error" in data)
                assert ended[-1][1]["state"] == "failed"
                error = ended[-1][1]["error"]
                assert error["code"] == "environment"
                assert error["message"] == f"state database sqlite:///{mount}/state.db: database or disk is full"
                (mount / "filler").unlink()
                assert server.finished_run(run_id)["state"] == "failed"
                assert client.get("/health").status_code == 200
            events.close()
        finally:
            server.stop()


def test_an_append_on_a_full_state_disk_is_a_json_503(products: Path, tmp_path: Path) -> None:
    """An append bumps the table's change counter in the state database: with its disk full
    the answer is 503 naming the database (the server's machine, not the client, refused),
    saying that the row was stored (a client must not send it again)."""
    from tests.api_support import start_server

    with tmpfs(tmp_path / "state", "8m") as mount:
        (products / "daglake.toml").write_text(
            (products / "daglake.toml").read_text() + f'\n[state]\nurl = "sqlite:///{mount}/state.db"\n'
        )
        assert daglake(products, "run", ".", unprivileged=False).returncode == 0
        server = start_server(products)
        try:
            with server.client() as client:
                fill(mount)
                answer = client.post("/products", params={"id": "901", "name": "Tent"})
                assert answer.status_code == 503, answer.text
                error = answer.json()["error"]
                assert error["code"] == "environment"
                assert f"state database sqlite:///{mount}/state.db: " in error["message"]
                assert error["stored"] is True and "daglake run --force" in error["message"]  # honest: the row is in
                (mount / "filler").unlink()
                assert client.get("/health").status_code == 200
        finally:
            server.stop()
