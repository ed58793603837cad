"""Each destination's platform as a verify test drifts it: an order deleted there, changed
there, or there though the ERP never had it, made straight in the loopback fake's store (or
the dry-run file), as a person at the platform would; and what the platform was asked to
write, so a test can prove that a verify without --repair wrote nothing."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from order_export_tui.destinations.dotdigital.records import order_record_json, single_record_path
from order_export_tui.destinations.mailchimp.payloads import order_body
from order_export_tui.orders import OrderDocument
from tests.fakes.dotdigital import FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.dotdigital_account import PASSWORD, USER, dotdigital_overrides
from tests.support.mailchimp_account import AUDIENCE, KEY, STORE, mailchimp_overrides

STORE_NAME = "Test webstore"
PLATFORMS = ("mailchimp", "dotdigital", "file")
CHANGED_FIELDS = ("payment_status", "total", "currency", "email")


class DriftPlatform(Protocol):
    name: str

    def overrides(self) -> dict[str, Any]: ...

    def hold(self, doc: OrderDocument) -> None:
        """Make the platform hold this document as it is (a change, or an extra order)."""
        ...

    def delete(self, doc: OrderDocument) -> None: ...

    def writes(self) -> int:
        """How much was written to the platform so far (requests, or the file's bytes)."""
        ...

    def break_reads(self) -> None:
        """From now on the platform's copy cannot be read."""
        ...

    def problems(self) -> list[str]:
        """What the fake found wrong in the requests it received."""
        ...


def erp_value(doc: OrderDocument, field: str) -> Any:
    """What the ERP's document says for a drift `field` (`email`: the customer's)."""
    return doc["customer"]["email"] if field == "email" else doc[field]


def changed(doc: OrderDocument, field: str) -> tuple[OrderDocument, Any]:
    """The document with `field` changed, and the value the platform then holds. `email`: the
    order under another customer, as something outside order-export (or a person) put it;
    at Dotdigital beside the record under the ERP's e-mail, which stays."""
    other = copy.deepcopy(doc)
    if field == "email":
        other["customer"]["email"] = f"someone-else.{doc['order_id'].lower()}@example.com"
        return other, other["customer"]["email"]
    if field == "payment_status":
        other["payment_status"] = "failed" if doc["payment_status"] != "failed" else "paid"
        return other, other["payment_status"]
    if field == "total":
        other["total"] = round(doc["total"] + 1.25, 2)
        return other, other["total"]
    other["currency"] = "USD" if doc["currency"] != "USD" else "EUR"
    return other, other["currency"]


def extra_order(template: OrderDocument, order_id: str) -> OrderDocument:
    """An order of the window that the ERP never had."""
    doc = copy.deepcopy(template)
    when = datetime.now().astimezone() - timedelta(days=1)
    doc.update(order_id=order_id, order_date=when.isoformat(timespec="seconds"))
    return doc


class MailchimpPlatform:
    name = "mailchimp"

    def __init__(self, fake: MailchimpFake) -> None:
        self.fake = fake

    def overrides(self) -> dict[str, Any]:
        return mailchimp_overrides(self.fake)

    def hold(self, doc: OrderDocument) -> None:
        self.fake.put_order(STORE, order_body(doc))

    def delete(self, doc: OrderDocument) -> None:
        self.fake.remove_order(STORE, doc["order_id"])

    def writes(self) -> int:
        return len(self.fake.writes())

    def break_reads(self) -> None:
        self.fake.break_requests(lambda method, path: method == "GET" and "/orders" in path, 500)

    def problems(self) -> list[str]:
        return [str(error) for error in self.fake.schema_errors]


class DotdigitalPlatform:
    name = "dotdigital"

    def __init__(self, fake: FakeDotdigital) -> None:
        self.fake = fake

    def overrides(self) -> dict[str, Any]:
        return dotdigital_overrides(self.fake.url)

    def hold(self, doc: OrderDocument) -> None:
        record = order_record_json(doc, STORE_NAME)
        self.fake.put_record(doc["customer"]["email"], doc["order_id"], record)

    def delete(self, doc: OrderDocument) -> None:
        self.fake.remove_record(doc["order_id"])

    def writes(self) -> int:
        return sum(self.fake.count(method) for method in ("PUT", "POST", "PATCH", "DELETE"))

    def break_reads(self) -> None:
        self.fake.break_requests(
            lambda method, path: method == "GET" and path.endswith("/contacts/Orders"), 500
        )

    def problems(self) -> list[str]:
        return [*map(str, self.fake.invalid_requests), *map(str, self.fake.internal_errors)]


class FilePlatform:
    """The dry-run file: a person "changes" it by adding the request a platform would have
    received, which is what the file's read-back replays."""

    name = "file"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "exports" / "orders.jsonl"

    def overrides(self) -> dict[str, Any]:
        return {"destination": {"app": "file"}, "file": {"path": str(self.path)}}

    def _append(self, request: dict[str, Any]) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(request) + "\n")

    def hold(self, doc: OrderDocument) -> None:
        path = single_record_path(doc, "Orders")
        self._append({"method": "PUT", "path": path, "body": order_record_json(doc, STORE_NAME)})

    def delete(self, doc: OrderDocument) -> None:
        self._append({"method": "DELETE", "path": single_record_path(doc, "Orders")})

    def writes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def break_reads(self) -> None:
        with self.path.open("a") as file:
            file.write("this line is no request\n")

    def problems(self) -> list[str]:
        return []


@contextlib.contextmanager
def drift_platform(name: str, folder: Path) -> Iterator[DriftPlatform]:
    """The platform `name` ("mailchimp", "dotdigital", "file") behind a loopback fake."""
    if name == "mailchimp":
        with MailchimpFake(KEY, lists=(AUDIENCE,)) as mailchimp:
            yield MailchimpPlatform(mailchimp)
    elif name == "dotdigital":
        with FakeDotdigital(USER, PASSWORD) as dotdigital:
            yield DotdigitalPlatform(dotdigital)
    else:
        yield FilePlatform(folder)
