from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import tomli_w
from hypothesis import strategies as st

from order_export_tui.destinations.file.connector import file_path
from order_export_tui.settings import (
    SETTING_DESCRIPTIONS,
    TABLE_DESCRIPTIONS,
    Settings,
    SettingsError,
    default_settings_path,
    load_settings,
    missing_secrets,
    parse_listen,
    resolve_path,
    save_settings,
    secret_value,
    settings_from_dict,
    settings_to_dict,
)
from order_export_tui.settings.document import DEFAULT_HEADER, render_settings
from order_export_tui.sources.demo.connector import demo_database_path
from tests.support.settings_files import SHIPPED

SECRET_VARS = (
    "BC_CLIENT_SECRET",
    "DOTDIGITAL_API_PASSWORD",
    "MAILCHIMP_API_KEY",
    "SMTP_PASSWORD",
    "ORDER_EXPORT_WEBHOOK_SECRET",
)


def defaults_with(overrides: dict[str, Any]) -> dict[str, Any]:
    """The documented defaults as TOML data, with dotted keys replaced or added."""
    data: dict[str, Any] = settings_to_dict(Settings())
    for dotted, value in overrides.items():
        *tables, key = dotted.split(".")
        target = data
        for table in tables:
            target = target.setdefault(table, {})
        target[key] = value
    return data


def write_settings(folder: Path, overrides: dict[str, Any] | None = None) -> Path:
    path = folder / "settings.toml"
    path.write_text(tomli_w.dumps(defaults_with(overrides or {})), encoding="utf-8")
    return path


def load_problems(path: Path) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    return info.value.problems


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def key_order(data: dict[str, Any]) -> list[Any]:
    return [
        (key, key_order(value) if isinstance(value, dict) else None) for key, value in data.items()
    ]


# --- loading ------------------------------------------------------------------------------------


def test_shipped_settings_load_and_are_the_documented_defaults() -> None:
    settings = load_settings(SHIPPED)

    assert settings_to_dict(settings) == settings_to_dict(Settings())
    assert settings.destination.app == "file"
    assert settings.erp.source == "demo"
    assert settings.path == SHIPPED


def test_shipped_settings_key_order_is_what_settings_to_dict_writes() -> None:
    with SHIPPED.open("rb") as handle:
        shipped = tomllib.load(handle)

    assert key_order(settings_to_dict(Settings())) == key_order(shipped)
    assert list(settings_to_dict(Settings())["erp"]) == [
        "source",
        "demo_database",
        "business_central",
        "sql",
    ]


def test_empty_file_gives_the_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("")

    settings = load_settings(path)

    assert settings == Settings(path=path)
    assert settings.task.batch_size == 100
    assert settings.task.run_interval_minutes == 60
    assert settings.task.run_time == ""
    assert settings.mailchimp.max_connections == 8
    assert settings.email.to == ["admin@example.com"]
    assert settings.webhook.listen == "127.0.0.1:8787"
    assert settings.storage.state_database == "data/state.sqlite"


def test_missing_table_takes_defaults_while_given_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[task]\nbatch_size = 250\n\n[webstore]\nname = "Shop"\n')

    settings = load_settings(path)

    assert settings.task.batch_size == 250
    assert settings.task.max_retries == 3
    assert settings.webstore.name == "Shop"
    assert settings.dotdigital.collection == "Orders"


def test_missing_file_is_reported_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"

    assert load_problems(path) == [
        f"{path}: settings file not found"
        " (name another with --settings PATH or $ORDER_EXPORT_SETTINGS)"
    ]


def test_a_missing_relative_file_is_named_by_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    (problem,) = load_problems(Path("settings.toml"))

    assert problem.startswith(f"{tmp_path / 'settings.toml'}: settings file not found")
    assert "--settings" in problem


def test_file_that_is_not_utf8_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(b'[webstore]\nname = "\xff"\n')

    [problem] = load_problems(path)

    assert "UTF-8" in problem
    assert "line 2" in problem


def test_secrets_are_not_needed_to_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    path = write_settings(
        tmp_path,
        {"destination.app": "dotdigital", "dotdigital.api_user": "apiuser@apiconnector.com"},
    )

    assert load_settings(path).destination.app == "dotdigital"


