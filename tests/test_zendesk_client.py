"""Focused respx unit tests of the Zendesk client: error mapping, retries, pagination,
redaction of secrets and personal data. No network, no real sleeps (sleep is injected)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from zendesk_shapes import deleted_user, identity, job, profile, ticket, user

from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import (
    AuthenticationError,
    ForbiddenError,
    HTTPStatusError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UsageError,
    ValidationError,
    ZendeskError,
)
from privacykit.zendesk import Governor, RateLimits, ZendeskClient, redact_url, scopes_for

BASE = "https://acme.zendesk.com"
TOKEN = "tok-SUPER-secret-1234567890"
EMAIL = "agent@acme.test"
BASIC = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
SUBJECT_EMAIL = "jane.subject@example.com"


class Sleeps:
    """An injected sleep and the clock it moves: records every wait instead of waiting.
    The governor runs on the same clock, so its 429 pause ends when the sleep does."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def governor(self, limits: RateLimits | None = None) -> Governor:
        def wait(_cond: object, timeout: float | None) -> None:
            self.now += timeout or 0.0

        return Governor(limits or RateLimits.unlimited(), clock=self.clock, wait=wait)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    router = respx.MockRouter(base_url=BASE, assert_all_called=False)
    yield router


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(
    router: respx.MockRouter, sleeps: Sleeps, *, oauth: bool = False, **kwargs: Any
) -> ZendeskClient:
    if oauth:
        config = ZendeskConfig(BASE, oauth_token=Secret(TOKEN))
    else:
        config = ZendeskConfig(BASE, email=EMAIL, api_token=Secret(TOKEN))
    kwargs.setdefault("governor", sleeps.governor())
    return ZendeskClient(
        config, transport=httpx.MockTransport(router.handler), sleep=sleeps, **kwargs
    )


@pytest.fixture
def client(router: respx.MockRouter, sleeps: Sleeps) -> Iterator[ZendeskClient]:
    with make_client(router, sleeps) as c:
        yield c


def rate_limited(retry_after: str = "7") -> httpx.Response:
    return httpx.Response(
        429,
        text="Number of allowed API requests per minute exceeded",
        headers={"Retry-After": retry_after, "Content-Type": "text/plain"},
    )


# -- auth ---------------------------------------------------------------------------------


def test_api_token_basic_auth(client: ZendeskClient, router: respx.MockRouter) -> None:
    route = router.get("/api/v2/users/7").respond(200, json={"user": user(7)})
    assert client.show_user(7) == user(7)
    assert route.calls.last.request.headers["Authorization"] == f"Basic {BASIC}"


def test_oauth_bearer(router: respx.MockRouter, sleeps: Sleeps) -> None:
    route = router.get("/api/v2/users/7").respond(200, json={"user": user(7)})
    with make_client(router, sleeps, oauth=True) as c:
        c.show_user(7)
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_base_url_with_path_prefix(router: respx.MockRouter, sleeps: Sleeps) -> None:
    route = respx.MockRouter(assert_all_called=False)
    hit = route.get("https://proxy.test/zd/api/v2/users/3").respond(200, json={"user": user(3)})
    config = ZendeskConfig("https://proxy.test/zd", email=EMAIL, api_token=Secret(TOKEN))
    with ZendeskClient(config, transport=httpx.MockTransport(route.handler), sleep=sleeps) as c:
        assert c.show_user(3)["id"] == 3
    assert hit.called


