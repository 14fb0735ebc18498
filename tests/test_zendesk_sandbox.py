"""The Zendesk client and governor against the sandbox over real HTTP on loopback:
every method, pagination, every error type, 429 handling, bursts under a low limit,
recovery from 429s the governor did not predict, and faults."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import (
    AuthenticationError,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import Governor, RateLimits, ZendeskClient

TIME_SCALE = 600.0  # the conftest sandbox: a 60 s window lasts 0.1 s


def client_for(sb: SandboxServer, **kwargs: Any) -> ZendeskClient:
    """A client on the sandbox. Its governor knows the sandbox's compressed clock up front
    only for the one budget the sandbox never reports (1 user write per second per
    account); the rate-limit tests below pass a default ``Governor()`` to show learning."""
    if "governor" not in kwargs:
        scale = sb.clock.time_scale
        kwargs["governor"] = Governor(RateLimits().compressed(scale))
    kwargs.setdefault("backoff_initial", 0.001)
    kwargs.setdefault("backoff_max", 0.01)
    return ZendeskClient(ZendeskConfig.from_env(sb.env()), **kwargs)


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[ZendeskClient]:
    with client_for(sandbox) as c:
        yield c


def statuses(sb: SandboxServer) -> Counter[int]:
    return Counter(entry["status"] for entry in sb.request_log())


# -- methods over the wire -----------------------------------------------------------------


def test_users_round_trip(sandbox: SandboxServer, client: ZendeskClient) -> None:
    user = client.create_user({"name": "Jane Roe", "email": "jane.roe@example.com"})
    uid = user["id"]
    assert client.show_user(uid)["name"] == "Jane Roe"
    assert client.show_user(str(uid))["id"] == uid
    assert [u["id"] for u in client.search_users(query="email:jane.roe@example.com")] == [uid]
    assert [i["value"] for i in client.user_identities(uid)] == ["jane.roe@example.com"]
    assert "requested_tickets" in client.user_related(uid)
    assert [u["id"] for u in client.show_many_users([uid, 10001])] == [uid, 10001]
    assert client.requested_tickets(uid) == []
    deleted = client.soft_delete_user(uid)
    assert deleted["active"] is False
    assert uid in [u["id"] for u in client.iter_deleted_users()]
    assert client.show_deleted_user(uid)["id"] == uid
    gone = client.permanently_delete_user(uid)
    assert gone["id"] == uid
    shown = client.show_deleted_user(uid)
    assert shown["name"] == "Permanently Deleted User" and shown["email"] is None
    sandbox.advance(3600)
    apps = client.compliance_deletion_statuses(uid)
    assert {"request_deletion", "started"} <= {s["action"] for s in apps}
    support = client.compliance_deletion_statuses(uid, application="support")
    assert support and {s["application"] for s in support} <= {"support", "all"}
    assert statuses(sandbox)[429] == 0


def test_cursor_pagination_over_many_pages(sandbox: SandboxServer, client: ZendeskClient) -> None:
    for n in range(230):
        sandbox.state.add_user(f"User {n}", email=f"user{n}@example.com")
    users = list(client.iter_users())
    assert len(users) == 232  # plus the two admins of an empty sandbox
    assert len({u["id"] for u in users}) == 232
    pages = [e for e in sandbox.request_log() if e["path"].startswith("/api/v2/users")]
    assert len(pages) == 3
    assert all("page%5Bsize%5D=100" in e["query"] or "page[size]=100" in e["query"] for e in pages)


def test_offset_pagination_search(sandbox: SandboxServer, client: ZendeskClient) -> None:
    for n in range(150):
        sandbox.state.add_user(f"Shared Name {n}", email=f"shared{n}@example.com")
    found = client.search_users(query="Shared")
    assert len(found) == 150


def test_profiles_and_events(sandbox: SandboxServer, client: ZendeskClient) -> None:
    user = client.create_user({"name": "P", "email": "p@example.com"})
    query = "shop:customer:email:p@example.com"
    profile = client.put_user_profile(
        user["id"], query, {"identifiers": [{"type": "email", "value": "p@example.com"}]}
    )
    pid = profile["id"]
    assert str(profile["user_id"]) == str(user["id"])
    assert client.profile_by_identifier(query)["id"] == pid
    assert client.profile_by_id(pid)["id"] == pid
    assert [p["id"] for p in client.profiles_for_user(user["id"])] == [pid]
    for n in range(7):
        sandbox.state.add_event(pid, type="order", description=f"order {n}")
    events = list(_events(client, pid, page_size=3))
    assert len(events) == 7
    replaced = client.replace_profile(
        pid, {"identifiers": [{"type": "member_id", "value": "m-1"}], "attributes": {}}
    )
    assert [i["type"] for i in replaced["identifiers"]] == ["member_id"]
    again = client.replace_profile_by_identifier(
        "shop:customer:member_id:m-1",
        {"identifiers": [{"type": "member_id", "value": "m-1"}], "attributes": {"a": 1}},
    )
    assert again["id"] == pid
    assert client.delete_profile(pid) is None
    with pytest.raises(NotFoundError):
        client.profile_by_id(pid)
    with pytest.raises(NotFoundError):
        client.profile_by_identifier(query)
    assert sandbox.state.counts()["events"] == 0


def _events(client: ZendeskClient, pid: str, page_size: int) -> Iterator[dict[str, Any]]:
    """iter_profile_events with a small page size, so the links-array cursor is followed."""
    from privacykit.zendesk.pagination import iter_cursor

    path = f"/api/v2/user_profiles/{pid}/events"
    return iter_cursor(
        lambda params: client.request("GET", path, params=params).json(),
        "events",
        page_size=page_size,
    )


def test_profile_events_default_iterator(sandbox: SandboxServer, client: ZendeskClient) -> None:
    user = client.create_user({"name": "E", "email": "e@example.com"})
    profile = client.put_user_profile(
        user["id"],
        "shop:customer:email:e@example.com",
        {"identifiers": [{"type": "email", "value": "e@example.com"}]},
    )
    for n in range(130):
        sandbox.state.add_event(profile["id"], type="view", description=str(n))
    assert len(list(client.iter_profile_events(profile["id"]))) == 130


def test_bulk_job_and_job_status(sandbox: SandboxServer, client: ZendeskClient) -> None:
    ids = [
        client.create_user({"name": f"B{n}", "email": f"b{n}@example.com"})["id"] for n in range(3)
    ]
    job = client.destroy_many(ids)
    assert client.governor.snapshot()["jobs"]["queued"] == 1
    sandbox.advance(60)  # done after job_delay; job statuses expire about an hour later
    done = client.show_job_status(job["id"])
    assert done["status"] == "completed"
    assert client.governor.snapshot()["jobs"]["queued"] == 0


# -- errors over the wire --------------------------------------------------------------------


def test_every_error_type(sandbox: SandboxServer, client: ZendeskClient) -> None:
    with pytest.raises(NotFoundError):
        client.show_user(987654)
    with pytest.raises(ForbiddenError):
        client.soft_delete_user(10001)  # the account owner
    user = client.create_user({"name": "T", "email": "t@example.com"})
    sandbox.state.add_ticket(user["id"], "open", None)
    with pytest.raises(ValidationError) as info:
        client.soft_delete_user(user["id"])  # requester of an open ticket
    assert info.value.status_code == 422 and isinstance(info.value.body, dict)
    with pytest.raises(ValidationError):
        client.create_user({"name": ""})
    with pytest.raises(NotFoundError):
        client.permanently_delete_user(user["id"])  # not soft-deleted first
    bad = ZendeskConfig(sandbox.url, email=sandbox.email, api_token=Secret("wrong-token"))
    with ZendeskClient(bad) as wrong, pytest.raises(AuthenticationError) as auth:
        wrong.show_user(10001)
    assert "wrong-token" not in str(auth.value)
    sandbox.set_faults(1.0)
    with pytest.raises((ServerError, NetworkError)):
        client.show_user(10001)


def test_non_idempotent_request_not_retried_on_faults(sandbox: SandboxServer) -> None:
    sandbox.set_faults(1.0)
    with client_for(sandbox) as c:
        failures = 0
        for n in range(10):
            try:
                c.create_user({"name": f"F{n}", "email": f"f{n}@example.com"})
            except (ServerError, NetworkError):
                failures += 1
    posts = [e for e in sandbox.request_log() if e["method"] == "POST"]
    # Slow answers succeed; everything else fails once and is never sent again.
    assert failures >= 1
    assert len(posts) == 10


def test_idempotent_requests_complete_despite_faults(sandbox: SandboxServer) -> None:
    ids = [sandbox.state.add_user(f"U{n}", email=f"u{n}@example.com")["id"] for n in range(40)]
    sandbox.set_faults(0.3)
    with client_for(sandbox, max_attempts=12) as c:
        with ThreadPoolExecutor(max_workers=4) as pool:
            users = list(pool.map(c.show_user, ids))
        assert [u["id"] for u in users] == ids
        assert c.stats.retries > 0
    faults = Counter(e["fault"] for e in sandbox.request_log() if e["fault"])
    assert sum(faults.values()) > 0


# -- rate limits -------------------------------------------------------------------------------


class WindowTally(httpx.BaseTransport):
    """Real HTTP that notes the sandbox window each accepted request landed in. On
    ``virtual_time`` the frozen clock does not move while a request is in flight, so the
    window read at the answer is the one the sandbox counted it in."""

    def __init__(self, sb: SandboxServer, window: float = 60.0) -> None:
        self.inner = httpx.HTTPTransport()
        self.sb = sb
        self.window = window
        self.counts: Counter[int] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code != 429:
            self.counts[int(self.sb.clock.now() // self.window)] += 1
        return response

    def close(self) -> None:
        self.inner.close()


def learning_client(vt: Any, **kwargs: Any) -> ZendeskClient:
    """A client whose default ``Governor()`` (told nothing) runs on the frozen sandbox's
    virtual time: windows roll when it waits for them, never because the machine is slow,
    so what it learns and how many 429s it meets do not depend on the machine's speed."""
    governor = vt.governor(kwargs.pop("limits", None))
    return client_for(vt.sb, governor=governor, sleep=vt.sleep, **kwargs)


