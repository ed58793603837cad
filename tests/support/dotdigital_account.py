"""The Dotdigital account the tests use, and the settings that point order-export at a fake."""

from __future__ import annotations

from typing import Any

USER = "apiuser-test@apiconnector.com"
PASSWORD = "pw-Zq8-never-shown"
PASSWORD_ENV = "DD_TEST_PASSWORD"


def dotdigital_overrides(url: str, **dotdigital: Any) -> dict[str, Any]:
    return {
        "destination": {"app": "dotdigital"},
        "dotdigital": {"base_url": url, "api_user": USER, "password_env": PASSWORD_ENV}
        | dotdigital,
    }
