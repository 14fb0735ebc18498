"""The sandbox's HTTP layer: a local Zendesk (Users + Profiles APIs) on loopback.

Owns :class:`SandboxServer` — the stdlib ``ThreadingHTTPServer`` with HTTP/1.1
keep-alive, authentication, routing (paths with and without ``.json``), pagination
(cursor and offset), rate limits with Zendesk's headers, fault injection, the request
log and the ``/_sandbox/`` control endpoints. Data rules live in
:mod:`privacykit.sandbox.state`, budgets and the virtual clock in
:mod:`privacykit.sandbox.limits`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http
import ipaddress
import json
import random
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from privacykit.sandbox.limits import (
    CREATE_UPDATE_USER,
    PERMANENT_DELETE,
    PROFILES,
    RateLimiter,
    VirtualClock,
    format_seconds,
)
from privacykit.sandbox.state import (
    APPLICATIONS,
    ApiError,
    SandboxState,
    profile_error,
)

__all__ = ["SandboxServer"]

#: Entries kept in the request log (oldest dropped first; ``seq`` keeps counting).
LOG_CAPACITY = 100_000
#: Most concurrent connections; more are closed at once (bounded threads).
MAX_CONNECTIONS = 256
#: Real seconds a slow fault delays an answer (bounded so tests stay fast).
SLOW_FAULT_SECONDS = (0.05, 0.3)
#: How the faults split when one happens.
FAULT_KINDS = (("error", 0.4), ("slow", 0.2), ("drop_before", 0.2), ("drop_after", 0.2))
MAX_PAGE_SIZE = 100
THROTTLED_BODY = b"Number of allowed API requests per minute exceeded"

Params = dict[str, list[str]]


@dataclass
class Reply:
    """What a route answers: status, JSON body (None for no body), extra headers."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: bytes | None = None  # a text/plain body instead of JSON (429s)


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


Route = tuple[str, re.Pattern[str], Callable[["SandboxServer", Call], Reply]]


def _bad_request(description: str) -> ApiError:
    return ApiError(400, {"error": "InvalidPaginationParameter", "description": description})


def _encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"k{key}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("k"):
            raise ValueError(cursor)
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_request("invalid cursor") from None


def _ids(text: str | None) -> list[int]:
    if not text:
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if part.isdigit():
            out.append(int(part))
    return out


