from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from order_export_tui.settings import Settings, load_settings
from order_export_tui.state import StateStore
from tests.support.clock import FakeClock
from tests.support.daemon_process import DaemonProcess
from tests.support.fault_server import FaultServer
from tests.support.loopback_destination import OrderStore, loopback_server
from tests.support.state_backends import SQLITE, state_location_for

SPECS_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"

TEST_SETTINGS: dict[str, Any] = {
    "task": {
        "run_on_schedule": False,
        "run_interval_minutes": 0,
        "batch_size": 50,
        "max_days_to_export": 30,
        "max_retries": 3,
        "max_retry_interval_seconds": 60,
        "max_items_to_skip": 10,
        "max_archived_log_files": 10,
    },
    "webstore": {"name": "Test webstore"},
    "erp": {"source": "demo", "demo_database": "data/erp-demo.sqlite"},
    "destination": {"app": "file"},
    "file": {"path": "exports/orders.jsonl"},
    "storage": {"state_database": "data/state.sqlite", "logs_dir": "logs"},
}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


pytest_plugins = ["tests.support.bytecode", "tests.support.postgres", "tests.support.sql_erp"]


def write_settings(folder: Path, overrides: dict[str, Any] | None = None) -> Path:
    path = folder / "settings.toml"
    path.write_bytes(tomli_w.dumps(_merge(TEST_SETTINGS, overrides or {})).encode())
    return path


SettingsMaker = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsMaker:
    """Settings in tmp_path: `make_settings(task={"batch_size": 10})`."""

    def make(**overrides: Any) -> Settings:
        return load_settings(write_settings(tmp_path, overrides))

    return make


@pytest.fixture
def state_backend() -> str:
    """Where `state_factory` opens the state; a module sets `state_backend =
    both_state_backends` (tests/support/state_backends.py) to run on PostgreSQL too."""
    return SQLITE


@pytest.fixture
def state_factory(
    request: pytest.FixtureRequest, state_backend: str
) -> Iterator[Callable[[Settings], StateStore]]:
    opened: list[StateStore] = []

    def open_state(settings: Settings) -> StateStore:
        location = state_location_for(request, state_backend, settings.state_database_path)
        store = StateStore(location)
        opened.append(store)
        return store

    yield open_state
    for store in opened:
        store.close()


@pytest.fixture
def loopback() -> Iterator[tuple[FaultServer, OrderStore]]:
    server, store = loopback_server()
    with server:
        yield server, store


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Daemons a test starts (append them); any still running afterwards is killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        if daemon.running:
            daemon.kill()
