"""Dotdigital as a connector: `destination.app = "dotdigital"`, the [dotdigital] table."""

from __future__ import annotations

from dataclasses import dataclass

from order_export_tui.settings import DestinationConnector, Required, Secret
from order_export_tui.settings.checks import BOOL, ENV, NON_EMPTY_STR, STR, URL, integer, one_of

REGIONS = ("r1", "r2", "r3")


@dataclass
class DotdigitalSettings:
    region: str = "r1"
    base_url: str = ""
    api_user: str = ""
    password_env: str = "DOTDIGITAL_API_PASSWORD"
    collection: str = "Orders"
    create_missing_contacts: bool = True
    contact_list_id: int = 0
    import_timeout_seconds: int = 900


CONNECTOR = DestinationConnector(
    name="dotdigital",
    section="dotdigital",
    settings=DotdigitalSettings,
    factory="order_export_tui.destinations.dotdigital.destination:DotdigitalDestination.from_settings",
    rules={
        "region": one_of(*REGIONS),
        "base_url": URL,
        "api_user": STR,
        "password_env": ENV,
        "collection": NON_EMPTY_STR,
        "create_missing_contacts": BOOL,
        "contact_list_id": integer(0, 2147483647),
        "import_timeout_seconds": integer(10, 86400),
    },
    descriptions={
        "region": "Dotdigital region: r1 Europe, r2 North America, r3 Asia Pacific.",
        "base_url": 'Overrides https://<region>-api.dotdigital.com ("" for the default).',
        "api_user": "The Dotdigital API user (HTTP Basic auth user name).",
        "password_env": "Name of the environment variable that holds the API user's password.",
        "collection": "The Insight data collection that holds the orders.",
        "create_missing_contacts": (
            "Create a Dotdigital contact for an order whose e-mail address is not a contact yet."
        ),
        "contact_list_id": (
            "The list that contacts created for orders join (0: none). Joining a list is not "
            "consent to marketing: pick a list that is not sent campaigns."
        ),
        "import_timeout_seconds": (
            "How long (seconds) a run waits for Dotdigital to finish one bulk import before it "
            "fails; the import is polled less often the longer it takes."
        ),
    },
    table_description='Dotdigital Insight data (destination.app = "dotdigital").',
    required=(Required("api_user"),),
    secrets=(Secret("password_env"),),
    status_facts=lambda section, settings: [
        ("", section.region),
        ("collection", section.collection),
    ],
    # The API user is the account; its collection is the copy.
    identity=lambda section, settings: f"dotdigital:{section.api_user}/{section.collection}",
    order=10,
)
