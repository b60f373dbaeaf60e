"""The landing zone: files kept exactly as delivered, with a manifest that recognises a file
delivered again (same checksum) so it is never ingested twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daglake.lake.tables import fsync_dir

MANIFEST = "_manifest.jsonl"
CHUNK = 4 << 20
ALGORITHM = "blake3"  # cryptographic, and ~6x faster than SHA-256 here: landing is I/O-bound again


@dataclass(frozen=True)
class LandedFile:
    source: str
    name: str  # the file's name in landing (the delivered name, made unique if it collides)
    path: str  # relative to the lake root
    size: int
    checksum: str  # ``algorithm:hex digest`` (``blake3:…``; manifests before it hold ``sha256``)
    ingest_date: str
    ingested_at: float
    run_id: str | None = None
    delivered_as: str = ""  # the name it arrived with
    delivered_mtime_ns: int | None = None  # its modification time then
    delivered_inode: int | None = None

    def matches(self, delivered: Path, stat: os.stat_result) -> bool:
        """The same name, size, modification time and inode as when it was landed: the quick
        check rsync relies on, so a folder of old deliveries is not hashed on every run."""
        return self.delivered_mtime_ns is not None and (
            self.delivered_as, self.size, self.delivered_mtime_ns, self.delivered_inode
        ) == (delivered.name, stat.st_size, stat.st_mtime_ns, stat.st_ino)

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
            record = json.loads(line)
            if "sha256" in record:
                record["checksum"] = "sha256:" + record.pop("sha256")
            found.append(LandedFile(**record))
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
    wait: bool = True,
) -> tuple[list[LandedFile], list[LandedFile]]:
    """Copy delivered files into ``landing/<source>/ingest_date=<date>/``.

    Returns ``(new, already_landed)``: a file whose checksum is in the manifest is not copied
    again and comes back in the second list, with its first landing's record. The new files
    are on disk (``fsync``) and in the manifest when this returns; with ``wait=False`` that
    happens in the background, overlapping whatever reads them next, and
    :func:`wait_landed` waits for it (call it before publishing anything made of them).
    """
    wait_landed(lake_root, source)  # an earlier landing of this source must be recorded first
    day = ingest_date.isoformat() if isinstance(ingest_date, dt.date) else ingest_date
    folder = lake_root / "landing" / source / f"ingest_date={day}"
    recorded = manifest(lake_root, source)
    _remove_orphans(lake_root, source, recorded)
    seen = {entry.checksum: entry for entry in recorded}
    new: list[LandedFile] = []
    repeated: list[LandedFile] = []
    algorithms: dict[int, set[str]] = {}  # size -> algorithms of the landed files of that size
    for entry in seen.values():
        algorithms.setdefault(entry.size, set()).add(entry.checksum.partition(":")[0])
    unchanged = {entry.delivered_as: entry for entry in recorded}
    for file in sorted(Path(f) for f in files):
        # a file unchanged since it landed is known without reading it; one the size of a landed
        # file is hashed first, so a re-delivery is not copied; any other is copied, then hashed
        stat = file.stat()
        known = unchanged.get(file.name)
        if known is None or not known.matches(file, stat):
            candidates = (_checksum(file, a) for a in sorted(algorithms.get(stat.st_size, ())))
            known = next((seen[c] for c in candidates if c in seen), None)
        if known is not None:
            repeated.append(known)
            continue
        digest, size, staged = _copy_with_checksum(file, folder)
        if digest in seen:  # it changed while we looked: the copy is what counts
            staged.unlink()
            repeated.append(seen[digest])
            continue
        target = _free_name(folder, file.name, digest.partition(":")[2])
        os.replace(staged, target)
        entry = LandedFile(
            source=source,
            name=target.name,
            path=str(target.relative_to(lake_root)),
            size=size,
            checksum=digest,
            ingest_date=day,
            ingested_at=time.time(),
            run_id=run_id,
            delivered_as=file.name,
            delivered_mtime_ns=stat.st_mtime_ns,
            delivered_inode=stat.st_ino,
        )
        seen[digest] = entry
        algorithms.setdefault(size, set()).add(ALGORITHM)
        new.append(entry)
    if new:
        recording = _Recording(lake_root, source, new)
        if wait:
            recording.run()
            recording.result()
        else:
            _recordings[(str(lake_root), source)] = recording
            recording.start()
    return new, repeated


class _Recording(threading.Thread):
    """Makes landed files durable, then lists them in the manifest: a file is in the manifest
    only once its bytes are on disk."""

    def __init__(self, lake_root: Path, source: str, files: list[LandedFile]) -> None:
        super().__init__(name=f"daglake-landing-{source}", daemon=True)
        self.lake_root, self.source, self.files = lake_root, source, files
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for file in self.files:
                with file.absolute(self.lake_root).open("rb") as handle:
                    os.fsync(handle.fileno())
            for folder in {file.absolute(self.lake_root).parent for file in self.files}:
                fsync_dir(folder)
            _append(self.lake_root / "landing" / self.source / MANIFEST, [asdict(f) for f in self.files])
        except BaseException as exc:  # handed to whoever waits
            self.error = exc

    def result(self) -> None:
        if self.error is not None:
            raise self.error


_recordings: dict[tuple[str, str], _Recording] = {}


def wait_landed(lake_root: Path, source: str) -> None:
    """Wait until the files of ``land(..., wait=False)`` are durable and in the manifest."""
    recording = _recordings.pop((str(lake_root), source), None)
    if recording is not None:
        recording.join()
        recording.result()


def _remove_orphans(lake_root: Path, source: str, recorded: list[LandedFile]) -> None:
    """Delete files a run copied into landing but died before listing in the manifest: they
    are still in ``input/`` and land again, under their own name."""
    known = {entry.path for entry in recorded}
    for path in (lake_root / "landing" / source).glob("ingest_date=*/*"):
        relative = str(path.relative_to(lake_root))
        if path.is_file() and relative not in known:
            path.unlink()


def _hasher(algorithm: str) -> Any:
    if algorithm == "blake3":
        from blake3 import blake3

        return blake3()
    return hashlib.new(algorithm)


def _checksum(path: Path, algorithm: str = ALGORITHM) -> str:
    if algorithm == "blake3" and path.stat().st_size > 0:  # on every core, straight from the page cache
        from blake3 import blake3

        digest = blake3(max_threads=blake3.AUTO)
        digest.update_mmap(path)
        return f"{algorithm}:{digest.hexdigest()}"
    digest = _hasher(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return f"{algorithm}:{digest.hexdigest()}"


def _copy_with_checksum(source: Path, folder: Path) -> tuple[str, int, Path]:
    """Land the file as a temporary file in ``folder`` and hash what was landed, so the checksum
    describes exactly the bytes landed, even if the delivered file changes meanwhile.

    On the lake's file system the file is hard-linked (nothing copied: landing 2 GB takes
    milliseconds); a delivery is then kept as delivered as long as it is replaced or removed,
    not rewritten in place. Elsewhere the kernel copies (``sendfile``)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".landing-", suffix=".tmp")
    os.close(fd)
    copy = Path(temporary)
    try:
        copy.unlink()
        os.link(source, copy)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, copy)
        shutil.copystat(source, copy)
    return _checksum(copy), copy.stat().st_size, copy


def _free_name(folder: Path, name: str, digest: str) -> Path:
    """The delivered name, or ``stem.<checksum prefix>.ext`` if another file has it that day."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, rest = name.partition(".")
    return folder / f"{stem}.{digest[:12]}{dot}{rest}"


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(record, sort_keys=True) + "\n" for record in records))
        handle.flush()
        os.fsync(handle.fileno())
