"""The Dotdigital and Mailchimp accounts the platform-answer tests use, the settings that
point order-export at their fakes, and the order they send."""

from __future__ import annotations

from typing import Any

USER = "apiuser-answers@apiconnector.com"
PASSWORD = "pw-answers-Kq7-never-shown"
PASSWORD_ENV = "DD_ANSWERS_PASSWORD"
MC_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f9-us7"
MC_KEY_ENV = "ANSWERS_MAILCHIMP_KEY"


def dotdigital(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "destination": {"app": "dotdigital"},
        "dotdigital": {"base_url": url, "api_user": USER, "password_env": PASSWORD_ENV} | extra,
    }


def mailchimp(url: str) -> dict[str, Any]:
    return {
        "destination": {"app": "mailchimp"},
        "mailchimp": {
            "api_key_env": MC_KEY_ENV,
            "base_url": url,
            "store_id": "answers-store",
            "list_id": "aud-1",
        },
    }


def jane(order_id: str = "SO-700001") -> dict[str, Any]:
    address = {
        "line1": "Main St 1",
        "line2": "",
        "city": "Utrecht",
        "region": "",
        "postcode": "3511",
        "country": "NL",
    }
    return {
        "order_id": order_id,
        "order_date": "2026-11-27T10:21:00+00:00",
        "customer": {
            "id": "C-1",
            "email": "jane@example.com",
            "first_name": "Jane",
            "last_name": "Doe",
        },
        "currency": "EUR",
        "lines": [
            {
                "line_no": 1,
                "sku": "HAT-1",
                "name": "Hat",
                "quantity": 1,
                "unit_price": 10.0,
                "unit_price_incl_tax": 12.1,
            }
        ],
        "subtotal": 10.0,
        "discount": 0.0,
        "shipping_cost": 0.0,
        "tax": 2.1,
        "total": 12.1,
        "shipping_method": "DHL",
        "payment_method": "iDEAL",
        "billing_address": address,
        "shipping_address": address,
        "shipping_status": "not_shipped",
        "payment_status": "paid",
        "tracking_number": "",
        "tracking_url": "",
    }
