"""Discovery over real HTTP against the demo sandbox: every user, identity and profile."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from privacykit.config import ZendeskConfig
from privacykit.playbooks.discovery import discover
from privacykit.playbooks.policy import DiscoveryPolicy
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import (
    DEMO_AGENT_EMAIL,
    DEMO_ERASE_EMAIL,
    DEMO_ERASE_PHONE,
    DEMO_PROFILE_SOURCES,
)
from privacykit.zendesk import ZendeskClient

POLICY = DiscoveryPolicy(profile_sources=DEMO_PROFILE_SOURCES)


@pytest.fixture(scope="module")
def demo() -> Iterator[SandboxServer]:
    with SandboxServer(seed="demo", users=5, time_scale=600.0, rng_seed=1) as server:
        yield server


@pytest.fixture
def client(demo: SandboxServer) -> Iterator[ZendeskClient]:
    with ZendeskClient(ZendeskConfig.from_env(demo.env())) as zc:
        yield zc


def _erin(demo: SandboxServer) -> dict[str, Any]:
    user = demo.state.user_by_email(DEMO_ERASE_EMAIL)
    assert user is not None
    return user


def test_email_reaches_the_anonymous_user_through_a_shared_phone(
    demo: SandboxServer, client: ZendeskClient
) -> None:
    before = demo.request_log()[-1]["seq"] if demo.request_log() else 0
    found = discover(client, parse_subject(DEMO_ERASE_EMAIL), POLICY)
    erin = _erin(demo)
    assert found.complete and found.found
    assert found.direct_user_ids == [erin["id"]]
    assert len(found.users) == 2, "Erin and the anonymous SMS-club user"
    (anon_id,) = set(found.users) - {erin["id"]}
    assert found.via[anon_id] in ("identifier", "profile")
    sources = sorted(f"{p['source']}:{p['type']}" for p in found.profiles.values())
    assert sources == ["coolbikes:rider", "smsclub:member", "webshop:customer"]
    assert found.ambiguities == [], "an anonymous user has no email of its own"
    # Read-only: discovery sent GET requests only.
    methods = {e["method"] for e in demo.request_log(since=before)}
    assert methods == {"GET"}


@pytest.mark.parametrize("form", ["user", "ext", "identifier", "phone_identifier"])
def test_every_subject_form_finds_the_same_person(
    demo: SandboxServer, client: ZendeskClient, form: str
) -> None:
    erin = _erin(demo)
    text = {
        "user": f"user:{erin['id']}",
        "ext": "ext:CUST-ERIN-0001",  # external ids compare case-insensitively
        "identifier": "webshop:customer:member_id:WS-2001",
        "phone_identifier": f"smsclub:member:phone_number:{DEMO_ERASE_PHONE}",
    }[form]
    found = discover(client, parse_subject(text), POLICY)
    assert len(found.users) == 2 and len(found.profiles) == 3
    assert erin["id"] in found.users


def test_summary_and_searched_hold_no_personal_data(client: ZendeskClient) -> None:
    found = discover(client, parse_subject(DEMO_ERASE_EMAIL), POLICY)
    text = json.dumps(found.summary()) + repr(found.identifiers)
    for secret in ("erin", "example.com", "5555550100", "CB-1001", "WS-2001", "SMS-0001"):
        assert secret not in text
    searched = found.searched()
    assert "GET /api/v2/users/search" in searched["endpoints"]
    assert searched["profile_sources"] == list(DEMO_PROFILE_SOURCES)
    assert searched["requests"]["profile_by_identifier"] >= 3


def test_not_found_says_what_was_searched(client: ZendeskClient) -> None:
    found = discover(client, parse_subject("nobody.at.all@example.net"), POLICY)
    assert not found.found and found.complete
    assert found.counts() == {"users": 0, "identities": 0, "profiles": 0, "identifiers": 1}
    assert found.searched()["requests"]["search"] == 1
    assert found.searched()["requests"]["profile_by_identifier"] == len(DEMO_PROFILE_SOURCES)


def test_unknown_user_id_is_not_found(client: ZendeskClient) -> None:
    found = discover(client, parse_subject("user:987654"), POLICY)
    assert not found.found
    assert found.missing_user_ids == [987654]


def test_secondary_email_is_ambiguous(demo: SandboxServer, client: ZendeskClient) -> None:
    user = demo.state.add_user("Sam Second", email="sam.primary@example.com", verified=True)
    demo.state.add_identity(user["id"], "email", "sam.other@example.com")
    found = discover(client, parse_subject("sam.other@example.com"), POLICY)
    assert list(found.users) == [user["id"]]
    assert found.ambiguities == [
        f"the email address is a secondary identity of user {user['id']}, "
        "whose primary email is different"
    ]


def test_user_with_own_email_reached_by_shared_identifier_is_ambiguous(
    demo: SandboxServer, client: ZendeskClient
) -> None:
    a = demo.state.add_user("Ann One", email="ann.one@example.com")
    b = demo.state.add_user("Bob Two", email="bob.two@example.com")
    demo.state.put_profile(
        "coolbikes", "rider", [{"type": "coolbike_id", "value": "CB-77"}], user_id=a["id"]
    )
    demo.state.put_profile(
        "webshop", "customer", [{"type": "coolbike_id", "value": "CB-77"}], user_id=b["id"]
    )
    found = discover(client, parse_subject("ann.one@example.com"), POLICY)
    assert set(found.users) == {a["id"], b["id"]}
    assert found.ambiguities == [
        f"user {b['id']} was reached through a shared identifier and has an email "
        "address of its own"
    ]


def test_bounds_stop_discovery_and_say_so(client: ZendeskClient) -> None:
    tight = DiscoveryPolicy(profile_sources=DEMO_PROFILE_SOURCES, max_users=1)
    found = discover(client, parse_subject(DEMO_ERASE_EMAIL), tight)
    assert found.limit_reached == "max_users (1)"
    assert not found.complete


def test_agent_is_found_with_its_role(demo: SandboxServer, client: ZendeskClient) -> None:
    found = discover(client, parse_subject(DEMO_AGENT_EMAIL), POLICY)
    (user,) = found.users.values()
    assert user["role"] == "agent"