# --- validation: one rule, one bad value, one problem naming its key ---------------------------

BAD_VALUES: list[tuple[dict[str, Any], str, str]] = [
    # integers: type and range; a bool or a float is not an integer
    ({"task.batch_size": 0}, "task.batch_size", "must be an integer from 1 to 10000 (got 0)"),
    ({"task.batch_size": 10001}, "task.batch_size", "(got 10001)"),
    ({"task.batch_size": "abc"}, "task.batch_size", '(got "abc")'),
    ({"task.batch_size": True}, "task.batch_size", "(got true)"),
    ({"task.batch_size": 100.0}, "task.batch_size", "(got 100.0)"),
    ({"task.max_days_to_export": 0}, "task.max_days_to_export", "from 1 to 3650"),
    ({"task.max_days_to_export": 3651}, "task.max_days_to_export", "(got 3651)"),
    ({"task.max_retries": -1}, "task.max_retries", "from 0 to 100"),
    ({"task.max_retries": 101}, "task.max_retries", "(got 101)"),
    ({"task.max_retry_interval_seconds": -1}, "task.max_retry_interval_seconds", "0 to 86400"),
    ({"task.max_retry_interval_seconds": 86401}, "task.max_retry_interval_seconds", "86401"),
    ({"task.max_items_to_skip": -1}, "task.max_items_to_skip", "from 0 to 1000000"),
    ({"task.max_items_to_skip": 1000001}, "task.max_items_to_skip", "(got 1000001)"),
    ({"task.max_archived_log_files": 0}, "task.max_archived_log_files", "from 1 to 1000"),
    ({"task.max_archived_log_files": 1001}, "task.max_archived_log_files", "(got 1001)"),
    ({"task.run_interval_minutes": -5}, "task.run_interval_minutes", "from 0 to 10080"),
    ({"task.run_interval_minutes": 10081}, "task.run_interval_minutes", "(got 10081)"),
    ({"email.smtp_port": 0}, "email.smtp_port", "from 1 to 65535"),
    ({"email.smtp_port": 65536}, "email.smtp_port", "(got 65536)"),
    ({"mailchimp.max_connections": 0}, "mailchimp.max_connections", "from 1 to 10"),
    ({"mailchimp.max_connections": 11}, "mailchimp.max_connections", "(got 11)"),
    # booleans and strings
    ({"task.run_on_schedule": "yes"}, "task.run_on_schedule", 'must be true or false (got "yes")'),
    ({"dotdigital.create_missing_contacts": 1}, "dotdigital.create_missing_contacts", "(got 1)"),
    ({"webstore.name": 5}, "webstore.name", "(got 5)"),
    ({"dotdigital.api_user": False}, "dotdigital.api_user", "must be a string"),
    # run_time: "" or HH:MM
    ({"task.run_interval_minutes": 0, "task.run_time": "24:00"}, "task.run_time", '"24:00"'),
    ({"task.run_interval_minutes": 0, "task.run_time": "12:60"}, "task.run_time", "HH:MM"),
    ({"task.run_interval_minutes": 0, "task.run_time": "7:30"}, "task.run_time", '"7:30"'),
    ({"task.run_interval_minutes": 0, "task.run_time": "12:00:00"}, "task.run_time", "HH:MM"),
    ({"task.run_interval_minutes": 0, "task.run_time": "noon"}, "task.run_time", '"noon"'),
    # a schedule needs exactly one of interval and time
    ({"task.run_time": "02:00"}, "task.run_time", "not both"),
    ({"task.run_interval_minutes": 0}, "task.run_interval_minutes", "neither"),
    # enumerations list what is allowed
    ({"erp.source": "sap"}, "erp.source", '"demo", "business_central", "sql" (got "sap")'),
    ({"destination.app": "klaviyo"}, "destination.app", '"dotdigital", "mailchimp", "file"'),
    ({"dotdigital.region": "r4"}, "dotdigital.region", '"r1", "r2", "r3" (got "r4")'),
    ({"email.security": "ssl"}, "email.security", '"none", "starttls", "tls" (got "ssl")'),
    # e-mail addresses
    ({"email.to": ["not-an-address"]}, "email.to", '"not-an-address"'),
    ({"email.to": ["a@@example.com"]}, "email.to", "not a valid e-mail address"),
    ({"email.to": ["@example.com"]}, "email.to", "not a valid e-mail address"),
    ({"email.to": ["admin@exa mple.com"]}, "email.to", "not a valid e-mail address"),
    ({"email.to": ["admin@"]}, "email.to", "not a valid e-mail address"),
    ({"email.to": "admin@example.com"}, "email.to", "must be a list of e-mail addresses"),
    ({"email.to": [1]}, "email.to", "(got [1])"),
    ({"task.send_email_on_failure": True, "email.to": []}, "email.to", "needs an address"),
    ({"task.send_email_on_failure": True, "email.smtp_host": ""}, "email.smtp_host", "required"),
    ({"email.sender": "order-export"}, "email.sender", '(got "order-export")'),
    # webhook.listen
    ({"webhook.listen": "8787"}, "webhook.listen", '(got "8787")'),
    ({"webhook.listen": ":8787"}, "webhook.listen", "host:port"),
    ({"webhook.listen": "localhost:0"}, "webhook.listen", "1 to 65535"),
    ({"webhook.listen": "localhost:70000"}, "webhook.listen", "host:port"),
    ({"webhook.listen": "::1:8787"}, "webhook.listen", "[::1]:8787"),
    ({"webhook.listen": "[::1]8787"}, "webhook.listen", "host:port"),
    ({"webhook.listen": "[nohost]:8787"}, "webhook.listen", "host:port"),
    # URLs
    ({"dotdigital.base_url": "ftp://r1-api.dotdigital.com"}, "dotdigital.base_url", "http://"),
    ({"dotdigital.base_url": "r1-api.dotdigital.com"}, "dotdigital.base_url", "https://"),
    ({"mailchimp.base_url": "https://"}, "mailchimp.base_url", '(got "https://")'),
    ({"erp.business_central.base_url": "api.example"}, "erp.business_central.base_url", "URL"),
    ({"erp.business_central.token_url": "nope"}, "erp.business_central.token_url", "URL"),
    # *_env keys hold variable names
    ({"dotdigital.password_env": ""}, "dotdigital.password_env", "environment variable name"),
    ({"dotdigital.password_env": "1PASSWORD"}, "dotdigital.password_env", '"1PASSWORD"'),
    ({"mailchimp.api_key_env": "MAILCHIMP-KEY"}, "mailchimp.api_key_env", '"MAILCHIMP-KEY"'),
    ({"email.password_env": "SMTP PASSWORD"}, "email.password_env", "environment variable"),
    ({"webhook.secret_env": ""}, "webhook.secret_env", "environment variable name"),
    (
        {"erp.business_central.client_secret_env": "$SECRET"},
        "erp.business_central.client_secret_env",
        '"$SECRET"',
    ),
    # what the chosen ERP and destination need
    ({"destination.app": "dotdigital"}, "dotdigital.api_user", 'destination.app = "dotdigital"'),
    (
        {"destination.app": "mailchimp", "mailchimp.list_id": "abc123"},
        "mailchimp.store_id",
        "required",
    ),
    (
        {"destination.app": "mailchimp", "mailchimp.store_id": "shop"},
        "mailchimp.list_id",
        "required",
    ),
    ({"file.path": ""}, "file.path", 'required when destination.app = "file"'),
    ({"erp.demo_database": " "}, "erp.demo_database", 'required when erp.source = "demo"'),
    *[
        (
            {
                "erp.source": "business_central",
                **{f"erp.business_central.{k}": v for k, v in complete.items() if k != missing},
            },
            f"erp.business_central.{missing}",
            'required when erp.source = "business_central"',
        )
        for complete in [
            {
                "base_url": "https://api.businesscentral.dynamics.com/v2.0/t/production/api/v2.0",
                "company_id": "c0ffee",
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "app-id",
            }
        ]
        for missing in complete
    ],
    ({"storage.state_database": ""}, "storage.state_database", "non-empty"),
    ({"storage.logs_dir": ""}, "storage.logs_dir", "non-empty"),
    ({"webstore.name": ""}, "webstore.name", "non-empty"),
    ({"dotdigital.collection": ""}, "dotdigital.collection", "non-empty"),
    ({"webstore.name": "   "}, "webstore.name", "non-empty"),
    # tables and scalars in each other's place
    ({"task": 5}, "task", "must be a table (got 5)"),
    ({"erp.business_central": "x"}, "erp.business_central", "must be a table"),
    ({"task.batch_size": {"value": 1}}, "task.batch_size", "(got a table)"),
]


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"), BAD_VALUES, ids=[str(case[0]) for case in BAD_VALUES]
)
def test_bad_value_is_one_problem_naming_its_key(
    tmp_path: Path, overrides: dict[str, Any], key: str, fragment: str
) -> None:
    problems = load_problems(write_settings(tmp_path, overrides))

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{key}: ")
    assert fragment in problems[0]


