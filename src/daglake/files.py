"""Reading a project's own files: every one goes through :func:`read_project_file`, so a file
that cannot be read, or is not text, is one problem naming the file (and the bad byte)."""

from __future__ import annotations

import codecs
import io
import os
from pathlib import Path

from daglake.errors import Problem, ProjectError


class UnreadableFile(ProjectError):
    """A project file that cannot be opened or is not text in its encoding."""


def read_project_file(path: Path, shown: str, *, python: bool = False) -> str:
    """The text of ``path`` (``shown`` is how messages name it), with newlines as ``\\n``.

    UTF-8, a leading byte-order mark dropped; a Python file may declare another encoding
    (PEP 263), as Python itself allows."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(Problem(shown, 0, f"cannot read: {os_reason(exc)}")) from exc
    encoding = "utf-8"
    if python:
        import tokenize

        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            raise UnreadableFile(Problem(shown, exc.lineno or 1, f"Python encoding: {exc.msg}")) from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(_bad_byte(data, exc, shown, encoding)) from exc
    if "\x00" in text:
        raise UnreadableFile(_nul_byte(text, shown))
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _nul_byte(text: str, shown: str) -> Problem:
    """A NUL character: no engine reads SQL past it, and Python refuses it."""
    index = text.index("\x00")
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Problem(shown, line, "a NUL byte: this is not a text file (save it as UTF-8 text)", column)


def _bad_byte(data: bytes, exc: UnicodeDecodeError, shown: str, encoding: str) -> Problem:
    """Where the first undecodable byte is: line, and column in characters of that line."""
    start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    column = len(data[start : exc.start].decode(encoding, errors="replace")) + 1
    name = "UTF-8" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding
    return Problem(
        shown, line, f"not {name} text: byte 0x{data[exc.start]:02x} cannot be decoded (save the file as {name})", column
    )


def os_reason(exc: OSError) -> str:
    """What the operating system said, without Python's ``[Errno 13]`` prefix."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower() if exc.strerror is None else exc.strerror.lower()
    return str(exc)