# -- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (400, ValidationError),
        (422, ValidationError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_error(
    router: respx.MockRouter, sleeps: Sleeps, status: int, error: type[HTTPStatusError]
) -> None:
    router.get("/api/v2/users/5").respond(
        status, json={"error": "RecordInvalid", "description": f"Email {SUBJECT_EMAIL} taken"}
    )
    with make_client(router, sleeps, max_attempts=2) as c, pytest.raises(error) as info:
        c.show_user(5)
    message = str(info.value)
    assert "GET /api/v2/users/5" in message
    assert str(status) in message
    assert SUBJECT_EMAIL not in message  # the body can echo personal data: never quoted
    assert info.value.status_code == status
    assert info.value.body["error"] == "RecordInvalid"


def test_validation_error_carries_body(client: ZendeskClient, router: respx.MockRouter) -> None:
    body = {"error": "RecordInvalid", "details": {"base": [{"description": "open tickets"}]}}
    router.delete("/api/v2/users/5").respond(422, json=body)
    with pytest.raises(ValidationError) as info:
        client.soft_delete_user(5)
    assert info.value.body == body
    assert "(RecordInvalid)" in str(info.value)


def test_error_body_that_does_not_parse(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/5").respond(
        404, text="<html>nope</html>", headers={"Content-Type": "text/html"}
    )
    with pytest.raises(NotFoundError) as info:
        client.show_user(5)
    assert info.value.body == "<html>nope</html>"


def test_success_that_is_not_json(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/5").respond(200, text="<html>maintenance</html>")
    with pytest.raises(ZendeskError, match="not JSON"):
        client.show_user(5)


def test_redirect_is_not_followed(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/5").respond(302, headers={"Location": "https://evil.test/"})
    with pytest.raises(HTTPStatusError) as info:
        client.show_user(5)
    assert info.value.status_code == 302


# -- 429 ------------------------------------------------------------------------------------


def test_429_text_plain_retried_after_exactly_retry_after(
    client: ZendeskClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get("/api/v2/users/9").mock(
        side_effect=[
            rate_limited("7"),
            rate_limited("0.25"),
            httpx.Response(200, json={"user": user(9)}),
        ]
    )
    assert client.show_user(9)["id"] == 9
    assert route.call_count == 3
    assert sleeps.calls == [7.0, 0.25]
    stats = client.stats.snapshot()
    assert stats["rate_limited"] == 2 and stats["retries"] == 2 and stats["requests"] == 3


def test_429_is_retried_even_for_non_idempotent_requests(
    client: ZendeskClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.post("/api/v2/users").mock(
        side_effect=[rate_limited("3"), httpx.Response(201, json={"user": user(1)})]
    )
    assert client.create_user({"name": "x"})["id"] == 1
    assert route.call_count == 2 and sleeps.calls == [3.0]


def test_429_gives_up_after_bound_with_retry_after(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get("/api/v2/users/9").mock(return_value=rate_limited("2"))
    with make_client(router, sleeps, max_rate_limited=3) as c:
        with pytest.raises(RateLimitedError) as info:
            c.show_user(9)
    assert info.value.retry_after == 2.0
    assert route.call_count == 4 and sleeps.calls == [2.0, 2.0, 2.0]
    assert "Number of allowed" not in str(info.value)


def test_429_pauses_the_governor_for_every_thread(router: respx.MockRouter) -> None:
    sleeps = Sleeps()
    governor = sleeps.governor(RateLimits())
    router.get("/api/v2/users/9").mock(return_value=rate_limited("30"))
    c = make_client(router, sleeps, governor=governor, max_rate_limited=0)
    with c, pytest.raises(RateLimitedError):
        c.show_user(9)
    assert governor.try_acquire(["account"]) is None  # paused for all callers
    sleeps.now += 29.99
    assert governor.try_acquire(["account"]) is None
    sleeps.now += 0.01
    assert governor.try_acquire(["account"]) is not None


def test_429_without_retry_after_uses_reset_header(
    client: ZendeskClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    router.get("/api/v2/users/9").mock(
        side_effect=[
            httpx.Response(
                429, text="slow down", headers={"ratelimit-remaining": "0", "ratelimit-reset": "4"}
            ),
            httpx.Response(200, json={"user": user(9)}),
        ]
    )
    client.show_user(9)
    assert sleeps.calls == [4.0]


# -- retries of 5xx and network errors -------------------------------------------------------


def test_get_retried_on_5xx_with_backoff(
    client: ZendeskClient, router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get("/api/v2/users/4").mock(
        side_effect=[
            httpx.Response(503, text="<html>down</html>"),
            httpx.Response(502, json={"error": "bad gateway"}),
            httpx.Response(200, json={"user": user(4)}),
        ]
    )
    assert client.show_user(4)["id"] == 4
    assert route.call_count == 3
    assert len(sleeps.calls) == 2
    # exponential with jitter: 0.25 * 2**n + U(0, 0.25)
    assert 0.25 <= sleeps.calls[0] <= 0.5 and 0.5 <= sleeps.calls[1] <= 0.75


def test_get_gives_up_after_max_attempts(router: respx.MockRouter, sleeps: Sleeps) -> None:
    route = router.get("/api/v2/users/4").respond(500)
    with make_client(router, sleeps, max_attempts=3) as c, pytest.raises(ServerError):
        c.show_user(4)
    assert route.call_count == 3 and len(sleeps.calls) == 2


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ReadError("reset"), httpx.RemoteProtocolError("x")]
)
def test_get_retried_on_network_errors(
    client: ZendeskClient, router: respx.MockRouter, exc: Exception
) -> None:
    route = router.get("/api/v2/users/4").mock(
        side_effect=[exc, httpx.Response(200, json={"user": user(4)})]
    )
    assert client.show_user(4)["id"] == 4
    assert route.call_count == 2
    assert client.stats.network_errors == 1


def test_network_error_maps_to_network_error(router: respx.MockRouter, sleeps: Sleeps) -> None:
    router.get("/api/v2/users/4").mock(side_effect=httpx.ReadTimeout("timed out"))
    with make_client(router, sleeps, max_attempts=2) as c, pytest.raises(NetworkError) as info:
        c.show_user(4)
    assert "GET /api/v2/users/4" in str(info.value) and "ReadTimeout" in str(info.value)


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/api/v2/users", lambda c: c.create_user({"name": "x"})),
        ("DELETE", "/api/v2/users/5", lambda c: c.soft_delete_user(5)),
        ("DELETE", "/api/v2/deleted_users/5", lambda c: c.permanently_delete_user(5)),
    ],
)
@pytest.mark.parametrize(
    "failure", [httpx.Response(500), httpx.Response(503), httpx.ReadError("dropped")]
)
def test_non_idempotent_not_retried(
    client: ZendeskClient,
    router: respx.MockRouter,
    sleeps: Sleeps,
    method: str,
    path: str,
    call: Any,
    failure: Any,
) -> None:
    route = router.route(method=method, path=path)
    if isinstance(failure, Exception):
        route.mock(side_effect=failure)
    else:
        route.mock(return_value=failure)
    with pytest.raises((ServerError, NetworkError)):
        call(client)
    assert route.call_count == 1
    assert sleeps.calls == []


def test_connection_never_made_is_retried_even_for_post(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    route = router.post("/api/v2/users").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json={"user": user(2)})]
    )
    assert client.create_user({"name": "x"})["id"] == 2
    assert route.call_count == 2


def test_put_profile_retried_on_5xx(client: ZendeskClient, router: respx.MockRouter) -> None:
    route = router.put("/api/v2/user_profiles/P1").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json={"profile": profile("P1")})]
    )
    assert client.replace_profile("P1", {"identifiers": []})["id"] == "P1"
    assert route.call_count == 2
    assert route.calls.last.request.read() == b'{"profile":{"identifiers":[]}}'


