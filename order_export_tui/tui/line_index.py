"""Where each line of a log file starts, found without reading the file into memory.

`scan_line_starts` reads the file in large chunks (in a thread worker) and yields the byte
offsets of the line starts it found in each; `LineIndex` keeps them in a compact array, so a
viewer reads only the lines on screen (`read_line`). `find_text` searches the bytes the same
way. Nothing here knows Textual.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate, repeat
from operator import add
from pathlib import Path

CHUNK_BYTES = 1024 * 1024  # small enough that the scan never holds the GIL for long
MAX_LINE_BYTES = 4096  # a longer line is shown cut; the file is never changed


def scan_line_starts(
    path: Path, start: int = 0, end: int | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[array[int], int, int]]:
    """(offsets of the line starts found, bytes scanned up to, longest line seen) per chunk.

    Scanning stops at the last newline before `end` (the file's size when it began), so a
    line still being written is picked up by the next scan.
    """
    with open(path, "rb") as handle:
        if end is None:
            end = os.fstat(handle.fileno()).st_size
        position = start
        handle.seek(position)
        while position < end:
            chunk = handle.read(min(chunk_bytes, end - position))
            if not chunk:
                return
            cut = chunk.rfind(b"\n")
            if cut < 0:
                if len(chunk) < chunk_bytes:
                    return  # a partial last line: wait for its newline
                cut = len(chunk) - 1  # a giant line: split it rather than stall
            pieces = chunk[: cut + 1].split(b"\n")
            pieces.pop()  # the empty piece after the last newline
            # The running sums of the line lengths (+1 for each newline), all in C.
            lengths = map(add, map(len, pieces), repeat(1))
            starts = array("Q", accumulate(lengths, initial=position))
            starts.pop(0)
            widest = max(map(len, pieces), default=0)
            position += cut + 1
            yield starts, position, widest
            handle.seek(position)


class LineIndex:
    """Byte offsets of the line starts of one file, grown as scans report them."""

    def __init__(self) -> None:
        self.starts: array[int] = array("Q", [0])
        self.scanned = 0  # bytes indexed: every line before this offset is known
        self.widest = 0

    @property
    def line_count(self) -> int:
        return len(self.starts) - 1

    def extend(self, starts: array[int], scanned: int, widest: int) -> None:
        self.starts.extend(starts)
        self.scanned = scanned
        self.widest = max(self.widest, widest)

    def span(self, line_no: int) -> tuple[int, int]:
        """(offset, length without the newline) of a complete line."""
        offset = self.starts[line_no]
        return offset, self.starts[line_no + 1] - offset - 1

    def line_at(self, offset: int) -> int:
        """The line holding the byte at `offset` (which must be indexed)."""
        return bisect_right(self.starts, offset) - 1


def read_line(fd: int, index: LineIndex, line_no: int) -> str:
    offset, length = index.span(line_no)
    raw = os.pread(fd, min(length, MAX_LINE_BYTES), offset)
    return raw.decode("utf-8", errors="replace").rstrip("\r").expandtabs(4)


def find_text(
    path: Path,
    needle: str,
    start: int,
    end: int,
    *,
    backwards: bool = False,
    chunk_bytes: int = CHUNK_BYTES,
) -> int | None:
    """The byte offset of the first (or, backwards, last) case-insensitive match of `needle`
    in [start, end), None when there is none. ASCII case folding, like grep -i in C locale."""
    pattern = needle.encode("utf-8").lower()
    if not pattern or end <= start:
        return None
    overlap = len(pattern) - 1
    with open(path, "rb") as handle:
        if not backwards:
            position = start
            while position < end:
                handle.seek(position)
                chunk = handle.read(min(chunk_bytes + overlap, end - position)).lower()
                found = chunk.find(pattern)
                if found >= 0:
                    return position + found
                if position + len(chunk) >= end:
                    return None
                position += max(1, len(chunk) - overlap)
            return None
        stop = end
        while stop > start:
            position = max(start, stop - chunk_bytes - overlap)
            handle.seek(position)
            chunk = handle.read(stop - position).lower()
            found = chunk.rfind(pattern)
            if found >= 0:
                return position + found
            stop = position + overlap
            if position == start:
                return None
        return None
