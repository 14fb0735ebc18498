"""Users API routes: users, identities, search, bulk and permanent deletion, deleted
users, compliance deletion statuses, ``users/me``.

Owns one small function per endpoint; the rules are in :mod:`.state`'s layers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from privacykit.sandbox.limits import CREATE_UPDATE_USER, PERMANENT_DELETE
from privacykit.sandbox.model import ApiError
from privacykit.sandbox.routing import (
    Call,
    Reply,
    Route,
    id_list,
    job_cap,
    offset_page,
    paged,
    route,
    scoped,
)

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = ["ROUTES"]


def _list_users(sb: SandboxServer, call: Call) -> Reply:
    roles = call.params.get("role[]", []) + call.params.get("role", [])
    keys = sb.state.list_user_ids(roles=roles or None, external_id=call.param("external_id"))
    return paged(sb, call, "users", keys, sb.state.render_users)


def _show_many(sb: SandboxServer, call: Call) -> Reply:
    ids = id_list(call.param("ids"))
    external = [e for e in (call.param("external_ids") or "").split(",") if e.strip()]
    if len(ids) > 100 or len(external) > 100:
        raise ApiError(400, {"error": "InvalidValue", "description": "At most 100 ids"})
    return Reply(200, {"users": sb.state.show_many(ids, external)})


def _search(sb: SandboxServer, call: Call) -> Reply:
    # Offset pagination only (documented).
    keys = sb.state.search_user_ids(call.param("query"), call.param("external_id"))
    items, info = offset_page(sb, call, keys, sb.state.render_users)
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
    ids = id_list(call.param("ids"))
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
    refused = job_cap(sb)
    if refused is not None:
        return refused
    return Reply(200, {"job_status": sb.state.destroy_many(ids)})


def _identities(sb: SandboxServer, call: Call) -> Reply:
    # User Identities API (assumed shape; supports both pagination styles).
    idents = {i["id"]: i for i in sb.state.identities_of(call.int_arg())}
    return paged(sb, call, "identities", sorted(idents), lambda ids: [idents[i] for i in ids])


def _compliance(sb: SandboxServer, call: Call) -> Reply:
    rows = sb.state.compliance_rows(call.int_arg(), call.param("application"))
    return paged(
        sb,
        call,
        "compliance_deletion_statuses",
        list(range(len(rows))),
        lambda idx: [rows[i] for i in idx],
    )


def _deleted_users(sb: SandboxServer, call: Call) -> Reply:
    return paged(
        sb, call, "deleted_users", sb.state.deleted_user_ids(), sb.state.render_deleted_users
    )


def _deleted_count(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"count": sb.state.deleted_users_count()})


def _show_deleted(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"deleted_user": sb.state.show_deleted_user(call.int_arg())})


def _permanently_delete(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"deleted_user": sb.state.permanently_delete_user(call.int_arg())})


def _new_user_key(call: Call) -> str:
    # The create/update budget is per user; a new user is keyed by its email.
    try:
        user = json.loads(call.raw_body or b"{}").get("user") or {}
        return "new:" + str(user.get("email") or user.get("name") or "").lower()
    except (ValueError, AttributeError):
        return "new"


ROUTES: list[Route] = [
    route("GET", "/api/v2/users", _list_users),
    route("POST", "/api/v2/users", _create_user, scopes=scoped(CREATE_UPDATE_USER, _new_user_key)),
    route("GET", "/api/v2/users/show_many", _show_many),
    route("GET", "/api/v2/users/search", _search),
    route("GET", "/api/v2/users/count", _count_users),
    route("GET", "/api/v2/users/me", _me),
    route("DELETE", "/api/v2/users/destroy_many", _destroy_many),
    route("GET", "/api/v2/users/{id:int}", _show_user),
    route(
        "PUT",
        "/api/v2/users/{id:int}",
        _update_user,
        scopes=scoped(CREATE_UPDATE_USER, lambda call: call.arg()),
    ),
    route("DELETE", "/api/v2/users/{id:int}", _delete_user),
    route("GET", "/api/v2/users/{id:int}/identities", _identities),
    route("GET", "/api/v2/users/{id:int}/compliance_deletion_statuses", _compliance),
    route("GET", "/api/v2/deleted_users", _deleted_users),
    route("GET", "/api/v2/deleted_users/count", _deleted_count),
    route("GET", "/api/v2/deleted_users/{id:int}", _show_deleted),
    route(
        "DELETE",
        "/api/v2/deleted_users/{id:int}",
        _permanently_delete,
        scopes=scoped(PERMANENT_DELETE),
    ),
]
