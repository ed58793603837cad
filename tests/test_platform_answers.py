"""What counts as a platform's answer (issue 14): only the documented success marks an order
sent; unreadable answers are transient; no wait is endless or deaf to a cancel; no credential
that a platform echoes reaches a report. Against the loopback fakes and the fault server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from order_export_tui.destinations.base import DestinationError, OrderChange
from order_export_tui.destinations.dotdigital.destination import DotdigitalDestination
from order_export_tui.destinations.mailchimp.destination import MailchimpDestination
from order_export_tui.engine.runner import ExportEngine, window_start
from order_export_tui.service.wiring import build_destination, build_source
from order_export_tui.settings import Settings, SettingsError, load_settings
from order_export_tui.sources.base import SourceError
from order_export_tui.sources.business_central.source import BusinessCentralSource
from order_export_tui.state import StateStore
from order_export_tui.transport.redaction import redact
from order_export_tui.transport.retry import Retrier, RetriesExhaustedError, RetryPolicy
from tests.conftest import FakeClock, write_settings
from tests.fakes.business_central import BusinessCentralFake
from tests.fakes.dotdigital import Answer, FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.answer_accounts import (
    MC_KEY,
    MC_KEY_ENV,
    PASSWORD,
    PASSWORD_ENV,
    USER,
    dotdigital,
    jane,
    mailchimp,
)
from tests.support.cli import REPO, order_export
from tests.support.demo_erp import demo, expected_orders
from tests.support.fault_server import Fault, FaultServer, RawBody

BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
PORTAL = RawBody(b"<html><body>Please sign in to the hotel Wi-Fi</body></html>")
RECORD_PATH = "/insightData/v3/contacts/"  # the single-record upsert
IMPORT_PATH = "/insightData/v3/import"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv(MC_KEY_ENV, MC_KEY)


@pytest.fixture
def fake() -> Iterator[FakeDotdigital]:
    with FakeDotdigital(USER, PASSWORD) as server:
        yield server
    assert server.internal_errors == []


def engine(settings: Settings, state: StateStore, clock: FakeClock | None = None) -> ExportEngine:
    timing: dict[str, Any] = {}
    if clock is not None:
        timing = {"monotonic": clock.monotonic, "sleep": clock.sleep}
    return ExportEngine(
        settings,
        state,
        source_factory=build_source,
        destination_factory=build_destination,
        **timing,
    )


def exported(state: StateStore, ids: set[str]) -> set[str]:
    return set(state.exported_orders(sorted(ids)))


def rewrite(fake: FakeDotdigital, method: str, prefix: str, answer: Answer) -> None:
    """Every answer to `method` on a path starting with `prefix` becomes `answer`."""

    def change(seen_method: str, path: str, original: Answer) -> Answer:
        if seen_method == method and path.startswith(prefix):
            return answer
        return original

    fake.rewrite = change


def a_change(doc: dict[str, Any]) -> OrderChange:
    return OrderChange(doc, "new", None)


def dd_destination(url: str, **options: Any) -> DotdigitalDestination:
    return DotdigitalDestination(
        base_url=url,
        api_user=USER,
        password_env=PASSWORD_ENV,
        collection="Orders",
        store_name="Test webstore",
        **options,
    )


# --- item 1: a 200 that is not the platform's JSON is no success -------------------------------


async def test_a_mailchimp_url_answering_200_html_fails_the_run_and_marks_nothing_sent(
    make_settings, state_factory, fake_clock
) -> None:
    with FaultServer(lambda request: (200, PORTAL, {})) as portal:
        settings = make_settings(**mailchimp(portal.url), task={"max_retries": 1})
        demo(settings, orders=40, malformed=0)
        valid, _ = await expected_orders(settings)
        state = state_factory(settings)

        report = await engine(settings, state, fake_clock).run()

    assert report.outcome == "failed"
    assert report.counts["new"] == 0
    assert "text/html" in report.error and "not the platform's answer" in report.error
    assert exported(state, valid) == set()


async def test_a_dotdigital_single_upsert_answered_200_html_is_not_confirmed(
    fake: FakeDotdigital, fake_clock: FakeClock
) -> None:
    fake.add_contact("jane@example.com")
    rewrite(fake, "PUT", RECORD_PATH, Answer(200, PORTAL))
    destination = dd_destination(fake.url)
    await destination.open()
    retrier = Retrier(RetryPolicy(2, 60), clock=fake_clock.monotonic, sleep=fake_clock.sleep)
    try:
        with pytest.raises(RetriesExhaustedError, match="text/html"):
            await destination.send_one(a_change(jane()), retrier)
    finally:
        await destination.close()
    assert retrier.retried == 2


async def test_a_bulk_import_answered_200_html_fails_the_run_and_marks_nothing_sent(
    fake: FakeDotdigital, make_settings, state_factory, fake_clock
) -> None:
    rewrite(fake, "PUT", IMPORT_PATH, Answer(200, PORTAL))
    settings = make_settings(**dotdigital(fake.url), task={"max_retries": 1})
    demo(settings, orders=40, malformed=0)
    valid, _ = await expected_orders(settings)
    state = state_factory(settings)

    report = await engine(settings, state, fake_clock).run()

    assert report.outcome == "failed"
    assert "documented success is HTTP 202" in report.error
    assert exported(state, valid) == set()


# --- item 2: an import report that lists no failures must still account for every record ------


async def test_a_report_rejecting_everything_without_failures_marks_nothing_exported(
    fake: FakeDotdigital, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital(fake.url), task={"batch_size": 200})
    demo(settings, orders=150, malformed=0)
    valid, _ = await expected_orders(settings)
    fake.fail_keys = {key: ("Unknown", []) for key in valid}  # Dotdigital takes none

    def without_failures(method: str, path: str, answer: Answer) -> Answer:
        body = answer.body
        if isinstance(body, dict) and "failures" in body and "collectionName" in body:
            return Answer(answer.status, {k: v for k, v in body.items() if k != "failures"})
        return answer

    fake.rewrite = without_failures
    state = state_factory(settings)

    report = await engine(settings, state).run()

    assert fake.records() == {}
    assert exported(state, valid) == set()
    assert report.counts["new"] == 0
    assert report.outcome == "failed"  # every order skipped: over max_items_to_skip
    reasons = {skipped.reason for skipped in state.skipped_orders()}
    assert all("does not account for this record" in reason for reason in reasons)
    assert any("totalRejected" in reason for reason in reasons)


# --- item 4: nothing waits forever, a cancel ends a wait at once -------------------------------


async def test_a_next_link_that_loops_back_fails_the_read_with_a_clear_error(
    make_settings, monkeypatch
) -> None:
    with BusinessCentralFake(client_secret="bc-loop-secret") as bc:
        monkeypatch.setenv("BC_CLIENT_SECRET", bc.client_secret)
        bc.max_page_size = 5
        bc.generate(20, 10, activity=False)
        bc.looping_next_link = True
        settings = make_settings(
            erp={"source": "business_central", "business_central": bc.settings()}
        )
        source = BusinessCentralSource.from_settings(settings, Retrier(RetryPolicy(0, 0)))

        async def read() -> None:
            async for _ in source.iter_orders(window_start(datetime.now().astimezone(), 30)):
                pass

        try:
            with pytest.raises(SourceError, match="leads back to page 2"):
                await asyncio.wait_for(read(), timeout=20)
        finally:
            await source.close()
        assert len(bc.requests_to("salesOrders")) <= 3


async def test_an_import_that_never_finishes_fails_after_the_import_timeout_with_few_polls(
    fake: FakeDotdigital,
) -> None:
    fake.import_seconds = 3600  # stuck in NotStarted / Processing
    destination = dd_destination(fake.url, import_timeout=1.5)
    await destination.open()
    started = time.monotonic()
    try:
        with pytest.raises(DestinationError, match=r"dotdigital\.import_timeout_seconds"):
            await destination.send_batch([a_change(jane())], Retrier(RetryPolicy(0, 0)))
    finally:
        await destination.close()
    assert time.monotonic() - started < 10
    assert fake.count("GET", "/contacts/v3/import/") <= 8


def test_the_import_and_request_timeouts_are_settings(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path,
        dotdigital("http://127.0.0.1:9", import_timeout_seconds=120)
        | {"task": {"request_timeout_seconds": 7}},
    )
    settings = load_settings(path)
    dd = DotdigitalDestination.from_settings(settings)
    assert (dd.import_timeout, dd.request_timeout_seconds) == (120, 7)
    assert MailchimpDestination.from_settings(settings).timeout == 7
    with pytest.raises(SettingsError, match=r"task\.request_timeout_seconds: must be an integer"):
        load_settings(write_settings(tmp_path, {"task": {"request_timeout_seconds": 0}}))
    with pytest.raises(SettingsError, match=r"dotdigital\.import_timeout_seconds"):
        load_settings(write_settings(tmp_path, {"dotdigital": {"import_timeout_seconds": -1}}))


def imports_submitted(fake: FakeDotdigital) -> int:
    """Bulk imports of either kind (the contacts import comes first)."""
    return fake.count("PUT", IMPORT_PATH) + fake.count("PUT", "/contacts/v3/import")


async def wait_for_import(fake: FakeDotdigital) -> None:
    for _ in range(400):
        if imports_submitted(fake):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("no import was submitted")


async def test_a_cancel_while_batches_only_wait_for_their_import_stops_at_once(
    fake: FakeDotdigital, make_settings, state_factory
) -> None:
    settings = make_settings(**dotdigital(fake.url), task={"batch_size": 20})
    demo(settings, orders=90, malformed=0)
    valid, _ = await expected_orders(settings)
    fake.import_seconds = 3600
    state = state_factory(settings)
    export = engine(settings, state)
    task = export.start_run()
    await wait_for_import(fake)
    await asyncio.sleep(0.3)  # every batch in flight is waiting now

    assert export.cancel()
    report = await asyncio.wait_for(task, timeout=10)

    assert report.outcome == "cancelled"
    assert exported(state, valid) == set()  # recorded nowhere...
    fake.import_seconds = 0.02
    again = await engine(settings, state).run()
    assert again.outcome == "succeeded", again.error
    assert exported(state, valid) == valid  # ...and simply sent again


def test_the_first_sigterm_stops_a_run_waiting_for_its_import(
    fake: FakeDotdigital, tmp_path: Path
) -> None:
    write_settings(tmp_path, dotdigital(fake.url))
    assert order_export("demo", "--orders", "60", "--malformed", "0", cwd=tmp_path).returncode == 0
    fake.import_seconds = 3600
    process = subprocess.Popen(
        [sys.executable, "-m", "order_export_tui", "run", "--json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not imports_submitted(fake) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert imports_submitted(fake), "the run never submitted an import"
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert json.loads(out)["outcome"] == "cancelled"
    settings = load_settings(tmp_path / "settings.toml")
    state = StateStore(settings.state_database_path)
    try:
        assert state.exported_orders([f"SO-{n}" for n in range(100000, 100100)]) == {}
    finally:
        state.close()


async def test_a_slow_answer_times_out_after_the_setting_and_says_what_timed_out(
    make_settings,
) -> None:
    with FaultServer() as slow:
        slow.plan(Fault(delay=2.5), Fault(delay=2.5))
        settings = make_settings(**dotdigital(slow.url), task={"request_timeout_seconds": 1})
        destination = DotdigitalDestination.from_settings(settings)
        started = time.monotonic()
        try:
            with pytest.raises(DestinationError) as caught:
                await destination.check_connection()
        finally:
            await destination.close()
    assert time.monotonic() - started < 2.4
    assert "Dotdigital GET Insight data collections timed out after 1s" in str(caught.value)
    assert "ReadTimeout" not in str(caught.value)


async def test_mailchimp_and_business_central_requests_time_out_after_the_setting(
    make_settings, monkeypatch
) -> None:
    with MailchimpFake(MC_KEY, lists=("aud-1",)) as mc:
        mc.plan(Fault(delay=2.5))
        settings = make_settings(
            **mailchimp(mc.url), task={"request_timeout_seconds": 1, "max_retries": 0}
        )
        destination = MailchimpDestination.from_settings(settings)
        try:
            with pytest.raises(DestinationError, match=r"Mailchimp GET /ping timed out after 1s"):
                await destination.check_connection()
        finally:
            await destination.close()
    with BusinessCentralFake(client_secret="bc-slow-secret") as bc:
        monkeypatch.setenv("BC_CLIENT_SECRET", bc.client_secret)
        bc.plan(Fault(delay=2.5))
        settings = make_settings(
            erp={"source": "business_central", "business_central": bc.settings()},
            task={"request_timeout_seconds": 1},
        )
        source = BusinessCentralSource.from_settings(settings, Retrier(RetryPolicy(0, 0)))
        try:
            with pytest.raises(
                RetriesExhaustedError,
                match=r"POST token \(Microsoft identity platform\) timed out after 1s",
            ):
                await source.count_orders(datetime.now().astimezone())
        finally:
            await source.close()


# --- item 10: absurdly nested JSON is an unreadable answer like any other ----------------------


NESTED = RawBody(b"[" * 100_000, "application/json")


async def test_deeply_nested_json_in_an_import_report_is_a_transient_failure(
    fake: FakeDotdigital, make_settings, state_factory, fake_clock
) -> None:
    rewrite(fake, "GET", IMPORT_PATH + "/", Answer(200, NESTED))
    settings = make_settings(**dotdigital(fake.url), task={"max_retries": 2})
    demo(settings, orders=30, malformed=0)
    valid, _ = await expected_orders(settings)
    state = state_factory(settings)

    report = await engine(settings, state, fake_clock).run()

    assert report.outcome == "failed"
    assert "RecursionError" not in report.error
    assert "not JSON" in report.error and "failed after" in report.error
    assert report.counts["retried"] >= 2
    assert exported(state, valid) == set()


async def test_deeply_nested_json_from_mailchimp_is_retried_and_then_the_order_goes(
    make_settings, state_factory, fake_clock
) -> None:
    with MailchimpFake(MC_KEY, lists=("aud-1",)) as mc:
        mc.plan(
            Fault(status=200, body=NESTED),
            when=lambda method, path: method == "POST" and path.endswith("/orders"),
        )
        settings = make_settings(**mailchimp(mc.url))
        demo(settings, orders=12, malformed=0)
        valid, _ = await expected_orders(settings)
        state = state_factory(settings)

        report = await engine(settings, state, fake_clock).run()

    assert report.outcome == "succeeded", report.error
    assert report.counts["retried"] == 1
    assert exported(state, valid) == valid


async def test_a_business_central_page_of_nested_json_or_html_is_retried_then_read(
    make_settings, monkeypatch
) -> None:
    with BusinessCentralFake(client_secret="bc-nested-secret") as bc:
        monkeypatch.setenv("BC_CLIENT_SECRET", bc.client_secret)
        numbers = bc.generate(12, 10, activity=False)
        pages = lambda method, path: path.endswith("/salesOrders")  # noqa: E731
        bc.plan(
            Fault(status=200, body="[" * 100_000, headers={"Content-Type": "application/json"}),
            Fault(status=200, body="<html>proxy</html>", headers={"Content-Type": "text/html"}),
            when=pages,
        )
        settings = make_settings(
            erp={"source": "business_central", "business_central": bc.settings()}
        )
        retrier = Retrier(RetryPolicy(3, 60))
        source = BusinessCentralSource.from_settings(settings, retrier)
        try:
            start = window_start(datetime.now().astimezone(), 30)
            read = [doc["order_id"] async for chunk in source.iter_orders(start) for doc in chunk]
        finally:
            await source.close()
    assert sorted(read) == sorted(numbers)
    assert retrier.retried == 2


# --- item 14: echoed credentials never reach a report ------------------------------------------


def test_a_refusal_echoing_the_authorization_header_is_redacted_everywhere(
    fake: FakeDotdigital, tmp_path: Path
) -> None:
    echo = (
        f"Bad request. Request headers: Authorization: Basic {BASIC}; password={PASSWORD};"
        f" forwarded for https://{USER}:{PASSWORD}@r1-api.dotdigital.com"
    )
    rewrite(fake, "PUT", IMPORT_PATH, Answer(400, {"errorCode": "badRequest", "description": echo}))
    write_settings(tmp_path, dotdigital(fake.url))
    order_export("demo", "--orders", "30", "--malformed", "0", cwd=tmp_path)

    result = order_export("run", "--json", cwd=tmp_path, env={PASSWORD_ENV: PASSWORD})

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert "badRequest" in report["error"]  # the platform's reason is still there...
    kept = [result.stdout, result.stderr, Path(report["log_file"]).read_text()]
    database = tmp_path / "data" / "state.sqlite"
    kept += [path.read_bytes().decode("latin-1") for path in database.parent.glob("state.sqlite*")]
    for text in kept:  # ...its credentials are not
        assert BASIC not in text
        assert PASSWORD not in text


def test_check_connect_never_prints_credentials_written_into_a_base_url(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: Dotdigital cannot be reached
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_settings(tmp_path, dotdigital(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"))

    result = order_export("check", "--connect", cwd=tmp_path)

    assert result.returncode == 2
    assert f"cannot reach Dotdigital at http://127.0.0.1:{port}" in " ".join(result.stderr.split())
    assert PASSWORD not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"authorization": "Bearer eyJhbGciOi.J9.sig"}', "eyJhbGciOi.J9.sig"),
        ("token: Bearer abc123def456", "abc123def456"),
        ("https://bob:hunter2@api.example.com/3.0", "hunter2"),
        ("client_secret=abc%2Fdef&grant_type=x", "abc%2Fdef"),
    ],
)
def test_redact_removes_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)