def test_burst_under_low_limit_gets_no_429(virtual_time: Any) -> None:
    sandbox = virtual_time.sb
    limit = 15
    sandbox.configure({"account_limit": limit})
    tally = WindowTally(sandbox)
    with learning_client(virtual_time, transport=tally) as c:
        results = virtual_time.burst([lambda: c.show_user(10001)] * 150)
        assert len(results) == 150
        assert c.stats.rate_limited == 0
        snap = c.governor.snapshot()
    log = sandbox.request_log()
    assert len(log) == 150
    assert statuses(sandbox) == Counter({200: 150})
    counts = tally.counts
    assert counts and max(counts.values()) <= limit
    assert snap["scopes"]["account"]["limit"] == limit
    # The governor learned the sandbox's 0.1 s window, not Zendesk's 60 s.
    assert snap["scopes"]["account"]["learned_window"] < 1.0


def test_profiles_scope_under_its_own_limit(virtual_time: Any) -> None:
    sandbox = virtual_time.sb
    user = sandbox.state.add_user("Q", email="q@example.com")
    sandbox.configure({"account_limit": 1000, "profiles_limit": 6})
    with learning_client(virtual_time) as c:
        virtual_time.burst([lambda: c.profiles_for_user(user["id"])] * 60, threads=6)
        assert c.stats.rate_limited == 0
        assert c.governor.snapshot()["scopes"]["profiles"]["limit"] == 6
    assert statuses(sandbox) == Counter({200: 60})


