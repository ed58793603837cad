"""What the dry-run file destination wrote."""

from __future__ import annotations

import json
from typing import Any

from order_export_tui.settings import Settings


def file_records(settings: Settings) -> list[dict[str, Any]]:
    lines = settings.file_path.read_text().splitlines()
    return [record for line in lines for record in json.loads(line)["body"]["records"]]
