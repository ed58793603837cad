"""The protocol every destination implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from order_export_tui.orders import OrderDocument
from order_export_tui.state import ExportedOrder
from order_export_tui.transport.retry import Retrier


@dataclass(frozen=True, slots=True)
class OrderChange:
    """An order to send, and what the destination last confirmed for it (None: never sent).
    `held_under`: e-mails a verify found the platform holding this order under besides the
    ERP's (a copy the state never knew of: made outside order-export, or a move it missed)."""

    document: OrderDocument
    kind: Literal["new", "updated"]
    previous: ExportedOrder | None
    held_under: tuple[str, ...] = ()

    @property
    def order_id(self) -> str:
        return self.document["order_id"]

    @property
    def moved_from(self) -> str | None:
        """The e-mail the destination holds this order under when the ERP's is another one
        (the order moved to another customer): the destination removes it from that customer
        as well as sending it under the new one. None: no move (e-mails differing only in
        case are one customer)."""
        if self.previous is None or self.previous.customer_email is None:
            return None
        old = self.previous.customer_email
        return None if old.lower() == self.document["customer"]["email"].lower() else old

    @property
    def remove_from(self) -> tuple[str, ...]:
        """Every e-mail the destination must take this order away from once it holds it
        under the ERP's: the state's move (`moved_from`) and the copies a verify found
        (`held_under`); each once, never the ERP's own (case aside)."""
        erp = self.document["customer"]["email"].lower()
        found = [self.moved_from, *self.held_under]
        wanted: dict[str, str] = {}
        for email in found:
            if email is not None and email.lower() != erp:
                wanted.setdefault(email.lower(), email)
        return tuple(wanted.values())


class DestinationError(Exception):
    """The destination cannot take orders at all (bad credentials, missing store...).

    Fails the run; a problem with one order is a rejection instead.
    """


class Destination(Protocol):
    """Sends orders. Every write is an upsert keyed by the order id, so a repeat is harmless.

    An order whose customer e-mail changed (`OrderChange.moved_from`), or that a verify found
    under another e-mail (`OrderChange.held_under`), is held once, under the ERP's e-mail, once
    confirmed: the destination removes it from each e-mail of `OrderChange.remove_from` and
    sends it under the ERP's, and confirms it only when both steps are done (interfaces.md §7). A
    removal that finds nothing there is done: a repeat after a crash is harmless.

    `send_batch` returns the orders the destination refused, each with the platform's reason;
    every other order in the batch is confirmed. Requests go through `retrier.call(...)` so the
    engine's retry policy applies to each; `RetriesExhaustedError` or `DestinationError` fail
    the run and nothing of the batch is recorded.

    `max_batches_in_flight`: how many `send_batch` calls the engine may run at once (batches
    are still recorded in the order they were read). 1 for a destination that must see
    batches one by one.

    A destination that treats a backfill apart (Mailchimp's `is_syncing`) has a `backfill`
    attribute: set it to True before `open()` for a run that is one (`run --since`).
    """

    name: str
    max_batches_in_flight: int

    async def open(self, *, backfill: bool = False) -> None:
        """Get ready for a run. `backfill` is true for a run that sends orders from before
        the export window (`run --since`): a platform that has a quiet "syncing" mode for old
        orders (Mailchimp's `is_syncing`) uses it. Runs that are no backfill call `open()`."""
        ...

    async def send_batch(
        self, changes: Sequence[OrderChange], retrier: Retrier
    ) -> dict[str, str]: ...

    async def send_one(self, change: OrderChange, retrier: Retrier) -> str | None:
        """Upsert one order now (a real-time event or a status update): None when confirmed,
        else the platform's reason for refusing it."""
        ...

    async def check_connection(self) -> str:
        """Prove the credentials, region or data centre and account objects (`check
        --connect`); raise `DestinationError` naming what is wrong. Returns what was reached
        in a few words, e.g. "Mailchimp store Shop (shop-1), audience News (abc123)"; never a
        secret or a URL's user-info."""
        ...

    async def close(self) -> None: ...
