"""Bounded waits (issue 14): a total deadline per exchange on top of the read timeout, a
cap on how long a request waits for rate-limit budget (never sleeping a day on
Retry-After: 86400, never 20 retries of it), and a cap on the answer's size. Time is
injected everywhere, so nothing here waits for real."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from zendesk_shapes import BASE, user

from privacykit.audit import ReadOnlyTransport as AuditReadOnly
from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import (
    NetworkError,
    PrivacykitError,
    RateLimitError,
    RateLimitWaitExceeded,
    RequestDeadlineExceeded,
    ResponseTooLarge,
    ZendeskError,
)
from privacykit.zendesk import Governor, RateLimits, ReadOnlyTransport, ZendeskClient
from privacykit.zendesk.transport import DeadlineTransport

WALL = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Ticking:
    """A clock that moves ``step`` seconds every time it is read (a slow server, fast)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def wait(self, _cond: object, timeout: float | None) -> None:
        self.now += timeout or 0.0


def config() -> ZendeskConfig:
    return ZendeskConfig(BASE, email="a@acme.test", api_token=Secret("t0ken-xyz"))


def client_with(transport: httpx.BaseTransport, clock: Ticking, **kwargs: Any) -> ZendeskClient:
    governor = kwargs.pop(
        "governor",
        Governor(RateLimits(), clock=clock, wait=clock.wait, utcnow=lambda: WALL),
    )
    return ZendeskClient(
        config(), transport=transport, governor=governor, sleep=clock.sleep, clock=clock, **kwargs
    )


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=BASE, assert_all_called=False)


def limited(retry_after: str) -> httpx.Response:
    return httpx.Response(429, text="slow down", headers={"Retry-After": retry_after})


# -- max_wait ---------------------------------------------------------------------------------


def test_retry_after_a_day_stops_at_once(router: respx.MockRouter) -> None:
    clock = Ticking()
    route = router.get("/api/v2/users/5").mock(return_value=limited("86400"))
    with client_with(httpx.MockTransport(router.handler), clock) as c:
        with pytest.raises(RateLimitWaitExceeded) as info:
            c.show_user(5)
        # Every other request of the run gives up at once too (the governor holds the pause).
        with pytest.raises(RateLimitWaitExceeded):
            c.governor.acquire(["account"])
    assert route.call_count == 1  # not 20 retries
    assert clock.sleeps == []  # not a day's sleep
    err = info.value
    assert isinstance(err, RateLimitError) and isinstance(err, ZendeskError)
    assert err.retry_after == 86400
    assert err.resume_at == WALL + timedelta(days=1)
    assert "2024-05-02T12:00:00Z" in str(err)


def test_waits_add_up_to_max_wait(router: respx.MockRouter) -> None:
    clock = Ticking()
    route = router.get("/api/v2/users/5").mock(
        side_effect=[limited("600"), limited("600"), httpx.Response(200, json={"user": user(5)})]
    )
    with client_with(httpx.MockTransport(router.handler), clock, max_wait=900) as c:
        assert c.governor.max_wait == 900
        with pytest.raises(RateLimitWaitExceeded) as info:
            c.show_user(5)
    assert clock.sleeps == [600.0]  # the first wait fits, the second would not
    assert route.call_count == 2
    assert info.value.retry_after == 600


def test_waits_within_max_wait_are_taken(router: respx.MockRouter) -> None:
    clock = Ticking()
    router.get("/api/v2/users/5").mock(
        side_effect=[limited("60"), limited("60"), httpx.Response(200, json={"user": user(5)})]
    )
    with client_with(httpx.MockTransport(router.handler), clock, max_wait=900) as c:
        assert c.show_user(5)["id"] == 5
    assert clock.sleeps == [60.0, 60.0]


def test_max_wait_must_be_sane() -> None:
    with pytest.raises(PrivacykitError):
        ZendeskClient(config(), max_wait=-5)


# -- the total deadline -----------------------------------------------------------------------


class _Drip(httpx.SyncByteStream):
    """A body that arrives one byte at a time, each taking ``clock.step`` seconds."""

    def __init__(self, clock: Ticking, size: int) -> None:
        self.clock, self.size = clock, size

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.size):
            yield b" "


