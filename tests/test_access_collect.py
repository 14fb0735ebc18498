"""Access collection against the sandbox over real HTTP: everything of a person with several
users and profiles, events across pages, tickets, related counts; read-only on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from privacykit.config import ZendeskConfig
from privacykit.playbooks.access import (
    ART15_FIELDS,
    AccessPolicy,
    ProcessingFacts,
    categories,
    collect,
)
from privacykit.playbooks.policy import DiscoveryPolicy
from privacykit.playbooks.subjects import parse_subject
from privacykit.zendesk import ZendeskClient

JANE = "jane.doe@example.com"
SHARED_PHONE = "+15555550123"
FACTS = {n: (["x"] if is_list else "x") for n, (is_list, _h) in ART15_FIELDS.items()}


def policy(**kw: Any) -> AccessPolicy:
    return AccessPolicy(
        name="access",
        sha256="0" * 64,
        discovery=DiscoveryPolicy(profile_sources=("webshop:customer", "smsclub:member")),
        facts=ProcessingFacts.from_mapping(FACTS),
        **kw,
    )


def seed_person(state: Any, *, events: int = 230) -> dict[str, Any]:
    """Jane: a user with an email, a twitter identity and a shop profile; her phone number
    was first known from an app sign-up, so it is the identity of a second, anonymous user
    holding an app profile. Plus an unrelated person who must never appear."""
    anon_profile = state.put_profile(
        "smsclub",
        "member",
        [{"type": "phone_number", "value": SHARED_PHONE}, {"type": "member_no", "value": "M-9"}],
        attributes={"opt_in": True},
    )
    jane = state.add_user("Jane Doe", email=JANE, verified=True, external_id="cust-jane")
    state.add_identity(jane["id"], "twitter", "janedoe")
    shop = state.put_profile(
        "webshop",
        "customer",
        [
            {"type": "email", "value": JANE},
            {"type": "phone_number", "value": SHARED_PHONE},
            {"type": "member_id", "value": "S-1"},
        ],
        user_id=jane["id"],
        name="Jane",
        attributes={"tier": "=gold", "score": 7},
    )
    for i in range(events):
        state.add_event(
            shop["id"], type="order_placed", description=f"order {i}", properties={"n": i}
        )
    for i in range(3):
        state.add_event(anon_profile["id"], type="sms_opt_in", description=f"sms {i}")
    state.add_ticket(jane["id"], "solved", "My bike")
    state.add_ticket(jane["id"], "open", "Refund")
    other = state.add_user("Other Person", email="other@example.com", verified=True)
    state.put_profile(
        "webshop",
        "customer",
        [{"type": "email", "value": "other@example.com"}],
        user_id=other["id"],
    )
    state.add_ticket(other["id"], "open", "Not Jane's")
    return {
        "jane": jane,
        "anon_user_id": int(anon_profile["user_id"]),
        "shop": shop,
        "anon_profile": anon_profile,
        "other": other,
    }


@pytest.fixture
def client(sandbox: Any) -> Iterator[ZendeskClient]:
    with ZendeskClient(ZendeskConfig.from_env(sandbox.env())) as zc:
        yield zc


def test_person_with_several_users_and_profiles_gets_everything(
    sandbox: Any, client: ZendeskClient
) -> None:
    people = seed_person(sandbox.state)
    collected = collect(client, parse_subject(JANE), policy())
    g = collected.gathered
    assert not collected.incomplete and not collected.discovery.ambiguities

    assert [u["id"] for u in g.users] == sorted([people["jane"]["id"], people["anon_user_id"]])
    assert {p["id"] for p in g.profiles} == {people["shop"]["id"], people["anon_profile"]["id"]}
    jane = next(u for u in g.users if u["id"] == people["jane"]["id"])
    assert jane["email"] == JANE and jane["related"]["requested_tickets"] == 2
    assert "url" not in jane  # excluded by policy: API plumbing
    assert {(i["type"], i["value"]) for i in g.identities} >= {
        ("email", JANE),
        ("twitter", "janedoe"),
    }
    # Every event of both profiles, across three pages of the shop profile (100 per page).
    assert collected.events_per_profile == {
        people["shop"]["id"]: 230,
        people["anon_profile"]["id"]: 3,
    }
    assert len(g.events) == 233 and len({e["id"] for e in g.events}) == 233
    assert all(
        e["profile_id"] in (people["shop"]["id"], people["anon_profile"]["id"]) for e in g.events
    )
    assert sorted(t["subject"] for t in g.tickets) == ["My bike", "Refund"]
    assert all(t["relations"] == ["requested"] and "url" not in t for t in g.tickets)
    assert [c["author"] for t in g.tickets for c in t["comments"]] == ["you", "you"]
    assert "other@example.com" not in repr(g.__dict__)

    endpoints = g.searched["endpoints"]
    assert "GET /api/v2/user_profiles/{id}/events" in endpoints
    assert "GET /api/v2/users/{id}/tickets/requested" in endpoints
    assert "Sunshine profile events" in g.searched["systems"]

    cats = {c["category"]: c for c in categories(g)}
    assert cats["Sunshine profile webshop:customer"]["fields"] == [
        "identifier:email",
        "identifier:member_id",
        "identifier:phone_number",
        "attribute:score",
        "attribute:tier",
    ]
    assert cats["Sunshine profile events"]["records"] == 233
    assert JANE not in repr(categories(g))


def test_collection_is_read_only(sandbox: Any, client: ZendeskClient) -> None:
    seed_person(sandbox.state, events=5)
    before = len(sandbox.request_log())
    collect(client, parse_subject(JANE), policy())
    log = sandbox.request_log()[before:]
    assert log, "nothing was requested"
    assert {entry["method"] for entry in log} == {"GET"}


def test_compliance_history_is_collected(sandbox: Any, client: ZendeskClient) -> None:
    people = seed_person(sandbox.state, events=0)
    jane_id = people["jane"]["id"]
    # Seeded through the sandbox's state: a deletion history Zendesk reports for a user
    # (e.g. from an earlier erasure request handled in Zendesk's admin UI).
    sandbox.state.add_compliance_history(jane_id, 1)
    sandbox.advance(3600)
    collected = collect(client, parse_subject(f"user:{jane_id}"), policy())
    rows = collected.gathered.compliance_deletion_statuses
    assert {r["user_id"] for r in rows} == {jane_id}
    assert len(rows) == 11  # request_deletion + started/complete for five applications
    assert {r["action"] for r in rows} == {"request_deletion", "started", "complete"}
    cats = {c["category"]: c for c in categories(collected.gathered)}
    assert cats["Compliance deletion history"]["records"] == 11


def test_optional_steps_off(sandbox: Any, client: ZendeskClient) -> None:
    seed_person(sandbox.state, events=3)
    collected = collect(
        client,
        parse_subject(JANE),
        policy(collect_events=False, collect_tickets=False, collect_compliance=False),
    )
    assert collected.gathered.events == [] and collected.gathered.tickets == []
    paths = {e["path"] for e in sandbox.request_log()}
    assert not any(p.endswith("/events") or p.endswith("/tickets/requested") for p in paths)


def test_event_bound_marks_export_incomplete(sandbox: Any, client: ZendeskClient) -> None:
    seed_person(sandbox.state, events=12)
    collected = collect(client, parse_subject(JANE), policy(max_events_per_profile=10))
    assert collected.incomplete and "more than 10 events" in collected.incomplete[0]


def test_nobody(sandbox: Any, client: ZendeskClient) -> None:
    seed_person(sandbox.state, events=0)
    collected = collect(client, parse_subject("nobody@example.com"), policy())
    assert not collected.gathered.found
    assert collected.gathered.counts()["users"] == 0
    assert "GET /api/v2/users/search" in collected.gathered.searched["endpoints"]