class SandboxServer:
    """A faithful local Zendesk over real HTTP on loopback.

    >>> with SandboxServer(seed="none", time_scale=600.0, rng_seed=1) as sb:  # doctest: +SKIP
    ...     httpx.get(sb.url + "/api/v2/users/me.json", auth=...)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: str = "demo",
        users: int = 50,
        time_scale: float = 1.0,
        fault_rate: float = 0.0,
        rng_seed: int | None = None,
        account_limit: int = 700,
        profiles_limit: int = 1000,
        permanent_delete_limit: int = 700,
        create_update_user_limit: int = 5,
        api_token: str = "sandbox-token",
        email: str = "dpo@sandbox.test",
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self.host = host
        self.port = port
        self.email = email
        self._token = api_token
        self.rng_seed = rng_seed
        self.clock = VirtualClock(time_scale)
        self.limiter = RateLimiter(
            self.clock,
            account_limit=account_limit,
            profiles_limit=profiles_limit,
            permanent_delete_limit=permanent_delete_limit,
            create_update_user_limit=create_update_user_limit,
        )
        self.state = SandboxState(self.clock, rng_seed=rng_seed, admin_email=email)
        self.fault_rate = fault_rate
        # A separate stream, so whether faults happen does not change generated data.
        self._fault_rng = random.Random(None if rng_seed is None else f"faults-{rng_seed}")
        self._fault_lock = threading.Lock()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_CAPACITY)
        self._log_lock = threading.Lock()
        self._log_seq = 0
        self._max_connections = max_connections
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.seed(seed, users=users)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), _Handler, self, self._max_connections)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.state.base_url = self.url
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-zendesk",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "ZENDESK_URL": self.url,
            "ZENDESK_EMAIL": self.email,
            "ZENDESK_API_TOKEN": self._token,
        }

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url!r})"

    # ------------------------------------------------------------------ controls

    def seed(self, name: str = "demo", *, users: int = 50) -> dict[str, int]:
        """Reset the data and load a seed (``none`` or ``demo``); returns the counts."""
        from privacykit.sandbox.seed import seed_state

        seed_state(self.state, name, users=users, rng_seed=self.rng_seed)
        return self.state.counts()

    def request_log(self, since: int = 0) -> list[dict[str, Any]]:
        """Every ``/api/v2`` request received (seq, method, path, query, status, at,
        fault, body), oldest first; only entries with ``seq > since``."""
        with self._log_lock:
            return [dict(entry) for entry in self._log if entry["seq"] > since]

    def set_faults(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        with self._fault_lock:
            self.fault_rate = float(rate)

    def advance(self, virtual_seconds: float) -> float:
        """Move the virtual clock forward (rate-limit windows, compliance progress, jobs)."""
        return self.clock.advance(virtual_seconds)

    def set_stuck_applications(self, applications: Iterable[str]) -> None:
        """Applications that never report ``complete`` for compliance deletions."""
        apps = set(applications)
        unknown = apps - set(APPLICATIONS)
        if unknown:
            raise ValueError(f"unknown applications: {sorted(unknown)}")
        with self.state.lock:
            self.state.stuck_applications = apps

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Apply ``/_sandbox/config`` settings; returns the whole configuration."""
        scopes = {
            "account_limit": "account",
            "rate_limit": "account",
            "profiles_limit": PROFILES,
            "permanent_delete_limit": PERMANENT_DELETE,
            "create_update_user_limit": CREATE_UPDATE_USER,
        }
        for key, value in settings.items():
            if key == "fault_rate":
                self.set_faults(float(value))
            elif key in scopes:
                self.limiter.set_limit(scopes[key], int(value))
            elif key == "stuck_applications":
                self.set_stuck_applications(value or [])
            elif key == "job_delay":
                self.state.job_delay = float(value)
            else:
                raise ValueError(f"unknown setting: {key}")
        return self.config()

    def config(self) -> dict[str, Any]:
        limits = self.limiter.limits()
        return {
            "fault_rate": self.fault_rate,
            "time_scale": self.clock.time_scale,
            "account_limit": limits["account"],
            "profiles_limit": limits[PROFILES],
            "permanent_delete_limit": limits[PERMANENT_DELETE],
            "create_update_user_limit": limits[CREATE_UPDATE_USER],
            "stuck_applications": sorted(self.state.stuck_applications),
            "job_delay": self.state.job_delay,
        }

    # ------------------------------------------------------------------ internals

    def _authorized(self, header: str | None) -> bool:
        """Basic ``{email}/token:{token}`` for the configured agent, or ``Bearer <token>``."""
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            return hmac.compare_digest(credentials.encode(), self._token.encode())
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return False
        user, sep, secret = decoded.partition(":")
        if not sep or not user.endswith("/token"):
            return False
        email_ok = user[: -len("/token")].lower() == self.email.lower()
        token_ok = hmac.compare_digest(secret.encode(), self._token.encode())
        return email_ok and token_ok

    def _pick_fault(self) -> tuple[str | None, float]:
        with self._fault_lock:
            if self.fault_rate <= 0 or self._fault_rng.random() >= self.fault_rate:
                return None, 0.0
            roll = self._fault_rng.random()
            kind = FAULT_KINDS[-1][0]
            for name, weight in FAULT_KINDS:
                if roll < weight:
                    kind = name
                    break
                roll -= weight
            extra = self._fault_rng.random()
            return kind, extra

    def _record(
        self, method: str, path: str, query: str, status: int | None, fault: str | None, body: Any
    ) -> None:
        with self._log_lock:
            self._log_seq += 1
            self._log.append(
                {
                    "seq": self._log_seq,
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "at": self.clock.iso(),
                    "fault": fault,
                    "body": body,
                }
            )

    def _scopes(self, method: str, path: str, call_body: bytes) -> list[tuple[str, str]]:
        if path.startswith("/api/v2/user_profiles") or _USER_PROFILES.match(path):
            return [(PROFILES, "")]
        if method == "DELETE" and _DELETED_USER.match(path):
            return [(PERMANENT_DELETE, "")]
        if method == "PUT":
            match = _USER.match(path)
            if match:
                return [(CREATE_UPDATE_USER, match.group(1))]
        if method == "POST" and path == "/api/v2/users":
            # The create/update budget is per user; a new user is keyed by its email.
            key = "new"
            try:
                user = json.loads(call_body or b"{}").get("user") or {}
                key = "new:" + str(user.get("email") or user.get("name") or "").lower()
            except (ValueError, AttributeError):
                pass
            return [(CREATE_UPDATE_USER, key)]
        return []

    # -------------------------------------------------------- pagination helpers

    def _link(self, path: str, params: Params, extra: dict[str, Any]) -> str:
        kept = [
            (k, v)
            for k, values in params.items()
            if not (k.startswith("page") or k == "per_page")
            for v in values
        ]
        kept += list(extra.items())
        return f"{self.url}{path}.json?{urlencode(kept)}"

    def _cursor(
        self,
        call: Call,
        keys: list[int],
        render: Callable[[list[int]], list[dict[str, Any]]],
        *,
        error: Callable[[str], ApiError] = _bad_request,
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
            "next": self._link(
                call.path, call.params, {"page[size]": size, "page[after]": after_cursor}
            )
            if page and more_after
            else None,
            "prev": self._link(
                call.path, call.params, {"page[size]": size, "page[before]": before_cursor}
            )
            if page and more_before
            else None,
        }
        meta = {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor}
        return render(page), meta, links

    def _offset(
        self,
        call: Call,
        keys: list[int],
        render: Callable[[list[int]], list[dict[str, Any]]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Offset pagination: ``page`` (1-based), ``per_page`` (default and max 100)."""
        try:
            page = max(1, int(call.param("page") or 1))
            per_page = min(MAX_PAGE_SIZE, max(1, int(call.param("per_page") or MAX_PAGE_SIZE)))
        except ValueError:
            raise _bad_request("page and per_page must be integers") from None
        start = (page - 1) * per_page
        chunk = keys[start : start + per_page]
        more = start + per_page < len(keys)
        extra = {"per_page": per_page} if call.param("per_page") else {}
        info = {
            "next_page": self._link(call.path, call.params, {"page": page + 1, **extra})
            if more
            else None,
            "previous_page": self._link(call.path, call.params, {"page": page - 1, **extra})
            if page > 1
            else None,
            "count": len(keys),
        }
        return render(chunk), info

    def _paged(
        self,
        call: Call,
        name: str,
        keys: list[int],
        render: Callable[[list[int]], list[dict[str, Any]]],
    ) -> Reply:
        """Cursor pagination when any ``page[...]`` parameter is given, else offset."""
        if any(k.startswith("page[") for k in call.params):
            items, meta, links = self._cursor(call, keys, render)
            return Reply(200, {name: items, "meta": meta, "links": links})
        items, info = self._offset(call, keys, render)
        return Reply(200, {name: items, **info})


# ---------------------------------------------------------------------- routes

_USER = re.compile(r"^/api/v2/users/(\d+)$")
_USER_PROFILES = re.compile(r"^/api/v2/users/(\d+)/profiles$")
_DELETED_USER = re.compile(r"^/api/v2/deleted_users/(\d+)$")


def _list_users(sb: SandboxServer, call: Call) -> Reply:
    roles = call.params.get("role[]", []) + call.params.get("role", [])
    keys = sb.state.list_user_ids(roles=roles or None, external_id=call.param("external_id"))
    return sb._paged(call, "users", keys, sb.state.render_users)


def _show_many(sb: SandboxServer, call: Call) -> Reply:
    ids = _ids(call.param("ids"))
    external = [e for e in (call.param("external_ids") or "").split(",") if e.strip()]
    if len(ids) > 100 or len(external) > 100:
        raise ApiError(400, {"error": "InvalidValue", "description": "At most 100 ids"})
    return Reply(200, {"users": sb.state.show_many(ids, external)})


def _search(sb: SandboxServer, call: Call) -> Reply:
    # Offset pagination only (documented).
    keys = sb.state.search_user_ids(call.param("query"), call.param("external_id"))
    items, info = sb._offset(call, keys, sb.state.render_users)
    return Reply(200, {"users": items, **info})


def _count_users(sb: SandboxServer, call: Call) -> Reply:
    return Reply(
        200, {"count": {"value": len(sb.state.list_user_ids()), "refreshed_at": sb.clock.iso()}}
    )


def _me(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"user": sb.state.show_user(sb.state.admin_id)})


def _show_user(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"user": sb.state.show_user(call.int_arg())})


def _create_user(sb: SandboxServer, call: Call) -> Reply:
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("user"), dict):
        raise ApiError(400, {"error": "InvalidValue", "description": "a 'user' object is required"})
    return Reply(201, {"user": sb.state.create_user(body["user"])})


def _update_user(sb: SandboxServer, call: Call) -> Reply:
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("user"), dict):
        raise ApiError(400, {"error": "InvalidValue", "description": "a 'user' object is required"})
    return Reply(200, {"user": sb.state.update_user(call.int_arg(), body["user"])})


def _delete_user(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"user": sb.state.soft_delete_user(call.int_arg())})


def _destroy_many(sb: SandboxServer, call: Call) -> Reply:
    ids = _ids(call.param("ids"))
    for ext in (call.param("external_ids") or "").split(","):
        if ext.strip():
            found = sb.state.show_many([], [ext.strip()])
            ids += [u["id"] for u in found]
    if not ids:
        raise ApiError(
            400, {"error": "InvalidValue", "description": "ids or external_ids required"}
        )
    if len(ids) > 100:
        raise ApiError(400, {"error": "InvalidValue", "description": "At most 100 ids"})
    wait = sb.state.job_slot_wait()
    if wait is not None:
        # Documented job limit: at most MAX_QUEUED_JOBS queued or running at once.
        # Assumption: refused like any other budget, 429 text/plain with Retry-After.
        retry = format_seconds(sb.clock.to_real(wait), sb.clock.time_scale)
        return Reply(429, headers=[("Retry-After", retry)], text=THROTTLED_BODY)
    return Reply(200, {"job_status": sb.state.destroy_many(ids)})


def _job_status(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"job_status": sb.state.show_job(call.match.group(1))})


def _identities(sb: SandboxServer, call: Call) -> Reply:
    # User Identities API (assumed shape; supports both pagination styles).
    idents = {i["id"]: i for i in sb.state.identities_of(call.int_arg())}
    return sb._paged(call, "identities", sorted(idents), lambda ids: [idents[i] for i in ids])


def _related(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"user_related": sb.state.related(call.int_arg())})


def _requested_tickets(sb: SandboxServer, call: Call) -> Reply:
    # Tickets API (assumed): GET /api/v2/users/{id}/tickets/requested.
    keys = sb.state.requested_ticket_ids(call.int_arg())
    return sb._paged(call, "tickets", keys, sb.state.render_tickets)


def _compliance(sb: SandboxServer, call: Call) -> Reply:
    rows = sb.state.compliance_rows(call.int_arg(), call.param("application"))
    return sb._paged(
        call,
        "compliance_deletion_statuses",
        list(range(len(rows))),
        lambda idx: [rows[i] for i in idx],
    )


def _deleted_users(sb: SandboxServer, call: Call) -> Reply:
    return sb._paged(
        call, "deleted_users", sb.state.deleted_user_ids(), sb.state.render_deleted_users
    )


def _deleted_count(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"count": sb.state.deleted_users_count()})


def _show_deleted(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"deleted_user": sb.state.show_deleted_user(call.int_arg())})


def _permanently_delete(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"deleted_user": sb.state.permanently_delete_user(call.int_arg())})


def _user_profiles(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profiles": sb.state.profiles_for_user(call.int_arg())})


def _put_user_profile(sb: SandboxServer, call: Call) -> Reply:
    profile, created = sb.state.put_profile_for_user(
        call.int_arg(), call.param("identifier"), call.json()
    )
    return Reply(201 if created else 200, {"profile": profile})


def _profile_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.profile_by_identifier(call.param("identifier"))})


def _put_profile_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    profile, created = sb.state.put_profile_by_identifier(call.param("identifier"), call.json())
    return Reply(201 if created else 200, {"profile": profile})


def _patch_profile_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    return Reply(
        200, {"profile": sb.state.patch_profile(None, call.param("identifier"), call.json())}
    )


def _profile_by_id(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.profile_by_id(call.match.group(1))})


def _replace_profile(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.replace_profile(call.match.group(1), call.json())})


def _patch_profile(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.patch_profile(call.match.group(1), None, call.json())})


def _delete_profile(sb: SandboxServer, call: Call) -> Reply:
    sb.state.delete_profile(call.match.group(1))
    return Reply(204)


def _events_page(sb: SandboxServer, call: Call, profile_id: str) -> Reply:
    """Sunshine events: ``{"events", "links": [{"next"}], "meta": {after_cursor, has_more}}``
    — links is an array in this API."""
    keys = sb.state.event_keys(profile_id)
    items, meta, links = sb._cursor(
        call,
        keys,
        lambda seqs: sb.state.render_events(profile_id, seqs),
        error=lambda text: profile_error(400, text),
    )
    return Reply(
        200,
        {
            "events": items,
            "links": [{"next": links["next"]}],
            "meta": {"after_cursor": meta["after_cursor"], "has_more": meta["has_more"]},
        },
    )


def _profile_events(sb: SandboxServer, call: Call) -> Reply:
    return _events_page(sb, call, call.match.group(1))


def _events_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    return _events_page(sb, call, sb.state.profile_id_by_identifier(call.param("identifier")))


def _route(method: str, pattern: str, func: Callable[[SandboxServer, Call], Reply]) -> Route:
    return (method, re.compile(f"^{pattern}$"), func)


ROUTES: list[Route] = [
    _route("GET", r"/api/v2/users", _list_users),
    _route("POST", r"/api/v2/users", _create_user),
    _route("GET", r"/api/v2/users/show_many", _show_many),
    _route("GET", r"/api/v2/users/search", _search),
    _route("GET", r"/api/v2/users/count", _count_users),
    _route("GET", r"/api/v2/users/me", _me),
    _route("DELETE", r"/api/v2/users/destroy_many", _destroy_many),
    _route("GET", r"/api/v2/users/(\d+)", _show_user),
    _route("PUT", r"/api/v2/users/(\d+)", _update_user),
    _route("DELETE", r"/api/v2/users/(\d+)", _delete_user),
    _route("GET", r"/api/v2/users/(\d+)/identities", _identities),
    _route("GET", r"/api/v2/users/(\d+)/related", _related),
    _route("GET", r"/api/v2/users/(\d+)/tickets/requested", _requested_tickets),
    _route("GET", r"/api/v2/users/(\d+)/compliance_deletion_statuses", _compliance),
    _route("GET", r"/api/v2/users/(\d+)/profiles", _user_profiles),
    _route("PUT", r"/api/v2/users/(\d+)/profiles", _put_user_profile),
    _route("GET", r"/api/v2/job_statuses/([0-9a-zA-Z]+)", _job_status),
    _route("GET", r"/api/v2/deleted_users", _deleted_users),
    _route("GET", r"/api/v2/deleted_users/count", _deleted_count),
    _route("GET", r"/api/v2/deleted_users/(\d+)", _show_deleted),
    _route("DELETE", r"/api/v2/deleted_users/(\d+)", _permanently_delete),
    _route("GET", r"/api/v2/user_profiles", _profile_by_identifier),
    _route("PUT", r"/api/v2/user_profiles", _put_profile_by_identifier),
    _route("PATCH", r"/api/v2/user_profiles", _patch_profile_by_identifier),
    _route("GET", r"/api/v2/user_profiles/events", _events_by_identifier),
    _route("GET", r"/api/v2/user_profiles/([^/]+)/events", _profile_events),
    _route("GET", r"/api/v2/user_profiles/([^/]+)", _profile_by_id),
    _route("PUT", r"/api/v2/user_profiles/([^/]+)", _replace_profile),
    _route("PATCH", r"/api/v2/user_profiles/([^/]+)", _patch_profile),
    _route("DELETE", r"/api/v2/user_profiles/([^/]+)", _delete_profile),
]


def _find_route(
    method: str, path: str
) -> tuple[Callable[[SandboxServer, Call], Reply], re.Match[str]] | None:
    for route_method, pattern, func in ROUTES:
        if route_method != method:
            continue
        match = pattern.match(path)
        if match:
            return func, match
    return None


# ---------------------------------------------------------------------- control endpoints


def _control(sb: SandboxServer, method: str, path: str, params: Params, raw: bytes) -> Reply:
    """``/_sandbox/...``: not Zendesk's; not authenticated, rate-limited, faulted or logged."""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return Reply(400, {"error": "body is not valid JSON"})
    if not isinstance(body, dict):
        return Reply(400, {"error": "body must be a JSON object"})
    try:
        if method == "GET" and path == "/_sandbox/log":
            since = int((params.get("since") or ["0"])[0])
            return Reply(200, {"entries": sb.request_log(since)})
        if method == "GET" and path == "/_sandbox/state":
            return Reply(
                200,
                {"counts": sb.state.counts(), "config": sb.config(), "clock": sb.clock.now()},
            )
        if method == "POST" and path == "/_sandbox/config":
            return Reply(200, {"config": sb.configure(body)})
        if method == "POST" and path == "/_sandbox/clock":
            now = sb.advance(float(body.get("advance", 0)))
            return Reply(200, {"virtual_seconds": now, "now": sb.clock.iso()})
        if method == "POST" and path == "/_sandbox/seed":
            counts = sb.seed(str(body.get("seed", "demo")), users=int(body.get("users", 50)))
            return Reply(200, {"counts": counts})
        if method == "POST" and path == "/_sandbox/tickets":
            ticket = sb.state.add_ticket(
                int(body["requester_id"]), str(body.get("status", "open")), body.get("subject")
            )
            return Reply(201, {"ticket": ticket})
        match = re.match(r"^/_sandbox/tickets/(\d+)$", path)
        if match and method in ("POST", "PUT"):
            return Reply(
                200,
                {"ticket": sb.state.set_ticket_status(int(match.group(1)), str(body["status"]))},
            )
        if method == "POST" and path == "/_sandbox/events":
            event = sb.state.add_event(
                str(body["profile_id"]),
                source=body.get("source"),
                type=str(body.get("type", "page_viewed")),
                description=str(body.get("description", "")),
                properties=body.get("properties") or {},
                created_at=body.get("created_at"),
            )
            return Reply(201, {"event": event})
    except ApiError as exc:
        return Reply(exc.status, exc.body)
    except (KeyError, TypeError, ValueError) as exc:
        return Reply(400, {"error": f"bad control request: {type(exc).__name__}: {exc}"})
    return Reply(404, {"error": "unknown control endpoint"})


# ---------------------------------------------------------------------- HTTP plumbing


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_error_body(status: int, html: bool) -> tuple[bytes, str]:
    phrase = http.HTTPStatus(status).phrase
    if html:
        title = f"<title>{status} {phrase}</title>"
        text = f"<html><head>{title}</head><body><h1>{phrase}</h1></body></html>"
        return text.encode(), "text/html; charset=utf-8"
    body = {"error": phrase.replace(" ", ""), "description": "Sandbox injected fault"}
    return json.dumps(body).encode(), "application/json; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ZendeskSandbox/1"
    sys_version = ""
    # One write per answer and no Nagle: no 40 ms delayed-ACK stalls on keep-alive.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 120
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Silence: never write request lines (or headers) anywhere.
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        phrase = http.HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {status} {phrase}", f"Server: {self.server_version}"]
        if status != 204:
            # 204 has no body and must not carry Content-Length; all else always does.
            lines.append(f"Content-Length: {len(body)}")
            if content_type:
                lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (b"" if status == 204 else body))

    def _send_json(self, reply: Reply, headers: list[tuple[str, str]]) -> None:
        if reply.text is not None:
            ctype = "text/plain; charset=utf-8"
            self._send(reply.status, reply.text, ctype, [*headers, *reply.headers])
            return
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        self._send(
            reply.status, body, "application/json; charset=utf-8", [*headers, *reply.headers]
        )

    def _drop(self) -> None:
        """Close the connection without answering."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self) -> None:
        sb = self.server.sandbox
        method = self.command
        raw_path, _, query = self.path.partition("?")
        path = unquote(raw_path)
        if path.endswith(".json"):
            path = path[: -len(".json")]
        if len(path) > 1:
            path = path.rstrip("/")
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, b'{"error": "bad request body"}', "application/json")
            return
        params = parse_qs(query, keep_blank_values=True)
        if path.startswith("/_sandbox/"):
            if not _is_loopback(self.client_address[0]):
                self._send(
                    403, b'{"error": "control endpoints are loopback only"}', "application/json"
                )
                return
            self._send_json(_control(sb, method, path, params, raw), [])
            return
        log_body = _loggable(raw)
        if not sb._authorized(self.headers.get("Authorization")):
            sb._record(method, raw_path, query, 401, None, log_body)
            self._send(
                401, b'{"error": "Couldn\'t authenticate you"}', "application/json; charset=utf-8"
            )
            return
        if not path.startswith("/api/v2/"):
            sb._record(method, raw_path, query, 404, None, log_body)
            self._send_json(
                Reply(404, {"error": "InvalidEndpoint", "description": "Not found"}), []
            )
            return
        decision = sb.limiter.acquire(sb._scopes(method, path, raw))
        if not decision.allowed:
            sb._record(method, raw_path, query, 429, None, log_body)
            self._send(
                429,
                THROTTLED_BODY,
                "text/plain; charset=utf-8",
                [*decision.headers, ("Retry-After", decision.retry_after or "1")],
            )
            return
        fault, roll = sb._pick_fault()
        if fault == "drop_before":
            sb._record(method, raw_path, query, None, fault, log_body)
            self._drop()
            return
        if fault == "error":
            status = (500, 502, 503)[int(roll * 3) % 3]
            body, ctype = _server_error_body(status, html=int(roll * 6) % 2 == 1)
            sb._record(method, raw_path, query, status, fault, log_body)
            self._send(status, body, ctype, decision.headers)
            return
        if fault == "slow":
            low, high = SLOW_FAULT_SECONDS
            time.sleep(low + (high - low) * roll)
        reply = self._answer(sb, method, path, params, raw)
        sb._record(method, raw_path, query, reply.status, fault, log_body)
        if fault == "drop_after":
            # The action happened; only the answer is lost.
            self._drop()
            return
        self._send_json(reply, decision.headers)

    def _answer(
        self, sb: SandboxServer, method: str, path: str, params: Params, raw: bytes
    ) -> Reply:
        profiles_api = path.startswith("/api/v2/user_profiles") or bool(_USER_PROFILES.match(path))
        found = _find_route(method, path)
        if found is None:
            return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})
        func, match = found
        call = Call(method, path, params, raw, match, profiles_api)
        try:
            return func(sb, call)
        except ApiError as exc:
            return Reply(exc.status, exc.body)
        except Exception:  # a sandbox bug must answer, not kill the connection thread
            import traceback

            traceback.print_exc(file=sys.stderr)
            return Reply(500, {"error": "InternalError", "description": "sandbox bug"})


def _loggable(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a bound on concurrent connections, daemon threads, and
    a way to close idle keep-alive connections on stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        sandbox: SandboxServer,
        max_connections: int,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.sandbox = sandbox
        self.max_connections = max_connections
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if len(self._connections) >= self.max_connections:
                self.shutdown_request(request)
                return
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name="sandbox-conn",
                daemon=True,
            )
            self._connections[request] = thread
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is normal; anything else is a sandbox bug.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            items = list(self._connections.items())
        for sock, _ in items:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in items:
            thread.join(timeout=2)
