"""The two views' columns (interfaces.md §9): names exactly these, in the order they are read."""

from __future__ import annotations

ADDRESS_PARTS = ("line1", "line2", "city", "region", "postcode", "country")

ORDER_COLUMNS: tuple[str, ...] = (
    "order_id",
    "order_date",
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "currency",
    "subtotal",
    "discount",
    "shipping_cost",
    "tax",
    "total",
    "shipping_method",
    "payment_method",
    *(f"billing_{part}" for part in ADDRESS_PARTS),
    *(f"shipping_{part}" for part in ADDRESS_PARTS),
    "shipping_status",
    "payment_status",
    "tracking_number",
    "tracking_url",
)
OPTIONAL_ORDER_COLUMNS: tuple[str, ...] = ("coupon_code", "campaign_id", "landing_site")

LINE_COLUMNS: tuple[str, ...] = (
    "order_id",
    "line_no",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "unit_price_incl_tax",
)
OPTIONAL_LINE_COLUMNS: tuple[str, ...] = ("product_url", "image_url", "categories")

MONEY_COLUMNS = ("subtotal", "discount", "shipping_cost", "tax", "total")
CATEGORY_SEPARATOR = "|"
