"""The process's one SparkSession: created when first needed, quiet, in UTC.

Spark's JVM writes its own log (and Java's warnings) to ``.daglake/logs/spark.log`` of the
project that started it, never to the terminal; PySpark's Python loggers go there too.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from daglake.engine_settings import SparkSettings
from daglake.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG_FILE = Path(".daglake/logs/spark.log")
JAVA_MIN = 17
_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",  # BigQuery's times are UTC, not the host's
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",  # readable by DuckDB and Arrow as written
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",  # types come from the lake's record
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",  # no _SUCCESS files in versions
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
}
_LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4"}  # small data on a laptop

_lock = threading.Lock()
_session: SparkSession | None = None
_log_handler: logging.Handler | None = None


@functools.cache
def java_version() -> int | None:
    """The major version of the ``java`` Spark would start (JAVA_HOME first), None without one."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False).stderr
    except OSError:
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def _check_master(master: str) -> None:
    """A cluster or Spark Connect master that does not answer is one line, not a minute of
    retries and a JVM stack."""
    if not master.startswith(("spark://", "sc://")):
        return
    for address in master.split("://", 1)[1].split(","):
        parsed = urlparse(f"//{address.split('/')[0]}")
        host, port = parsed.hostname or "localhost", parsed.port or (15002 if master.startswith("sc://") else 7077)
        try:
            with socket.create_connection((host, port), timeout=5):
                return
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(f"engine.spark.master = {master!r}: cannot reach {host}:{port} ({reason})") from exc


def preflight(settings: SparkSettings) -> None:
    """What would stop the session from starting, found before any task runs (without a JVM):
    a master that does not answer, no Java 17."""
    with _lock:
        if _session is not None:
            return
    _check_master(settings.master)
    if settings.master.startswith("sc://"):
        return
    version = java_version()
    if version is None or version < JAVA_MIN:
        found = "no java" if version is None else f"Java {version}"
        raise UsageError(
            f"the spark engine needs Java {JAVA_MIN} or newer, found {found}: install openjdk-17-jre-headless "
            "(scripts/system-deps.sh does) or set JAVA_HOME"
        )


def spark_session(settings: SparkSettings, root: Path) -> SparkSession:
    """The process's SparkSession, started on first use with ``settings`` (later settings of
    another project in the same process share it)."""
    global _session
    with _lock:
        if _session is None:
            _session = _start(settings, root)
        return _session


def adopt(session: SparkSession) -> None:
    """Use an already running session (tests share one for the whole test session)."""
    global _session
    with _lock:
        _session = session


def _start(settings: SparkSettings, root: Path) -> SparkSession:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # pyspark 4.3 warns on every Arrow exchange that it has not been tried with pandas 3
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    _check_master(settings.master)
    log = root / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    _quiet_python_loggers(log)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark warns at import about pandas versions it has not tried
        from pyspark import SparkConf, SparkContext
        from pyspark.errors import PySparkException
        from pyspark.sql import SparkSession

    if settings.master.startswith("sc://"):
        try:
            return _connect(settings)
        except (PySparkException, ImportError) as exc:
            raise UsageError(f"engine.spark.master = {settings.master!r}: {str(exc).splitlines()[0]}") from exc
    from pyspark.java_gateway import launch_gateway

    conf = SparkConf(loadDefaults=False)
    conf.setMaster(settings.master).setAppName("daglake")
    conf.set("spark.sql.warehouse.dir", str((root / settings.warehouse / "_spark").absolute()))
    for key, value in _conf(settings).items():
        conf.set(key, value)
    try:
        with log.open("ab") as out:  # the JVM keeps its copy of the descriptor
            gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": out})  # type: ignore[no-untyped-call]
        context = SparkContext(conf=conf, gateway=gateway)
    except Exception as exc:  # the JVM did not start or the master refused it
        raise UsageError(f"the spark engine could not start ({settings.master}): {str(exc).splitlines()[0]} (see {LOG_FILE})") from exc
    context.setLogLevel("WARN")
    return SparkSession(context)


def _connect(settings: SparkSettings) -> SparkSession:
    """A Spark Connect session. The server was started with its own static settings (UI,
    JVM options, Hadoop's): a client may only change runtime SQL settings, so only the
    ``spark.sql.*`` ones the server lets a session modify are sent (others would each be a
    CANNOT_MODIFY_CONFIG warning). The session is stopped when the process exits, before
    PySpark's own exit hook, which would otherwise send one more request with retries."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(settings.master).getOrCreate()
    for key, value in _conf(settings).items():
        if key.startswith("spark.sql.") and session.conf.isModifiable(key):
            session.conf.set(key, value)
    atexit.register(_stop_connect, session)
    return session


def _stop_connect(session: SparkSession) -> None:
    """Release the server's side of the session and close the channel (best effort: the
    server may be gone already)."""
    global _session
    with _lock:
        if _session is session:
            _session = None
    with contextlib.suppress(Exception):
        session.client.set_retry_policies([])  # one try: no minutes of backoff towards a server that is gone
        session.stop()


def _conf(settings: SparkSettings) -> dict[str, str]:
    conf = dict(_DEFAULTS)
    if settings.master.startswith("local"):
        conf.update(_LOCAL_DEFAULTS)
    conf.update({str(k): _text(v) for k, v in settings.conf.items()})
    return conf


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _quiet_python_loggers(log: Path) -> None:
    """PySpark logs every SQL error it raises to stderr as JSON; daglake reports the error itself."""
    global _log_handler
    if _log_handler is None:
        _log_handler = logging.FileHandler(log, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logger = PySparkLogger.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(_log_handler)
        logger.propagate = False
