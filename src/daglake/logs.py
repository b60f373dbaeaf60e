"""Task logs: one file per attempt under ``.daglake/logs/RUN_ID/``."""

from __future__ import annotations

import re
import time
from pathlib import Path

LOGS_DIR = Path(".daglake") / "logs"


def log_path(root: Path, run_id: str, task: str, attempt: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", task)
    return root / LOGS_DIR / run_id / f"{safe}.{attempt}.log"


class TaskLog:
    """Lines gathered during an attempt and written once when it ends (one file write)."""

    def __init__(self, path: Path, header: str) -> None:
        self.path = path
        self.lines = [f"{_now()} {header}"]

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def close(self, footer: str) -> None:
        self.lines.append(f"{_now()} {footer}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


KEEP_RUNS = 100


def prune(root: Path, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the log folders of all but the newest ``keep`` runs (run ids sort by time)."""
    import shutil

    folder = root / LOGS_DIR
    if not folder.is_dir():
        return []
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    removed = runs[: max(0, len(runs) - keep)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in removed]
