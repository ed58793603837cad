"""A virtual view of one log file: only the lines on screen are ever read.

Opening a file starts a thread worker that scans it for line starts (`line_index`), posting
what it found chunk by chunk; the view can be scrolled while that goes on. A growing file
(the running run's log) is re-scanned from where the last scan stopped, and a view scrolled
to the end follows it, like `tail -f`. Search runs in a thread worker too.
"""

from __future__ import annotations

import os
import time
from array import array
from pathlib import Path
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from order_export_tui.tui.line_index import (
    MAX_LINE_BYTES,
    LineIndex,
    find_text,
    read_line,
    scan_line_starts,
)

MATCH_STYLE = Style(reverse=True, bold=True)
POST_EVERY_SECONDS = 0.25


class LogView(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"log-view--match-line"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "follow", "End, follow", show=False),
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    class Indexed(Message):
        """The scan found more lines (or finished)."""

        def __init__(self, view: LogView) -> None:
            super().__init__()
            self.view = view

    class SearchDone(Message):
        def __init__(self, view: LogView, term: str, line_no: int | None) -> None:
            super().__init__()
            self.view = view
            self.term = term
            self.line_no = line_no

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path: Path | None = None
        self.index = LineIndex()
        self.scanning = False
        self.search_term = ""
        self.match_line: int | None = None
        self._fd: int | None = None
        self._generation = 0
        self._follow_on_index = False
        self._cache: LRUCache[int, Strip] = LRUCache(1024)

    # --- opening and growing ---------------------------------------------------------------

    def open(self, path: Path | None, *, follow: bool = False) -> None:
        """Show `path` (None: nothing); `follow` keeps the view at the end as the file grows."""
        self._close_file()
        self._generation += 1
        self.path = path
        self.index = LineIndex()
        self.match_line = None
        self._cache.clear()
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.virtual_size = Size(0, 0)
        self._follow_on_index = follow
        self.refresh()
        if path is None:
            return
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as error:
            self.notify(f"Cannot open {path.name}: {error.strerror}", severity="error")
            self.path = None
            return
        self._scan_more()

    def poll_growth(self) -> None:
        """Index what was appended since the last scan (the live tail)."""
        if self._fd is None or self.scanning or self.path is None:
            return
        if os.fstat(self._fd).st_size > self.index.scanned:
            self._follow_on_index = self._at_end()
            self._scan_more()

    def _scan_more(self) -> None:
        assert self.path is not None and self._fd is not None
        self.scanning = True
        end = os.fstat(self._fd).st_size
        self._scan(self.path, self.index.scanned, end, self._generation)

    @work(thread=True, exclusive=True, group="log-scan")
    def _scan(self, path: Path, start: int, end: int, generation: int) -> None:
        worker = get_current_worker()
        # The first chunk goes up at once (the first screen); the rest at most every
        # POST_EVERY_SECONDS, since each post costs the event loop a new layout.
        pending: array[int] = array("Q")
        scanned, widest, last_post = start, 0, float("-inf")
        try:
            for starts, scanned, chunk_widest in scan_line_starts(path, start, end):
                if worker.is_cancelled:
                    return
                pending.extend(starts)
                widest = max(widest, chunk_widest)
                if time.monotonic() - last_post >= POST_EVERY_SECONDS:
                    self.app.call_from_thread(self._add_lines, generation, pending, scanned, widest)
                    pending, last_post = array("Q"), time.monotonic()
        except OSError:
            pass  # the file went away (retention): what was indexed stays readable
        if not worker.is_cancelled:
            self.app.call_from_thread(self._add_lines, generation, pending, scanned, widest)
            self.app.call_from_thread(self._scan_finished, generation)

    def _add_lines(self, generation: int, starts: array[int], scanned: int, widest: int) -> None:
        if generation != self._generation:
            return
        self.index.extend(starts, scanned, widest)
        self.virtual_size = Size(min(self.index.widest, MAX_LINE_BYTES), self.index.line_count)
        if self._follow_on_index:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Indexed(self))

    def _scan_finished(self, generation: int) -> None:
        if generation == self._generation:
            self.scanning = False
            self.post_message(self.Indexed(self))

    def _at_end(self) -> bool:
        return self.scroll_offset.y >= self.max_scroll_y

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def on_unmount(self) -> None:
        self._generation += 1
        self._close_file()

    # --- moving ----------------------------------------------------------------------------

    def action_follow(self) -> None:
        self._follow_on_index = True
        self.scroll_end(animate=False, immediate=True)

    def action_scroll_home(self) -> None:
        self._follow_on_index = False
        self.scroll_home(animate=False, immediate=True)

    def on_mouse_scroll_up(self) -> None:
        self._follow_on_index = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value:
            self._follow_on_index = False

    def go_to_line(self, line_no: int) -> None:
        self._follow_on_index = False
        top = max(0, line_no - self.scrollable_content_region.height // 2)
        self.scroll_to(y=top, animate=False, immediate=True)

    # --- search ----------------------------------------------------------------------------

    def search(self, term: str, *, backwards: bool = False) -> None:
        """Find the next (or previous) line holding `term`, wrapping around the file."""
        if self.path is None or not term:
            return
        if term.lower() != self.search_term.lower():
            self.match_line = None
        self.search_term = term
        self._cache.clear()
        self.refresh()
        index = self.index
        if self.match_line is not None:
            here = self.match_line + (0 if backwards else 1)
        else:
            here = 0 if not backwards else index.line_count
        here = min(max(here, 0), index.line_count)
        self._find(self.path, term, index.starts[here], index.scanned, backwards)

    @work(thread=True, exclusive=True, group="log-search")
    def _find(self, path: Path, term: str, here: int, end: int, backwards: bool) -> None:
        if backwards:
            found = find_text(path, term, 0, here, backwards=True)
            if found is None:
                found = find_text(path, term, here, end, backwards=True)
        else:
            found = find_text(path, term, here, end)
            if found is None:
                found = find_text(path, term, 0, min(here + len(term.encode()), end))
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._found, term, found)

    def _found(self, term: str, offset: int | None) -> None:
        line_no = None if offset is None else self.index.line_at(offset)
        if line_no is not None and line_no >= self.index.line_count:
            line_no = None
        self.match_line = line_no
        self._cache.clear()
        if line_no is not None:
            self.go_to_line(line_no)
        self.refresh()
        self.post_message(self.SearchDone(self, term, line_no))

    # --- drawing ---------------------------------------------------------------------------

    def line_text(self, line_no: int) -> str:
        if self._fd is None or not 0 <= line_no < self.index.line_count:
            return ""
        return read_line(self._fd, self.index, line_no)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line_no = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if line_no >= self.index.line_count or self._fd is None:
            return Strip.blank(width, base)
        strip = self._cache.get(line_no)
        if strip is None:
            strip = self._render_text(line_no, base)
            self._cache[line_no] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, line_no)

    def _render_text(self, line_no: int, base: Style) -> Strip:
        text = Text(self.line_text(line_no), no_wrap=True, end="")
        text.stylize(base)
        if line_no == self.match_line:
            text.stylize(self.get_component_rich_style("log-view--match-line", partial=True))
        if self.search_term:
            text.highlight_words([self.search_term], MATCH_STYLE, case_sensitive=False)
        return Strip(text.render(self.app.console), text.cell_len)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
