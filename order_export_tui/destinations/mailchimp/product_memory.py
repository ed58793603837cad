"""What was sent of each product to one Mailchimp store, so a product goes again only when it
is new or its item data changed.

Each sku maps to the hash of the item data Mailchimp confirmed. With a state database it is
kept there between runs (`ProductMemory`, saved every `SAVE_EVERY` changes and on close);
without one, for this instance only. A lost memory costs requests, never orders.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from order_export_tui.state import ProductMemory, StateLocation

log = logging.getLogger("order_export.mailchimp")

SAVE_EVERY = 100  # changes kept unsaved at most


class SentProducts:
    """sku -> product hash Mailchimp confirmed, remembered in `database` (None: not kept)."""

    def __init__(self, database: StateLocation | None) -> None:
        self._database = database
        self._memory: ProductMemory | None = None
        self._sent: dict[str, str] = {}
        self._unsaved: dict[str, str] = {}
        self._forgotten: set[str] = set()

    def open(self, key: str) -> None:
        """Load what was sent under `key` (one store of one account), if not open already."""
        if self._database is None or self._memory is not None:
            return
        self._memory = ProductMemory(self._database, key)
        self._sent = self._memory.load()

    def get(self, sku: str) -> str | None:
        return self._sent.get(sku)

    def remember(self, sku: str, digest: str) -> None:
        self._sent[sku] = digest
        self._unsaved[sku] = digest
        self._forgotten.discard(sku)
        if len(self._unsaved) >= SAVE_EVERY:
            self._save()

    def forget(self, skus: Iterable[str]) -> None:
        for sku in skus:
            self._sent.pop(sku, None)
            self._unsaved.pop(sku, None)
            self._forgotten.add(sku)

    def _save(self, memory: ProductMemory | None = None) -> None:
        memory = memory or self._memory
        if memory is None:
            return
        memory.save(self._unsaved, self._forgotten)
        self._unsaved = {}
        self._forgotten = set()

    def close(self) -> None:
        """Save what is not saved yet and close the database."""
        memory, self._memory = self._memory, None
        if memory is None:
            return
        try:
            self._save(memory)
        except Exception as error:  # a lost memory costs requests, never orders
            log.warning("cannot remember the products sent to Mailchimp: %s", error)
        finally:
            memory.close()
            self._unsaved, self._forgotten = {}, set()
