"""`order-export` as an operator types it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from order_export_tui.settings import load_settings
from order_export_tui.state import StateLock
from tests.conftest import write_settings
from tests.support.cli import REPO, order_export

SECRET = "s3cr3t-value-never-printed"


def test_run_json_reports_the_run_and_exits_0(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert order_export("demo", "--orders", "120", "--malformed", "2", cwd=tmp_path).returncode == 0

    result = order_export("run", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["outcome"] == "succeeded"
    assert report["error"] is None
    assert set(report["counts"]) >= {"read", "new", "updated", "unchanged", "retried", "skipped"}
    assert report["counts"]["skipped"] == 2
    assert report["counts"]["new"] + report["counts"]["skipped"] == report["counts"]["read"]
    assert Path(report["log_file"]).is_file()
    for key in ("started_at", "finished_at"):
        assert report[key][-6] in "+-"  # ISO 8601 with an offset
    assert "succeeded" in result.stderr  # the human summary goes to stderr


def test_a_run_over_the_skip_budget_exits_1(tmp_path: Path) -> None:
    write_settings(tmp_path, {"task": {"max_items_to_skip": 1}})
    order_export("demo", "--orders", "60", "--malformed", "3", cwd=tmp_path)

    result = order_export("run", "--json", cwd=tmp_path)

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["outcome"] == "failed"
    assert "max_items_to_skip" in report["error"]


def test_bad_settings_exit_2_naming_the_key_without_a_traceback(tmp_path: Path) -> None:
    path = write_settings(tmp_path, {"task": {"batch_size": 0}})
    before = path.read_bytes()

    for command in ("run", "check"):
        result = order_export(command, cwd=tmp_path)
        assert result.returncode == 2
        assert "task.batch_size: must be an integer from 1 to 10000 (got 0)" in result.stderr
        assert "Traceback" not in result.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("day", "words"),
    [
        ("0001-01-01", "0001-01-01 is before 1970-01-01"),
        ("1969-12-31", "1969-12-31 is before 1970-01-01"),
        ("9999-12-31", "9999-12-31 is in the future"),
        ("2026-02-30", "not a date as YYYY-MM-DD (got '2026-02-30')"),
    ],
)
def test_run_since_a_day_no_order_can_have_exits_2_and_records_no_run(
    tmp_path: Path, day: str, words: str
) -> None:
    write_settings(tmp_path)
    assert order_export("demo", "--orders", "20", cwd=tmp_path).returncode == 0

    result = order_export("run", "--since", day, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert f"argument --since: {words}" in result.stderr
    assert "Traceback" not in result.stderr
    status = order_export("status", "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["last_run"] is None  # nothing ran, nothing failed


def test_check_lists_every_problem(tmp_path: Path) -> None:
    write_settings(tmp_path, {"task": {"batch_size": 0, "max_retries": -1, "run_time": "25:00"}})
    result = order_export("check", cwd=tmp_path)
    assert result.returncode == 2
    for key in ("task.batch_size", "task.max_retries", "task.run_time"):
        assert key in result.stderr


def test_check_warns_about_missing_secrets_and_connect_fails_naming_them(tmp_path: Path) -> None:
    write_settings(tmp_path, {"webhook": {"enabled": True, "secret_env": "OE_TEST_HOOK_SECRET"}})
    env = {"OE_TEST_HOOK_SECRET": ""}

    plain = order_export("check", cwd=tmp_path, env=env)
    assert plain.returncode == 0, plain.stderr
    assert "OE_TEST_HOOK_SECRET" in plain.stderr

    connect = order_export("check", "--connect", cwd=tmp_path, env=env)
    assert connect.returncode == 2
    assert "OE_TEST_HOOK_SECRET" in connect.stderr

    with_secret = order_export(
        "check", "--connect", cwd=tmp_path, env={"OE_TEST_HOOK_SECRET": SECRET}
    )
    assert with_secret.returncode == 0, with_secret.stderr
    assert SECRET not in with_secret.stderr + with_secret.stdout


def test_settings_path_from_the_environment_and_relative_paths_from_its_folder(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_settings(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"ORDER_EXPORT_SETTINGS": str(site / "settings.toml")}

    assert order_export("demo", "--orders", "30", cwd=elsewhere, env=env).returncode == 0
    result = order_export("run", cwd=elsewhere, env=env)

    assert result.returncode == 0, result.stderr
    assert (site / "exports" / "orders.jsonl").is_file()
    assert (site / "data" / "state.sqlite").is_file()
    assert not any(elsewhere.iterdir())


def test_a_second_process_on_the_same_state_says_who_holds_it_and_exits_1(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path))
    with StateLock(settings.state_database_path, role="daemon"):
        result = order_export("run", cwd=tmp_path)
    assert result.returncode == 1
    assert f"pid {os.getpid()}" in result.stderr
    assert "daemon" in result.stderr


def test_ctrl_c_cancels_at_a_batch_boundary_and_exits_130(tmp_path: Path) -> None:
    write_settings(tmp_path, {"task": {"batch_size": 10}})
    order_export("demo", "--orders", "20000", "--malformed", "0", cwd=tmp_path, timeout=300)
    process = subprocess.Popen(
        [sys.executable, "-m", "order_export_tui", "run", "--json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log_dir = tmp_path / "logs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the run is under way
        logs = list(log_dir.glob("run-*.log")) if log_dir.exists() else []
        if logs and "batch 2 done" in logs[0].read_text():
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["outcome"] == "cancelled"
    assert 0 < report["counts"]["new"] < 20000
    assert report["counts"]["new"] % 10 == 0  # whole batches only


def test_an_unwritable_logs_folder_refuses_the_run_with_a_clear_message(tmp_path: Path) -> None:
    # Refused at the start, naming the key (issue 25, item 9), rather than failing the run.
    write_settings(tmp_path, {"storage": {"logs_dir": "blocked/logs"}})
    (tmp_path / "blocked").write_text("a file where the logs folder should be")

    result = order_export("run", "--json", cwd=tmp_path)

    assert result.returncode == 2
    assert f"storage.logs_dir: cannot write to {tmp_path / 'blocked' / 'logs'}" in result.stderr
    assert result.stdout == ""  # no run was recorded, so none is reported
    assert "Traceback" not in result.stderr


# --- output to a pipe: one line per message, never wrapped ------------------------------------


def test_messages_to_a_pipe_are_whole_lines_however_long(tmp_path: Path) -> None:
    from tests.fakes.mailchimp import MailchimpFake
    from tests.support.fault_server import Fault
    from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, mailchimp_overrides

    deep = tmp_path / ("a-folder-with-a-long-name-" * 3) / "site"
    deep.mkdir(parents=True)
    write_settings(deep, {"task": {"run_time": "x" * 120}})

    bad = order_export("check", cwd=deep)
    assert bad.returncode == 2
    [problem] = [line for line in bad.stderr.splitlines() if "task.run_time" in line]
    assert problem.startswith("  task.run_time: must be ") and problem.endswith("xxx...)")
    assert len(problem) > 100

    write_settings(deep)
    demo = order_export("demo", "--orders", "30", cwd=deep)
    assert demo.returncode == 0, demo.stderr
    said = f"demo ERP at {deep / 'data' / 'erp-demo.sqlite'}: 30 orders over 30 days"
    assert [line for line in demo.stderr.splitlines() if line.startswith(said)], demo.stderr

    with MailchimpFake(KEY, lists=(AUDIENCE,)) as fake:
        write_settings(
            deep,
            {
                "task": {"max_items_to_skip": 0},
                **mailchimp_overrides(fake),
            },
        )
        fake.plan(Fault(status=503), when=lambda method, path: "/customers/" in path)
        run = order_export("run", cwd=deep, env={KEY_ENV: KEY})
    lines = run.stderr.splitlines()
    [retry] = [line for line in lines if line.startswith("retry 1 of ")]
    assert len(retry) > 80 and "503" in retry, run.stderr
    [log_file] = [line for line in lines if line.startswith("log file ")]
    assert log_file.endswith(".log") and str(deep / "logs") in log_file
    assert run.returncode == 1
    for line in lines:
        assert line == line.rstrip(), "no padding to a width"
        assert line == "" or not line.startswith(" " * 5), f"a wrapped continuation: {line!r}"


# --- check --connect says what it reached -----------------------------------------------------


def with_user_info(url: str, user_info: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user_info}@{rest}"


def test_check_connect_names_the_demo_database_and_the_dry_run_file(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert order_export("demo", "--orders", "40", cwd=tmp_path).returncode == 0

    result = order_export("check", "--connect", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"ERP: demo database {tmp_path / 'data' / 'erp-demo.sqlite'}, 40 orders",
        f"destination: file {tmp_path / 'exports' / 'orders.jsonl'}"
        " (dry run: the requests Dotdigital would receive)",
        "settings.toml: settings are valid",
    ]


def test_check_connect_names_the_company_and_the_store_and_never_a_secret(
    tmp_path: Path,
) -> None:
    from tests.fakes.business_central import BusinessCentralFake
    from tests.fakes.mailchimp import MailchimpFake
    from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, STORE, mailchimp_overrides

    user_info = "ops:url-password-never-printed"
    with (
        BusinessCentralFake(company_name="Contoso Webstore Ltd.") as bc,
        MailchimpFake(KEY, lists=(AUDIENCE,)) as mailchimp,
    ):
        bc_table = bc.settings("OE_TEST_BC_SECRET")
        overrides = mailchimp_overrides(mailchimp)
        overrides["mailchimp"]["base_url"] = with_user_info(mailchimp.url, user_info)
        write_settings(
            tmp_path,
            {"erp": {"source": "business_central", "business_central": bc_table}, **overrides},
        )
        env = {KEY_ENV: KEY, "OE_TEST_BC_SECRET": bc.client_secret}

        before = order_export("check", "--connect", cwd=tmp_path, env=env)
        with mailchimp.lock:
            mailchimp.stores[STORE] = {
                "id": STORE, "list_id": AUDIENCE, "name": "Contoso shop", "is_syncing": False
            }  # fmt: skip
        after = order_export("check", "--connect", cwd=tmp_path, env=env)

    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    erp = f"ERP: Business Central company Contoso Webstore Ltd. at {bc.base_url}"
    audience = f"audience Audience {AUDIENCE} ({AUDIENCE}) at {mailchimp.url}"
    assert before.stderr.splitlines()[:2] == [
        erp,
        f"destination: Mailchimp {audience}; store {STORE} is created by the first export",
    ]
    assert after.stderr.splitlines()[:2] == [
        erp,
        f"destination: Mailchimp store Contoso shop ({STORE}), {audience}",
    ]
    for said in (before, after):
        output = said.stdout + said.stderr
        for secret in (KEY.rpartition("-")[0], bc.client_secret, "url-password", "ops:"):
            assert secret not in output


def test_check_connect_names_the_dotdigital_user_and_collection(tmp_path: Path) -> None:
    from tests.fakes.dotdigital import FakeDotdigital

    with FakeDotdigital("apiuser-1@apiconnector.com", SECRET) as fake:
        write_settings(
            tmp_path,
            {
                "destination": {"app": "dotdigital"},
                "dotdigital": {
                    "base_url": fake.url,
                    "api_user": "apiuser-1@apiconnector.com",
                    "password_env": "OE_TEST_DD_PASSWORD",
                },
            },
        )
        result = order_export(
            "check", "--connect", cwd=tmp_path, env={"OE_TEST_DD_PASSWORD": SECRET}
        )

    assert result.returncode == 0, result.stderr
    assert (
        f"destination: Dotdigital at {fake.url} as API user apiuser-1@apiconnector.com,"
        " Insight data collection Orders (created by the first export)"
    ) in result.stderr.splitlines()
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("fake", ["dotdigital", "mailchimp", "business_central"])
def test_the_readmes_loopback_fakes_start_on_the_test_install(fake: str) -> None:
    # The README's `.venv/bin/python -m tests.fakes.<name>` from the repository's folder.
    result = subprocess.run(
        [sys.executable, "-m", f"tests.fakes.{fake}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout
