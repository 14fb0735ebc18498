"""What the sandbox's route modules share: the parsed request, the answer, the route
table entry and Zendesk's two pagination styles.

Owns :class:`Call`, :class:`Reply`, :class:`Route` (declared with a path template such as
``/api/v2/users/{id:int}/identities``, whose display form ``GET /api/v2/users/{id}/identities``
is also how faults name an endpoint), and the cursor/offset pagination every list
endpoint uses. The route modules (:mod:`.routes_users`, :mod:`.routes_profiles`,
:mod:`.routes_tickets`) hold one small function per endpoint.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from privacykit.sandbox.limits import format_seconds
from privacykit.sandbox.model import ApiError, profile_error

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = [
    "MAX_PAGE_SIZE",
    "THROTTLED_BODY",
    "Call",
    "Handler",
    "Params",
    "Reply",
    "Route",
    "Scopes",
    "bad_request",
    "cursor_page",
    "endpoint_key",
    "id_list",
    "job_cap",
    "offset_page",
    "paged",
    "route",
    "scoped",
    "throttled",
]

MAX_PAGE_SIZE = 100
THROTTLED_BODY = b"Number of allowed API requests per minute exceeded"

Params = dict[str, list[str]]
Scopes = list[tuple[str, str]]


@dataclass
class Reply:
    """What a route answers: status, JSON body (None for no body), extra headers."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: bytes | None = None  # a non-JSON body (429 text, HTML pages)
    content_type: str = "text/plain; charset=utf-8"  # of ``text``


@dataclass
class Call:
    """One parsed API request as the route functions see it."""

    method: str
    path: str  # without the .json suffix
    params: Params
    raw_body: bytes
    match: re.Match[str]
    profiles_api: bool

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        if not self.raw_body.strip():
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            if self.profiles_api:
                raise profile_error(400, "request body is not valid JSON") from None
            raise ApiError(
                400, {"error": "Unprocessable Entity", "message": "Server could not parse JSON"}
            ) from None

    def int_arg(self, group: int = 1) -> int:
        return int(self.match.group(group))

    def arg(self, group: int = 1) -> str:
        return self.match.group(group)