def test_body_dripping_past_the_deadline(router: respx.MockRouter) -> None:
    clock = Ticking(step=10.0)  # every read of the clock: 10 s later
    route = router.get("/api/v2/users/5").mock(
        return_value=httpx.Response(200, stream=_Drip(clock, 10_000))
    )
    with client_with(httpx.MockTransport(router.handler), clock, deadline=60) as c:
        with pytest.raises(RequestDeadlineExceeded) as info:
            c.show_user(5)
    assert isinstance(info.value, NetworkError)
    assert "60s request deadline" in str(info.value)
    assert route.call_count == 1  # a server this slow is not asked again


class DripServer:
    """A loopback HTTP server that answers a status line, then drips header (or body)
    bytes for as long as the client listens. Bounded: stops after ``limit`` bytes."""

    def __init__(self, *, in_body: bool, limit: int = 4000) -> None:
        self.in_body = in_body
        self.limit = limit
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.sent = 0

    def __enter__(self) -> DripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        self.sock.settimeout(5)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if self.in_body:
                head += b"Content-Length: 100000\r\n\r\n"
            else:
                head += b"X-Drip: "
            try:
                conn.sendall(head)
                while not self.stop.is_set() and self.sent < self.limit:
                    conn.sendall(b"a" if not self.in_body else b" ")
                    self.sent += 1
                    self.stop.wait(0.001)  # pacing, so each client read gets a byte or few
            except OSError:
                return  # the client hung up: what we want


@pytest.mark.parametrize("in_body", [False, True], ids=["headers", "body"])
def test_real_socket_drip_is_cut_by_the_deadline(in_body: bool) -> None:
    clock = Ticking(step=1.0)  # each socket read reads the clock: 1 s per byte
    with DripServer(in_body=in_body) as server:
        cfg = ZendeskConfig(
            f"http://127.0.0.1:{server.port}", email="a@acme.test", api_token=Secret("t")
        )
        governor = Governor(RateLimits.unlimited(), clock=clock, wait=clock.wait)
        with ZendeskClient(
            cfg, governor=governor, clock=clock, deadline=20, timeout=30, sleep=clock.sleep
        ) as c:
            with pytest.raises(RequestDeadlineExceeded):
                c.show_user(5)
        assert server.sent < server.limit  # cut by the deadline, not by the server stopping


def test_default_transport_arms_socket_deadlines() -> None:
    transport = DeadlineTransport()
    try:
        assert transport.socket_deadlines  # httpcore still has the hook we wrap
    finally:
        transport.close()


# -- the size cap -----------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_answer_over_the_cap(router: respx.MockRouter, declared: bool) -> None:
    clock = Ticking()
    payload = b'{"user": ' + b" " * 5000 + b"}"
    if declared:
        answer = httpx.Response(200, content=payload)
    else:
        answer = httpx.Response(200, stream=httpx.ByteStream(payload))
    route = router.get("/api/v2/users/5").mock(return_value=answer)
    with (
        client_with(httpx.MockTransport(router.handler), clock, max_response_bytes=1000) as c,
        pytest.raises(ResponseTooLarge) as info,
    ):
        c.show_user(5)
    assert info.value.max_bytes == 1000
    assert info.value.endpoint == "GET /api/v2/users/{id}"
    assert route.call_count == 1


def test_answer_under_the_cap_is_read(router: respx.MockRouter) -> None:
    clock = Ticking()
    router.get("/api/v2/users/5").respond(200, json={"user": user(5)})
    with client_with(httpx.MockTransport(router.handler), clock, max_response_bytes=1000) as c:
        assert c.show_user(5)["id"] == 5


# -- the read-only transport moved ------------------------------------------------------------


def test_read_only_transport_moved_and_re_exported(router: respx.MockRouter) -> None:
    assert AuditReadOnly is ReadOnlyTransport
    router.get("/api/v2/users/5").respond(200, json={"user": user(5)})
    transport = ReadOnlyTransport(httpx.MockTransport(router.handler))
    with client_with(transport, Ticking()) as c:
        c.show_user(5)
        with pytest.raises(PrivacykitError, match="read-only"):
            c.soft_delete_ticket(3)
    assert transport.methods == {"GET": 1}
    assert all(call.request.method == "GET" for call in router.calls)


def test_bounds_reach_the_client_through_the_app_layer() -> None:
    from privacykit.app import make_client

    with make_client(config(), max_wait=60, deadline=30, max_response_bytes=4096) as c:
        assert c.governor.max_wait == 60
        assert c.deadline == 30 and c.max_response_bytes == 4096
    with make_client(config(), read_only=True, max_wait=5) as c:
        assert c.governor.max_wait == 5
