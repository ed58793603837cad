"""The registry's own promises: what it derives from the declarations, and what it refuses."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from order_export_tui.settings import SETTING_DESCRIPTIONS, Settings, settings_to_dict
from order_export_tui.settings.connectors import (
    destination_key_prefixes,
    refresh,
    registry,
    source_names,
)

BAD_CONNECTOR = """
from dataclasses import dataclass
from order_export_tui.settings import DestinationConnector
from order_export_tui.settings.checks import STR

@dataclass
class Half:
    described: str = ""
    forgotten: str = ""

NO_RULE = DestinationConnector(
    name="half", section="half", settings=Half, factory="x:y",
    rules={"described": STR}, descriptions={"described": "d", "forgotten": "f"},
)
MISNAMED = DestinationConnector(
    name="other", section="other", settings=Half, factory="x:y",
    rules={"described": STR, "forgotten": STR}, descriptions={"described": "d", "forgotten": "f"},
)
NESTED = DestinationConnector(
    name="nested", section="erp.nested", settings=Half, factory="x:y",
    rules={"described": STR, "forgotten": STR}, descriptions={"described": "d", "forgotten": "f"},
)
"""


@pytest.fixture
def bad_packages(tmp_path: Path) -> Iterator[None]:
    tmp_path.joinpath("bad_connectors.py").write_text(BAD_CONNECTOR)
    info = tmp_path / "bad_connectors-1.0.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text(
        "Metadata-Version: 2.1\nName: bad-connectors\nVersion: 1.0\n"
    )
    info.joinpath("entry_points.txt").write_text(
        "[order_export.destinations]\n"
        "half = bad_connectors:NO_RULE\n"
        "misnamed = bad_connectors:MISNAMED\n"
        "nested = bad_connectors:NESTED\n"
        "dotdigital = bad_connectors:MISNAMED\n"
        "[order_export.sources]\n"
        "wrong_kind = bad_connectors:NO_RULE\n"
    )
    sys.path.insert(0, str(tmp_path))
    refresh()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("bad_connectors", None)
    refresh()


def test_incomplete_declarations_are_refused_each_with_its_reason(bad_packages: None) -> None:
    reg = registry()
    why = {name: reason for (_, name), reason in reg.broken.items()}

    assert "key 'forgotten' has no rule or no description" in why["half"]
    assert "named 'other', its entry point 'misnamed'" in why["misnamed"]
    assert "top-level table of its own" in why["nested"]
    assert "is not a SourceConnector" in why["wrong_kind"]
    assert "named 'other', its entry point 'dotdigital'" in why["dotdigital"]
    assert [c.name for c in reg.destinations] == ["dotdigital", "mailchimp", "file"]
    assert all(line.startswith("connector '") for line in reg.problems())


def test_reload_and_descriptions_follow_the_registered_connectors() -> None:
    sections = [connector.section for connector in registry().destinations]

    assert destination_key_prefixes() == (
        "destination.",
        *(f"{section}." for section in sections),
        "webstore.",
    )
    assert SETTING_DESCRIPTIONS["erp.source"] == (
        'Where orders come from: "demo" (embedded SQLite ERP), "business_central" or "sql"'
        " (two SQL views)."
    )
    assert source_names() == ("demo", "business_central", "sql")
    assert list(settings_to_dict(Settings()))[3:7] == [
        "destination",
        "dotdigital",
        "mailchimp",
        "file",
    ]


def test_connector_tables_read_like_dataclass_fields() -> None:
    settings = Settings()
    dotdigital = registry().destinations[0]

    assert dotdigital.section_of(settings) is settings.dotdigital
    assert settings.erp.demo_database == "data/erp-demo.sqlite"
    with pytest.raises(AttributeError):
        _ = settings.klaviyo
    with pytest.raises(TypeError):
        Settings(klaviyo=object())
