"""The client against the sandbox over real loopback HTTP, for issue 14 and 12: both
rate-limit header spellings learned, a day-long Retry-After refused at once, a slow drip
cut by the deadline, and every malformed body the sandbox can produce refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from privacykit.config import ZendeskConfig
from privacykit.errors import (
    MalformedResponseError,
    RateLimitWaitExceeded,
    RequestDeadlineExceeded,
)
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import Governor, RateLimits, ZendeskClient

TIME_SCALE = 600.0  # a 60 s window lasts 0.1 s


class Ticking:
    """A deadline clock that moves 1 s every time it is read (a slow server, fast)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def client_for(sb: SandboxServer, **kwargs: Any) -> ZendeskClient:
    kwargs.setdefault("governor", Governor(RateLimits().compressed(sb.clock.time_scale)))
    kwargs.setdefault("backoff_initial", 0.001)
    kwargs.setdefault("backoff_max", 0.01)
    return ZendeskClient(ZendeskConfig.from_env(sb.env()), **kwargs)


@pytest.fixture
def person() -> Iterator[tuple[SandboxServer, int]]:
    with SandboxServer(seed="none", time_scale=TIME_SCALE, rng_seed=3) as sb:
        uid = sb.state.add_user("Pat Example", email="pat@example.org")["id"]
        sb.state.put_profile_for_user(
            uid,
            "shop:customer:email:pat@example.org",
            {"profile": {"name": "Pat", "attributes": {"tier": "gold"}}},
        )
        yield sb, uid


# -- both header spellings --------------------------------------------------------------------


@pytest.mark.parametrize("style", ["2023", "2024"])
def test_governor_learns_both_header_styles(style: str, virtual_time: Any) -> None:
    """With a default Governor() (told nothing), 8 threads against a 30/min account in a
    sandbox 600 times faster: the account and profiles budgets are learned from the
    headers of either year, and the limit holds. Time is virtual (see ``VirtualTime``):
    windows roll when the governor waits for them, never because the machine is slow."""
    sb = virtual_time.sb
    sb.configure({"account_limit": 30, "header_style": style})
    uid = sb.state.add_user("Sam", email="sam@example.org")["id"]
    governor = virtual_time.governor()
    with client_for(sb, governor=governor, sleep=virtual_time.sleep) as c:
        virtual_time.burst([lambda: c.profiles_for_user(uid)] * 160, threads=8)
        snap = governor.snapshot()
        stats = c.stats.snapshot()
    account, profiles = snap["scopes"]["account"], snap["scopes"]["profiles"]
    assert account["mode"] == "known" and account["limit"] == 30
    assert profiles["mode"] == "known"  # from zendesk-rate-limit-profiles / -ratelimit-
    assert account["learned_window"] == pytest.approx(0.1, abs=0.03)
    assert stats["calls"] == 160
    assert sb.clock.now() >= 5 * 60  # it kept going through six sandbox windows
    assert stats["rate_limited"] <= 2


def test_day_long_retry_after_stops_at_once(person: tuple[SandboxServer, int]) -> None:
    sb, uid = person
    sb.configure(
        {"retry_after": 86400, "throttle": {"endpoints": ["GET /api/v2/users/{id}"], "times": 5}}
    )
    before = len(sb.request_log())
    started = time.monotonic()
    with client_for(sb) as c, pytest.raises(RateLimitWaitExceeded) as info:
        c.show_user(uid)
    assert time.monotonic() - started < 5
    assert info.value.retry_after == 86400
    assert len(sb.request_log()) - before == 1  # asked once, not 20 times


@pytest.mark.parametrize("part", ["head", "body"])
def test_slow_drip_is_cut_by_the_deadline(person: tuple[SandboxServer, int], part: str) -> None:
    sb, uid = person
    # One byte every 6 virtual seconds (10 ms real); the client's deadline clock moves
    # 1 s per read, so 20 reads pass its 20 s deadline.
    sb.configure(
        {
            "slow_drip": {
                "interval": 6.0,
                "max_bytes": 10_000,
                "part": part,
                "endpoints": ["GET /api/v2/users/{id}"],
            }
        }
    )
    started = time.monotonic()
    with client_for(sb, clock=Ticking(), deadline=20.0, timeout=30.0) as c:
        with pytest.raises(RequestDeadlineExceeded):
            c.show_user(uid)
    assert time.monotonic() - started < 10
    sb.configure({"slow_drip": None})


MALFORMED = [
    ("GET /api/v2/users/search", "null_collection", lambda c, uid: c.search_users(query="pat")),
    ("GET /api/v2/users/{id}", "non_numeric_id", lambda c, uid: c.show_user(uid)),
    ("GET /api/v2/users/{id}", "empty_object", lambda c, uid: c.show_user(uid)),
    (
        "GET /api/v2/users/{id}/identities",
        "object_for_list",
        lambda c, uid: c.user_identities(uid),
    ),
    (
        "GET /api/v2/users/{id}/profiles",
        "string_for_list",
        lambda c, uid: c.profiles_for_user(uid),
    ),
    (
        "GET /api/v2/users/{id}/profiles",
        "truncated_json",
        lambda c, uid: c.profiles_for_user(uid),
    ),
    ("GET /api/v2/users/me", "html_maintenance", lambda c, uid: c.me()),
    (
        "GET /api/v2/users/{id}/compliance_deletion_statuses",
        "null_collection",
        lambda c, uid: c.compliance_deletion_statuses(uid),
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "kind", "call"), MALFORMED, ids=[f"{e} {k}" for e, k, _ in MALFORMED]
)
def test_sandbox_malformed_bodies_are_refused(
    person: tuple[SandboxServer, int], endpoint: str, kind: str, call: Any
) -> None:
    sb, uid = person
    sb.configure({"malformed": {endpoint: kind}})
    with client_for(sb) as c:
        with pytest.raises(MalformedResponseError) as info:
            call(c, uid)
        assert info.value.endpoint == endpoint
        assert "pat@example.org" not in str(info.value) and "Pat" not in str(info.value)
        sb.configure({"malformed": {}})
        assert call(c, uid) is not None  # the same call, well-formed, is accepted
