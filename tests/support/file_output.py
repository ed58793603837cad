"""What the dry-run file destination wrote."""

from __future__ import annotations

import json
from typing import Any

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.settings import Settings


def file_records(settings: Settings) -> list[dict[str, Any]]:
    lines = file_path(settings).read_text().splitlines()
    return [record for line in lines for record in json.loads(line)["body"]["records"]]