Handler = Callable[["SandboxServer", Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # display form, e.g. "/api/v2/users/{id}/identities"
    pattern: re.Pattern[str]
    func: Handler
    # The rate-limit scopes (besides the account) a request spends: (scope, key) pairs.
    scopes: Callable[[Call], Scopes] | None = None
    profiles_api: bool = False  # errors are JSON:API shaped

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"


_KINDS = {"int": r"(\d+)", "str": r"([^/]+)", "token": r"([0-9a-zA-Z]+)"}
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")


def route(
    method: str,
    template: str,
    func: Handler,
    *,
    scopes: Callable[[Call], Scopes] | None = None,
    profiles_api: bool = False,
) -> Route:
    """A route from a template: ``{name:int}`` digits, ``{name:token}`` letters and
    digits, ``{name}``/``{name:str}`` any path segment."""
    regex = _PLACEHOLDER.sub(lambda m: _KINDS[m.group(2) or "str"], template)
    display = _PLACEHOLDER.sub(lambda m: "{" + m.group(1) + "}", template)
    return Route(method, display, re.compile(f"^{regex}$"), func, scopes, profiles_api)


def endpoint_key(text: str) -> str:
    """How endpoint names compare: ``GET /api/v2/users/{user_id}/identities`` and
    ``get /api/v2/users/{id}/identities.json`` are the same endpoint."""
    method, _, path = text.strip().partition(" ")
    path = path.strip()
    if path.endswith(".json"):
        path = path[: -len(".json")]
    return f"{method.upper()} {re.sub(r'{[^}]*}', '{}', path)}"


def scoped(scope: str, key: Callable[[Call], str] | None = None) -> Callable[[Call], Scopes]:
    """A ``scopes`` function spending one unit of ``scope`` (per ``key(call)`` if given)."""

    def scopes(call: Call) -> Scopes:
        return [(scope, "" if key is None else key(call))]

    return scopes


def throttled(retry_after: str) -> Reply:
    """Zendesk's 429: a text/plain body and ``Retry-After``."""
    return Reply(429, headers=[("Retry-After", retry_after)], text=THROTTLED_BODY)


def job_cap(sb: SandboxServer) -> Reply | None:
    """The 429 a job-queueing endpoint answers while ``MAX_QUEUED_JOBS`` jobs are queued
    or running (documented job limit; assumption: refused like any other budget,
    text/plain with ``Retry-After`` until the oldest finishes), else None."""
    wait = sb.state.job_slot_wait()
    if wait is None:
        return None
    return throttled(format_seconds(sb.clock.to_real(wait), sb.clock.time_scale))


def bad_request(description: str) -> ApiError:
    return ApiError(400, {"error": "InvalidPaginationParameter", "description": description})


def id_list(text: str | None) -> list[int]:
    """``ids=1,2,3`` (non-numeric parts are ignored, as Zendesk does)."""
    if not text:
        return []
    return [int(part.strip()) for part in text.split(",") if part.strip().isdigit()]


def _encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"k{key}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("k"):
            raise ValueError(cursor)
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request("invalid cursor") from None


def _link(sb: SandboxServer, path: str, params: Params, extra: dict[str, Any]) -> str:
    kept = [
        (k, v)
        for k, values in params.items()
        if not (k.startswith("page") or k == "per_page")
        for v in values
    ]
    kept += list(extra.items())
    return f"{sb.url}{path}.json?{urlencode(kept)}"


def cursor_page(
    sb: SandboxServer,
    call: Call,
    keys: list[int],
    render: Callable[[list[int]], list[dict[str, Any]]],
    *,
    error: Callable[[str], ApiError] = bad_request,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Cursor pagination over ascending integer keys: ``page[size]`` (max 100),
    ``page[after]``, ``page[before]``. Returns (items, meta, links).

    Zendesk's docs only promise ``meta.has_more``; ``links.next`` is null on the
    last page so clients that follow links also stop."""
    size_text = call.param("page[size]")
    try:
        size = MAX_PAGE_SIZE if size_text is None else int(size_text)
    except ValueError:
        raise error("page[size] must be an integer") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise error(f"page[size] must be between 1 and {MAX_PAGE_SIZE}")
    after, before = call.param("page[after]"), call.param("page[before]")
    try:
        if before:
            bound = _decode_cursor(before)
            earlier = [k for k in keys if k < bound]
            page = earlier[-size:]
            more_before = len(earlier) > size
            more_after = True
        else:
            start = _decode_cursor(after) if after else None
            later = keys if start is None else [k for k in keys if k > start]
            page = later[:size]
            more_after = len(later) > size
            more_before = bool(page) and page[0] != (keys[0] if keys else None)
    except ApiError as exc:
        raise error(str(exc.body.get("description", "invalid cursor"))) from None
    has_more = more_before if before else more_after
    after_cursor = _encode_cursor(page[-1]) if page else None
    before_cursor = _encode_cursor(page[0]) if page else None
    links = {
        "next": _link(sb, call.path, call.params, {"page[size]": size, "page[after]": after_cursor})
        if page and more_after
        else None,
        "prev": _link(
            sb, call.path, call.params, {"page[size]": size, "page[before]": before_cursor}
        )
        if page and more_before
        else None,
    }
    meta = {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor}
    return render(page), meta, links


def offset_page(
    sb: SandboxServer,
    call: Call,
    keys: list[int],
    render: Callable[[list[int]], list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Offset pagination: ``page`` (1-based), ``per_page`` (default and max 100)."""
    try:
        page = max(1, int(call.param("page") or 1))
        per_page = min(MAX_PAGE_SIZE, max(1, int(call.param("per_page") or MAX_PAGE_SIZE)))
    except ValueError:
        raise bad_request("page and per_page must be integers") from None
    start = (page - 1) * per_page
    chunk = keys[start : start + per_page]
    more = start + per_page < len(keys)
    extra = {"per_page": per_page} if call.param("per_page") else {}
    info = {
        "next_page": _link(sb, call.path, call.params, {"page": page + 1, **extra})
        if more
        else None,
        "previous_page": _link(sb, call.path, call.params, {"page": page - 1, **extra})
        if page > 1
        else None,
        "count": len(keys),
    }
    return render(chunk), info


def paged(
    sb: SandboxServer,
    call: Call,
    name: str,
    keys: list[int],
    render: Callable[[list[int]], list[dict[str, Any]]],
) -> Reply:
    """Cursor pagination when any ``page[...]`` parameter is given, else offset."""
    if any(k.startswith("page[") for k in call.params):
        items, meta, links = cursor_page(sb, call, keys, render)
        return Reply(200, {name: items, "meta": meta, "links": links})
    items, info = offset_page(sb, call, keys, render)
    return Reply(200, {name: items, **info})
