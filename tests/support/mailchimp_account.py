"""The Mailchimp account the tests use, and the settings that point order-export at a fake."""

from __future__ import annotations

from typing import Any

from tests.fakes.mailchimp import MailchimpFake

KEY = "5f0c2b9e4d7a1c3e8b6f0a2d4c6e8a1b-us7"
KEY_ENV = "ORDER_EXPORT_TEST_MAILCHIMP_KEY"
STORE = "demo-store"
AUDIENCE = "aud-0001"


def mailchimp_overrides(fake: MailchimpFake, **mailchimp: Any) -> dict[str, Any]:
    return {
        "destination": {"app": "mailchimp"},
        "mailchimp": {
            "api_key_env": KEY_ENV,
            "base_url": fake.url,
            "store_id": STORE,
            "list_id": AUDIENCE,
            **mailchimp,
        },
    }
