"""The systemd units in deploy/: `systemd-analyze verify` passes on both, and both carry the
hardening operators rely on (owner-only files, a read-only system)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = {
    "order-export.service": "order-export.service",
    "order-export@.service": "order-export@shop-nl.service",  # a template: verify an instance
}
ANALYZE = shutil.which("systemd-analyze")


def service_section(unit: str) -> dict[str, list[str]]:
    """The [Service] section's keys and their values (a key may repeat)."""
    values: dict[str, list[str]] = {}
    text = (DEPLOY / unit).read_text()
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_the_unit_is_hardened(unit: str) -> None:
    service = service_section(unit)

    assert service["UMask"] == ["0077"]
    assert service["NoNewPrivileges"] == ["true"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["PrivateTmp"] == ["true"]
    assert service["ReadWritePaths"]
    assert service["ExecStart"][0].endswith("/order-export daemon")
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["LimitNOFILE"][0]) >= 65536  # the intake's cap follows it


def test_the_template_gives_each_webstore_its_own_settings_and_state() -> None:
    service = service_section("order-export@.service")

    assert service["Environment"] == ["ORDER_EXPORT_SETTINGS=/etc/order-export/%i/settings.toml"]
    assert service["StateDirectory"] == ["order-export/%i"]
    assert service["LogsDirectory"] == ["order-export/%i"]
    assert service["EnvironmentFile"] == ["-/etc/order-export/%i/secrets.env"]
    assert service["ReadWritePaths"] == ["-/etc/order-export/%i"]


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_analyze_verify_passes(unit: str, tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists; the units name where the install puts
    # it, so a stand-in executable is created here and only that path is swapped.
    program = tmp_path / "bin" / "order-export"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    text = (DEPLOY / unit).read_text()
    (installed,) = (
        line.split("=", 1)[1].split()[0]
        for line in text.splitlines()
        if line.startswith("ExecStart=")
    )
    (tmp_path / unit).write_text(text.replace(installed, str(program)))

    result = subprocess.run(
        [str(ANALYZE), "verify", str(tmp_path / UNITS[unit])],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    # Warnings (an unknown key, a bad value) do not change the exit code: none may appear.
    complaints = [line for line in result.stderr.splitlines() if unit.split("@")[0] in line]
    assert complaints == [], result.stderr
