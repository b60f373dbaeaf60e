"""Start the BigQuery emulator (bqemulator) for daglake's tests, offline.

Run with the interpreter of `.venv-bqemu/` (scripts/bqemu-venv.sh builds it), never daglake's
own: bqemulator pins other versions of sqlglot, DuckDB and friends than daglake does.

    .venv-bqemu/bin/python scripts/bqemu_launch.py --port 9050 --grpc-port 9060 --project p

Why a launcher and not `bqemulator start`: at start-up the emulator runs `INSTALL spatial`,
which downloads DuckDB's spatial extension and refuses to start without it. There is no
network here, and daglake does not use GEOGRAPHY, so the load is made best-effort: a failure
is reported on stderr and the emulator starts without `ST_*` functions. The Avro extension
(another download) is switched off with BQEMU_ENABLE_FORMAT_EXTENSIONS=false, and uploads are
staged in a temporary folder of this process, removed when it ends.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from typing import Any


def _best_effort_spatial() -> None:
    """Wrap DuckDBEngine._load_spatial so a missing extension no longer stops start-up."""
    from bqemulator.storage.engine import DuckDBEngine

    original = DuckDBEngine._load_spatial

    @functools.wraps(original)
    def load_spatial(self: Any) -> None:
        try:
            original(self)
        except Exception as exc:  # the emulator raises its InternalError; any failure is fine
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"bqemu_launch: spatial extension unavailable, GEOGRAPHY disabled ({first_line[:200]})", file=sys.stderr)

    DuckDBEngine._load_spatial = load_spatial  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="REST port")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (0: any free one)")
    parser.add_argument("--project", default="test-project", help="default project id")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bqemu-") as scratch:
        os.environ["BQEMU_ENABLE_FORMAT_EXTENSIONS"] = "false"
        os.environ["BQEMU_UPLOAD_STAGING_DIR"] = os.path.join(scratch, "uploads")
        os.environ.setdefault("OTEL_SDK_DISABLED", "true")
        _best_effort_spatial()

        from bqemulator.config import LogLevel, PersistenceMode, Settings
        from bqemulator.server import run_forever

        settings = Settings(
            rest_host=args.host,
            rest_port=args.port,
            grpc_host=args.host,
            grpc_port=args.grpc_port,
            default_project_id=args.project,
            persistence_mode=PersistenceMode.EPHEMERAL,
            log_level=LogLevel(args.log_level.lower()),
        )
        run_forever(settings)  # returns on SIGINT/SIGTERM, after the server has stopped
    return 0


if __name__ == "__main__":
    sys.exit(main())
