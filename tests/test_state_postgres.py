"""The state on a real PostgreSQL server (interfaces.md §10): `storage.state_database` as a
URL without a password (the password from `storage.database_password_env`, never shown), the
commands on it, and a connection the server dropped opened again."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_export_tui.settings import Settings, StorageSettings
from order_export_tui.settings.rules import validate_settings
from order_export_tui.state import ExportedOrder, PostgresLocation, StateStore, StateWriteError
from order_export_tui.state.schema import SCHEMA_VERSION
from tests.conftest import write_settings
from tests.support.cli import order_export
from tests.support.postgres import PASSWORD_ROLE, PostgresServer
from tests.support.state_backends import postgres_state_url

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PASSWORD_ENV = "OE_TEST_STATE_PASSWORD"


def problems_for(state_database: str) -> list[str]:
    return validate_settings(
        Settings(storage=StorageSettings(state_database=state_database), path=Path("/x/s.toml"))
    )


def test_check_refuses_a_state_url_with_a_password_naming_the_key_never_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://order_export:Sup3r-Secret@db.example.com:5432/order_export"
    write_settings(tmp_path, {"storage": {"state_database": url}})

    result = order_export("check", cwd=tmp_path)

    assert result.returncode == 2
    assert "storage.state_database" in result.stderr
    assert "storage.database_password_env" in result.stderr
    assert "Sup3r-Secret" not in result.stderr + result.stdout


@settings(max_examples=80, deadline=None)
@given(
    user=st.text(st.characters(codec="ascii", exclude_characters="@/:?#[]%"), max_size=12),
    password=st.text(
        st.characters(codec="ascii", exclude_characters="@/:?#[]%\x00"), min_size=6, max_size=20
    ),
    scheme=st.sampled_from(["postgresql", "postgres", "PostgreSQL"]),
)
def test_any_state_url_with_a_password_is_one_problem_that_never_shows_it(
    user: str, password: str, scheme: str
) -> None:
    problems = problems_for(f"{scheme}://{user}:{password}@db.example.com/state")

    assert len(problems) == 1
    assert problems[0].startswith("storage.state_database: ")
    assert password not in problems[0].removeprefix("storage.state_database: must")


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://order_export@db.example.com:5432/order_export",
        "postgres://db.example.com/state",
        "data/state.sqlite",
    ],
)
def test_a_url_without_a_password_and_a_file_path_are_both_accepted(value: str) -> None:
    assert problems_for(value) == []


def test_run_and_status_keep_the_state_in_postgresql_with_the_password_from_its_variable(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    with postgres_server.connect(postgres_database) as admin:  # the role owns its database
        admin.execute(f'ALTER DATABASE "{postgres_database}" OWNER TO {PASSWORD_ROLE}')
        admin.execute(f"ALTER SCHEMA public OWNER TO {PASSWORD_ROLE}")
    url = postgres_state_url(postgres_server, postgres_database, user=PASSWORD_ROLE)
    write_settings(
        tmp_path,
        {"storage": {"state_database": url, "database_password_env": PASSWORD_ENV}},
    )
    env = {PASSWORD_ENV: postgres_server.password}
    assert order_export("demo", "--orders", "30", cwd=tmp_path).returncode == 0

    run = order_export("run", cwd=tmp_path, env=env)
    status = order_export("status", "--json", cwd=tmp_path, env=env)

    assert run.returncode == 0, run.stderr
    assert json.loads(status.stdout)["last_run"]["outcome"] == "succeeded"
    assert not (tmp_path / "data" / "state.sqlite").exists()
    with postgres_server.connect(postgres_database) as db:
        (runs,) = db.execute("SELECT count(*) FROM run WHERE outcome = 'succeeded'").fetchone()
        (exported,) = db.execute("SELECT count(*) FROM exported_order").fetchone()
    assert runs == 1
    assert exported > 0
    for output in (run.stdout, run.stderr, status.stdout, status.stderr):
        assert postgres_server.password not in output


def test_a_wrong_password_is_refused_naming_the_database_never_the_password(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    url = postgres_state_url(postgres_server, postgres_database, user=PASSWORD_ROLE)
    write_settings(
        tmp_path, {"storage": {"state_database": url, "database_password_env": PASSWORD_ENV}}
    )
    wrong = "Wrong-" + postgres_server.password
    assert order_export("demo", "--orders", "5", cwd=tmp_path).returncode == 0

    run = order_export("run", cwd=tmp_path, env={PASSWORD_ENV: wrong})

    assert run.returncode != 0
    shown = f"postgresql://{postgres_server.host}:{postgres_server.port}/{postgres_database}"
    assert shown in run.stderr
    assert wrong not in run.stderr + run.stdout
    assert "Traceback" not in run.stderr


def test_a_dropped_connection_fails_that_write_whole_and_the_next_one_reconnects(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    state = StateStore(PostgresLocation(postgres_state_url(postgres_server, postgres_database)))
    try:
        with postgres_server.connect(postgres_database) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (postgres_database,),
            )
        order = ExportedOrder("SO-1", "hash", "shipped", "paid", b"{}", "2026-11-26T10:00:00Z")
        with pytest.raises(StateWriteError):
            state.record_batch(run_id=None, now=NOW, exported=[order], skipped={}, resolved=[])
        state.record_batch(run_id=None, now=NOW, exported=[order], skipped={}, resolved=[])
        assert list(state.exported_orders(["SO-1"])) == ["SO-1"]
    finally:
        state.close()


def test_two_stores_that_enqueue_one_event_keep_it_once(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    location = PostgresLocation(postgres_state_url(postgres_server, postgres_database))
    first, second = StateStore(location), StateStore(location)
    try:
        one = first.enqueue_event(
            kind="order_completed", order_id="SO-1", payload=b"{}", dedupe_key="k", now=NOW
        )
        again = second.enqueue_event(
            kind="order_completed", order_id="SO-1", payload=b"{}", dedupe_key="k", now=NOW
        )
        assert one == (one[0], True)
        assert again == (one[0], False)
        assert first.event_counts() == {"queued": 1}
    finally:
        first.close()
        second.close()


def test_the_tables_are_made_once_by_stores_that_open_together(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    location = PostgresLocation(postgres_state_url(postgres_server, postgres_database))
    opened: list[StateStore] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(StateStore(location))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in opened:
        store.close()
    assert failures == []
    with psycopg.connect(location.url) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == str(SCHEMA_VERSION)


STATES = ["queued", "held", "delivered", "superseded", "skipped", "expired"]
tally_steps = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue"), st.integers(0, 8), st.booleans()),
        st.tuples(st.just("finish"), st.integers(0, 8), st.sampled_from(STATES)),
        st.tuples(st.just("export"), st.integers(0, 8), st.booleans()),
        st.tuples(st.just("expire"), st.integers(0, 8), st.booleans()),
    ),
    max_size=25,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tally_steps)
def test_the_postgresql_tally_equals_counting_the_events_from_two_connections(
    postgres_server: PostgresServer, postgres_database: str, steps: list[tuple[str, int, object]]
) -> None:
    location = PostgresLocation(postgres_state_url(postgres_server, postgres_database))
    state, intake = StateStore(location), StateStore(location, durable=True)
    try:
        with postgres_server.connect(postgres_database) as db:  # each example from empty
            db.execute("TRUNCATE realtime_event, realtime_tally, exported_order RESTART IDENTITY")
        for step, n, flag in steps:
            order_id = f"SO-{n}"
            if step == "enqueue":
                (intake if flag else state).enqueue_event(
                    kind="payment_status",
                    order_id=order_id,
                    payload=b"{}",
                    dedupe_key=f"key-{n}",
                    now=NOW,
                )
            elif step == "finish":
                state.finish_event(n + 1, status=str(flag), now=NOW)
            elif step == "export":
                order = ExportedOrder(order_id, "h", "shipped", "paid")
                state.record_batch(run_id=None, now=NOW, exported=[order], skipped={}, resolved=[])
            else:
                state.expire_held_events(older_than=NOW + timedelta(days=1), now=NOW)
            with postgres_server.connect(postgres_database) as db:
                rows = db.execute("SELECT status, count(*) FROM realtime_event GROUP BY status")
                counted = {status: int(count) for status, count in rows.fetchall()}
            assert state.event_counts() == counted
            assert intake.event_counts() == counted
    finally:
        intake.close()
        state.close()
