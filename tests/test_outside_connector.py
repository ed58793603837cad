"""A destination that lives outside order-export (tests/connectors/order_export_example) and is
known only by its own entry point: a run delivers to it, `check` holds its section to its own
rules, and the settings form shows its keys. A broken connector package is a clear problem."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from order_export_tui.settings import SettingsError, load_settings
from order_export_tui.settings.connectors import refresh, registry
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.tui.setting_field import SettingField
from order_export_tui.tui.settings_screen import SettingsScreen
from tests.conftest import write_settings
from tests.support.cli import REPO, order_export
from tests.tui.conftest import build_app, wait_until

EXAMPLE = Path(__file__).parent / "connectors" / "order_export_example"
OUTBOX = {"destination": {"app": "outbox"}, "outbox": {"folder": "sent", "indent": 2}}


def installed(site: Path, pyproject: Path, source: Path | None) -> str:
    """What `pip install` leaves for a package: its metadata with the entry points its
    pyproject.toml declares, in `site`. Returns the PYTHONPATH that finds it."""
    project = tomllib.loads(pyproject.read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    groups = project["entry-points"]
    info.joinpath("entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
            for group, entries in groups.items()
        )
    )
    return os.pathsep.join(str(path) for path in (site, source) if path is not None)


@pytest.fixture
def outbox_path(tmp_path: Path) -> Iterator[str]:
    """The example installed in a site folder of its own, on this process's path too."""
    pythonpath = installed(tmp_path / "site", EXAMPLE / "pyproject.toml", EXAMPLE)
    added = pythonpath.split(os.pathsep)
    sys.path[:0] = added
    refresh()
    yield pythonpath
    del sys.path[: len(added)]
    for name in [name for name in sys.modules if name.startswith("order_export_outbox")]:
        del sys.modules[name]
    refresh()


def cli_env(pythonpath: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(REPO), pythonpath])}


def test_a_run_delivers_to_the_outside_connector(tmp_path: Path, outbox_path: str) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    write_settings(folder, OUTBOX)
    demo = order_export(
        "demo", "--orders", "25", "--malformed", "0", cwd=folder, env=cli_env(outbox_path)
    )
    assert demo.returncode == 0, demo.stderr

    result = order_export("run", "--json", cwd=folder, env=cli_env(outbox_path))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "succeeded" and report["counts"]["new"] == 25
    sent = sorted((folder / "sent").glob("*.json"))
    assert len(sent) == 25
    order = json.loads(sent[0].read_text())
    assert order["order_id"] == sent[0].stem
    assert sent[0].read_text().startswith("{\n  ")  # its own `indent` key was read


def test_check_holds_the_outside_section_to_its_own_rules(tmp_path: Path, outbox_path: str) -> None:
    write_settings(tmp_path, {**OUTBOX, "outbox": {"folder": "sent", "indent": 9}})

    bad = order_export("check", cwd=tmp_path, env=cli_env(outbox_path))
    write_settings(tmp_path, {**OUTBOX, "outbox": {"folder": ""}})
    empty = order_export("check", cwd=tmp_path, env=cli_env(outbox_path))
    write_settings(tmp_path, OUTBOX)
    good = order_export("check", "--connect", cwd=tmp_path, env=cli_env(outbox_path))
    without = order_export("check", cwd=tmp_path)  # the package is not installed there

    assert bad.returncode == 2
    assert "outbox.indent: must be an integer from 0 to 8 (got 9)" in bad.stderr
    assert empty.returncode == 2
    assert 'outbox.folder: required when destination.app = "outbox" (got "")' in empty.stderr
    assert good.returncode == 0, good.stderr
    assert f"destination: outbox folder {tmp_path / 'sent'}" in good.stderr
    assert without.returncode == 2
    assert "outbox: unknown table" in without.stderr
    assert 'destination.app: must be one of "dotdigital", "mailchimp", "file"' in without.stderr


async def test_the_settings_form_shows_the_outside_keys(
    tmp_path: Path, outbox_path: str, state_factory
) -> None:
    settings = load_settings(write_settings(tmp_path, OUTBOX))
    generate_demo_erp(demo_database_path(settings), orders=5, seed=1, days=5, malformed=0)
    app = build_app(settings, state_factory(settings))

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        fields = {field.spec.key: field for field in app.screen.query(SettingField)}

        assert (
            fields["outbox.indent"].spec.description
            == "Spaces of indentation in each file (0: one line)."
        )
        assert fields["outbox.folder"].spec.group == "outbox"
        assert fields["destination.app"].spec.choices == (
            "dotdigital",
            "mailchimp",
            "file",
            "outbox",
        )


def write_broken(site: Path) -> str:
    pyproject = site.parent / "broken.toml"
    pyproject.write_text(
        '[project]\nname = "order-export-broken"\nversion = "1.0"\n'
        '[project.entry-points."order_export.destinations"]\n'
        'klaviyo = "order_export_klaviyo_missing.connector:CONNECTOR"\n'
    )
    return installed(site, pyproject, None)


def test_a_broken_connector_package_is_a_clear_problem(tmp_path: Path) -> None:
    pythonpath = write_broken(tmp_path / "site")
    write_settings(tmp_path)

    fine = order_export("check", cwd=tmp_path, env=cli_env(pythonpath))
    write_settings(tmp_path, {"destination": {"app": "klaviyo"}})
    chosen = order_export("check", cwd=tmp_path, env=cli_env(pythonpath))

    assert fine.returncode == 0, fine.stderr
    assert (
        "warning: connector 'klaviyo' (order_export.destinations) cannot be loaded: importing "
        "order_export_klaviyo_missing.connector:CONNECTOR failed: ModuleNotFoundError"
    ) in fine.stderr
    assert "Traceback" not in fine.stderr + chosen.stderr
    assert chosen.returncode == 2
    assert "destination.app: the connector 'klaviyo' is installed but cannot be loaded" in (
        chosen.stderr
    )


def test_a_broken_entry_point_leaves_the_others_loaded(tmp_path: Path) -> None:
    added = write_broken(tmp_path / "site")
    sys.path.insert(0, added)
    try:
        reg = refresh()
        names = [connector.name for connector in reg.destinations]
        with pytest.raises(SettingsError) as info:
            load_settings(write_settings(tmp_path, {"destination": {"app": "klaviyo"}}))
    finally:
        sys.path.remove(added)
        refresh()

    assert names == ["dotdigital", "mailchimp", "file"]
    assert [problem.split(":")[0] for problem in info.value.problems] == ["destination.app"]
    assert "klaviyo" not in [connector.name for connector in registry().destinations]
