"""What a request path means: its endpoint name, its rate-limit scopes, whether it can be
repeated safely, and how it may be shown in messages and logs.

Owns :func:`endpoint_for` (``GET /api/v2/users/{id}/identities``: the name errors and the
response schemas use), :func:`scopes_for`, :func:`default_idempotent`, :func:`redact_url`
and :func:`check_path`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from privacykit.errors import UsageError
from privacykit.zendesk.budgets import (
    ACCOUNT,
    CREATE_UPDATE_USER,
    DELETED_TICKETS_DESTROY,
    DELETED_TICKETS_DESTROY_MANY,
    DELETED_TICKETS_INDEX,
    JOBS,
    PERMANENT_DELETE,
    PROFILES,
    TICKET_UPDATE,
    TICKETS_DELETE,
    TICKETS_UPDATE,
    USER_WRITE,
)

__all__ = [
    "check_path",
    "default_idempotent",
    "endpoint_for",
    "redact_url",
    "route",
    "scopes_for",
]

# Query parameters whose values are never personal and may appear in messages and logs.
_SAFE_PARAMS = frozenset(
    {
        "page",
        "per_page",
        "page[size]",
        "page[after]",
        "page[before]",
        "sort",
        "sort_by",
        "sort_order",
        "ids",
        "application",
        "include",
        "role",
        "role[]",
    }
)
_PATH_FORBIDDEN = re.compile(r"[?#\\\x00-\x20\x7f]")


def redact_url(path_or_url: str, params: Mapping[str, Any] | None = None) -> str:
    """``path?query=***&page[size]=100``: the path, with every query value that could be
    personal (``query=``, ``identifier=``, ``external_id=``...) replaced by ``***``."""
    parts = urlsplit(path_or_url)
    pairs: list[tuple[str, str]] = []
    for chunk in parts.query.split("&") if parts.query else []:
        key, _, value = chunk.partition("=")
        pairs.append((key, value))
    for key, value in (params or {}).items():
        pairs.append((str(key), str(value)))
    path = parts.path or "/"
    shown = []
    for key, value in pairs:
        name = unquote(key)
        shown.append(f"{name}={value if name in _SAFE_PARAMS else '***'}")
    return f"{path}?{'&'.join(shown)}" if shown else path


def route(path: str) -> str:
    """The path without its query and ``.json`` suffix."""
    path = path.split("?", 1)[0]
    return path[: -len(".json")] if path.endswith(".json") else path


# Collections whose member ids are opaque strings rather than integers.
_OPAQUE_COLLECTIONS = frozenset({"user_profiles", "job_statuses"})
_LITERAL_SEGMENTS = frozenset({"show_many", "destroy_many", "update_many", "create_many"})


def endpoint_for(method: str, path: str) -> str:
    """``GET /api/v2/users/{id}/identities``: the route with its ids replaced, the name of
    the endpoint in schemas, errors and the governor's learned scopes (never an id, which
    keeps personal data and cardinality out of all three)."""
    segments = route(path).split("/")
    out: list[str] = []
    for i, segment in enumerate(segments):
        previous = segments[i - 1] if i else ""
        if segment.isdigit() or (
            previous in _OPAQUE_COLLECTIONS and segment and segment not in _LITERAL_SEGMENTS
        ):
            out.append("{id}")
        else:
            out.append(segment)
    return f"{method.upper()} {'/'.join(out)}"


_USER_PATH = re.compile(r"^/api/v2/users/(\d+)$")
_USER_PROFILES = re.compile(r"^/api/v2/users/[^/]+/profiles(/|$)")
_DELETED_USER = re.compile(r"^/api/v2/deleted_users/[^/]+$")
_TICKET_PATH = re.compile(r"^/api/v2/tickets/(\d+)$")
_DELETED_TICKET = re.compile(r"^/api/v2/deleted_tickets/\d+$")
_BULK = re.compile(r"/(create_many|update_many|destroy_many|create_or_update_many)$")


def scopes_for(method: str, path: str) -> tuple[str, ...]:
    """The rate-limit scopes a request spends (see ARCHITECTURE.md, "Rate limits")."""
    r = route(path)
    method = method.upper()
    if not r.startswith("/api/v2/"):
        return ()
    scopes = [ACCOUNT]
    if r.startswith("/api/v2/user_profiles") or _USER_PROFILES.match(r):
        scopes.append(PROFILES)
    if method == "DELETE" and _DELETED_USER.match(r):
        scopes.append(PERMANENT_DELETE)
    if method == "DELETE" and r == "/api/v2/deleted_tickets/destroy_many":
        scopes.append(DELETED_TICKETS_DESTROY_MANY)
    elif method == "DELETE" and _DELETED_TICKET.match(r):
        scopes.append(DELETED_TICKETS_DESTROY)
    if method == "GET" and r == "/api/v2/deleted_tickets":
        scopes.append(DELETED_TICKETS_INDEX)
    if _BULK.search(r):
        # Every bulk request queues a job, and at most 30 may be queued or running.
        scopes.append(JOBS)
    elif method == "POST" and r in ("/api/v2/users", "/api/v2/users/create_or_update"):
        scopes.append(USER_WRITE)
    elif method == "PUT" and (match := _USER_PATH.match(r)):
        scopes.extend((USER_WRITE, f"{CREATE_UPDATE_USER}:{match.group(1)}"))
    elif match := _TICKET_PATH.match(r):
        if method == "DELETE":
            scopes.append(TICKETS_DELETE)
        elif method == "PUT":
            scopes.extend((TICKETS_UPDATE, f"{TICKET_UPDATE}:{match.group(1)}"))
    return tuple(scopes)


def default_idempotent(method: str, path: str) -> bool:
    """GET/HEAD/PUT and the deletions of one profile or one ticket can be repeated safely
    (a repeat finds nothing to do); POST, PATCH, bulk jobs and the user deletions cannot be
    retried blindly (the caller reconciles)."""
    if method in ("GET", "HEAD", "OPTIONS", "PUT"):
        return True
    if method == "DELETE":
        r = route(path)
        return r.startswith("/api/v2/user_profiles/") or bool(_TICKET_PATH.match(r))
    return False


def check_path(path: str) -> None:
    """Refuse a path that could address something other than one Zendesk API route."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise UsageError("a request path must start with a single '/'")
    if _PATH_FORBIDDEN.search(path):
        raise UsageError("a request path must not contain a query, fragment or spaces")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise UsageError("a request path must not contain '.' or '..' segments")
