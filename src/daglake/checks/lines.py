"""Read TOML and YAML check files keeping the line of every key and list item, so each mistake
in a declaration is reported where it was written (``tomllib`` keeps no positions)."""

from __future__ import annotations

import bisect
import re
import tomllib
from typing import Any

from daglake.errors import Problem

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class Lines:
    """Where each key or list item starts; a path not recorded falls back to its parent's line."""

    def __init__(self, found: dict[KeyPath, int]) -> None:
        self.found = found

    def line(self, path: KeyPath) -> int:
        for end in range(len(path), -1, -1):
            if path[:end] in self.found:
                return self.found[path[:end]]
        return 0


def read_toml(text: str, path: str) -> tuple[Any, Lines, list[Problem]]:
    """The document, its lines, and the decoding error (with line and column) if any."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line, column = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
        if "(at end of document)" in message:
            line = max(1, len(text.splitlines()))
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        return None, Lines({}), [Problem(path, line, f"invalid TOML: {message}", column)]
    return data, toml_lines(text), []


def read_yaml(text: str, path: str) -> tuple[Any, Lines, list[Problem]]:
    """Like :func:`read_toml`; a key given twice is reported (YAML silently keeps the last)."""
    import yaml  # type: ignore[import-untyped, unused-ignore]  # only for .checks.yml files

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        message = getattr(exc, "problem", None) or str(exc)
        return None, Lines({}), [Problem(path, line, f"invalid YAML: {message}", column)]
    finally:
        loader.dispose()
    found: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk_yaml(node, (), found, problems, path)
    return data, Lines(found), problems


def _walk_yaml(
    node: Any, at: KeyPath, found: dict[KeyPath, int], problems: list[Problem], path: str
) -> None:
    found.setdefault(at, node.start_mark.line + 1)
    import yaml  # type: ignore[import-untyped, unused-ignore]

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*at, str(key.value))
            if child in found:
                problems.append(
                    Problem(path, key.start_mark.line + 1, f"duplicate key '{key.value}'")
                )
                continue
            found[child] = key.start_mark.line + 1
            _walk_yaml(value, child, found, problems, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_yaml(item, (*at, index), found, problems, path)


def toml_lines(text: str) -> Lines:
    """Lines of a document ``tomllib`` has already accepted, found by a small scanner of its
    structure (headers, dotted keys, arrays, inline tables); scalar values are skipped."""
    scanner = _TomlScanner(text)
    scanner.scan()
    return Lines(scanner.found)


class _TomlScanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[KeyPath, int] = {}
        self.arrays: dict[KeyPath, int] = {}  # [[array]] header path -> index of its last table
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def line_at(self, position: int) -> int:
        return bisect.bisect_right(self.starts, position)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def scan(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip(newlines=True)
            if not self.peek():
                return
            before = self.pos
            if self.peek() == "[":
                table = self.header()
            else:
                self.entry(table)
            if self.pos == before:
                self.pos += 1

    def header(self) -> KeyPath:
        start = self.pos
        double = self.text.startswith("[[", self.pos)
        self.pos += 2 if double else 1
        parts = self.key()
        self.pos = self.text.find("]", self.pos) + (2 if double else 1)
        resolved: KeyPath = ()
        for number, part in enumerate(parts, start=1):
            resolved = (*resolved, part)
            if double and number == len(parts):
                self.found.setdefault(resolved, self.line_at(start))
                self.arrays[resolved] = self.arrays.get(resolved, -1) + 1
            if resolved in self.arrays:
                resolved = (*resolved, self.arrays[resolved])
        self.found.setdefault(resolved, self.line_at(start))
        return resolved

    def entry(self, table: KeyPath) -> None:
        start = self.pos
        path = (*table, *self.key())
        self.found.setdefault(path, self.line_at(start))
        self.skip()
        if self.peek() == "=":
            self.pos += 1
            self.value(path)

    def key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self.skip()
            char = self.peek()
            if char in ("'", '"'):
                begin = self.pos
                self.string()
                parts.append(tomllib.loads(f"k = {self.text[begin : self.pos]}")["k"])
            else:
                bare = _BARE_KEY.match(self.text, self.pos)
                if bare is None:
                    return tuple(parts)
                parts.append(bare.group(0))
                self.pos = bare.end()
            self.skip()
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1

    def value(self, path: KeyPath) -> None:
        self.skip()
        char = self.peek()
        if char in ("[", "{"):
            closing = "]" if char == "[" else "}"
            self.pos += 1
            index = 0
            while True:
                self.skip(newlines=True)
                if self.peek() in (closing, ""):
                    self.pos += 1
                    return
                before = self.pos
                if char == "[":
                    self.found.setdefault((*path, index), self.line_at(self.pos))
                    self.value((*path, index))
                    index += 1
                else:
                    self.entry(path)
                self.skip(newlines=True)
                if self.peek() == "," or self.pos == before:
                    self.pos += 1
        elif char in ("'", '"'):
            self.string()
        else:
            while self.peek() not in (",", "]", "}", "\n", "#", ""):
                self.pos += 1

    def string(self) -> None:
        quote = self.peek()
        triple = self.text.startswith(quote * 3, self.pos)
        self.pos += 3 if triple else 1
        while self.pos < len(self.text):
            if quote == '"' and self.peek() == "\\":
                self.pos += 2
                continue
            if self.text.startswith(quote * (3 if triple else 1), self.pos):
                self.pos += 3 if triple else 1
                while triple and self.peek() == quote:  # up to two quotes may end the content
                    self.pos += 1
                return
            self.pos += 1

    def skip(self, newlines: bool = False) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return
