"""The landing zone: files kept exactly as delivered, with a manifest that recognises a file
delivered again (same checksum) so it is never ingested twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MANIFEST = "_manifest.jsonl"
CHUNK = 1 << 20


@dataclass(frozen=True)
class LandedFile:
    source: str
    name: str  # the file's name in landing (the delivered name, made unique if it collides)
    path: str  # relative to the lake root
    size: int
    sha256: str
    ingest_date: str
    ingested_at: float
    run_id: str | None = None
    delivered_as: str = ""  # the name it arrived with

    def absolute(self, lake_root: Path) -> Path:
        return lake_root / self.path


def manifest(lake_root: Path, source: str) -> list[LandedFile]:
    """Every file ever landed for ``source``; a torn last line (a crash mid-append) is ignored."""
    path = lake_root / "landing" / source / MANIFEST
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(LandedFile(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return found


def land(
    lake_root: Path,
    source: str,
    files: Iterable[Path],
    *,
    ingest_date: dt.date | str,
    run_id: str | None = None,
) -> tuple[list[LandedFile], list[LandedFile]]:
    """Copy delivered files into ``landing/<source>/ingest_date=<date>/``.

    Returns ``(new, already_landed)``: a file whose checksum is in the manifest is not copied
    again and comes back in the second list, with its first landing's record.
    """
    day = ingest_date.isoformat() if isinstance(ingest_date, dt.date) else ingest_date
    folder = lake_root / "landing" / source / f"ingest_date={day}"
    seen = {entry.sha256: entry for entry in manifest(lake_root, source)}
    new: list[LandedFile] = []
    repeated: list[LandedFile] = []
    sizes = {entry.size for entry in seen.values()}
    for file in sorted(Path(f) for f in files):
        # a file the size of one landed before is hashed first, so a re-delivery is not copied;
        # any other file is new and copied while it is hashed (one read either way)
        known = seen.get(_checksum(file)) if file.stat().st_size in sizes else None
        if known is not None:
            repeated.append(known)
            continue
        digest, size, staged = _copy_with_checksum(file, folder)
        if digest in seen:  # it changed while we looked: the copy is what counts
            staged.unlink()
            repeated.append(seen[digest])
            continue
        target = _free_name(folder, file.name, digest)
        os.replace(staged, target)
        entry = LandedFile(
            source=source,
            name=target.name,
            path=str(target.relative_to(lake_root)),
            size=size,
            sha256=digest,
            ingest_date=day,
            ingested_at=time.time(),
            run_id=run_id,
            delivered_as=file.name,
        )
        _append(lake_root / "landing" / source / MANIFEST, asdict(entry))
        seen[digest] = entry
        sizes.add(size)
        new.append(entry)
    return new, repeated


def _checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_with_checksum(source: Path, folder: Path) -> tuple[str, int, Path]:
    """Stream the file into a temporary file in ``folder``, hashing it on the way."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".landing-", suffix=".tmp")
    with os.fdopen(fd, "wb") as target, source.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
        target.flush()
        os.fsync(target.fileno())
    shutil.copystat(source, temporary)
    return digest.hexdigest(), size, Path(temporary)


def _free_name(folder: Path, name: str, digest: str) -> Path:
    """The delivered name, or ``stem.<checksum prefix>.ext`` if another file has it that day."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, rest = name.partition(".")
    return folder / f"{stem}.{digest[:12]}{dot}{rest}"


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
