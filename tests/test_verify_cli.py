"""`order-export verify` as an operator types it (interfaces.md §8): through a running
daemon, in this process without one, its exit codes, stderr lines and `--json`."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from order_export_tui.settings import load_settings
from tests.conftest import write_settings
from tests.fakes.mailchimp import MailchimpFake
from tests.support.cli import order_export
from tests.support.daemon_process import DaemonProcess
from tests.support.drift_platforms import FilePlatform
from tests.support.file_output import file_records
from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, mailchimp_overrides

JSON_KEYS = ["checked", "in_sync", "drift", "repaired"]


def exported_folder(folder: Path, **overrides: object) -> FilePlatform:
    platform = FilePlatform(folder)
    write_settings(folder, {**platform.overrides(), **overrides})
    made = order_export("demo", "--orders", "30", "--malformed", "0", "--days", "20", cwd=folder)
    assert made.returncode == 0, made.stderr
    return platform


def first_two_records(folder: Path) -> list[dict[str, object]]:
    return file_records(load_settings(folder / "settings.toml"))[:2]


def drift_the_file(folder: Path, platform: FilePlatform) -> tuple[str, str]:
    """One order deleted and one extra order in the file: (deleted id, extra id)."""
    first, second = first_two_records(folder)
    gone = {"order_id": first["key"], "customer": {"email": first["json"]["email"]}}  # type: ignore[index]
    platform.delete(gone)
    extra = "ZZ-CLI-EXTRA"
    record = {**second["json"], "id": extra}  # type: ignore[dict-item]
    email = record["email"]
    path = f"/insightData/v3/contacts/email/{email}/Orders/{extra}"
    with platform.path.open("a") as file:
        file.write(json.dumps({"method": "PUT", "path": path, "body": record}) + "\n")
    return str(first["key"]), extra


def test_verify_through_a_running_daemon(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    platform = exported_folder(tmp_path)
    daemon = DaemonProcess(tmp_path)
    daemons.append(daemon)
    daemon.wait_started()
    ran = order_export("run", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert order_export("verify", cwd=tmp_path).returncode == 0
    gone, extra = drift_the_file(tmp_path, platform)

    found = order_export("verify", "--json", cwd=tmp_path)

    assert found.returncode == 1, found.stderr
    answer = json.loads(found.stdout)
    assert list(answer) == JSON_KEYS
    assert answer["in_sync"] is False and answer["repaired"] == []
    assert sorted(answer["drift"], key=lambda item: item["order_id"]) == [
        {"order_id": gone, "kind": "missing", "field": None, "platform": None, "erp": None},
        {"order_id": extra, "kind": "extra", "field": None, "platform": None, "erp": None},
    ]
    lines = found.stderr.splitlines()
    assert any(line.startswith(gone) and "missing" in line for line in lines)
    assert any(line.startswith(extra) and "extra" in line for line in lines)

    repaired = order_export("verify", "--repair", "--json", cwd=tmp_path)

    assert repaired.returncode == 0, repaired.stderr
    assert sorted(json.loads(repaired.stdout)["repaired"]) == sorted([gone, extra])
    assert json.loads(repaired.stdout)["in_sync"] is True
    status = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert status["process"]["pid"] == daemon.pid  # the daemon held the state all along
    assert status["last_run"]["trigger"] == "repair"
    assert order_export("verify", cwd=tmp_path).returncode == 0
    assert "repair" in daemon.output  # its log says what the verify did
    assert daemon.stop() == 0


def test_verify_without_a_daemon_and_with_drift_in_a_field(tmp_path: Path) -> None:
    platform = exported_folder(tmp_path)
    assert order_export("run", cwd=tmp_path).returncode == 0
    first, _ = first_two_records(tmp_path)
    record = dict(first["json"])  # type: ignore[call-overload]
    record["paymentStatus"] = "failed" if record["paymentStatus"] != "failed" else "paid"
    path = f"/insightData/v3/contacts/email/{record['email']}/Orders/{first['key']}"
    with platform.path.open("a") as file:
        file.write(json.dumps({"method": "PUT", "path": path, "body": record}) + "\n")

    found = order_export("verify", cwd=tmp_path)

    assert found.returncode == 1
    line = next(line for line in found.stderr.splitlines() if line.startswith(str(first["key"])))
    assert "different" in line and "payment_status" in line
    assert repr(record["paymentStatus"]) in line  # both values named
    repaired = order_export("verify", "--repair", cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    started = next(line for line in repaired.stderr.splitlines() if line.startswith("run "))
    run_id = started.split()[1].rstrip(":")
    assert started == f"run {run_id}: repair of 1 order"  # the repair run's progress, as `run`
    assert f"run {run_id} repaired 1" in repaired.stderr.splitlines()[-1]
    assert order_export("verify", cwd=tmp_path).returncode == 0


def test_a_platform_answering_500_fails_verify_with_exit_1(tmp_path: Path) -> None:
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as fake:
        overrides = mailchimp_overrides(fake)
        write_settings(
            tmp_path,
            {**overrides, "task": {"max_retries": 1, "max_retry_interval_seconds": 1}},
        )
        made = order_export("demo", "--orders", "10", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        fake.break_requests(lambda method, path: method == "GET" and "/orders" in path, 500)

        failed = order_export("verify", "--json", cwd=tmp_path, env={KEY_ENV: KEY})

    assert failed.returncode == 1, failed.stderr
    assert "verify failed" in failed.stderr and "500" in failed.stderr
    assert json.loads(failed.stdout) == {
        "checked": 0,
        "in_sync": False,
        "drift": [],
        "repaired": [],
    }
    assert KEY not in failed.stderr + failed.stdout


def test_verify_refuses_a_bad_day_and_an_unset_secret_as_run_does(tmp_path: Path) -> None:
    write_settings(tmp_path)
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    for day, why in (("2026-13-01", "not a date"), (tomorrow, "in the future")):
        refused = order_export("verify", "--since", day, cwd=tmp_path)
        assert refused.returncode == 2 and why in refused.stderr
    write_settings(
        tmp_path,
        {"destination": {"app": "mailchimp"}, "mailchimp": {"store_id": "s", "list_id": "l"}},
    )
    unset = order_export("verify", cwd=tmp_path, env={"MAILCHIMP_API_KEY": ""})
    assert unset.returncode == 2 and "MAILCHIMP_API_KEY" in unset.stderr


def test_verify_since_a_day_reads_beyond_the_window(tmp_path: Path) -> None:
    exported_folder(tmp_path, task={"max_days_to_export": 5})
    assert (
        order_export(
            "run", "--since", (date.today() - timedelta(days=25)).isoformat(), cwd=tmp_path
        ).returncode
        == 0
    )

    window = json.loads(order_export("verify", "--json", cwd=tmp_path).stdout)
    wider = order_export(
        "verify", "--json", "--since", (date.today() - timedelta(days=25)).isoformat(), cwd=tmp_path
    )

    assert wider.returncode == 0, wider.stderr
    assert json.loads(wider.stdout)["checked"] > window["checked"]