GOOD_VALUES: list[dict[str, Any]] = [
    {"task.run_on_schedule": False, "task.run_interval_minutes": 0, "task.run_time": ""},
    {"task.run_interval_minutes": 0, "task.run_time": "00:00"},
    {"task.run_interval_minutes": 0, "task.run_time": "23:59"},
    {"webhook.listen": "[::1]:8787"},
    {"webhook.listen": "0.0.0.0:65535"},
    {"email.to": [], "email.sender": "ops@mail.example.com"},
    {"dotdigital.base_url": "https://r2-api.dotdigital.com"},
    {"mailchimp.base_url": "http://localhost:8080/3.0"},
    {
        "erp.source": "business_central",
        "erp.business_central.base_url": "https://bc.example/api/v2.0",
        "erp.business_central.company_id": "c0ffee",
        "erp.business_central.client_id": "app-id",
        "erp.business_central.token_url": "https://login.example/token",
    },
    {"destination.app": "mailchimp", "mailchimp.store_id": "s", "mailchimp.list_id": "l"},
    {"destination.app": "dotdigital", "dotdigital.api_user": "apiuser-1@apiconnector.com"},
]


@pytest.mark.parametrize("overrides", GOOD_VALUES, ids=[str(case) for case in GOOD_VALUES])
def test_good_values_are_accepted(tmp_path: Path, overrides: dict[str, Any]) -> None:
    settings = load_settings(write_settings(tmp_path, overrides))

    data = settings_to_dict(settings)
    for dotted, value in overrides.items():
        *tables, key = dotted.split(".")
        target = data
        for table in tables:
            target = target[table]
        assert target[key] == value


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path,
        {
            "task.batch_size": 0,
            "task.max_retries": "three",
            "email.to": ["nobody"],
            "dotdigital.region": "eu",
            "task.batch_sise": 5,
        },
    )

    with pytest.raises(SettingsError) as info:
        load_settings(path)

    keys = sorted(problem.split(":", 1)[0] for problem in info.value.problems)
    assert keys == [
        "dotdigital.region",
        "email.to",
        "task.batch_sise",
        "task.batch_size",
        "task.max_retries",
    ]
    assert str(info.value).splitlines() == info.value.problems


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("[task]\nbatch_size = 100\nrun_time = 12:00\n")

    [problem] = load_problems(path)

    assert re.fullmatch(
        rf"{re.escape(str(path))}: TOML syntax error at line 3, column \d+: .+", problem
    )
    assert "(at line" not in problem