def test_recovers_when_the_limit_drops_mid_run(virtual_time: Any) -> None:
    sandbox = virtual_time.sb
    sandbox.configure({"account_limit": 40})
    with learning_client(virtual_time) as c:
        virtual_time.burst([lambda: c.show_user(10001)] * 60)
        sandbox.configure({"account_limit": 5})  # the governor's model is now wrong
        results = virtual_time.burst([lambda: c.show_user(10001)] * 80)
        assert len(results) == 80
        assert c.governor.snapshot()["scopes"]["account"]["limit"] == 5
    counted = statuses(sandbox)
    assert counted[200] == 140
    # 429s the governor could not predict are few: it re-learns after the first ones.
    assert counted[429] <= 40


class StripRateHeaders(httpx.BaseTransport):
    """Real HTTP, but the answers lose every rate-limit header except Retry-After: a
    server that says nothing about its budget until it refuses."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        drop = (b"x-rate-limit", b"ratelimit", b"zendesk-ratelimit")
        headers = [(k, v) for k, v in response.headers.raw if not k.lower().startswith(drop)]
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=response.stream,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


def test_recovers_when_configured_too_high_and_server_is_silent(virtual_time: Any) -> None:
    sandbox = virtual_time.sb
    sandbox.configure({"account_limit": 10})
    with learning_client(
        virtual_time, limits=RateLimits.for_plan(2500), transport=StripRateHeaders()
    ) as c:
        governor = c.governor
        results = virtual_time.burst([lambda: c.show_user(10001)] * 120, threads=6)
        assert len(results) == 120
        assert c.stats.rate_limited > 0  # it had to learn from 429s
        account = governor.snapshot()["scopes"]["account"]
    assert statuses(sandbox)[200] == 120
    # From the 429s alone it learned a limit and a window it can keep to: after the first
    # few refusals, the rest of the run gets (almost) none.
    assert account["mode"] == "local"
    assert 1 <= account["limit"] <= 10
    assert account["learned_window"] is not None and account["learned_window"] < 1.0
    assert c.stats.rate_limited <= 20


class SkewedTime:
    """Real monotonic time plus whatever the injected sleep "slept": the client's sleep
    jumps the governor's clock and the sandbox's virtual clock together, so a real
    60 s Retry-After passes at once and the test stays deterministic."""

    def __init__(self, sb: SandboxServer) -> None:
        self.sb = sb
        self.offset = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds
        self.sb.advance(seconds)


@pytest.fixture
def real_time_sandbox() -> Iterator[SandboxServer]:
    """Zendesk's own clock (time_scale 1), frozen: a window rolls over only when the
    client's sleep advances it; whole-second headers, as real Zendesk sends."""
    with SandboxServer(seed="none", time_scale=1.0, frozen=True, rng_seed=1, account_limit=3) as sb:
        yield sb


