"""Sandbox Zendesk, Users API over real HTTP: auth, shapes, errors, pagination, deletion."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from privacykit.sandbox import APPLICATIONS
from privacykit.sandbox.state import MAX_QUEUED_JOBS

NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}


def _user(sandbox: Any, name: str = "Jane Example", **fields: Any) -> dict[str, Any]:
    return sandbox.state.add_user(name, **fields)


# ---------------------------------------------------------------- auth and paths


def test_auth_api_token_basic_and_bearer(sandbox: Any) -> None:
    env = sandbox.env()
    me = f"{sandbox.url}/api/v2/users/me.json"
    good = httpx.get(me, auth=(env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"]))
    assert good.status_code == 200
    assert good.json()["user"]["email"] == env["ZENDESK_EMAIL"]
    bearer = httpx.get(me, headers={"Authorization": f"Bearer {env['ZENDESK_API_TOKEN']}"})
    assert bearer.status_code == 200
    for bad in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"dpo@sandbox.test/token:nope").decode()},
        {
            "Authorization": "Basic "
            + base64.b64encode(b"other@example.com/token:sandbox-token").decode()
        },
        {"Authorization": "Basic " + base64.b64encode(b"dpo@sandbox.test:sandbox-token").decode()},
        {"Authorization": "Basic !!!"},
    ):
        response = httpx.get(me, headers=bad)
        assert response.status_code == 401
        assert response.json() == {"error": "Couldn't authenticate you"}
    # The log never holds credentials.
    assert "sandbox-token" not in repr(sandbox.request_log())


def test_paths_with_and_without_json_suffix(sandbox: Any, sandbox_http: httpx.Client) -> None:
    uid = _user(sandbox)["id"]
    plain = sandbox_http.get(f"/api/v2/users/{uid}")
    suffixed = sandbox_http.get(f"/api/v2/users/{uid}.json")
    assert plain.status_code == suffixed.status_code == 200
    assert plain.json() == suffixed.json()
    assert plain.headers["content-type"].startswith("application/json")


def test_unknown_endpoint_and_missing_user(sandbox_http: httpx.Client) -> None:
    response = sandbox_http.get("/api/v2/nothing_here")
    assert response.status_code == 404
    missing = sandbox_http.get("/api/v2/users/999999.json")
    assert missing.status_code == 404
    assert missing.json() == NOT_FOUND


# ---------------------------------------------------------------- reading users


def test_show_user_shape(sandbox: Any, sandbox_http: httpx.Client) -> None:
    user = _user(sandbox, email="Jane@Example.com", phone="+15555550123", external_id="ext-1")
    body = sandbox_http.get(f"/api/v2/users/{user['id']}.json").json()["user"]
    assert body["id"] == user["id"]
    assert body["email"] == "jane@example.com"
    assert body["phone"] == "+15555550123"
    assert body["external_id"] == "ext-1"
    assert body["role"] == "end-user"
    assert body["active"] is True
    assert body["url"].endswith(f"/api/v2/users/{user['id']}.json")
    for key in (
        "created_at",
        "updated_at",
        "verified",
        "tags",
        "user_fields",
        "shared_phone_number",
    ):
        assert key in body


def test_show_many_by_ids_and_external_ids(sandbox: Any, sandbox_http: httpx.Client) -> None:
    a = _user(sandbox, "A Example", external_id="ext-a")
    b = _user(sandbox, "B Example")
    got = sandbox_http.get(
        "/api/v2/users/show_many.json", params={"ids": f"{a['id']},{b['id']},424242"}
    )
    assert [u["id"] for u in got.json()["users"]] == [a["id"], b["id"]]
    by_ext = sandbox_http.get("/api/v2/users/show_many", params={"external_ids": "EXT-A"})
    assert [u["id"] for u in by_ext.json()["users"]] == [a["id"]]


def test_search_by_email_external_id_phone_name_and_text(
    sandbox: Any, sandbox_http: httpx.Client
) -> None:
    jane = _user(sandbox, "Jane Searchable", email="jane.s@example.com", external_id="JS-1")
    _user(
        sandbox, "John Other", email="john.o@example.com", phone="+15555550999", notes="likes bikes"
    )

    def ids(**params: str) -> list[int]:
        response = sandbox_http.get("/api/v2/users/search.json", params=params)
        assert response.status_code == 200
        return [u["id"] for u in response.json()["users"]]

    assert ids(query="email:JANE.S@example.com") == [jane["id"]]
    assert ids(query="email:nobody@example.com") == []
    assert ids(query="external_id:js-1") == [jane["id"]]
    assert ids(external_id="JS-1") == [jane["id"]]
    assert len(ids(query='phone:"+1 555 555 0999"')) == 1
    assert len(ids(query="phone:+15555550999")) == 1
    assert ids(query='name:"Jane Searchable"') == [jane["id"]]
    assert ids(query="searchable") == [jane["id"]]
    assert len(ids(query="bikes")) == 1
    assert ids(query="email:jane.s@example.com role:end-user") == [jane["id"]]
    assert ids(query="email:*@example.com") and len(ids(query="email:*@example.com")) >= 2


def test_search_offset_pagination(sandbox: Any, sandbox_http: httpx.Client) -> None:
    for index in range(7):
        _user(sandbox, f"Paged Person {index}")
    first = sandbox_http.get(
        "/api/v2/users/search", params={"query": "paged", "per_page": 3}
    ).json()
    assert first["count"] == 7
    assert len(first["users"]) == 3
    assert first["previous_page"] is None
    seen = [u["id"] for u in first["users"]]
    url = first["next_page"]
    pages = 1
    while url:
        page = sandbox_http.get(url).json()
        assert page["previous_page"]
        seen += [u["id"] for u in page["users"]]
        url = page["next_page"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7


def test_list_users_cursor_and_offset(sandbox: Any, sandbox_http: httpx.Client) -> None:
    for index in range(5):
        _user(sandbox, f"Listed {index}", role="agent" if index == 0 else "end-user")
    everyone = sandbox_http.get("/api/v2/users.json").json()
    total = everyone["count"]
    assert total == 7  # owner + admin + 5
    collected: list[int] = []
    response = sandbox_http.get("/api/v2/users.json", params={"page[size]": 2}).json()
    while True:
        collected += [u["id"] for u in response["users"]]
        assert set(response["meta"]) == {"has_more", "after_cursor", "before_cursor"}
        assert set(response["links"]) == {"next", "prev"}
        if not response["meta"]["has_more"]:
            assert response["links"]["next"] is None
            break
        response = sandbox_http.get(response["links"]["next"]).json()
    assert collected == sorted(u["id"] for u in everyone["users"])
    # page[before] walks back.
    last = sandbox_http.get(
        "/api/v2/users", params={"page[size]": 2, "page[after]": response["meta"]["before_cursor"]}
    )
    back = sandbox_http.get(
        "/api/v2/users", params={"page[size]": 2, "page[before]": response["meta"]["before_cursor"]}
    ).json()
    assert [u["id"] for u in back["users"]] == collected[-3:-1]
    assert last.status_code == 200
    agents = sandbox_http.get("/api/v2/users", params={"role": "agent"}).json()["users"]
    assert [u["name"] for u in agents] == ["Listed 0"]
    offset = sandbox_http.get("/api/v2/users", params={"per_page": 3, "page": 3}).json()
    assert len(offset["users"]) == 1 and offset["next_page"] is None and offset["previous_page"]


def test_cursor_errors(sandbox_http: httpx.Client) -> None:
    too_big = sandbox_http.get("/api/v2/users", params={"page[size]": 101})
    assert too_big.status_code == 400
    bad_cursor = sandbox_http.get("/api/v2/users", params={"page[after]": "not-a-cursor"})
    assert bad_cursor.status_code == 400
    assert "error" in bad_cursor.json()


def test_identities_related_and_requested_tickets(sandbox: Any, sandbox_http: httpx.Client) -> None:
    user = _user(sandbox, email="ida@example.com", phone="+15555550111")
    sandbox.state.add_identity(user["id"], "twitter", "IdaTweets")
    open_ticket = sandbox.state.add_ticket(user["id"], "open", "Help")
    sandbox.state.add_ticket(user["id"], "closed", "Old")
    idents = sandbox_http.get(f"/api/v2/users/{user['id']}/identities.json").json()["identities"]
    assert [(i["type"], i["value"]) for i in idents] == [
        ("email", "ida@example.com"),
        ("phone_number", "+15555550111"),
        ("twitter", "idatweets"),
    ]
    for ident in idents:
        assert set(ident) >= {"id", "user_id", "type", "value", "verified", "primary"}
        assert ident["user_id"] == user["id"]
    assert idents[0]["primary"] is True
    related = sandbox_http.get(f"/api/v2/users/{user['id']}/related").json()["user_related"]
    assert related["requested_tickets"] == 2
    tickets = sandbox_http.get(f"/api/v2/users/{user['id']}/tickets/requested.json").json()[
        "tickets"
    ]
    assert [(t["id"], t["status"], t["requester_id"]) for t in tickets][0] == (
        open_ticket["id"],
        "open",
        user["id"],
    )
    assert {"id", "status", "requester_id", "subject"} <= set(tickets[0])
    assert sandbox_http.get("/api/v2/users/424242/identities").status_code == 404


# ---------------------------------------------------------------- writing users


def test_create_user_and_validation(sandbox_http: httpx.Client) -> None:
    created = sandbox_http.post(
        "/api/v2/users.json",
        json={
            "user": {
                "name": "Roger Example",
                "email": "roger@example.com",
                "identities": [{"type": "twitter", "value": "roger84"}],
                "external_id": "R-1",
            }
        },
    )
    assert created.status_code == 201
    user = created.json()["user"]
    assert user["role"] == "end-user" and user["email"] == "roger@example.com"
    idents = sandbox_http.get(f"/api/v2/users/{user['id']}/identities").json()["identities"]
    assert {i["type"] for i in idents} == {"email", "twitter"}

    duplicate = sandbox_http.post(
        "/api/v2/users", json={"user": {"name": "Dup", "email": "ROGER@example.com"}}
    )
    assert duplicate.status_code == 422
    body = duplicate.json()
    assert body["error"] == "RecordInvalid"
    assert body["description"] == "Record validation errors"
    assert body["details"]["email"][0]["error"] == "DuplicateValue"

    nameless = sandbox_http.post("/api/v2/users", json={"user": {"email": "x@example.com"}})
    assert nameless.status_code == 422 and "name" in nameless.json()["details"]
    bad_role = sandbox_http.post("/api/v2/users", json={"user": {"name": "X", "role": "emperor"}})
    assert bad_role.status_code == 422
    agent = sandbox_http.post(
        "/api/v2/users", json={"user": {"name": "Agent Example", "role": "agent"}}
    )
    assert agent.json()["user"]["role"] == "agent"
    garbage = sandbox_http.post(
        "/api/v2/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 400


def test_update_user(sandbox: Any, sandbox_http: httpx.Client) -> None:
    user = _user(sandbox, email="upd@example.com")
    response = sandbox_http.put(
        f"/api/v2/users/{user['id']}.json",
        json={"user": {"name": "Renamed Example", "email": "second@example.com", "notes": "n"}},
    )
    assert response.status_code == 200
    body = response.json()["user"]
    assert body["name"] == "Renamed Example"
    assert body["email"] == "upd@example.com"  # documented: a secondary email is added
    idents = sandbox_http.get(f"/api/v2/users/{user['id']}/identities").json()["identities"]
    assert [i["value"] for i in idents] == ["upd@example.com", "second@example.com"]
    assert sandbox_http.put("/api/v2/users/424242", json={"user": {"name": "x"}}).status_code == 404


# ---------------------------------------------------------------- deletion


def test_soft_delete_refused_while_requester_of_open_ticket(
    sandbox: Any, sandbox_http: httpx.Client
) -> None:
    user = _user(sandbox, email="blocked@example.com")
    ticket = sandbox.state.add_ticket(user["id"], "pending")
    refused = sandbox_http.delete(f"/api/v2/users/{user['id']}.json")
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "RecordInvalid"
    assert body["details"]["base"][0]["ticket_ids"] == [ticket["id"]]
    assert sandbox_http.get(f"/api/v2/users/{user['id']}").json()["user"]["active"] is True
    # Solved is still not closed.
    sandbox.state.set_ticket_status(ticket["id"], "solved")
    assert sandbox_http.delete(f"/api/v2/users/{user['id']}").status_code == 422
    control = httpx.post(
        f"{sandbox.url}/_sandbox/tickets/{ticket['id']}", json={"status": "closed"}
    )
    assert control.status_code == 200
    deleted = sandbox_http.delete(f"/api/v2/users/{user['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["user"]["active"] is False


def test_account_owner_cannot_be_deleted(sandbox: Any, sandbox_http: httpx.Client) -> None:
    response = sandbox_http.delete(f"/api/v2/users/{sandbox.state.owner_id}")
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


def test_soft_then_permanent_delete_and_deleted_users_view(
    sandbox: Any, sandbox_http: httpx.Client
) -> None:
    user = _user(sandbox, "Pat Example", email="pat@example.com", phone="+15555550142")
    uid = user["id"]
    # Permanent deletion needs a soft deletion first: an active user is not a deleted user.
    early = sandbox_http.delete(f"/api/v2/deleted_users/{uid}.json")
    assert early.status_code == 404 and early.json() == NOT_FOUND
    assert sandbox_http.get(f"/api/v2/deleted_users/{uid}").status_code == 404

    assert sandbox_http.delete(f"/api/v2/users/{uid}").status_code == 200
    shown = sandbox_http.get(f"/api/v2/users/{uid}").json()["user"]
    assert shown["active"] is False
    # Released identities: search no longer finds the soft-deleted user.
    assert (
        sandbox_http.get("/api/v2/users/search", params={"query": "email:pat@example.com"}).json()[
            "users"
        ]
        == []
    )
    soft = sandbox_http.get(f"/api/v2/deleted_users/{uid}.json").json()["deleted_user"]
    assert (
        soft["name"] == "Pat Example"
        and soft["email"] == "pat@example.com"
        and soft["active"] is False
    )
    assert sandbox_http.delete(f"/api/v2/users/{uid}").status_code == 404  # already soft-deleted
    assert sandbox_http.get("/api/v2/deleted_users/count.json").json()["count"]["value"] == 1

    permanent = sandbox_http.delete(f"/api/v2/deleted_users/{uid}")
    assert permanent.status_code == 200
    assert permanent.json()["deleted_user"]["id"] == uid
    tomb = sandbox_http.get(f"/api/v2/deleted_users/{uid}").json()["deleted_user"]
    assert tomb["name"] == "Permanently Deleted User"
    assert tomb["email"] is None and tomb["phone"] is None
    listed = sandbox_http.get("/api/v2/deleted_users.json").json()
    assert [d["name"] for d in listed["deleted_users"]] == ["Permanently Deleted User"]
    assert sandbox_http.get(f"/api/v2/users/{uid}").status_code == 404
    # A second permanent deletion: nothing left to delete.
    again = sandbox_http.delete(f"/api/v2/deleted_users/{uid}")
    assert again.status_code == 404 and again.json() == NOT_FOUND
    # Nothing personal survives anywhere in the state.
    assert sandbox.state.find_text("pat@example.com") == []


def test_deleted_users_cursor_pagination(sandbox: Any, sandbox_http: httpx.Client) -> None:
    ids = []
    for index in range(5):
        uid = _user(sandbox, f"Gone {index}")["id"]
        sandbox.state.soft_delete_user(uid)
        ids.append(uid)
    seen: list[int] = []
    page = sandbox_http.get("/api/v2/deleted_users", params={"page[size]": 2}).json()
    while True:
        seen += [d["id"] for d in page["deleted_users"]]
        if not page["meta"]["has_more"]:
            break
        page = sandbox_http.get(page["links"]["next"]).json()
    assert seen == ids


def test_destroy_many_and_job_status(sandbox: Any, sandbox_http: httpx.Client) -> None:
    a = _user(sandbox, "Bulk A")["id"]
    b = _user(sandbox, "Bulk B")["id"]
    c = _user(sandbox, "Bulk C")["id"]
    sandbox.state.add_ticket(c, "open")
    response = sandbox_http.delete(
        "/api/v2/users/destroy_many.json", params={"ids": f"{a},{b},{c}"}
    )
    assert response.status_code == 200
    job = response.json()["job_status"]
    assert job["status"] == "queued" and job["total"] == 3
    sandbox.advance(60)
    done = sandbox_http.get(f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
    assert done["status"] == "completed"
    assert [(r["id"], r["success"]) for r in done["results"]] == [(a, True), (b, True), (c, False)]
    assert sandbox_http.get("/api/v2/job_statuses/ffff").status_code == 404


# ---------------------------------------------------------------- compliance statuses


def _compliance(client: httpx.Client, uid: int, **params: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    response = client.get(
        f"/api/v2/users/{uid}/compliance_deletion_statuses.json", params={"page[size]": 4, **params}
    )
    assert response.status_code == 200
    while True:
        body = response.json()
        rows += body["compliance_deletion_statuses"]
        if not body["meta"]["has_more"]:
            return rows
        response = client.get(body["links"]["next"])


def test_compliance_deletion_statuses_progress(sandbox: Any, sandbox_http: httpx.Client) -> None:
    uid = _user(sandbox)["id"]
    assert sandbox_http.get("/api/v2/users/987654/compliance_deletion_statuses").json() == NOT_FOUND
    assert _compliance(sandbox_http, uid) == []
    sandbox.state.soft_delete_user(uid)
    sandbox_http.delete(f"/api/v2/deleted_users/{uid}")
    first = _compliance(sandbox_http, uid)
    assert [(r["application"], r["action"]) for r in first][0] == ("all", "request_deletion")
    assert first[0]["executer_id"] == sandbox.state.admin_id
    assert not any(r["action"] == "complete" for r in first)  # not instant
    sandbox.advance(2 * 3600)
    rows = _compliance(sandbox_http, uid)
    for app in APPLICATIONS:
        actions = [r["action"] for r in rows if r["application"] == app]
        assert actions == ["started", "complete"], app
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps)
    only_chat = _compliance(sandbox_http, uid, application="chat")
    assert {r["application"] for r in only_chat} == {"chat"} and len(only_chat) == 2


def test_compliance_stuck_application(sandbox: Any, sandbox_http: httpx.Client) -> None:
    config = httpx.post(f"{sandbox.url}/_sandbox/config", json={"stuck_applications": ["explore"]})
    assert config.json()["config"]["stuck_applications"] == ["explore"]
    uid = _user(sandbox)["id"]
    sandbox.state.soft_delete_user(uid)
    sandbox.state.permanently_delete_user(uid)
    sandbox.advance(48 * 3600)
    rows = _compliance(sandbox_http, uid)
    explore = [r["action"] for r in rows if r["application"] == "explore"]
    assert explore == ["started"]
    assert [r["action"] for r in rows if r["application"] == "support"] == ["started", "complete"]


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_me_endpoint(sandbox_http: httpx.Client, suffix: str) -> None:
    assert sandbox_http.get(f"/api/v2/users/me{suffix}").json()["user"]["role"] == "admin"


def test_bulk_job_limit(sandbox: Any, sandbox_http: httpx.Client) -> None:
    sandbox.configure({"job_delay": 600})
    for index in range(MAX_QUEUED_JOBS):
        uid = _user(sandbox, f"Queued {index}")["id"]
        assert (
            sandbox_http.delete("/api/v2/users/destroy_many", params={"ids": uid}).status_code
            == 200
        )
    uid = _user(sandbox, "One Too Many")["id"]
    refused = sandbox_http.delete("/api/v2/users/destroy_many", params={"ids": uid})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/plain")
    assert 0 < float(refused.headers["Retry-After"]) <= 1.0  # 600 virtual s / 600
    assert sandbox.state.show_user(uid)["active"] is True
    sandbox.advance(600)
    assert sandbox_http.delete("/api/v2/users/destroy_many", params={"ids": uid}).status_code == 200
