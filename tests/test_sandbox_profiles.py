"""Sandbox Zendesk, Profiles API and Sunshine events over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from privacykit.sandbox.state import PROFILES_PER_USER

QUERY = "coolbikes:rider:email:jane@example.com"


def _put(client: httpx.Client, query: str, profile: dict[str, Any]) -> httpx.Response:
    return client.put(
        "/api/v2/user_profiles.json", params={"identifier": query}, json={"profile": profile}
    )


def _assert_profile_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert isinstance(errors, list) and errors
    assert set(errors[0]) >= {"code", "id", "title"}


def test_create_by_identifier_makes_anonymous_user_with_identities(
    sandbox_http: httpx.Client,
) -> None:
    created = _put(
        sandbox_http,
        QUERY,
        {
            "name": "Jane Rider",
            "identifiers": [
                {"type": "phone_number", "value": "+15555550177"},
                {"type": "coolbike_id", "value": "0987654321"},
                {"type": "external_id", "value": "JR-77"},
            ],
            "attributes": {"favorite_color": "red"},
        },
    )
    assert created.status_code == 201
    profile = created.json()["profile"]
    assert profile["source"] == "coolbikes" and profile["type"] == "rider"
    assert len(profile["id"]) == 26 and profile["id"].isalnum()
    assert {"type": "email", "value": "jane@example.com"} in profile["identifiers"]
    assert set(profile) >= {"id", "user_id", "name", "attributes", "created_at", "updated_at"}
    uid = int(profile["user_id"])
    user = sandbox_http.get(f"/api/v2/users/{uid}").json()["user"]
    assert user["role"] == "end-user"
    assert user["external_id"] == "JR-77"
    idents = sandbox_http.get(f"/api/v2/users/{uid}/identities").json()["identities"]
    assert {(i["type"], i["value"]) for i in idents} == {
        ("email", "jane@example.com"),
        ("phone_number", "+15555550177"),
    }
    # A second PUT with the same query updates (200), does not create.
    again = _put(
        sandbox_http, QUERY, {"identifiers": [{"type": "email", "value": "jane@example.com"}]}
    )
    assert again.status_code == 200
    assert again.json()["profile"]["id"] == profile["id"]
    assert again.json()["profile"]["created_at"] == profile["created_at"]


def test_profile_matches_existing_user_by_identity(
    sandbox: Any, sandbox_http: httpx.Client
) -> None:
    user = sandbox.state.add_user("Existing Example", email="Existing@Example.com")
    created = _put(sandbox_http, "webshop:customer:email:EXISTING@example.com", {"attributes": {}})
    assert created.status_code == 201
    profile = created.json()["profile"]
    assert profile["user_id"] == str(user["id"])
    # Email values are lower-cased.
    assert profile["identifiers"] == [{"type": "email", "value": "existing@example.com"}]
    assert profile["name"] == "existing@example.com"  # documented default name rule
    listed = sandbox_http.get(f"/api/v2/users/{user['id']}/profiles.json").json()["profiles"]
    assert [p["id"] for p in listed] == [profile["id"]]


def test_identifiers_of_two_users_fail(sandbox: Any, sandbox_http: httpx.Client) -> None:
    sandbox.state.add_user("One Example", email="one@example.com")
    sandbox.state.add_user("Two Example", email="two@example.com")
    response = _put(
        sandbox_http,
        "webshop:customer:email:one@example.com",
        {"identifiers": [{"type": "email", "value": "two@example.com"}]},
    )
    _assert_profile_error(response, 400)


def test_get_by_identifier_id_and_user(sandbox_http: httpx.Client) -> None:
    profile = _put(sandbox_http, QUERY, {"attributes": {"a": 1}}).json()["profile"]
    by_query = sandbox_http.get(
        "/api/v2/user_profiles", params={"identifier": "coolbikes:rider:email:JANE@example.com"}
    )
    assert by_query.status_code == 200 and by_query.json()["profile"]["id"] == profile["id"]
    by_id = sandbox_http.get(f"/api/v2/user_profiles/{profile['id']}.json")
    assert by_id.json() == by_query.json()
    _assert_profile_error(sandbox_http.get("/api/v2/user_profiles/01NOTAREALPROFILEID0000000"), 404)
    _assert_profile_error(
        sandbox_http.get(
            "/api/v2/user_profiles",
            params={"identifier": "webshop:customer:email:jane@example.com"},
        ),
        404,
    )
    _assert_profile_error(sandbox_http.get("/api/v2/users/424242/profiles"), 404)


@pytest.mark.parametrize(
    "query", ["", "coolbikes", "coolbikes:rider:email", "coolbikes::email:x", ":a:b:c"]
)
def test_malformed_identifier_query_is_400(sandbox_http: httpx.Client, query: str) -> None:
    _assert_profile_error(
        sandbox_http.get("/api/v2/user_profiles", params={"identifier": query}), 400
    )
    _assert_profile_error(_put(sandbox_http, query, {"attributes": {}}), 400)


def test_identifier_value_may_contain_colons(sandbox_http: httpx.Client) -> None:
    query = "web:visitor:homepage:https://example.com:8443/jane"
    created = _put(sandbox_http, query, {"attributes": {}})
    assert created.status_code == 201
    assert {"type": "homepage", "value": "https://example.com:8443/jane"} in created.json()[
        "profile"
    ]["identifiers"]
    found = sandbox_http.get("/api/v2/user_profiles", params={"identifier": query})
    assert found.json()["profile"]["id"] == created.json()["profile"]["id"]


def test_put_for_user_and_twenty_profile_cap(sandbox: Any, sandbox_http: httpx.Client) -> None:
    user = sandbox.state.add_user("Many Example", email="many@example.com")
    uid = user["id"]
    for index in range(PROFILES_PER_USER):
        response = sandbox_http.put(
            f"/api/v2/users/{uid}/profiles.json",
            params={"identifier": f"src{index}:type:email:many@example.com"},
            json={"profile": {"attributes": {"n": index}}},
        )
        assert response.status_code == 201, response.text
        assert response.json()["profile"]["user_id"] == str(uid)
    over = sandbox_http.put(
        f"/api/v2/users/{uid}/profiles",
        params={"identifier": "src99:type:email:many@example.com"},
        json={"profile": {"attributes": {}}},
    )
    _assert_profile_error(over, 400)
    # Updating an existing one is still fine.
    update = sandbox_http.put(
        f"/api/v2/users/{uid}/profiles",
        params={"identifier": "src0:type:email:many@example.com"},
        json={
            "profile": {
                "identifiers": [{"type": "email", "value": "many@example.com"}],
                "attributes": {},
            }
        },
    )
    assert update.status_code == 200
    assert (
        len(sandbox_http.get(f"/api/v2/users/{uid}/profiles").json()["profiles"])
        == PROFILES_PER_USER
    )
    missing = sandbox_http.put(
        "/api/v2/users/424242/profiles",
        params={"identifier": QUERY},
        json={"profile": {"attributes": {}}},
    )
    _assert_profile_error(missing, 404)


def test_replace_by_id_and_by_identifier(sandbox: Any, sandbox_http: httpx.Client) -> None:
    profile = _put(
        sandbox_http,
        QUERY,
        {
            "identifiers": [{"type": "member_id", "value": "M-1"}],
            "attributes": {"a": 1, "b": 2},
            "name": "Jane",
        },
    ).json()["profile"]
    sandbox.state.add_event(profile["id"], type="ride", description="ride")
    replaced = sandbox_http.put(
        f"/api/v2/user_profiles/{profile['id']}",
        json={
            "profile": {
                "identifiers": [{"type": "member_id", "value": "M-1"}],
                "attributes": {"c": 3},
            }
        },
    )
    assert replaced.status_code == 200
    body = replaced.json()["profile"]
    assert body["id"] == profile["id"] and body["created_at"] == profile["created_at"]
    assert body["identifiers"] == [{"type": "member_id", "value": "M-1"}]  # email removed
    assert body["attributes"] == {"c": 3}
    assert body["name"] == "member_id user M-1"
    # The email identifier no longer finds it; the remaining one does.
    gone = sandbox_http.get("/api/v2/user_profiles", params={"identifier": QUERY})
    _assert_profile_error(gone, 404)
    by_member = "coolbikes:rider:member_id:M-1"
    assert (
        sandbox_http.get("/api/v2/user_profiles", params={"identifier": by_member}).status_code
        == 200
    )
    # Events are unaffected by a replace.
    assert (
        len(sandbox_http.get(f"/api/v2/user_profiles/{profile['id']}/events").json()["events"]) == 1
    )
    by_query = _put(
        sandbox_http,
        by_member,
        {"identifiers": [{"type": "member_id", "value": "M-1"}], "attributes": {}},
    )
    assert by_query.status_code == 200 and by_query.json()["profile"]["id"] == profile["id"]
    empty = sandbox_http.put(
        f"/api/v2/user_profiles/{profile['id']}", json={"profile": {"identifiers": []}}
    )
    _assert_profile_error(empty, 400)
    _assert_profile_error(
        sandbox_http.put("/api/v2/user_profiles/nope", json={"profile": {"identifiers": []}}), 404
    )


def test_patch_merges_and_cannot_remove_identifiers(sandbox_http: httpx.Client) -> None:
    profile = _put(
        sandbox_http, QUERY, {"name": "Jane", "attributes": {"a": 1, "nested": {"x": 1, "y": 2}}}
    ).json()["profile"]
    patched = sandbox_http.patch(
        "/api/v2/user_profiles",
        params={"identifier": QUERY},
        json={
            "profile": {
                "name": "Jane Doe",
                "source": "ignored",
                "attributes": {"b": 2, "nested": {"y": None}},
                "identifiers": [{"type": "member_id", "value": "M-9"}],
            }
        },
    )
    assert patched.status_code == 200
    body = patched.json()["profile"]
    assert body["name"] == "Jane Doe" and body["source"] == "coolbikes"
    assert body["attributes"] == {"a": 1, "b": 2, "nested": {"x": 1}}
    assert body["identifiers"] == [
        {"type": "email", "value": "jane@example.com"},
        {"type": "member_id", "value": "M-9"},
    ]
    # Patching with fewer identifiers removes nothing.
    by_id = sandbox_http.patch(
        f"/api/v2/user_profiles/{profile['id']}.json",
        json={"profile": {"identifiers": [{"type": "member_id", "value": "M-9"}]}},
    )
    assert len(by_id.json()["profile"]["identifiers"]) == 2
    missing = sandbox_http.patch(
        "/api/v2/user_profiles",
        params={"identifier": "coolbikes:rider:email:nobody@example.com"},
        json={"profile": {"name": "x"}},
    )
    _assert_profile_error(missing, 404)


def test_delete_profile_deletes_events(sandbox: Any, sandbox_http: httpx.Client) -> None:
    profile = _put(sandbox_http, QUERY, {"attributes": {}}).json()["profile"]
    for index in range(3):
        sandbox.state.add_event(profile["id"], description=f"e{index}")
    deleted = sandbox_http.delete(f"/api/v2/user_profiles/{profile['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert "content-type" not in deleted.headers
    _assert_profile_error(sandbox_http.get(f"/api/v2/user_profiles/{profile['id']}"), 404)
    _assert_profile_error(sandbox_http.get(f"/api/v2/user_profiles/{profile['id']}/events"), 404)
    assert sandbox.state.counts()["events"] == 0
    _assert_profile_error(sandbox_http.delete(f"/api/v2/user_profiles/{profile['id']}"), 404)
    # The user and their identities stay: deleting a profile is not deleting the user.
    assert sandbox_http.get(f"/api/v2/users/{profile['user_id']}").status_code == 200


def test_events_cursor_pagination_with_links_array(
    sandbox: Any, sandbox_http: httpx.Client
) -> None:
    profile = _put(sandbox_http, QUERY, {"attributes": {}}).json()["profile"]
    for index in range(7):
        sandbox.state.add_event(
            profile["id"], type="ride_started", description=f"ride {index}", properties={"n": index}
        )
    first = sandbox_http.get(
        f"/api/v2/user_profiles/{profile['id']}/events", params={"page[size]": 3}
    ).json()
    assert set(first) == {"events", "links", "meta"}
    assert isinstance(first["links"], list) and set(first["links"][0]) == {"next"}
    assert set(first["meta"]) == {"after_cursor", "has_more"}
    assert first["meta"]["has_more"] is True
    event = first["events"][0]
    assert set(event) == {
        "id",
        "source",
        "type",
        "description",
        "properties",
        "created_at",
        "received_at",
    }
    assert event["source"] == "coolbikes" and event["properties"] == {"n": 0}
    seen = [e["description"] for e in first["events"]]
    page = first
    while page["meta"]["has_more"]:
        page = sandbox_http.get(page["links"][0]["next"]).json()
        seen += [e["description"] for e in page["events"]]
    assert seen == [f"ride {i}" for i in range(7)]
    assert page["links"] == [{"next": None}]
    by_identifier = sandbox_http.get(
        "/api/v2/user_profiles/events", params={"identifier": QUERY, "page[size]": 100}
    ).json()
    assert len(by_identifier["events"]) == 7
    _assert_profile_error(
        sandbox_http.get(
            f"/api/v2/user_profiles/{profile['id']}/events", params={"page[size]": 500}
        ),
        400,
    )


def test_zendesk_source_is_reserved(sandbox_http: httpx.Client) -> None:
    _assert_profile_error(
        _put(sandbox_http, "zendesk:user:email:jane@example.com", {"attributes": {}}), 400
    )


def test_bad_profile_bodies(sandbox_http: httpx.Client) -> None:
    _assert_profile_error(
        sandbox_http.put("/api/v2/user_profiles", params={"identifier": QUERY}, json={"x": 1}), 400
    )
    _assert_profile_error(
        sandbox_http.put(
            "/api/v2/user_profiles",
            params={"identifier": QUERY},
            content=b"{nope",
            headers={"Content-Type": "application/json"},
        ),
        400,
    )
    _assert_profile_error(_put(sandbox_http, QUERY, {"attributes": "not an object"}), 400)
    _assert_profile_error(_put(sandbox_http, QUERY, {"identifiers": [{"type": "email"}]}), 400)


def test_phone_on_profile_of_other_user_is_shared(sandbox: Any, sandbox_http: httpx.Client) -> None:
    anon = _put(sandbox_http, "sms:member:phone_number:+15555550166", {"attributes": {}}).json()[
        "profile"
    ]
    user = sandbox.state.add_user("Shared Example", email="shared@example.com")
    response = sandbox_http.put(
        f"/api/v2/users/{user['id']}/profiles",
        params={"identifier": "coolbikes:rider:email:shared@example.com"},
        json={
            "profile": {
                "identifiers": [{"type": "phone_number", "value": "+15555550166"}],
                "attributes": {},
            }
        },
    )
    assert response.status_code == 201
    shown = sandbox_http.get(f"/api/v2/users/{user['id']}").json()["user"]
    assert shown["phone"] == "+15555550166" and shown["shared_phone_number"] is True
    idents = sandbox_http.get(f"/api/v2/users/{user['id']}/identities").json()["identities"]
    assert [i["type"] for i in idents] == ["email"]
    found = sandbox_http.get("/api/v2/users/search", params={"query": "phone:+15555550166"}).json()[
        "users"
    ]
    assert {u["id"] for u in found} == {user["id"], int(anon["user_id"])}


def test_user_id_in_body_names_the_user_on_create(sandbox: Any, sandbox_http: httpx.Client) -> None:
    user = sandbox.state.add_user("Body Example", email="body@example.com")
    created = _put(
        sandbox_http,
        "loyalty:member:member_no:L-1",
        {"user_id": str(user["id"]), "identifiers": [{"type": "sdk", "value": "Device-1"}]},
    )
    assert created.status_code == 201
    assert created.json()["profile"]["user_id"] == str(user["id"])
    idents = sandbox_http.get(f"/api/v2/users/{user['id']}/identities").json()["identities"]
    assert ("sdk", "Device-1") in {(i["type"], i["value"]) for i in idents}
    _assert_profile_error(
        _put(sandbox_http, "loyalty:member:member_no:L-2", {"user_id": 424242}), 404
    )
