"""A local Spark Connect server for the test session, started from the pip package's own
``sbin/start-connect-server.sh`` (its ``spark-connect`` JAR ships in the wheel): 127.0.0.1 on
a free port, UI off, UTC, in the foreground of its own process group so it ends with us."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import free_port
from tests.system_deps import unavailable

START_DEADLINE_S = 180.0  # a cold JVM on two busy cores


def _connect_script() -> Path:
    try:
        import pyspark
    except ImportError:
        unavailable("pyspark is not installed (requirements-dev.lock has it)", "Spark Connect")
    home = Path(pyspark.__file__).parent
    script = home / "sbin" / "start-connect-server.sh"
    if not script.exists() or not list((home / "jars").glob("spark-connect_*.jar")):
        unavailable(f"{home} has no Spark Connect server (sbin/start-connect-server.sh and its JAR)", "Spark Connect")
    return script


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sc://127.0.0.1:PORT`` of a running server, polled until it accepts connections."""
    script = _connect_script()
    try:
        import zstandard  # noqa: F401  (pyspark's Connect client refuses to start without it)
    except ImportError:
        unavailable("zstandard is not installed (requirements-dev.lock has it)", "Spark Connect")
    folder = tmp_path_factory.mktemp("spark-connect")
    port = free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(folder), "SPARK_PID_DIR": str(folder)}
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.adaptive.enabled": "false",
    }
    command = ["bash", str(script), "--wait", "--master", "local[2]"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True)
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not _accepts(port):
            if server.poll() is not None:
                pytest.fail(f"the Spark Connect server exited with {server.returncode}: see {folder / 'server.log'}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not listen on {port} in {START_DEADLINE_S:.0f} s: see {folder / 'server.log'}")
            time.sleep(0.2)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
