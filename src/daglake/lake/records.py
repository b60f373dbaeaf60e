"""Reading a landed JSON file as records with their positions, the same on every engine:
NDJSON by line (1-based line numbers; a line ends at ``\\n``, a ``\\r`` before it belongs to
the ending; blank lines counted and skipped; a UTF-8 byte order mark at the start of the file
dropped), a JSON array by element (1-based), a malformed array element by element up to the
first bad one (the rest is one record, quarantined as bad JSON). A ``.gz`` file that cannot be
decompressed to its end is one record of position 0 (:data:`WHOLE_FILE`), quarantined with
:func:`gzip_problem`'s reason.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from daglake.lake.json_schema import NOT_UTF8

NDJSON_SUFFIXES = (".jsonl", ".ndjson")
CHUNK_LINES = 100_000  # lines per piece when Python reads a file an engine's reader refuses
WHOLE_FILE = 0  # the position of the one record a file is when it cannot be read at all
BOM = "\ufeff"
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 1 << 20


def careful_records(path: Path) -> Iterator[Any]:
    """Arrow tables of ``(source_position, record, problem)`` read by Python: lines split on
    ``\\n``, a line that is not UTF-8 decoded with U+FFFD and its ``problem`` said; an array
    element by element."""
    if is_array(path):
        elements = split_array(path)
        yield _numbered([p for p, _ in elements], [t for _, t in elements], [None] * len(elements))
        return
    with _open(path) as handle:
        start, texts = 1, []
        problems: list[str | None] = []
        for line in handle:
            ended = line.removesuffix(b"\n").removesuffix(b"\r")
            try:
                texts.append(ended.decode("utf-8"))
                problems.append(None)
            except UnicodeDecodeError:
                texts.append(ended.decode("utf-8", errors="replace"))
                problems.append(NOT_UTF8)
            if start == 1 and len(texts) == 1:
                texts[0] = texts[0].removeprefix(BOM)
            if len(texts) >= CHUNK_LINES:
                yield _numbered(range(start, start + len(texts)), texts, problems)
                start, texts, problems = start + len(texts), [], []
        if texts:
            yield _numbered(range(start, start + len(texts)), texts, problems)


def _numbered(positions: Sequence[int], texts: Sequence[str], problems: Sequence[str | None]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "source_position": pa.array(positions, pa.int64()),
            "record": pa.array(texts, pa.string()),
            "problem": pa.array(problems, pa.string()),
        }
    )


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    """The file's bytes, decompressed when it is gzipped."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def is_array(path: Path) -> bool:
    """``.jsonl``/``.ndjson`` are one object per line whatever they start with; a ``.json``
    file is an array when it opens with ``[``."""
    name = path.name.removesuffix(".gz")
    if name.endswith(NDJSON_SUFFIXES):
        return False
    with _open(path) as handle:
        head: bytes = handle.read(4096).removeprefix(BOM.encode()).lstrip()
    return head.startswith(b"[")


def split_array(path: Path) -> list[tuple[int, str]]:
    """Elements of a JSON array that may be malformed: each well-formed element as its text;
    from the first bad one, the rest of the file as one record (it fails as bad JSON)."""
    with io.TextIOWrapper(_open(path), encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    found: list[tuple[int, str]] = []
    position = 0
    while index < len(text):
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            break
        position += 1
        try:
            _, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            found.append((position, text[index:].rstrip().rstrip("]")))
            break
        found.append((position, text[index:end]))
        index = end
    return found


def is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def gzip_problem(path: Path) -> str | None:
    """Why ``path`` (named ``.gz``) cannot be decompressed to its end, with the byte offset in
    the compressed file where that shows; None when it can. Every member of a multi-member file
    is checked, CRC and length included, and zero bytes after the last member are padding (as
    gzip(1) reads them), so a file is wholly readable or wholly quarantined on every engine
    (the engines' own readers differ: some stop silently at a bad trailer)."""
    offset = 0  # compressed bytes consumed before ``data``
    member_start = 0
    decompressor: Any = None
    data = b""
    with path.open("rb") as handle:
        while True:
            if not data:
                data = handle.read(_GZIP_CHUNK)
                if not data:
                    break
            if decompressor is None:  # a member starts here, or only padding follows
                if offset > 0:  # zero bytes between or after members are padding
                    stripped = data.lstrip(b"\x00")
                    offset, data = offset + len(data) - len(stripped), stripped
                    if not data:
                        continue
                if len(data) < 2:
                    data += handle.read(1)
                if not data.startswith(_GZIP_MAGIC):
                    where = "the file does not start with" if offset == 0 else f"byte {offset} is not the start of"
                    return f"not gzip data: {where} a gzip header"
                member_start, decompressor = offset, zlib.decompressobj(wbits=31)
            before = decompressor.copy()
            try:
                decompressor.decompress(data)
            except zlib.error as exc:
                return f"corrupt gzip data ({_zlib_reason(exc)}) at byte {offset + _refused_at(before, data)}"
            if decompressor.eof:
                rest = decompressor.unused_data
                offset, data, decompressor = offset + len(data) - len(rest), rest, None
            else:
                offset, data = offset + len(data), b""
    if decompressor is not None:
        return f"truncated gzip data: the file ends at byte {offset}, inside the member that starts at byte {member_start}"
    return None


def _refused_at(before: Any, data: bytes) -> int:
    """The offset in ``data`` of the byte zlib refused, by bisection over copies of the
    decompressor as it was before ``data`` (only run when a file is bad)."""
    low, high = 0, len(data)  # the shortest failing prefix is longer than low, at most high
    while high - low > 1:
        middle = (low + high) // 2
        try:
            before.copy().decompress(data[:middle])
        except zlib.error:
            high = middle
        else:
            low = middle
    return high - 1


def _zlib_reason(exc: zlib.error) -> str:
    """zlib's words without its error number: ``invalid block type``, ``incorrect data check``."""
    text = str(exc)
    return text.rpartition(": ")[2] if ": " in text else text
