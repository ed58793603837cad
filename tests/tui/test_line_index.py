"""Line offsets and search over log files, chunk boundaries included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from order_export_tui.tui.line_index import LineIndex, find_text, read_line, scan_line_starts


def index_of(path: Path, chunk_bytes: int) -> LineIndex:
    index = LineIndex()
    for starts, scanned, widest in scan_line_starts(path, chunk_bytes=chunk_bytes):
        index.extend(starts, scanned, widest)
    return index


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1 << 20])
def test_every_line_is_found_whatever_the_chunk_size(tmp_path: Path, chunk_bytes: int) -> None:
    lines = [f"line {n} " + "x" * (n % 23) for n in range(500)] + ["", "tab\there", "ünïcode"]
    path = tmp_path / "run.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = index_of(path, chunk_bytes)
    assert index.line_count == len(lines)
    assert index.scanned == path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        shown = [read_line(fd, index, n) for n in range(index.line_count)]
    finally:
        os.close(fd)
    assert shown == [line.expandtabs(4) for line in lines]


def test_a_line_still_being_written_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"one\ntwo\nthr")
    index = index_of(path, 1 << 20)
    assert index.line_count == 2 and index.scanned == 8
    with path.open("ab") as handle:
        handle.write(b"ee\nfour\n")
    for starts, scanned, widest in scan_line_starts(path, start=index.scanned):
        index.extend(starts, scanned, widest)
    assert index.line_count == 4 and index.line_at(9) == 2


@pytest.mark.parametrize("chunk_bytes", [5, 16, 1 << 20])
def test_search_finds_matches_across_chunk_boundaries_both_ways(
    tmp_path: Path, chunk_bytes: int
) -> None:
    path = tmp_path / "run.log"
    text = "aaa NEEDLE bbb\n" * 3 + "ccc\n" + "x needle y\n"
    path.write_text(text)
    size = len(text)
    first = text.index("NEEDLE")
    assert find_text(path, "needle", 0, size, chunk_bytes=chunk_bytes) == first
    assert find_text(path, "needle", first + 1, size, chunk_bytes=chunk_bytes) == text.index(
        "NEEDLE", first + 1
    )
    last = text.lower().rindex("needle")
    assert find_text(path, "Needle", 0, size, backwards=True, chunk_bytes=chunk_bytes) == last
    assert find_text(path, "needle", 0, last, backwards=True, chunk_bytes=chunk_bytes) == (
        text.rindex("NEEDLE")
    )
    assert find_text(path, "absent", 0, size, chunk_bytes=chunk_bytes) is None
    assert find_text(path, "absent", 0, size, backwards=True, chunk_bytes=chunk_bytes) is None
