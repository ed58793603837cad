"""Saving settings over the control socket: an explicit patch of dotted keys that keeps every
other key (and line) of the file, checked by the same rules as `check` (issue 25, item 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.support.daemon_process import DaemonProcess, order_export


def put_settings(folder: Path, body: Any) -> httpx.Response:
    socket = load_settings(folder / "settings.toml").control_socket_path
    transport = httpx.HTTPTransport(uds=str(socket))
    with httpx.Client(transport=transport, base_url="http://daemon", timeout=30) as client:
        return client.put("/settings", json=body)


def started(tmp_path: Path, daemons: list[DaemonProcess]) -> DaemonProcess:
    write_settings(tmp_path, {"destination": {"app": "file"}})
    assert order_export("demo", "--orders", "10", cwd=tmp_path).returncode == 0
    daemon = DaemonProcess(tmp_path)
    daemons.append(daemon)
    return daemon.wait_started()


def test_a_patch_changes_its_keys_and_keeps_the_rest(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = started(tmp_path, daemons)
    path = tmp_path / "settings.toml"
    path.write_text("# ask Piet before changing the batch size\n" + path.read_text())
    before = path.read_text()

    answer = put_settings(tmp_path, {"changes": {"task.batch_size": 7}})

    assert answer.status_code == 200 and answer.json()["saved"] is True, answer.text
    assert path.read_text() == before.replace("batch_size = 50", "batch_size = 7")
    settings = load_settings(path)
    assert settings.destination.app == "file" and settings.task.batch_size == 7
    assert daemon.stop() == 0


def test_a_whole_table_of_some_settings_is_refused_and_nothing_written(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    started(tmp_path, daemons)
    path = tmp_path / "settings.toml"
    before = path.read_bytes()

    partial = put_settings(tmp_path, {"data": {"task": {"batch_size": 7}}})
    system = put_settings(tmp_path, {"changes": {"storage.state_database": "/etc/passwd"}})
    unknown = put_settings(tmp_path, {"changes": {"task.batch_sise": 7}})
    stale = put_settings(tmp_path, {"changes": {"task.batch_size": 7}, "revision": "0" * 16})

    assert partial.status_code == 400 and "changes must be a table" in partial.text
    assert system.json()["saved"] is False
    assert any(
        p.startswith("storage.state_database: must not be under /etc")
        for p in system.json()["problems"]
    )
    assert unknown.json()["saved"] is False and "task.batch_sise" in unknown.text
    assert stale.json()["saved"] is False and stale.json()["changed_since_read"] is True
    assert path.read_bytes() == before
