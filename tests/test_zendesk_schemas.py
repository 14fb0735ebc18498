"""Every answer a decision depends on is validated: a malformed 2xx body raises
MalformedResponseError naming the endpoint and the problem, never quoting the body, and a
page that does not say whether more follow is never read as the end of the list."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from zendesk_shapes import BASE, comment, deleted_user, identity, job, profile, ticket, user

from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import MalformedResponseError, ZendeskError
from privacykit.zendesk import SCHEMAS, Governor, RateLimits, ZendeskClient, endpoint_for
from privacykit.zendesk.schemas import Nullable, check

SECRET_NAME = "Jane Q. Subject"
SECRET_MAIL = "jane.q@example.org"


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=BASE, assert_all_called=False)


@pytest.fixture
def client(router: respx.MockRouter) -> Iterator[ZendeskClient]:
    config = ZendeskConfig(BASE, email="a@acme.test", api_token=Secret("t0ken-xyz"))
    with ZendeskClient(
        config,
        transport=httpx.MockTransport(router.handler),
        governor=Governor(RateLimits.unlimited()),
        sleep=lambda _s: None,
    ) as c:
        yield c


def page(key: str, items: Any) -> dict[str, Any]:
    return {key: items, "meta": {"has_more": False}}


# (method, path, how to call it, a well-formed answer)
ENDPOINTS: list[tuple[str, str, Callable[[ZendeskClient], Any], dict[str, Any]]] = [
    ("GET", "/api/v2/users/me", lambda c: c.me(), {"user": user(1)}),
    ("GET", "/api/v2/users/5", lambda c: c.show_user(5), {"user": user(5)}),
    (
        "GET",
        "/api/v2/users/show_many",
        lambda c: c.show_many_users([5]),
        {"users": [user(5)]},
    ),
    (
        "GET",
        "/api/v2/users/search",
        lambda c: c.search_users(query="email:x@y.z"),
        {"users": [user(5)], "next_page": None},
    ),
    (
        "GET",
        "/api/v2/users/5/identities",
        lambda c: c.user_identities(5),
        page("identities", [identity(1)]),
    ),
    (
        "GET",
        "/api/v2/users/5/profiles",
        lambda c: c.profiles_for_user(5),
        {"profiles": [profile("P1", user_id="5")]},
    ),
    (
        "GET",
        "/api/v2/user_profiles",
        lambda c: c.profile_by_identifier("shop:customer:email:x@y.z"),
        {"profile": profile("P1")},
    ),
    (
        "GET",
        "/api/v2/deleted_users/5",
        lambda c: c.show_deleted_user(5),
        {"deleted_user": deleted_user(5)},
    ),
    (
        "GET",
        "/api/v2/deleted_users",
        lambda c: list(c.iter_deleted_users()),
        page("deleted_users", [deleted_user(5)]),
    ),
    (
        "GET",
        "/api/v2/users/5/compliance_deletion_statuses",
        lambda c: c.compliance_deletion_statuses(5),
        page("compliance_deletion_statuses", [{"application": "all", "action": "started"}]),
    ),
    (
        "GET",
        "/api/v2/job_statuses/J1",
        lambda c: c.show_job_status("J1"),
        {"job_status": job("J1")},
    ),
    (
        "GET",
        "/api/v2/job_statuses/show_many",
        lambda c: c.show_many_job_statuses(["J1"]),
        {"job_statuses": [job("J1")]},
    ),
    (
        "GET",
        "/api/v2/users/5/tickets/requested",
        lambda c: c.requested_tickets(5),
        page("tickets", [ticket(1)]),
    ),
    (
        "GET",
        "/api/v2/tickets/show_many",
        lambda c: c.show_many_tickets([1]),
        {"tickets": [ticket(1)]},
    ),
    (
        "GET",
        "/api/v2/tickets/1/comments",
        lambda c: list(c.iter_ticket_comments(1)),
        page("comments", [comment(1)]),
    ),
    (
        "DELETE",
        "/api/v2/users/5",
        lambda c: c.soft_delete_user(5),
        {"user": user(5, active=False)},
    ),
    (
        "DELETE",
        "/api/v2/deleted_users/5",
        lambda c: c.permanently_delete_user(5),
        {"deleted_user": deleted_user(5)},
    ),
    (
        "DELETE",
        "/api/v2/deleted_tickets/destroy_many",
        lambda c: c.permanently_delete_tickets([1]),
        {"job_status": job("J2")},
    ),
]
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


def test_every_endpoint_has_a_schema() -> None:
    for method, path, _, _ in ENDPOINTS:
        assert endpoint_for(method, path) in SCHEMAS


@pytest.mark.parametrize(("method", "path", "call", "good"), ENDPOINTS, ids=IDS)
def test_well_formed_answers_pass(
    client: ZendeskClient,
    router: respx.MockRouter,
    method: str,
    path: str,
    call: Callable[[ZendeskClient], Any],
    good: dict[str, Any],
) -> None:
    router.route(method=method, path=path).respond(200, json=good)
    assert call(client) is not None


def _mutations(good: dict[str, Any]) -> list[tuple[str, Any]]:
    """Ways to break a good answer, each as (name, body)."""
    key = next(iter(good))
    value = good[key]
    out: list[tuple[str, Any]] = [
        ("empty object", {}),
        ("null records", {**good, key: None}),
        ("a list at the top", [good]),
        ("a string", "ok"),
    ]
    if isinstance(value, list):
        out.append(("object instead of array", {**good, key: value[0]}))
        out.append(("string instead of array", {**good, key: "[]"}))
        record = value[0]
    else:
        out.append(("array instead of object", {**good, key: [value]}))
        record = value
    field = "id" if "id" in record else next(iter(record))
    wrong = "x 1" if field == "id" else ["x"]
    out.append((f"{field} of the wrong type", _with(good, key, {**record, field: wrong})))
    out.append((f"{field} as a float", _with(good, key, {**record, field: 1.5})))
    out.append(
        (f"{field} missing", _with(good, key, {k: v for k, v in record.items() if k != field}))
    )
    return out


def _with(good: dict[str, Any], key: str, record: dict[str, Any]) -> dict[str, Any]:
    value = good[key]
    return {**good, key: [record] if isinstance(value, list) else record}


CASES = [
    (method, path, call, name, bad)
    for method, path, call, good in ENDPOINTS
    for name, bad in _mutations(good)
]


@pytest.mark.parametrize(
    ("method", "path", "call", "name", "bad"),
    CASES,
    ids=[f"{m} {p}: {n}" for m, p, _, n, _ in CASES],
)
def test_malformed_answers_raise_naming_the_endpoint(
    client: ZendeskClient,
    router: respx.MockRouter,
    method: str,
    path: str,
    call: Callable[[ZendeskClient], Any],
    name: str,
    bad: Any,
) -> None:
    router.route(method=method, path=path).respond(200, json=bad)
    with pytest.raises(MalformedResponseError) as info:
        call(client)
    assert info.value.endpoint == endpoint_for(method, path)
    assert str(info.value).startswith(info.value.endpoint + ": malformed answer: ")
    assert client.stats.malformed == 1


@pytest.mark.parametrize(("method", "path", "call", "good"), ENDPOINTS, ids=IDS)
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Down for maintenance</body></html>", "text/html; charset=utf-8"),
        (b"<html><body>Down for maintenance</body></html>", "application/json"),
        (b"", "application/json"),
        (b'{"users": [', "application/json"),
    ],
    ids=["html", "html-labelled-json", "empty", "truncated"],
)
def test_non_json_200_is_malformed(
    client: ZendeskClient,
    router: respx.MockRouter,
    method: str,
    path: str,
    call: Callable[[ZendeskClient], Any],
    good: dict[str, Any],
    body: bytes,
    content_type: str,
) -> None:
    router.route(method=method, path=path).respond(
        200, content=body, headers={"content-type": content_type}
    )
    with pytest.raises(MalformedResponseError) as info:
        call(client)
    assert info.value.endpoint == endpoint_for(method, path)
    assert "maintenance" not in str(info.value)


def test_message_never_quotes_the_body(client: ZendeskClient, router: respx.MockRouter) -> None:
    bad = {"users": [{"id": SECRET_MAIL, "role": "end-user", "active": True, "name": SECRET_NAME}]}
    router.get("/api/v2/users/search").respond(200, json={**bad, "next_page": None})
    with pytest.raises(MalformedResponseError) as info:
        client.search_users(query=f"email:{SECRET_MAIL}")
    text = f"{info.value} {info.value!r} {info.value.args}"
    assert SECRET_MAIL not in text and SECRET_NAME not in text and "jane" not in text
    assert "users[0].id: expected an integer id, got a string" in str(info.value)


def test_issue_12_examples(client: ZendeskClient, router: respx.MockRouter) -> None:
    """The answers issue 12 reports were read as "no data found"."""
    router.get("/api/v2/users/search").respond(200, json={"users": None, "next_page": None})
    with pytest.raises(MalformedResponseError, match=r"users: expected an array, got null"):
        client.search_users(query="email:a@b.c")
    router.get("/api/v2/users/5/identities").respond(
        200, json={"identities": identity(1), "meta": {"has_more": False}}
    )
    with pytest.raises(MalformedResponseError, match="identities: expected an array"):
        client.user_identities(5)
    router.get("/api/v2/users/5/profiles").respond(200, json={"profiles": "none"})
    with pytest.raises(MalformedResponseError, match="profiles: expected an array, got a string"):
        client.profiles_for_user(5)
    router.get("/api/v2/users/6").respond(200, json={"user": user(6, role=None)})
    with pytest.raises(MalformedResponseError, match=r"user.role: expected a string, got null"):
        client.show_user(6)


# -- pagination never concludes "end of list" from silence ------------------------------------


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"users": [user(1)]}, "no next_page"),
        ({"users": [user(1)], "next_page": 2}, "next_page is neither a URL nor null"),
        ({"users": [user(1)], "next_page": f"{BASE}/api/v2/users/search"}, "no page number"),
    ],
)
def test_offset_page_must_say_what_follows(
    client: ZendeskClient, router: respx.MockRouter, answer: dict[str, Any], problem: str
) -> None:
    router.get("/api/v2/users/search").respond(200, json=answer)
    with pytest.raises(MalformedResponseError, match=problem) as info:
        client.search_users(query="x")
    assert info.value.endpoint == "GET /api/v2/users/search"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"identities": []}, "no pagination fields"),
        ({"identities": [], "meta": {}}, "no pagination fields"),
        ({"identities": [], "meta": {"has_more": "false"}}, "has_more is not a boolean"),
        ({"identities": [], "meta": {"has_more": True}}, "no cursor"),
        ({"identities": [], "links": {"next": f"{BASE}/x?page=2"}}, "no page"),
        ({"meta": {"has_more": False}}, "identities: missing"),
        ({"identities": [1, 2], "meta": {"has_more": False}}, "expected an object"),
    ],
)
def test_cursor_page_must_say_what_follows(
    client: ZendeskClient, router: respx.MockRouter, answer: dict[str, Any], problem: str
) -> None:
    router.get("/api/v2/users/5/identities").respond(200, json=answer)
    with pytest.raises(MalformedResponseError, match=problem) as info:
        client.user_identities(5)
    assert info.value.endpoint == "GET /api/v2/users/{id}/identities"


def test_a_malformed_second_page_fails_the_whole_list(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.get("/api/v2/users/5/tickets/requested", params={"page[after]": "c"}).respond(
        200, json={"tickets": [ticket(2)]}
    )
    router.get("/api/v2/users/5/tickets/requested").respond(
        200, json={"tickets": [ticket(1)], "meta": {"has_more": True, "after_cursor": "c"}}
    )
    with pytest.raises(ZendeskError):
        client.requested_tickets(5)


# -- the checker itself -----------------------------------------------------------------------


def test_check_spec_language() -> None:
    spec = {"id": "id", "n?": "count?", "tags": Nullable(["str"]), "u?": "idstr"}
    assert check(spec, {"id": 1, "tags": None}) is None
    assert check(spec, {"id": 1, "tags": ["a"], "u": "12", "n": None}) is None
    assert check(spec, {"id": True, "tags": []}) == "id: expected an integer id, got a boolean"
    assert check(spec, {"id": 0, "tags": []}) == "id: expected an integer id, got a number"
    assert check(spec, {"id": 2**63, "tags": []}) is not None
    assert check(spec, {"id": 1, "tags": [1]}) == "tags[0]: expected a string, got a number"
    assert check(spec, {"id": 1, "tags": [], "u": "-3"}) is not None
    assert check(spec, {"id": 1, "tags": [], "n": -1}) is not None
    assert check(spec, {"tags": []}) == "id: missing"
