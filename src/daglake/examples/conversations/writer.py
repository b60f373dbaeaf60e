"""Writing generated records fast: JSON files streamed as lines or as one array, optionally
gzipped on a thread of their own, and ISO times from cached strings instead of strftime."""

from __future__ import annotations

import datetime as dt
import gzip
import queue
import threading
from pathlib import Path
from typing import BinaryIO

DAY = 86_400


class Clock:
    """``YYYY-MM-DDTHH:MM:SSZ`` for epoch seconds, from cached day and time-of-day strings."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}
        self.times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(DAY)]

    def cover(self, first: int, last: int) -> None:
        """Cache the days from ``first`` to ``last`` (epoch seconds), so lookups never miss."""
        for day in range(first // DAY, last // DAY + 1):
            if day not in self.days:
                self.days[day] = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat() + "T"

    def __call__(self, seconds: int) -> str:
        self.cover(seconds, seconds)
        return self.days[seconds // DAY] + self.times[seconds % DAY]


class JsonWriter:
    """A file of JSON records, as one object per line or as one array, optionally gzipped.

    Compression runs on a thread of its own (zlib releases the GIL), fed through a short
    queue: generating and compressing overlap and memory stays bounded."""

    def __init__(self, path: Path, array: bool, compress: bool) -> None:
        self.path = path
        self.array = array
        self.records = 0
        self.json_bytes = 0
        self.error: BaseException | None = None
        self.handle: gzip.GzipFile | BinaryIO = (
            gzip.GzipFile(path, "wb", compresslevel=6)
            if compress
            else path.open("wb", buffering=1 << 20)
        )
        self.queue: queue.Queue[bytes | None] | None = None
        if compress:
            self.queue = queue.Queue(maxsize=4)
            self.thread = threading.Thread(
                target=self._drain, name=f"gzip {path.name}", daemon=True
            )
            self.thread.start()
        if array:
            self._put(b"[\n")

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        text = (",\n" if self.array else "\n").join(lines)
        if self.array and self.records:
            text = ",\n" + text
        elif not self.array:
            text += "\n"
        self._put(text.encode())
        self.records += len(lines)

    def close(self) -> int:
        if self.array:
            self._put(b"\n]\n")
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
        self.handle.close()
        if self.error is not None:
            raise self.error
        return self.path.stat().st_size

    def _put(self, data: bytes) -> None:
        self.json_bytes += len(data)
        if self.queue is None:
            self.handle.write(data)
        else:
            self.queue.put(data)

    def _drain(self) -> None:
        assert self.queue is not None
        while (data := self.queue.get()) is not None:
            if self.error is None:  # after a failure keep draining, so the producer never blocks
                try:
                    self.handle.write(data)
                except BaseException as exc:
                    self.error = exc
