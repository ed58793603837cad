"""Business Central as a connector: `erp.source = "business_central"`, [erp.business_central]."""

from __future__ import annotations

import re
from dataclasses import dataclass

from order_export_tui.settings import Required, Secret, SourceConnector
from order_export_tui.settings.checks import ENV, ENV_NAME, STR, URL, Rule, is_url

_API_ROUTE = re.compile(r"[A-Za-z0-9]{1,40}/[A-Za-z0-9]{1,40}/(?:v[0-9]{1,3}\.[0-9]{1,3}|beta)")


@dataclass
class BusinessCentralSettings:
    base_url: str = ""
    company_id: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = "BC_CLIENT_SECRET"
    token_url: str = ""
    shipment_tracking_field: str = ""
    shipment_tracking_api: str = ""
    tracking_url_template: str = ""


RULES: dict[str, Rule] = {
    "base_url": URL,
    "company_id": STR,
    "tenant_id": STR,
    "client_id": STR,
    "client_secret_env": ENV,
    "token_url": URL,
    "shipment_tracking_field": Rule(
        'must be "" or a field name (letters, digits and _, not starting with a digit)',
        lambda v: isinstance(v, str) and (v == "" or ENV_NAME.fullmatch(v) is not None),
    ),
    "shipment_tracking_api": Rule(
        'must be "" or an API route publisher/group/version, e.g. "contoso/shipping/v1.0"',
        lambda v: isinstance(v, str) and (v == "" or _API_ROUTE.fullmatch(v) is not None),
    ),
    "tracking_url_template": Rule(
        'must be "" or a URL starting with http:// or https:// holding "{tracking_number}"',
        lambda v: isinstance(v, str) and (v == "" or (is_url(v) and "{tracking_number}" in v)),
    ),
}

DESCRIPTIONS: dict[str, str] = {
    "base_url": (
        "Business Central API v2.0 base URL, e.g. "
        "https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0"
    ),
    "company_id": "The Business Central company's id.",
    "tenant_id": "The Microsoft Entra tenant id of the Business Central.",
    "client_id": "The app registration's client id.",
    "client_secret_env": "Name of the environment variable that holds the client secret.",
    "token_url": (
        'OAuth token URL; "" uses the Microsoft identity platform token URL for the tenant.'
    ),
    "shipment_tracking_field": (
        "A salesShipments field holding the package tracking number, added by an API extension "
        '(e.g. "packageTrackingNo"); "" when Business Central holds none.'
    ),
    "shipment_tracking_api": (
        "The route (publisher/group/version) of the custom API page whose salesShipments carry "
        'that field, e.g. "contoso/shipping/v1.0"; "" reads it from the standard API v2.0.'
    ),
    "tracking_url_template": (
        "The tracking URL, with {tracking_number} where the number goes (e.g. "
        '"https://www.dhl.com/track?id={tracking_number}"); "" for no URL.'
    ),
}

CONNECTOR = SourceConnector(
    name="business_central",
    section="erp.business_central",
    settings=BusinessCentralSettings,
    factory="order_export_tui.sources.business_central.source:BusinessCentralSource.from_settings",
    rules=RULES,
    descriptions=DESCRIPTIONS,
    table_description=(
        'Microsoft Dynamics 365 Business Central API v2.0 (erp.source = "business_central").'
    ),
    required=(
        Required("base_url"),
        Required("company_id"),
        Required(
            "tenant_id",
            when=lambda bc: not bc.token_url,
            condition="and no token_url",
            reads=("token_url",),
        ),
        Required("client_id"),
    ),
    secrets=(Secret("client_secret_env"),),
    status_facts=lambda section, settings: [("", section.base_url or "no URL")],
    order=20,
)
