"""Sandbox Zendesk, what access needs over real HTTP: user fields, organizations and
memberships, satisfaction ratings, CCs and followers, the control endpoints that seed
them, and the demo people's conversations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from privacykit.sandbox import ApiError, SandboxServer
from privacykit.sandbox.seed import (
    DEMO_ACCESS_EMAIL,
    DEMO_AGENT_EMAIL,
    DEMO_ERASE_EMAIL,
    DEMO_ERASE_WORDS,
    DEMO_ORGANIZATION,
    DEMO_OTHER_EMAIL,
)


def _client(sb: SandboxServer) -> httpx.Client:
    env = sb.env()
    auth = (env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"])
    return httpx.Client(base_url=sb.url, auth=auth, timeout=10.0)


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with _client(sandbox) as client:
        yield client


def test_user_fields(sandbox: SandboxServer, http: httpx.Client) -> None:
    uid = sandbox.state.add_user(
        "Field Person",
        email="field@example.com",
        alias="Fi",
        notes="note",
        details="Elm 1",
        signature="-- Fi",
        tags=["a", "b"],
        user_fields={"loyalty": "L-1"},
    )["id"]
    user = http.get(f"/api/v2/users/{uid}").json()["user"]
    assert (user["alias"], user["notes"], user["details"], user["signature"]) == (
        "Fi",
        "note",
        "Elm 1",
        "-- Fi",
    )
    assert user["tags"] == ["a", "b"] and user["user_fields"] == {"loyalty": "L-1"}
    http.put(f"/api/v2/users/{uid}", json={"user": {"signature": "-- F", "notes": None}})
    again = http.get(f"/api/v2/users/{uid}").json()["user"]
    assert again["signature"] == "-- F" and again["notes"] is None
    assert http.delete(f"/api/v2/users/{uid}").status_code == 200
    assert http.delete(f"/api/v2/deleted_users/{uid}").status_code == 200
    assert sandbox.state.find_text("Elm 1") == [] and sandbox.state.find_text("-- F") == []


def test_organizations_and_memberships(sandbox: SandboxServer, http: httpx.Client) -> None:
    uid = sandbox.state.add_user("Org Person", email="org@example.com")["id"]
    first = sandbox.state.add_organization(
        "Sole Trader Org",
        details="Org Person, Elm 2",
        notes="n",
        domain_names=["sole.example.com"],
        external_id="org-1",
        tags=["t"],
        organization_fields={"vat": "DK-1"},
    )
    second = sandbox.state.add_organization("Club")
    sandbox.state.add_membership(uid, first["id"])
    sandbox.state.add_membership(uid, second["id"])
    with pytest.raises(ApiError) as taken:
        sandbox.state.add_organization("sole trader org")
    assert taken.value.status == 422
    orgs = http.get(f"/api/v2/users/{uid}/organizations.json").json()
    assert [o["name"] for o in orgs["organizations"]] == ["Sole Trader Org", "Club"]
    shown = orgs["organizations"][0]
    assert shown["details"] == "Org Person, Elm 2" and shown["domain_names"] == ["sole.example.com"]
    assert shown["organization_fields"] == {"vat": "DK-1"} and shown["external_id"] == "org-1"
    memberships = http.get(f"/api/v2/users/{uid}/organization_memberships").json()
    assert [
        (m["organization_id"], m["default"]) for m in memberships["organization_memberships"]
    ] == [
        (first["id"], True),
        (second["id"], False),
    ]
    assert memberships["organization_memberships"][0]["organization_name"] == "Sole Trader Org"
    assert http.get(f"/api/v2/users/{uid}").json()["user"]["organization_id"] == first["id"]
    assert (
        http.get(f"/api/v2/organizations/{second['id']}").json()["organization"]["name"] == "Club"
    )
    paged = http.get(f"/api/v2/users/{uid}/organizations", params={"page[size]": 1}).json()
    assert len(paged["organizations"]) == 1 and paged["meta"]["has_more"] is True
    assert http.get("/api/v2/users/999999/organizations").status_code == 404
    # Permanent deletion ends the memberships; the organizations stay.
    http.delete(f"/api/v2/users/{uid}")
    http.delete(f"/api/v2/deleted_users/{uid}")
    assert sandbox.state.find_text("Sole Trader Org") == [f"organizations[{first['id']}]"]


def test_satisfaction_ratings_ccs_and_followers(sandbox: SandboxServer, http: httpx.Client) -> None:
    requester = sandbox.state.add_user("Rae Rater", email="rae@example.com")["id"]
    cc = sandbox.state.add_user("Cc Person", email="cc@example.com")["id"]
    follower = sandbox.state.add_user("Fo Person", email="fo@example.com")["id"]
    tid = sandbox.state.add_ticket(
        requester, "solved", "Rated", ccs=[cc, cc], followers=[follower]
    )["id"]
    rating = sandbox.state.set_satisfaction_rating(tid, "bad", "Too slow", reason="Wait time")
    ticket = http.get(f"/api/v2/tickets/{tid}").json()["ticket"]
    assert ticket["satisfaction_rating"] == rating
    assert rating["score"] == "bad" and rating["comment"] == "Too slow" and "id" in rating
    assert ticket["email_cc_ids"] == [cc] and ticket["follower_ids"] == [follower]
    assert sandbox.state.set_satisfaction_rating(tid, "offered") == {"score": "offered"}
    with pytest.raises(ValueError):
        sandbox.state.set_satisfaction_rating(tid, "meh")


def test_control_endpoints_seed_conversations(sandbox: SandboxServer, http: httpx.Client) -> None:
    url = sandbox.url + "/_sandbox"
    uid = sandbox.state.add_user("Remote Seed", email="remote@example.com")["id"]
    other = sandbox.state.add_user("Other Seed", email="other.seed@example.com")["id"]
    org = httpx.post(f"{url}/organizations", json={"name": "Remote Org"}).json()["organization"]
    member = httpx.post(f"{url}/memberships", json={"user_id": uid, "organization_id": org["id"]})
    assert member.status_code == 201
    ticket = httpx.post(
        f"{url}/tickets",
        json={
            "requester_id": uid,
            "status": "open",
            "subject": "Remote",
            "description": "Seeded from afar",
            "ccs": [other],
            "organization_id": org["id"],
            "attachments": [{"file_name": "note.txt", "content": "hello"}],
        },
    ).json()["ticket"]
    assert ticket["description"] == "Seeded from afar" and ticket["email_cc_ids"] == [other]
    comment = httpx.post(
        f"{url}/comments",
        json={"ticket_id": ticket["id"], "author_id": other, "body": "Me too", "public": False},
    )
    assert comment.status_code == 201 and comment.json()["comment"]["public"] is False
    rated = httpx.post(
        f"{url}/tickets/{ticket['id']}/satisfaction_rating", json={"score": "good", "comment": "ok"}
    )
    assert rated.json()["satisfaction_rating"]["score"] == "good"
    comments = http.get(f"/api/v2/tickets/{ticket['id']}/comments").json()["comments"]
    assert [c["body"] for c in comments] == ["Seeded from afar", "Me too"]
    assert httpx.get(comments[0]["attachments"][0]["content_url"]).text == "hello"
    bad = httpx.post(f"{url}/comments", json={"ticket_id": ticket["id"]})
    assert bad.status_code == 400
    assert (
        httpx.post(f"{url}/comments", json={"ticket_id": 999, "author_id": uid}).status_code == 404
    )
    counts = httpx.get(f"{url}/state").json()["counts"]
    assert counts["comments"] == 2 and counts["organizations"] == 1 and counts["attachments"] == 1


def _all(client: httpx.Client, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = path
    for _ in range(50):
        if url is None:
            break
        body = client.get(url).json()
        items += body[key]
        url = body.get("next_page")
    return items


def test_demo_people_have_conversations() -> None:
    with (
        SandboxServer(seed="demo", users=5, time_scale=600.0, rng_seed=5) as sb,
        _client(sb) as http,
    ):
        erin = sb.state.user_by_email(DEMO_ERASE_EMAIL)
        alex = sb.state.user_by_email(DEMO_ACCESS_EMAIL)
        casey = sb.state.user_by_email(DEMO_OTHER_EMAIL)
        agent = sb.state.user_by_email(DEMO_AGENT_EMAIL)
        assert erin and alex and casey and agent
        # Erin: closed tickets only (erasable), a conversation, and a comment elsewhere.
        requested = _all(http, f"/api/v2/users/{erin['id']}/tickets/requested", "tickets")
        assert [t["status"] for t in requested] == ["closed", "closed"]
        conversation = _all(http, f"/api/v2/tickets/{requested[1]['id']}/comments", "comments")
        assert {c["author_id"] for c in conversation} == {erin["id"], agent["id"]}
        assert any(c["attachments"] for c in conversation if c["author_id"] == erin["id"])
        assert DEMO_ERASE_WORDS[0] in conversation[0]["body"]
        (elsewhere,) = _all(http, f"/api/v2/users/{erin['id']}/tickets/ccd", "tickets")
        assert elsewhere["requester_id"] == casey["id"] and elsewhere["status"] == "open"
        theirs = _all(http, f"/api/v2/tickets/{elsewhere['id']}/comments", "comments")
        mine = [c for c in theirs if c["author_id"] == erin["id"]]
        assert len(mine) == 1 and DEMO_ERASE_WORDS[1] in mine[0]["body"]
        assert len(theirs) > 1
        # Alex: a conversation with several comments, an attachment, another customer.
        user = http.get(f"/api/v2/users/{alex['id']}").json()["user"]
        assert user["alias"] and user["notes"] and user["details"] and user["user_fields"]
        (org,) = _all(http, f"/api/v2/users/{alex['id']}/organizations", "organizations")
        assert org["name"] == DEMO_ORGANIZATION
        (order,) = _all(http, f"/api/v2/users/{alex['id']}/tickets/requested", "tickets")
        assert order["status"] == "solved" and order["satisfaction_rating"]["score"] == "good"
        assert order["email_cc_ids"] == [casey["id"]]
        comments = _all(http, f"/api/v2/tickets/{order['id']}/comments", "comments")
        assert len(comments) >= 5
        assert {c["author_id"] for c in comments} == {alex["id"], agent["id"], casey["id"]}
        assert any(c["attachments"] for c in comments) and not all(c["public"] for c in comments)
        (followed,) = _all(http, f"/api/v2/users/{alex['id']}/tickets/followed", "tickets")
        assert followed["requester_id"] == casey["id"]
        # Blake's open ticket still blocks; Erin's closed ones do not.
        assert http.delete(f"/api/v2/users/{erin['id']}").status_code == 200
