"""Query strings read strictly: percent-escapes decoded to bytes and then as UTF-8, refusing
what cannot be read (Starlette's parser turns bad bytes into U+FFFD, which would be stored).
A query string longer than ``MAX_QUERY_BYTES`` is 413; the server refuses longer request
lines itself, also as JSON (:mod:`daglake.api.protocol`)."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from daglake.api.errors import ApiError

MAX_QUERY_BYTES = 56 * 1024  # under httpx's URL limit and uvicorn's request-line limit


def too_long(raw: bytes) -> ApiError | None:
    if len(raw) <= MAX_QUERY_BYTES:
        return None
    return ApiError(
        413,
        "query_too_long",
        f"the query string is {len(raw)} bytes; at most {MAX_QUERY_BYTES} are read",
        limit=MAX_QUERY_BYTES,
    )


def parse_query(raw: bytes) -> list[tuple[str, str]]:
    """``(name, value)`` pairs in order, blanks kept; 413 when too long, 422 for text that is
    not UTF-8."""
    error = too_long(raw)
    if error is not None:
        raise error
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = _text(name, None)
        pairs.append((key, _text(value, key)))
    return pairs


def _text(escaped: bytes, column: str | None) -> str:
    raw = unquote_to_bytes(escaped.replace(b"+", b" "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        what = "a column name" if column is None else f"column {column!r}"
        bad = raw[exc.start : exc.start + 1].hex()
        raise ApiError(
            422,
            "invalid_value" if column is not None else "invalid_request",
            f"{what}: not valid UTF-8 (byte 0x{bad} at offset {exc.start})",
            **({"column": column} if column is not None else {}),
        ) from None
