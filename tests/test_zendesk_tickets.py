"""respx tests of the ticket, comment, redaction, organization and attachment methods of
the Zendesk client: paths, bodies, pagination to the end, job slots, scopes, retries, and
that attachment downloads never carry Zendesk credentials to another host."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from zendesk_shapes import BASE, attachment, comment, job, last_page, ticket, user

from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import (
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    ResponseTooLarge,
    ServerError,
    UsageError,
    ValidationError,
)
from privacykit.zendesk import Governor, RateLimits, ZendeskClient, scopes_for

TOKEN = "tok-SUPER-secret-1234567890"
EMAIL = "agent@acme.test"
BASIC = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
CDN = "https://acme.zdusercontent.test"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def wait(self, _cond: object, timeout: float | None) -> None:
        self.now += timeout or 0.0


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=BASE, assert_all_called=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(router: respx.MockRouter, clock: Clock, **kwargs: Any) -> ZendeskClient:
    config = ZendeskConfig(BASE, email=EMAIL, api_token=Secret(TOKEN))
    kwargs.setdefault("governor", Governor(RateLimits.unlimited(), clock=clock, wait=clock.wait))
    return ZendeskClient(
        config,
        transport=httpx.MockTransport(router.handler),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


@pytest.fixture
def client(router: respx.MockRouter, clock: Clock) -> Iterator[ZendeskClient]:
    with make(router, clock) as c:
        yield c


def body(call: Any) -> Any:
    return json.loads(call.request.read())


# -- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["requested", "ccd", "followed", "assigned"])
def test_iter_user_tickets_follows_every_page(
    client: ZendeskClient, router: respx.MockRouter, which: str
) -> None:
    path = f"/api/v2/users/5/tickets/{which}"

    def page(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("page[after]")
        start = 0 if after is None else int(after)
        items = [ticket(i + 1) for i in range(start, min(start + 100, 250))]
        more = start + 100 < 250
        return httpx.Response(
            200,
            json={
                "tickets": items,
                "meta": {"has_more": more, "after_cursor": str(start + 100) if more else None},
            },
        )

    route = router.get(path).mock(side_effect=page)
    ids = [t["id"] for t in client.iter_user_tickets(5, which)]  # type: ignore[arg-type]
    assert ids == list(range(1, 251))
    assert route.call_count == 3


def test_iter_user_tickets_refuses_unknown_relation(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    with pytest.raises(UsageError):
        client.iter_user_tickets(5, "organization")  # type: ignore[arg-type]
    assert router.calls.call_count == 0


def test_requested_tickets_is_the_requested_relation(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.get("/api/v2/users/5/tickets/requested").respond(
        200, json=last_page("tickets", [ticket(3, "closed")])
    )
    assert client.requested_tickets(5) == [ticket(3, "closed")]


def test_show_many_tickets_chunks_by_100(client: ZendeskClient, router: respx.MockRouter) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        ids = [int(i) for i in request.url.params["ids"].split(",")]
        assert len(ids) <= 100
        return httpx.Response(200, json={"tickets": [ticket(i) for i in ids if i != 7]})

    route = router.get("/api/v2/tickets/show_many").mock(side_effect=answer)
    found = client.show_many_tickets(list(range(1, 151)))
    assert len(found) == 149 and 7 not in {t["id"] for t in found}
    assert route.call_count == 2


def test_iter_ticket_comments_all_pages_and_inline_images(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.get("/api/v2/tickets/9/comments", params={"page[after]": "c1"}).respond(
        200, json=last_page("comments", [comment(2, author_id=-1)])
    )
    first = router.get("/api/v2/tickets/9/comments").respond(
        200,
        json={
            "comments": [comment(1, attachments=[attachment(4)])],
            "meta": {"has_more": True, "after_cursor": "c1"},
        },
    )
    got = list(client.iter_ticket_comments(9, include_inline_images=True))
    assert [c["id"] for c in got] == [1, 2]
    assert got[0]["attachments"][0]["id"] == 4
    assert first.calls[0].request.url.params["include_inline_images"] == "true"


def test_iter_deleted_tickets(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/deleted_tickets").respond(
        200, json=last_page("deleted_tickets", [{"id": 3, "deleted_at": "2024-01-01T00:00:00Z"}])
    )
    assert [t["id"] for t in client.iter_deleted_tickets()] == [3]
    assert scopes_for("GET", "/api/v2/deleted_tickets") == ("account", "deleted-tickets-index")


def test_organizations_and_memberships(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/5/organizations").respond(
        200, json=last_page("organizations", [{"id": 70, "name": "Sole Trader Ltd"}])
    )
    router.get("/api/v2/users/5/organization_memberships").respond(
        200,
        json=last_page(
            "organization_memberships", [{"id": 1, "user_id": 5, "organization_id": 70}]
        ),
    )
    assert client.user_organizations(5)[0]["id"] == 70
    assert client.user_organization_memberships(5)[0]["organization_id"] == 70


def test_me(client: ZendeskClient, router: respx.MockRouter) -> None:
    route = router.get("/api/v2/users/me").respond(200, json={"user": user(1, role="admin")})
    assert client.me()["role"] == "admin"
    assert route.calls.last.request.headers["Authorization"] == f"Basic {BASIC}"


# -- changing ---------------------------------------------------------------------------------


def test_update_ticket_puts_fields_and_is_retried(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    route = router.put("/api/v2/tickets/9").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"ticket": ticket(9, "closed")})]
    )
    assert client.update_ticket(9, {"status": "closed"})["status"] == "closed"
    assert route.call_count == 2
    assert body(route.calls.last) == {"ticket": {"status": "closed"}}
    assert scopes_for("PUT", "/api/v2/tickets/9") == (
        "account",
        "tickets-update",
        "ticket-update:9",
    )


def test_update_closed_ticket_is_a_validation_error(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.put("/api/v2/tickets/9").respond(422, json={"error": "RecordInvalid"})
    with pytest.raises(ValidationError):
        client.update_ticket(9, {"status": "open"})
    with pytest.raises(UsageError):
        client.update_ticket(9, {})


def test_soft_delete_ticket_204_and_lost_answer(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.delete("/api/v2/tickets/3").respond(204)
    assert client.soft_delete_ticket(3) is None
    route = router.delete("/api/v2/tickets/4").mock(
        side_effect=[httpx.ReadError("dropped"), httpx.Response(404, json={"error": "x"})]
    )
    assert client.soft_delete_ticket(4) is None  # the lost attempt did it
    assert route.call_count == 2
    router.delete("/api/v2/tickets/5").respond(404, json={"error": "RecordNotFound"})
    with pytest.raises(NotFoundError):
        client.soft_delete_ticket(5)
    assert scopes_for("DELETE", "/api/v2/tickets/3") == ("account", "tickets-delete")


@pytest.mark.parametrize(
    ("method_name", "path", "scope"),
    [
        ("soft_delete_tickets", "/api/v2/tickets/destroy_many", None),
        (
            "permanently_delete_tickets",
            "/api/v2/deleted_tickets/destroy_many",
            "deleted-tickets-destroy-many",
        ),
    ],
)
def test_bulk_ticket_deletions_queue_jobs(
    client: ZendeskClient,
    router: respx.MockRouter,
    method_name: str,
    path: str,
    scope: str | None,
) -> None:
    route = router.delete(path).respond(200, json={"job_status": job("J1")})
    router.get("/api/v2/job_statuses/J1").respond(
        200, json={"job_status": job("J1", "completed", results=[{"id": 1, "success": True}])}
    )
    method = getattr(client, method_name)
    assert method([1, 2, 3])["id"] == "J1"
    assert route.calls.last.request.url.params["ids"] == "1,2,3"
    assert client.governor.snapshot()["jobs"]["queued"] == 1  # holds one of the 30 slots
    assert client.show_job_status("J1")["status"] == "completed"
    assert client.governor.snapshot()["jobs"]["queued"] == 0
    assert "jobs" in scopes_for("DELETE", path)
    if scope:
        assert scope in scopes_for("DELETE", path)
    with pytest.raises(UsageError):
        method(list(range(1, 102)))
    with pytest.raises(UsageError):
        method([])


@pytest.mark.parametrize(
    "failure", [httpx.Response(500), httpx.Response(503), httpx.ReadError("dropped")]
)
def test_bulk_deletions_are_never_retried_blindly(
    client: ZendeskClient, router: respx.MockRouter, failure: Any, clock: Clock
) -> None:
    route = router.delete("/api/v2/deleted_tickets/destroy_many")
    if isinstance(failure, Exception):
        route.mock(side_effect=failure)
    else:
        route.mock(return_value=failure)
    with pytest.raises((ServerError, NetworkError)):
        client.permanently_delete_tickets([1])
    assert route.call_count == 1 and clock.sleeps == []


def test_show_many_job_statuses(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.delete("/api/v2/tickets/destroy_many").respond(200, json={"job_status": job("A")})
    client.soft_delete_tickets([1])
    route = router.get("/api/v2/job_statuses/show_many").respond(
        200, json={"job_statuses": [job("A", "completed"), job("B", "working")]}
    )
    jobs = client.show_many_job_statuses(["A", "B", "C"])
    assert [j["id"] for j in jobs] == ["A", "B"]  # C expired: absent, not invented
    assert route.calls.last.request.url.params["ids"] == "A,B,C"
    assert client.governor.snapshot()["jobs"]["queued"] == 0


def test_redactions(client: ZendeskClient, router: respx.MockRouter) -> None:
    new = router.put("/api/v2/comment_redactions/77").respond(
        200, json={"comment": comment(77, html_body="<p>call ▇▇▇</p>")}
    )
    legacy = router.put("/api/v2/tickets/9/comments/77/redact").respond(
        200, json={"comment": comment(77)}
    )
    file = router.put("/api/v2/tickets/9/comments/77/attachments/5/redact").respond(
        200, json={"attachment": attachment(5, file_name="redacted.txt")}
    )
    html = "<p>call <redact>555-0100</redact></p>"
    assert client.redact_comment(9, 77, html)["id"] == 77
    assert body(new.calls.last) == {"ticket_id": 9, "html_body": html}
    assert client.redact_comment_legacy(9, "77", "555-0100")["id"] == 77
    assert body(legacy.calls.last) == {"text": "555-0100"}
    assert client.redact_attachment(9, 77, 5)["file_name"] == "redacted.txt"
    assert file.called
    with pytest.raises(UsageError):
        client.redact_comment(9, 77, "")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.show_many_tickets("1,2"),
        lambda c: c.iter_ticket_comments("9/../1"),
        lambda c: c.update_ticket(-3, {"status": "closed"}),
        lambda c: c.soft_delete_ticket(True),
        lambda c: c.redact_comment(9, "x", "<redact>a</redact>"),
        lambda c: c.redact_attachment(9, 1, 0),
        lambda c: c.permanently_delete_tickets("123"),
    ],
)
def test_bad_ticket_input_builds_no_request(
    client: ZendeskClient, router: respx.MockRouter, call: Any
) -> None:
    with pytest.raises(UsageError):
        result = call(client)
        if hasattr(result, "__next__"):
            next(result)
    assert router.calls.call_count == 0


def test_ticket_answers_are_validated(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/5/tickets/ccd").respond(
        200, json={"tickets": [{"id": 1, "status": "open"}], "meta": {"has_more": False}}
    )
    with pytest.raises(MalformedResponseError) as info:
        list(client.iter_user_tickets(5, "ccd"))
    assert info.value.endpoint == "GET /api/v2/users/{id}/tickets/ccd"
    assert "tickets[0].requester_id: missing" in str(info.value)


# -- governor learns the ticket endpoints' budgets --------------------------------------------


def test_unknown_endpoint_header_is_learned_for_its_route(
    router: respx.MockRouter, clock: Clock
) -> None:
    governor = Governor(RateLimits(), clock=clock, wait=clock.wait)
    headers = {
        "ratelimit-limit": "700",
        "ratelimit-remaining": "600",
        "ratelimit-reset": "30",
        "Zendesk-RateLimit-tickets-destroy-custom": "total=2; remaining=0; resets=40",
    }
    router.delete("/api/v2/tickets/3").respond(204, headers=headers)
    router.delete("/api/v2/tickets/4").respond(204, headers=headers)
    with make(router, clock, governor=governor, max_wait=10) as c:
        c.soft_delete_ticket(3)
        routes = governor.snapshot()["routes"]
        assert routes == {"DELETE /api/v2/tickets/{id}": ["tickets-destroy-custom"]}
        # The next deletion now spends that budget too: it has none left for 40 s, which
        # is past max_wait, so the run stops at once instead of earning a 429.
        with pytest.raises(Exception, match="come back"):
            c.soft_delete_ticket(4)
    assert len(router.calls) == 1


# -- attachments ------------------------------------------------------------------------------


def test_download_from_another_host_sends_no_credentials(
    client: ZendeskClient, router: respx.MockRouter, tmp_path: Path
) -> None:
    cdn = router.get(f"{CDN}/a/1/f.txt").respond(
        200, content=b"hello file", headers={"content-type": "text/plain"}
    )
    got = client.download_attachment(f"{CDN}/a/1/f.txt?token=x", tmp_path / "f.txt", max_bytes=100)
    assert got.size == 10 and got.credentials_sent is False
    assert got.content_type == "text/plain"
    assert (tmp_path / "f.txt").read_bytes() == b"hello file"
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o600
    sent = cdn.calls.last.request.headers
    assert "authorization" not in {k.lower() for k in sent}
    assert TOKEN not in str(sent) and BASIC not in str(sent)


def test_download_from_own_host_sends_credentials_but_not_across_redirect(
    client: ZendeskClient, router: respx.MockRouter, tmp_path: Path
) -> None:
    own = router.get("/attachments/token/abc/").respond(
        302, headers={"Location": f"{CDN}/a/1/f.txt?sig=1"}
    )
    cdn = router.get(f"{CDN}/a/1/f.txt").respond(200, content=b"data")
    got = client.download_attachment(
        f"{BASE}/attachments/token/abc/?name=f.txt", tmp_path / "f", max_bytes=10
    )
    assert got.credentials_sent is False and got.size == 4
    assert own.calls.last.request.headers["Authorization"] == f"Basic {BASIC}"
    assert "authorization" not in {k.lower() for k in cdn.calls.last.request.headers}


def test_download_own_host_direct_uses_credentials(
    client: ZendeskClient, router: respx.MockRouter, tmp_path: Path
) -> None:
    router.get("/attachments/token/abc/").respond(200, content=b"x" * 5)
    got = client.download_attachment(f"{BASE}/attachments/token/abc/", tmp_path / "g", max_bytes=5)
    assert got.credentials_sent is True and got.size == 5


@pytest.mark.parametrize("declared", [True, False])
def test_download_over_the_cap_is_not_kept(
    client: ZendeskClient, router: respx.MockRouter, tmp_path: Path, declared: bool
) -> None:
    def big(request: httpx.Request) -> httpx.Response:
        chunks = [b"x" * 64 for _ in range(4)]
        if declared:
            return httpx.Response(200, content=b"".join(chunks))
        return httpx.Response(200, stream=httpx.ByteStream(b"".join(chunks)))

    router.get(f"{CDN}/big").mock(side_effect=big)
    with pytest.raises(ResponseTooLarge) as info:
        client.download_attachment(f"{CDN}/big", tmp_path / "big", max_bytes=100)
    assert info.value.max_bytes == 100
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://acme.zendesk.com/x",
        "http://acme.zendesk.com/x",  # plain http only to loopback (the sandbox)
        "https://user:pw@cdn.test/x",
        "/relative/path",
        "https:///nohost",
    ],
)
def test_download_refuses_odd_urls(
    client: ZendeskClient, router: respx.MockRouter, tmp_path: Path, url: str
) -> None:
    with pytest.raises(UsageError):
        client.download_attachment(url, tmp_path / "x", max_bytes=10)
    assert router.calls.call_count == 0


def test_download_errors_never_show_the_url(
    client: ZendeskClient, router: respx.MockRouter, tmp_path: Path
) -> None:
    router.get(f"{CDN}/secret-token-path").respond(404)
    with pytest.raises(NotFoundError) as info:
        client.download_attachment(f"{CDN}/secret-token-path", tmp_path / "x", max_bytes=10)
    assert "secret-token-path" not in str(info.value)
    assert not (tmp_path / "x").exists()
