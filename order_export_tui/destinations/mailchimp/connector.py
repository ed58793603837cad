"""Mailchimp as a connector: `destination.app = "mailchimp"`, the [mailchimp] table."""

from __future__ import annotations

from dataclasses import dataclass

from order_export_tui.settings import DestinationConnector, Required, Secret
from order_export_tui.settings.checks import ENV, STR, URL, integer


@dataclass
class MailchimpSettings:
    api_key_env: str = "MAILCHIMP_API_KEY"
    base_url: str = ""
    store_id: str = ""
    list_id: str = ""
    max_connections: int = 8


CONNECTOR = DestinationConnector(
    name="mailchimp",
    section="mailchimp",
    settings=MailchimpSettings,
    factory="order_export_tui.destinations.mailchimp.destination:MailchimpDestination.from_settings",
    rules={
        "api_key_env": ENV,
        "base_url": URL,
        "store_id": STR,
        "list_id": STR,
        "max_connections": integer(1, 10),
    },
    descriptions={
        "api_key_env": (
            "Name of the environment variable that holds the API key (its -usN suffix selects "
            "the data centre)."
        ),
        "base_url": 'Overrides https://<dc>.api.mailchimp.com/3.0 ("" for the default).',
        "store_id": "The Mailchimp e-commerce store id.",
        "list_id": "The audience that the store is connected to.",
        "max_connections": "Simultaneous connections to Mailchimp (it allows 10 per API key).",
    },
    table_description='A Mailchimp e-commerce store (destination.app = "mailchimp").',
    required=(Required("store_id"), Required("list_id")),
    secrets=(Secret("api_key_env"),),
    status_facts=lambda section, settings: [("store", section.store_id or "—")],
    # The key's data centre is part of the secret; the audience id names the account.
    identity=lambda section, settings: f"mailchimp:{section.list_id}/{section.store_id}",
    order=20,
)
