"""Reading a landed JSON file as records with their positions: NDJSON by line (1-based line
numbers, blank lines counted and skipped), a JSON array by element (1-based), a malformed array
element by element up to the first bad one (the rest is one record, quarantined as bad JSON).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from daglake.lake.json_typing import NOT_UTF8
from daglake.lake.tables import quote_literal

NDJSON_SUFFIXES = (".jsonl", ".ndjson")
WHOLE_FILE_BYTES = 256 << 20  # plain NDJSON up to this size is split into lines by DuckDB at once
CHUNK_BYTES = 64 << 20  # larger or compressed files are read in pieces of about this size
CHUNK_LINES = 100_000  # lines per piece when Python reads a file DuckDB and Arrow cannot


def records(path: Path) -> Iterator[str | Any]:
    """The file's records, as DuckDB queries or Arrow tables of ``(source_position, record)``,
    in order; blank lines are included (numbered, then skipped by the caller).

    The fast readers (DuckDB, Arrow) refuse some bad input: text that is not UTF-8, a line
    Arrow's CSV reader splits. When iterating raises, read the file again with
    :func:`careful_records`, which accepts anything."""
    if _is_array(path):
        # a malformed array fails here and is read element by element instead
        yield (
            "SELECT row_number() OVER () AS source_position, json::VARCHAR AS record "
            f"FROM read_json_objects({quote_literal(str(path))}, format = 'array')"
        )
    elif path.suffix != ".gz" and path.stat().st_size <= WHOLE_FILE_BYTES:
        yield (  # splits on \n only: line numbers are what an editor shows
            "SELECT generate_subscripts(lines, 1) AS source_position, unnest(lines) AS record FROM "
            f"(SELECT string_split(content, chr(10)) AS lines FROM read_text({quote_literal(str(path))}))"
        )
    else:
        yield from _line_chunks(path)


def careful_records(path: Path) -> Iterator[Any]:
    """Arrow tables of ``(source_position, record, problem)`` read by Python: lines split on
    ``\\n``, a line that is not UTF-8 decoded with U+FFFD and its ``problem`` said; an array
    element by element."""
    if _is_array(path):
        elements = split_array(path)
        yield _numbered([p for p, _ in elements], [t for _, t in elements], [None] * len(elements))
        return
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
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


def _line_chunks(path: Path) -> Iterator[Any]:
    """Arrow tables of ``(source_position, record)``, lines read by Arrow's CSV reader (every
    line one field: no delimiter or quote can occur in it), counted as they stream by."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if _is_empty(path):
        return  # no records (and Arrow refuses an empty CSV)
    stream = pa.input_stream(str(path), compression="gzip" if path.suffix == ".gz" else None)
    reader = pcsv.open_csv(
        stream,
        read_options=pcsv.ReadOptions(column_names=["record"], block_size=8 << 20, use_threads=True),
        parse_options=pcsv.ParseOptions(
            delimiter="\x1f", quote_char=False, escape_char=False, ignore_empty_lines=False
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={"record": pa.string()}, strings_can_be_null=False
        ),
    )
    offset = 0
    pending: list[Any] = []
    size = 0
    for batch in reader:  # (an empty file has no lines and yields nothing)
        count = batch.num_rows
        ones = pc.if_else(pc.is_valid(batch.column(0)), 1, 1).cast(pa.int64())
        positions = pc.add(pc.cumulative_sum(ones), offset)  # 1-based line numbers, in C++
        pending.append(pa.RecordBatch.from_arrays([positions, batch.column(0)], ["source_position", "record"]))
        offset += count
        size += batch.nbytes
        if size >= CHUNK_BYTES:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _is_empty(path: Path) -> bool:
    if path.suffix != ".gz":
        return path.stat().st_size == 0
    with gzip.open(path, "rb") as handle:
        return not handle.read(1)


def _is_array(path: Path) -> bool:
    """``.jsonl``/``.ndjson`` are one object per line whatever they start with; a ``.json``
    file is an array when it opens with ``[``."""
    name = path.name.removesuffix(".gz")
    if name.endswith(NDJSON_SUFFIXES):
        return False
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head: bytes = handle.read(4096).lstrip()
    return head.startswith(b"[")


def split_array(path: Path) -> list[tuple[int, str]]:
    """Elements of a JSON array that may be malformed: each well-formed element as its text;
    from the first bad one, the rest of the file as one record (it fails as bad JSON)."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
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