def test_toml_error_at_end_of_document_still_names_a_line(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[webstore]\nname = "Shop')

    [problem] = load_problems(path)

    assert "TOML syntax error at line 2, column 13: " in problem
    assert "end of document" not in problem


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("[task]\nbatch_sise = 50\n")

    assert load_problems(path) == ["task.batch_sise: unknown key (did you mean task.batch_size?)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[taks]\nbatch_size = 5\n", "taks: unknown table (did you mean task?)"),
        ("batch_size = 5\n", "batch_size: unknown key (did you mean task.batch_size?)"),
        ('[task]\nname = "Shop"\n', "task.name: unknown key (did you mean webstore.name?)"),
        (
            '[erp]\nbase_url = "https://bc.example"\n',
            "erp.base_url: unknown key (did you mean erp.business_central.base_url?)",
        ),
        ("[task]\ncolour = 1\n", "task.colour: unknown key"),
        ("[extra]\n", "extra: unknown table"),
    ],
)
def test_unknown_names_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text)

    assert load_problems(path) == [expected]


@pytest.mark.parametrize(
    "content",
    [
        b"# keep me\n[task]\nbatch_size = 0  # too small\nbatch_sise = 1\n",
        b"# keep me\n[task]\nrun_time = \n",
    ],
    ids=["invalid", "syntax-error"],
)
def test_load_leaves_a_bad_file_byte_for_byte_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(content)
    before = snapshot(path)

    with pytest.raises(SettingsError):
        load_settings(path)

    assert snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == ["settings.toml"]


