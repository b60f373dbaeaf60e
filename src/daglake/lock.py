"""One writing run per project: an OS file lock that dies with the process holding it."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from daglake.errors import RunInProgressError


class RunLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "run.lock"
        self._handle: IO[str] | None = None

    def acquire(self, run_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            data = _parse(handle.read())
            handle.close()
            raise RunInProgressError(
                f"another run is in progress on this project ({_describe(data)}); "
                "wait for it to finish or stop it",
                run_id=data.get("run_id"),
                pid=data.get("pid"),
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "since": time.time()}))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(state_dir: Path) -> dict[str, Any] | None:
    """``{"run_id", "pid", "since"}`` of the live process holding the lock, else None; read
    without taking the lock, so asking never makes a starting run fail."""
    try:
        data = _parse((state_dir / "run.lock").read_text(encoding="utf-8"))
    except OSError:
        return None
    pid = data.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)  # a dead holder's lock died with it; its text stays behind
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return data


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(data: dict[str, Any]) -> str:
    if "run_id" in data and "pid" in data:
        return f"run {data['run_id']}, pid {data['pid']}"
    return "run of an unknown process"