def test_delete_profile_404_after_lost_answer_counts_as_done(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    route = router.delete("/api/v2/user_profiles/P1").mock(
        side_effect=[httpx.ReadError("dropped"), httpx.Response(404, json={"errors": []})]
    )
    assert client.delete_profile("P1") is None
    assert route.call_count == 2


def test_delete_profile_404_first_time_raises(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.delete("/api/v2/user_profiles/P1").respond(404, json={"errors": []})
    with pytest.raises(NotFoundError):
        client.delete_profile("P1")


def test_delete_profile_204(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.delete("/api/v2/user_profiles/P1").respond(204)
    assert client.delete_profile("P1") is None


# -- pagination -----------------------------------------------------------------------------


def test_cursor_pagination_follows_after_cursor(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("page[after]")
        assert request.url.params.get("page[size]") == "100"
        if after is None:
            return httpx.Response(
                200,
                json={
                    "deleted_users": [deleted_user(1), deleted_user(2)],
                    "meta": {"has_more": True, "after_cursor": "c1"},
                    "links": {"next": f"{BASE}/api/v2/deleted_users?page[after]=c1"},
                },
            )
        if after == "c1":
            return httpx.Response(
                200,
                json={
                    "deleted_users": [deleted_user(3)],
                    "meta": {"has_more": False, "after_cursor": "c2"},
                    "links": {"next": None},
                },
            )
        raise AssertionError(after)

    router.get("/api/v2/deleted_users").mock(side_effect=page)
    assert [u["id"] for u in client.iter_deleted_users()] == [1, 2, 3]


def test_cursor_pagination_from_links_next_only(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.get("/api/v2/users/5/identities", params={"page[after]": "n2"}).respond(
        200, json={"identities": [identity(12)], "links": {"next": None}}
    )
    router.get("/api/v2/users/5/identities").respond(
        200,
        json={
            "identities": [identity(11)],
            # a next link pointing elsewhere: only its cursor is used, never the host
            "links": {"next": "https://evil.test/steal?page%5Bafter%5D=n2&x=1"},
        },
    )
    assert [i["id"] for i in client.user_identities(5)] == [11, 12]
    assert all(call.request.url.host == "acme.zendesk.com" for call in router.calls)


def test_profile_events_links_array(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/user_profiles/P1/events", params={"page[after]": "e2"}).respond(
        200, json={"events": [{"id": "b"}], "links": [{"next": None}], "meta": {"has_more": False}}
    )
    router.get("/api/v2/user_profiles/P1/events").respond(
        200,
        json={
            "events": [{"id": "a"}],
            "links": [{"next": f"{BASE}/api/v2/user_profiles/P1/events?page[after]=e2"}],
        },
    )
    assert [e["id"] for e in client.iter_profile_events("P1")] == ["a", "b"]


def test_cursor_repeated_is_an_error(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/deleted_users").respond(
        200,
        json={
            "deleted_users": [deleted_user(1)],
            "meta": {"has_more": True, "after_cursor": "same"},
        },
    )
    with pytest.raises(ZendeskError, match="repeated a page"):
        list(client.iter_deleted_users())


def test_offset_pagination_search(client: ZendeskClient, router: respx.MockRouter) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        assert request.url.params["query"] == f"email:{SUBJECT_EMAIL}"
        number = request.url.params.get("page", "1")
        if number == "1":
            return httpx.Response(
                200,
                json={
                    "users": [user(1)],
                    "next_page": f"{BASE}/api/v2/users/search?page=2&per_page=100",
                },
            )
        return httpx.Response(200, json={"users": [user(2)], "next_page": None})

    router.get("/api/v2/users/search").mock(side_effect=page)
    assert [u["id"] for u in client.search_users(query=f"email:{SUBJECT_EMAIL}")] == [1, 2]


def test_show_many_chunks_by_100(client: ZendeskClient, router: respx.MockRouter) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        return httpx.Response(200, json={"users": [user(int(i)) for i in ids]})

    route = router.get("/api/v2/users/show_many").mock(side_effect=page)
    assert len(client.show_many_users(list(range(1, 251)))) == 250
    assert route.call_count == 3


# -- methods and bodies -----------------------------------------------------------------------


def test_profile_methods_send_identifier_query(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    query = f"shop:customer:email:{SUBJECT_EMAIL}"
    get = router.get("/api/v2/user_profiles", params={"identifier": query}).respond(
        200, json={"profile": profile("P9")}
    )
    put = router.put("/api/v2/users/5/profiles", params={"identifier": query}).respond(
        201, json={"profile": profile("P9")}
    )
    put_by_identifier = router.put("/api/v2/user_profiles", params={"identifier": query}).respond(
        200, json={"profile": profile("P9")}
    )
    assert client.profile_by_identifier(query)["id"] == "P9"
    assert client.put_user_profile("5", query, {"name": "x"})["id"] == "P9"
    assert client.replace_profile_by_identifier(query, {"profile": {"name": "y"}})["id"] == "P9"
    assert get.called and put.called and put_by_identifier.called
    assert put_by_identifier.calls.last.request.read() == b'{"profile":{"name":"y"}}'


def test_profile_by_identifier_not_found(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/user_profiles").respond(404, json={"errors": [{"code": "ClientError"}]})
    with pytest.raises(NotFoundError) as info:
        client.profile_by_identifier(f"shop:customer:email:{SUBJECT_EMAIL}")
    assert "identifier=***" in str(info.value) and SUBJECT_EMAIL not in str(info.value)


def test_job_status_frees_jobs_slot(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.delete("/api/v2/users/destroy_many").respond(200, json={"job_status": job("abc123")})
    router.get("/api/v2/job_statuses/abc123").respond(
        200, json={"job_status": job("abc123", "completed")}
    )
    assert client.destroy_many([1, 2])["status"] == "queued"
    assert client.governor.snapshot()["jobs"]["queued"] == 1
    assert client.show_job_status("abc123")["status"] == "completed"
    assert client.governor.snapshot()["jobs"]["queued"] == 0


def test_other_methods(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/5/related").respond(200, json={"user_related": {"ccd_tickets": 1}})
    router.get("/api/v2/users/5/tickets/requested").respond(
        200, json={"tickets": [ticket(1)], "meta": {"has_more": False}}
    )
    router.get(
        "/api/v2/users/5/compliance_deletion_statuses", params={"application": "chat"}
    ).respond(
        200,
        json={
            "compliance_deletion_statuses": [{"application": "chat", "action": "started"}],
            "meta": {"has_more": False},
        },
    )
    router.get("/api/v2/users/5/profiles").respond(200, json={"profiles": [profile("P")]})
    router.get("/api/v2/deleted_users/5").respond(200, json={"deleted_user": deleted_user(5)})
    router.get("/api/v2/users").respond(200, json={"users": [user(5)], "meta": {"has_more": False}})
    assert client.user_related(5) == {"ccd_tickets": 1}
    assert client.requested_tickets(5)[0]["status"] == "open"
    assert client.compliance_deletion_statuses(5, application="chat")[0]["action"] == "started"
    assert client.profiles_for_user(5) == [profile("P")]
    assert client.show_deleted_user(5)["id"] == 5
    assert [u["id"] for u in client.iter_users()] == [5]


# -- input validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.show_user("5/../6"),
        lambda c: c.show_user(-1),
        lambda c: c.show_user(True),
        lambda c: c.show_user(1.5),
        lambda c: c.profile_by_id("../users/1"),
        lambda c: c.profile_by_id("a b"),
        lambda c: c.delete_profile(""),
        lambda c: c.profile_by_identifier("only:three:parts"),
        lambda c: c.search_users(),
        lambda c: c.compliance_deletion_statuses(1, application="x&y=z"),
        lambda c: c.request("GET", "/api/v2/users?x=1"),
        lambda c: c.request("GET", "/api/v2/../admin"),
        lambda c: c.request("GET", "//evil.test/x"),
    ],
)
def test_bad_input_builds_no_request(
    client: ZendeskClient, router: respx.MockRouter, call: Any
) -> None:
    with pytest.raises(UsageError):
        call(client)
    assert router.calls.call_count == 0


def test_string_user_id_from_profiles_api_accepted(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.get("/api/v2/users/123456").respond(200, json={"user": user(123456)})
    assert client.show_user("123456")["id"] == 123456


# -- secrets and personal data ----------------------------------------------------------------


@pytest.mark.parametrize("oauth", [False, True], ids=["api_token", "oauth"])
def test_token_never_in_repr_messages_or_logs(
    router: respx.MockRouter, sleeps: Sleeps, caplog: pytest.LogCaptureFixture, oauth: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    router.get("/api/v2/users/search").respond(500, text=f"boom {SUBJECT_EMAIL}")
    router.get("/api/v2/users/8").mock(side_effect=httpx.ConnectTimeout("timeout"))
    texts: list[str] = []
    with make_client(router, sleeps, max_attempts=2, oauth=oauth) as c:
        texts += [repr(c), str(c.config), repr(c.config), repr(c.stats), repr(c.governor)]
        texts += [repr(c._http.auth), repr(router.calls.call_count)]
        for call in (
            lambda: c.search_users(query=f"email:{SUBJECT_EMAIL}"),
            lambda: c.show_user(8),
        ):
            with pytest.raises(ZendeskError) as info:
                call()
            texts += [str(info.value), repr(info.value)]
            texts += [repr(info.value.__cause__), str(info.value.__cause__)]
            if isinstance(info.value, HTTPStatusError):
                # The request object itself holds the real URL (it went on the wire); its
                # repr must still not show the credentials.
                request = info.value.response.request
                objects = [repr(request), repr(request.headers), repr(info.value.response)]
                assert not any(TOKEN in o or BASIC in o for o in objects)
    texts += [r.getMessage() for r in caplog.records]
    texts += [caplog.text]
    joined = "\n".join(texts)
    assert "search" in joined and "query=***" in joined  # logs and messages do exist
    assert TOKEN not in joined
    assert BASIC not in joined
    assert SUBJECT_EMAIL not in joined
    assert "jane.subject" not in joined


def test_redact_url() -> None:
    assert (
        redact_url("/api/v2/users/search?query=email%3Aa%40b.c&page=2")
        == "/api/v2/users/search?query=***&page=2"
    )
    assert redact_url("/x", {"identifier": "s:t:email:a@b.c", "page[size]": 100}) == (
        "/x?identifier=***&page[size]=100"
    )
    assert redact_url("https://h/p?external_id=abc") == "/p?external_id=***"


def test_scopes_for_routes() -> None:
    assert scopes_for("GET", "/api/v2/users/1") == ("account",)
    assert scopes_for("GET", "/api/v2/user_profiles/P") == ("account", "profiles")
    assert scopes_for("PUT", "/api/v2/users/9/profiles") == ("account", "profiles")
    assert scopes_for("DELETE", "/api/v2/deleted_users/9") == ("account", "permanent-delete")
    assert scopes_for("DELETE", "/api/v2/users/destroy_many") == ("account", "jobs")
    assert scopes_for("POST", "/api/v2/users") == ("account", "user-write")
    assert scopes_for("PUT", "/api/v2/users/9.json") == (
        "account",
        "user-write",
        "create-update-user:9",
    )
    assert scopes_for("GET", "/_sandbox/log") == ()


def test_stats_count_by_status(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/1").respond(200, json={"user": user(1)})
    router.get("/api/v2/users/2").respond(404, json={})
    client.show_user(1)
    with pytest.raises(NotFoundError):
        client.show_user(2)
    snap = client.stats.snapshot()
    assert snap["by_status"] == {200: 1, 404: 1}
    assert snap["requests"] == 2 and snap["calls"] == 2 and snap["retries"] == 0


def test_cursor_iterator_follows_offset_answers_too(
    client: ZendeskClient, router: respx.MockRouter
) -> None:
    router.get("/api/v2/users/5/tickets/requested", params={"page": "2"}).respond(
        200, json={"tickets": [ticket(2)], "next_page": None}
    )
    router.get("/api/v2/users/5/tickets/requested").respond(
        200,
        json={
            "tickets": [ticket(1)],
            "next_page": f"{BASE}/api/v2/users/5/tickets/requested?page=2",
        },
    )
    assert [t["id"] for t in client.requested_tickets(5)] == [1, 2]


def test_offset_repeated_page_is_an_error(client: ZendeskClient, router: respx.MockRouter) -> None:
    router.get("/api/v2/users/search").respond(
        200, json={"users": [user(1)], "next_page": f"{BASE}/api/v2/users/search?page=1"}
    )
    with pytest.raises(ZendeskError, match="repeated a page"):
        client.search_users(query="x")
