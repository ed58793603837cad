"""A daemon's run, in a process of its own, held at a gate the test opens.

`destination.app = "gated_file"` is the dry-run file destination whose batches wait, once the
run has sent as many as the gate file allows, until the test allows more or the run is being
cancelled (or stopped). A run that cannot end before the test's cancel arrives, whatever the
machine's load, and that idles while it waits: a run of 20,000 one-order batches did the same
by length, and its flood of events kept the dashboard under test so busy that Textual's pilot
waited out its idle bound (up to a second) after every key and every check.

It is registered as an outside connector is, by an entry point in a site folder of the test's
own (`gated_site`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from order_export_tui.destinations.base import OrderChange
from order_export_tui.destinations.file.destination import FileDestination
from order_export_tui.settings import DestinationConnector, Required, Settings, resolve_path
from order_export_tui.settings.checks import STR
from order_export_tui.settings.connectors import refresh
from order_export_tui.transport.retry import Retrier
from tests.support.cli import REPO

GATE_POLL_SECONDS = 0.02  # how often a held batch looks at the gate file


@dataclass
class GatedFileSettings:
    path: str = "exports/orders.jsonl"
    gate: str = "gate"  # a file holding how many batches a run may send; absent: no limit


class GatedFileDestination:
    name = "gated_file"
    max_batches_in_flight = 1

    def __init__(self, inner: FileDestination, gate: Path) -> None:
        self._inner = inner
        self._gate = gate
        self._sent = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> GatedFileDestination:
        section: GatedFileSettings = CONNECTOR.section_of(settings)
        inner = FileDestination(
            resolve_path(settings, section.path),
            store_name=settings.webstore.name,
            collection=settings.dotdigital.collection,
        )
        return cls(inner, resolve_path(settings, section.gate))

    async def open(self, *, backfill: bool = False) -> None:
        await self._inner.open(backfill=backfill)

    async def send_batch(self, changes: Sequence[OrderChange], retrier: Retrier) -> dict[str, str]:
        while self._sent >= self._allowed():
            if retrier.interrupt is not None and retrier.interrupt.is_set():
                break  # cancelled: this batch goes out and the run stops at its boundary
            await asyncio.sleep(GATE_POLL_SECONDS)
        self._sent += 1
        return await self._inner.send_batch(changes, retrier)

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        return await self._inner.send_one(change, retrier)

    async def check_connection(self) -> str:
        return await self._inner.check_connection()

    async def read_back(self, since: Any, retrier: Retrier) -> Any:
        return await self._inner.read_back(since, retrier)

    async def close(self) -> None:
        await self._inner.close()

    def _allowed(self) -> float:
        try:
            return int(self._gate.read_text())
        except FileNotFoundError:
            return float("inf")


CONNECTOR = DestinationConnector(
    name="gated_file",
    section="gated_file",
    settings=GatedFileSettings,
    factory=GatedFileDestination.from_settings,
    rules={"path": STR, "gate": STR},
    descriptions={
        "path": "The JSON Lines file the requests are written to (as the file destination).",
        "gate": "The file holding how many batches a run may send before it waits.",
    },
    summary="the dry run, held at a gate (tests)",
    table_description='The gated dry run (destination.app = "gated_file").',
    required=(Required("path"),),
    file_keys=("path",),
)

ENTRY_POINT = "[order_export.destinations]\ngated_file = tests.support.gated_file:CONNECTOR\n"


def gated_destination(folder: Path) -> dict[str, Any]:
    """Settings that send to the gated dry run, its file and gate in `folder`."""
    table = {"path": str(folder / "gated-orders.jsonl"), "gate": str(folder / "gate")}
    return {"destination": {"app": "gated_file"}, "gated_file": table}


def allow(folder: Path, batches: int) -> None:
    """Each run of `gated_destination(folder)` may send this many batches before it waits."""
    written = folder / "gate.new"
    written.write_text(str(batches))
    os.replace(written, folder / "gate")


@contextlib.contextmanager
def gated_site(folder: Path) -> Iterator[dict[str, str]]:
    """A site folder registering `gated_file`, on this process's path meanwhile (the dashboard
    under test reads settings that name it); yields the environment that puts it on an
    `order-export` process's path."""
    site = folder / "gated-site"
    info = site / "order_export_gated_file-0.1.0.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(
        "Metadata-Version: 2.1\nName: order-export-gated-file\nVersion: 0.1.0\n"
    )
    info.joinpath("entry_points.txt").write_text(ENTRY_POINT)
    sys.path.insert(0, str(site))
    refresh()
    try:
        yield {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    finally:
        sys.path.remove(str(site))
        refresh()
