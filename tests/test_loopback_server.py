"""The loopback server base the fakes and FaultServer build on: life, faults, replies."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.business_central import BusinessCentralFake
from tests.fakes.dotdigital import FakeDotdigital
from tests.fakes.mailchimp import MailchimpFake
from tests.support.fault_server import FaultServer, Received
from tests.support.loopback_server import (
    Fault,
    LoopbackServer,
    Reply,
    Request,
    path_ends_with,
)


class Echo(LoopbackServer):
    """Answers 200 with what it was sent; counts the work it did."""

    def __init__(self) -> None:
        super().__init__()
        self.work_done = 0

    def respond(self, request: Request) -> Reply:
        self.work_done += 1
        return Reply(200, {"method": request.method, "path": request.path, "body": request.body})


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, int(port))) != 0


def outcome(client: httpx.Client, path: str = "/x") -> int:
    """The status of one POST, 0 when the connection was dropped."""
    try:
        return client.post(path, json={"n": 1}).status_code
    except httpx.TransportError:
        return 0


def test_it_binds_loopback_on_a_free_port_and_answers_json() -> None:
    with Echo() as server:
        assert server.url.startswith("http://127.0.0.1:")
        answer = httpx.post(f"{server.url}/orders?a=1", json={"id": 7}, timeout=5)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"method": "POST", "path": "/orders", "body": {"id": 7}}


def test_the_with_block_stops_the_server_even_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError), Echo() as server:
        url = server.url
        raise RuntimeError("the test failed")

    assert refuses_connections(url)


def test_stop_before_start_and_a_second_stop_return_at_once() -> None:
    never_started = Echo()
    stopped = threading.Event()
    worker = threading.Thread(target=lambda: (never_started.stop(), stopped.set()))
    worker.start()
    worker.join(timeout=5)
    assert stopped.is_set()  # shutdown() would wait forever for a serve loop that never ran

    with Echo() as server:
        pass
    server.stop()
    assert refuses_connections(server.url)


def test_planned_faults_hit_the_next_requests_in_order_then_the_real_answer() -> None:
    with Echo() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        server.plan(Fault(status=503), Fault(drop=True), Fault(status=429, headers={"A": "b"}))

        assert [outcome(client) for _ in range(4)] == [503, 0, 429, 200]

    assert server.attempts == 4
    assert server.work_done == 1


def test_a_fault_for_a_path_waits_for_a_request_to_that_path() -> None:
    with Echo() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        server.fail(2, 502, when=path_ends_with("/orders", "POST"))

        assert outcome(client, "/contacts") == 200
        assert client.get("/orders").status_code == 200  # another method
        assert [outcome(client, "/orders") for _ in range(3)] == [502, 502, 200]


def test_broken_requests_fail_every_time_until_the_end() -> None:
    with Echo() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        server.break_requests(path_ends_with("/down"), 500)

        assert [outcome(client, "/down") for _ in range(5)] == [500] * 5
        assert outcome(client, "/up") == 200


def test_a_lost_answer_does_the_work_and_drops_the_connection() -> None:
    with Echo() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        server.plan(Fault(lost=True))

        assert outcome(client) == 0
        assert server.work_done == 1


def test_latency_delays_the_answer_and_counts_as_in_flight() -> None:
    with Echo() as server:
        server.slow(2, 0.3)
        results: list[int] = []

        def call() -> None:
            results.append(httpx.post(server.url, json={}, timeout=5).status_code)

        callers = [threading.Thread(target=call) for _ in range(2)]
        started = time.monotonic()
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=10)
        took = time.monotonic() - started

    assert results == [200, 200]
    assert took >= 0.3
    assert server.max_in_flight == 2
    assert server.in_flight == 0


@pytest.mark.parametrize(
    ("make", "headers"),
    [
        (lambda: BusinessCentralFake(), {"retry-after": "7"}),
        (
            lambda: FakeDotdigital(),
            {"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"},
        ),
        (lambda: FaultServer(), {"retry-after": "7"}),
    ],
)
def test_throttle_answers_429_with_the_platforms_own_headers(make, headers) -> None:
    with make() as server:
        server.throttle(1, 7)
        answer = httpx.get(server.url + "/anything", timeout=5)

    assert answer.status_code == 429
    assert {name: answer.headers.get(name) for name in headers} == headers


def test_the_mailchimp_fake_throttles_with_its_problem_document() -> None:
    with MailchimpFake() as fake:
        fake.throttle()
        answer = httpx.get(fake.url + "/ping", auth=("any", "demo-us1"), timeout=5)

    assert answer.status_code == 429
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["title"] == "Too Many Requests"


def test_fault_server_records_what_its_handler_answered_but_not_the_faulted() -> None:
    def handler(request: Received) -> tuple[int, object, dict[str, str]]:
        return 201, {"seen": request.body}, {"X-Handled": "yes"}

    with FaultServer(handler) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        server.plan(Fault(status=503))
        first = c.post("/a?q=1", json={"k": 1})
        second = c.post("/a?q=1", json={"k": 2})

    assert (first.status_code, second.status_code) == (503, 201)
    assert second.json() == {"seen": {"k": 2}}
    assert second.headers["X-Handled"] == "yes"
    assert [(r.method, r.path, r.body) for r in server.received] == [("POST", "/a?q=1", {"k": 2})]


faults = st.lists(
    st.one_of(
        st.builds(Fault, status=st.sampled_from([429, 500, 502, 503])),
        st.builds(Fault, drop=st.just(True)),
        st.builds(Fault, lost=st.just(True)),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planned=faults)
def test_any_plan_is_served_exactly_once_in_order(planned: list[Fault]) -> None:
    with Echo() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        server.plan(*planned)

        seen = [outcome(client) for _ in range(len(planned) + 1)]

    expected = [0 if f.drop or f.lost else f.status for f in planned] + [200]
    assert seen == expected
    assert server.work_done == 1 + sum(f.lost for f in planned)
    assert len(server.fault_plan) == 0