def test_settings_from_dict_validates_like_the_loader(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from_dict(defaults_with({"task.batch_size": 0}), tmp_path / "settings.toml")

    assert info.value.problems == ["task.batch_size: must be an integer from 1 to 10000 (got 0)"]
    assert settings_from_dict({}, tmp_path / "x.toml") == Settings(path=tmp_path / "x.toml")


# --- saving -------------------------------------------------------------------------------------


def test_save_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(SHIPPED.read_bytes())
    settings = load_settings(path)
    edited = dataclasses.replace(
        settings,
        task=dataclasses.replace(
            settings.task, batch_size=250, run_interval_minutes=0, run_time="02:30"
        ),
        email=dataclasses.replace(settings.email, to=["a@example.com", "b@example.com"]),
    )

    save_settings(edited)

    assert load_settings(path) == edited
    save_settings(load_settings(path))
    assert load_settings(path) == edited


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_save_keeps_the_file_mode_and_leaves_no_temp_file(tmp_path: Path, mode: int) -> None:
    path = write_settings(tmp_path)
    path.chmod(mode)

    save_settings(
        dataclasses.replace(
            load_settings(path), webstore=dataclasses.replace(Settings().webstore, name="Renamed")
        )
    )

    assert path.stat().st_mode & 0o7777 == mode
    assert load_settings(path).webstore.name == "Renamed"
    assert sorted(os.listdir(tmp_path)) == ["settings.toml"]


def test_save_to_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "new.toml"

    save_settings(Settings(path=target))

    assert load_settings(target) == Settings(path=target)
    assert sorted(os.listdir(tmp_path)) == ["new.toml"]


def test_failed_validation_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(SHIPPED.read_bytes())
    before = snapshot(path)
    settings = load_settings(path)
    bad = dataclasses.replace(settings, task=dataclasses.replace(settings.task, batch_size=0))

    with pytest.raises(SettingsError) as info:
        save_settings(bad)

    assert info.value.problems == ["task.batch_size: must be an integer from 1 to 10000 (got 0)"]
    assert snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == ["settings.toml"]


def test_failed_write_leaves_the_file_untouched_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(SHIPPED.read_bytes())
    before = snapshot(path)
    settings = load_settings(path)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(SettingsError) as info:
        save_settings(
            dataclasses.replace(
                settings, webstore=dataclasses.replace(settings.webstore, name="Other")
            )
        )

    assert "No space left on device" in str(info.value)
    assert snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == ["settings.toml"]


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = write_settings(tmp_path)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    settings = load_settings(link)

    save_settings(
        dataclasses.replace(
            settings, webstore=dataclasses.replace(settings.webstore, name="Via link")
        )
    )

    assert link.is_symlink()
    assert load_settings(real).webstore.name == "Via link"


# --- the saved file reads like the shipped one ---------------------------------------------------


def comment_above(lines: list[str], table: str, key: str) -> str:
    """The comment lines right above `key = ...` in `[table]`, joined as one text."""
    start = lines.index(f"[{table}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    [at] = [i for i in range(start, end) if lines[i].startswith(f"{key} = ")]
    above: list[str] = []
    while lines[at - 1 - len(above)].startswith("# "):
        above.insert(0, lines[at - 1 - len(above)][2:])
    return " ".join(above)


def test_saving_writes_every_keys_description_as_its_comment(tmp_path: Path) -> None:
    path = write_settings(tmp_path)  # tomli-w's bare dump: no comment at all

    save_settings(load_settings(path))

    lines = path.read_text(encoding="utf-8").splitlines()
    for dotted, description in SETTING_DESCRIPTIONS.items():
        table, _, key = dotted.rpartition(".")
        assert comment_above(lines, table, key) == description, dotted
    for table, description in TABLE_DESCRIPTIONS.items():
        at = lines.index(f"[{table}]")
        assert lines[at - 1] == f"# {description}", table
    assert all(len(line) <= 100 for line in lines if line.startswith("#"))
    assert tuple(lines[: len(DEFAULT_HEADER)]) == DEFAULT_HEADER  # a file with none gets one


def test_every_table_has_a_description() -> None:
    def tables(data: dict[str, Any], prefix: str = "") -> list[str]:
        found = []
        for key, value in data.items():
            if isinstance(value, dict):
                found += [prefix + key, *tables(value, f"{prefix}{key}.")]
        return found

    assert sorted(TABLE_DESCRIPTIONS) == sorted(tables(settings_to_dict(Settings())))


def test_the_shipped_file_is_what_saving_the_defaults_writes(tmp_path: Path) -> None:
    shipped = SHIPPED.read_bytes()
    assert shipped.decode("utf-8") == render_settings(Settings(), DEFAULT_HEADER)

    path = tmp_path / "settings.toml"
    path.write_bytes(shipped)
    save_settings(load_settings(path))  # what the form does when nothing was changed

    assert path.read_bytes() == shipped


def test_changing_one_value_changes_one_line(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(SHIPPED.read_bytes())
    settings = load_settings(path)

    save_settings(
        dataclasses.replace(settings, task=dataclasses.replace(settings.task, batch_size=250))
    )

    changed = [
        line
        for line in difflib.unified_diff(
            SHIPPED.read_text().splitlines(), path.read_text().splitlines(), n=0, lineterm=""
        )
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == ["-batch_size = 100", "+batch_size = 250"]


def test_saving_keeps_the_files_own_header_and_drops_its_other_comments(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        "# Production settings of shop-7; owned by ops@example.com.\n"
        "# Do not edit on the host: see the deploy repository.\n"
        "\n"
        "[task]  # a comment of my own\n"
        "batch_size = 50\n",
        encoding="utf-8",
    )

    save_settings(load_settings(path))

    text = path.read_text(encoding="utf-8")
    assert text.startswith(
        "# Production settings of shop-7; owned by ops@example.com.\n"
        "# Do not edit on the host: see the deploy repository.\n"
        "\n# The Order data export task"
    )
    assert "a comment of my own" not in text
    assert load_settings(path).task.batch_size == 50


# Every character TOML must escape, and some it need not: quotes, backslashes, control
# characters, line breaks, and text beyond the Basic Multilingual Plane.
_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(
    name=_TEXT.filter(lambda text: text.strip() != ""),
    api_user=_TEXT,
    company_id=_TEXT,
    username=_TEXT,
    # A path must be usable (no NUL, a file name): the varied text goes inside one.
    file_path=_TEXT.filter(lambda text: "\x00" not in text).map(lambda t: f"exports/{t}.jsonl"),
    recipients=st.lists(st.emails(), max_size=3),
)
def test_saved_values_load_back_equal_and_keep_their_comments(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    api_user: str,
    company_id: str,
    username: str,
    file_path: str,
    recipients: list[str],
) -> None:
    path = tmp_path_factory.mktemp("saved") / "settings.toml"
    base = Settings(path=path)
    edited = dataclasses.replace(
        base,
        webstore=dataclasses.replace(base.webstore, name=name),
        dotdigital=dataclasses.replace(base.dotdigital, api_user=api_user),
        erp=dataclasses.replace(
            base.erp,
            business_central=dataclasses.replace(base.erp.business_central, company_id=company_id),
        ),
        email=dataclasses.replace(base.email, username=username, to=recipients),
        file=dataclasses.replace(base.file, path=file_path),
    )

    save_settings(edited)

    assert load_settings(path) == edited
    lines = path.read_text(encoding="utf-8").splitlines()
    assert comment_above(lines, "webstore", "name") == SETTING_DESCRIPTIONS["webstore.name"]
    assert comment_above(lines, "email", "username") == SETTING_DESCRIPTIONS["email.username"]


# --- paths --------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_settings_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absolute_logs = tmp_path / "var" / "logs"
    path = write_settings(folder, {"storage.logs_dir": str(absolute_logs)})
    monkeypatch.chdir(elsewhere)

    settings = load_settings(Path("..") / "conf" / "settings.toml")

    assert settings.path == path
    assert settings.state_database_path == folder / "data" / "state.sqlite"
    assert demo_database_path(settings) == folder / "data" / "erp-demo.sqlite"
    assert file_path(settings) == folder / "exports" / "orders.jsonl"
    assert settings.logs_dir_path == absolute_logs
    assert resolve_path(settings, "a/b.txt") == folder / "a" / "b.txt"


def test_default_settings_path_prefers_cli_then_env_then_cwd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_EXPORT_SETTINGS", "/etc/order-export/settings.toml")
    assert default_settings_path("mine.toml") == Path("mine.toml")
    assert default_settings_path(None) == Path("/etc/order-export/settings.toml")
    monkeypatch.delenv("ORDER_EXPORT_SETTINGS")
    assert default_settings_path(None) == Path("settings.toml")


def test_parse_listen_splits_host_and_port() -> None:
    assert parse_listen("127.0.0.1:8787") == ("127.0.0.1", 8787)
    assert parse_listen("[::1]:8787") == ("::1", 8787)
    with pytest.raises(ValueError):
        parse_listen("localhost")


# --- secrets ------------------------------------------------------------------------------------


def test_no_secret_is_needed_by_the_demo_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)

    assert missing_secrets(load_settings(SHIPPED)) == []


def test_missing_secrets_name_the_variables_the_configuration_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MY_SMTP_PASSWORD", "")  # empty counts as unset
    settings = load_settings(
        write_settings(
            tmp_path,
            {
                "destination.app": "mailchimp",
                "mailchimp.store_id": "shop",
                "mailchimp.list_id": "list",
                "task.send_email_on_failure": True,
                "email.username": "mailer",
                "email.password_env": "MY_SMTP_PASSWORD",
                "webhook.enabled": True,
            },
        )
    )

    assert missing_secrets(settings) == [
        "mailchimp.api_key_env: environment variable MAILCHIMP_API_KEY is not set",
        "email.password_env: environment variable MY_SMTP_PASSWORD is not set",
        "webhook.secret_env: environment variable ORDER_EXPORT_WEBHOOK_SECRET is not set",
    ]


def test_secret_values_never_appear_in_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-Value-42"
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BC_CLIENT_SECRET", secret)
    overrides = {
        "erp.source": "business_central",
        "erp.business_central.base_url": "https://bc.example/api/v2.0",
        "erp.business_central.company_id": "c0ffee",
        "erp.business_central.tenant_id": "contoso",
        "erp.business_central.client_id": "app-id",
        "destination.app": "dotdigital",
        "dotdigital.api_user": "apiuser@apiconnector.com",
    }
    settings = load_settings(write_settings(tmp_path, overrides))

    messages = missing_secrets(settings)
    with pytest.raises(SettingsError) as info:
        load_settings(write_settings(tmp_path, {**overrides, "task.batch_size": 0}))

    assert secret_value("BC_CLIENT_SECRET") == secret
    assert messages == [
        "dotdigital.password_env: environment variable DOTDIGITAL_API_PASSWORD is not set"
    ]
    assert all(secret not in message for message in [*messages, str(info.value)])


# --- descriptions -------------------------------------------------------------------------------


def dotted_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            keys.extend(dotted_keys(value, f"{prefix}{key}."))
        else:
            keys.append(prefix + key)
    return keys


def test_every_key_has_a_one_line_description() -> None:
    keys = dotted_keys(settings_to_dict(Settings()))

    assert sorted(SETTING_DESCRIPTIONS) == sorted(keys)
    assert all(text.strip() and "\n" not in text for text in SETTING_DESCRIPTIONS.values())


@pytest.mark.parametrize(
    "path", ["data/state.sqlite-wal", "data/state.sqlite-shm", "data/state.sqlite.lock"]
)
def test_the_dry_run_file_may_not_name_a_file_of_the_state_database(
    tmp_path: Path, path: str
) -> None:
    settings_path = write_settings(
        tmp_path,
        {"storage": {"state_database": "data/state.sqlite"}, "file": {"path": path}},
    )
    with pytest.raises(SettingsError) as raised:
        load_settings(settings_path)
    assert any(
        problem.startswith("file.path:") and "storage.state_database" in problem
        for problem in raised.value.problems
    ), raised.value.problems
