"""Parse results and translations keyed by file content, so an unchanged project skips sqlglot."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daglake import __version__
from daglake.sql.compiled import Statement

CACHE_FORMAT = 9  # 4: structured statements (kind, query, line, target, parameters); 5: verbatim text; 6: self reads; 7: functions called; 8: normal form and volatility; 9: the normal form hashes tokens


def content_key(text: str, dialect: str, default_output: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (dialect, default_output, text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class AnalysisCache:
    """A JSON file of ``key -> {"analysis": ..., "sql": {dialect: [[line, sql], ...]}}``.

    Entries not used by the latest discovery are dropped on save, so the file tracks the project.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._used: set[str] = set()
        self._dirty = False
        self._verdicts: dict[str, Any] = {}  # key -> what a judgement found (check conditions)
        self._judged: dict[str, Any] = {}  # the verdicts this discovery asked for
        self._latest: dict[str, list[Any]] = {}  # purpose -> [key, answer]: the latest answer only
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if data.get("format") == CACHE_FORMAT and data.get("version") == _stamp():
                self._entries = data.get("entries", {})
                self._verdicts = data.get("verdicts", {})
                self._latest = data.get("latest", {})

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._used.add(key)
        return entry

    def put_analysis(self, key: str, analysis: dict[str, Any]) -> None:
        self._entries[key] = {"analysis": analysis, "sql": {}}
        self._used.add(key)
        self._dirty = True

    def get_sql(self, key: str, dialect: str) -> tuple[list[Statement], list[tuple[int, str]]] | None:
        """``(statements, warnings)`` as translated for ``dialect`` earlier, if cached."""
        entry = self._entries.get(key)
        found = entry["sql"].get(dialect) if entry else None
        if found is None:
            return None
        statements = [
            Statement(**{**s, **{k: tuple(s[k]) for k in ("parameters", "functions", "defines")}})
            for s in found["statements"]
        ]
        return statements, [(a, b) for a, b in found["warnings"]]

    def put_sql(
        self,
        key: str,
        dialect: str,
        statements: list[Statement],
        warnings: list[tuple[int, str]],
    ) -> None:
        entry = self._entries.setdefault(key, {"analysis": None, "sql": {}})
        entry["sql"][dialect] = {
            "statements": [vars(s).copy() for s in statements],  # flat: asdict() recurses, slowly
            "warnings": [list(w) for w in warnings],
        }
        self._dirty = True

    def remembered(self, purpose: str, text: str, dialect: str, judge: Callable[[], Any]) -> Any:
        """``judge()``'s JSON-able answer about ``text``, remembered by content: what sqlglot
        says of a check (its condition, its query) is asked once, not at every project load."""
        key = content_key(text, dialect, purpose)
        if key in self._verdicts:
            found = self._verdicts[key]
        else:
            found = self._verdicts[key] = judge()
            self._dirty = True
        self._judged[key] = found
        return found

    def latest(self, purpose: str, text: str, dialect: str, judge: Callable[[], Any]) -> Any:
        """Like :meth:`remembered`, for a question asked once per run about the whole project
        (after discovery saved the cache): only the latest answer for ``purpose`` is kept."""
        key = content_key(text, dialect, purpose)
        found = self._latest.get(purpose)
        if found is not None and found[0] == key:
            return found[1]
        answer = judge()
        self._latest[purpose] = [key, answer]
        self._dirty = True
        return answer

    def save(self) -> None:
        if self.path is None:
            return
        stale = set(self._entries) - self._used
        if not self._dirty and not stale and self._judged.keys() == self._verdicts.keys():
            return
        for key in stale:
            del self._entries[key]
        self._verdicts = dict(self._judged)
        payload = {"format": CACHE_FORMAT, "version": _stamp(), "entries": self._entries, "verdicts": self._verdicts, "latest": self._latest}
        try:
            atomic_write_text(self.path, json.dumps(payload, separators=(",", ":")))
        except OSError:
            return  # a cache that cannot be written (read-only or full disk) is only slower
        self._dirty = False


def _stamp() -> str:
    """Which sqlglot and which daglake SQL layer made the cache, without importing sqlglot (it
    costs ~100 ms): a changed translation rule must not be served stale from the cache."""
    from importlib.util import find_spec

    digest = hashlib.blake2b(digest_size=8)
    spec = find_spec("sqlglot")
    if spec is not None and spec.origin:
        version_file = Path(spec.origin).parent / "_version.py"
        if version_file.is_file():
            digest.update(version_file.read_bytes())
    judges = Path(__file__).parent.parent / "checks" / "params.py"  # the verdicts' rules
    for source in [*sorted(Path(__file__).parent.glob("*.py")), judges]:
        digest.update(source.read_bytes())
    return f"daglake {__version__}, {digest.hexdigest()}"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
