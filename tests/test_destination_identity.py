"""The state keeps what each destination confirmed: switching destination.app or the account
starts a fresh copy, switching back finds the old one, and an older state file's rows belong
to the destination configured when it is first opened (interfaces.md §7, issue 22 item 3)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.settings import destination_identity, load_settings
from order_export_tui.state import ExportedOrder, StateStore
from tests.conftest import write_settings
from tests.fakes.dotdigital import FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.cli import order_export
from tests.support.demo_erp import demo, expected_orders
from tests.support.dotdigital_account import PASSWORD, PASSWORD_ENV, USER, dotdigital_overrides
from tests.support.engines import make_engine
from tests.support.mailchimp_account import AUDIENCE, KEY, KEY_ENV, mailchimp_overrides
from tests.support.old_state import make_old_state_file
from tests.support.orders import order


def run_json(folder: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    result = order_export("run", "--json", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def destinations_in(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT destination, count(*) FROM exported_order GROUP BY 1")
        found = dict(rows.fetchall())
    db.close()
    return found


def test_a_switch_from_the_file_to_dotdigital_sends_every_order_and_back_finds_the_file_copy(
    tmp_path: Path,
) -> None:
    file_settings = load_settings(write_settings(tmp_path))
    demo(file_settings, orders=120, malformed=0)
    env = {PASSWORD_ENV: PASSWORD}
    first = run_json(tmp_path, env)
    every = first["counts"]["new"]  # type: ignore[index]
    assert every > 0
    with FakeDotdigital(USER, PASSWORD) as fake:
        write_settings(tmp_path, dotdigital_overrides(fake.url))

        switched = run_json(tmp_path, env)

        assert switched["counts"]["new"] == every  # type: ignore[index]
        assert switched["counts"]["unchanged"] == 0  # type: ignore[index]
        assert len(fake.records()) == every
        status = order_export("status", "--json", cwd=tmp_path, env=env)
        shown = json.loads(status.stdout)
        assert shown["destination"] == {
            "app": "dotdigital",
            "identity": f"dotdigital:{USER}/Orders",
        }
        assert shown["exported_orders"] == every
        assert PASSWORD not in status.stdout
        text = order_export("status", cwd=tmp_path, env=env).stdout
        assert f"confirmed by dotdigital:{USER}/Orders" in text
        assert fake.invalid_requests == []

    write_settings(tmp_path)  # back to the file

    back = run_json(tmp_path, env)

    assert back["counts"]["unchanged"] == every  # type: ignore[index]
    assert back["counts"]["new"] == 0  # type: ignore[index]
    file_identity = destination_identity(file_settings).identity
    assert destinations_in(file_settings.state_database_path) == {
        file_identity: every,
        f"dotdigital:{USER}/Orders": every,
    }
    status = json.loads(order_export("status", "--json", cwd=tmp_path).stdout)
    assert status["destination"] == {"app": "file", "identity": file_identity}


async def test_a_version_2_state_file_keeps_its_rows_for_the_destination_configured(
    make_settings,
) -> None:
    settings = make_settings()
    demo(settings, orders=60, malformed=0)
    valid, _ = await expected_orders(settings)
    path = settings.state_database_path
    state = StateStore(path)
    assert (await make_engine(settings, state).run()).counts["new"] == len(valid)
    live = order("RT-1", order_date=datetime.now(UTC).isoformat())  # sent in real time
    state.record_batch(
        run_id=None,
        now=datetime.now(UTC),
        exported=[ExportedOrder("RT-1", "h", "not_shipped", "paid", orjson.dumps(live))],
        skipped={},
        resolved=[],
    )
    state.close()
    make_old_state_file(path, 2)  # as the release before destinations were told apart

    state = StateStore(path)
    try:
        report = await make_engine(settings, state).run()

        assert report.outcome == "succeeded"
        assert report.counts["unchanged"] == len(valid)  # nothing sent again
        assert report.counts["new"] == 0
        identity = destination_identity(settings).identity
        assert destinations_in(path) == {identity: len(valid) + 1}
        # The e-mail an order was confirmed under comes from its kept document, if any.
        kept = state.exported_orders(["RT-1", min(valid)], destination=identity)
        assert kept["RT-1"].customer_email == live["customer"]["email"]
        assert kept[min(valid)].customer_email is None
    finally:
        state.close()
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        key = [row[2] for row in db.execute("PRAGMA index_info(exported_order_by_date)")]
    db.close()
    assert version == "5" and key == ["destination", "order_date"]


async def test_another_mailchimp_store_is_a_fresh_copy_sent_as_a_backfill_and_back_is_found(
    make_settings, monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with MailchimpFake(KEY, lists=(AUDIENCE,)) as fake:
        store_a = make_settings(**mailchimp_overrides(fake, store_id="store-a"))
        demo(store_a, orders=30, malformed=0)
        valid, _ = await expected_orders(store_a)
        store_b = make_settings(**mailchimp_overrides(fake, store_id="store-b"))
        state = StateStore(store_a.state_database_path)
        try:
            assert (await make_engine(store_a, state).run()).counts["new"] == len(valid)

            to_b = await make_engine(store_b, state).run()

            assert to_b.counts["new"] == len(valid)
            assert set(fake.store_orders("store-b")) == valid
            assert fake.syncing_history["store-b"][:2] == [True, False]  # a backfill
            back = await make_engine(store_a, state).run()
            assert back.counts["unchanged"] == len(valid)
            assert destinations_in(store_a.state_database_path) == {
                f"mailchimp:{AUDIENCE}/store-a": len(valid),
                f"mailchimp:{AUDIENCE}/store-b": len(valid),
            }
            assert fake.schema_errors == []
        finally:
            state.close()


names = st.text(alphabet="abcxyz-_0", min_size=1, max_size=8)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    app=st.sampled_from(["dotdigital", "mailchimp", "file"]),
    first=st.fixed_dictionaries({"user": names, "collection": names, "store": names}),
    second=st.fixed_dictionaries({"user": names, "collection": names, "store": names}),
)
def test_identities_differ_exactly_when_the_account_does(tmp_path_factory, app, first, second):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("identity")

    def identity(values: dict[str, str]) -> str:
        overrides = {
            "destination": {"app": app},
            "dotdigital": {
                "api_user": values["user"],
                "collection": "C" + values["collection"],
                "password_env": "SECRET_PASSWORD_ENV",
            },
            "mailchimp": {"store_id": values["store"], "list_id": "L" + values["user"]},
            "file": {"path": f"exports/{values['collection']}.jsonl"},
        }
        return destination_identity(load_settings(write_settings(folder, overrides))).identity

    account = {
        "dotdigital": ("user", "collection"),
        "mailchimp": ("user", "store"),
        "file": ("collection",),
    }[app]
    same = all(first[key] == second[key] for key in account)
    one, other = identity(first), identity(second)
    assert (one == other) == same
    assert one.startswith(f"{app}:")
    assert "SECRET_PASSWORD_ENV" not in one