def test_429_on_the_wire_is_retried_after_exactly_retry_after(
    real_time_sandbox: SandboxServer,
) -> None:
    """A second client (another process, say) spends the budget behind our back."""
    sb = real_time_sandbox
    skew = SkewedTime(sb)
    governor = Governor(clock=skew.clock)
    with (
        client_for(sb, governor=Governor()) as other,
        client_for(sb, governor=governor, sleep=skew.sleep) as c,
    ):
        c.show_user(10001)  # our governor learns: 2 left in this minute
        other.show_user(10001)
        other.show_user(10001)  # the minute is spent by someone else
        assert c.show_user(10001)["id"] == 10001
        assert c.stats.rate_limited == 1 and c.stats.retries == 1
    assert len(skew.sleeps) == 1
    wait = skew.sleeps[0]
    assert wait == int(wait) and 0 < wait <= 60  # whole seconds, as real Zendesk sends
    assert [e["status"] for e in sb.request_log()] == [200, 200, 200, 429, 200]
    assert governor.snapshot()["pauses"] == 1


def test_rate_limited_error_when_retries_are_exhausted(real_time_sandbox: SandboxServer) -> None:
    sb = real_time_sandbox
    sb.configure({"account_limit": 1})
    with client_for(sb, max_rate_limited=0) as c, client_for(sb) as other:
        other.show_user(10001)
        with pytest.raises(RateLimitedError) as info:
            c.show_user(10001)
    exc = info.value
    assert 0 < exc.retry_after <= 60
    assert exc.response.headers["content-type"].startswith("text/plain")
    assert exc.body == "Number of allowed API requests per minute exceeded"
    assert "exceeded" not in str(exc)


def test_zendesk_client_fixture(zendesk_client: ZendeskClient, sandbox: SandboxServer) -> None:
    made = [zendesk_client.create_user({"name": f"N{n}"})["id"] for n in range(5)]
    assert [u["id"] for u in zendesk_client.show_many_users(made)] == made
    assert statuses(sandbox) == Counter({201: 5, 200: 1})
