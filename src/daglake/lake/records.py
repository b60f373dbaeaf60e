"""Reading a landed JSON file as records with their positions: NDJSON by line (1-based line
numbers, blank lines counted and skipped), a JSON array by element (1-based), a malformed array
element by element up to the first bad one (the rest is one record, quarantined as bad JSON).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from daglake.lake.json_schema import NOT_UTF8

NDJSON_SUFFIXES = (".jsonl", ".ndjson")
CHUNK_LINES = 100_000  # lines per piece when Python reads a file an engine's reader refuses


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
            try:
                texts.append(line.decode("utf-8").rstrip("\n"))
                problems.append(None)
            except UnicodeDecodeError:
                texts.append(line.decode("utf-8", errors="replace").rstrip("\n"))
                problems.append(NOT_UTF8)
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
        head: bytes = handle.read(4096).lstrip()
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
