"""The erasure's calls to Zendesk, each with the check that tells whether it happened.

Owns one pair per destructive call -- the action (returns outcome data: ids and statuses)
and its reconciliation (reads Zendesk's state; outcome data if the effect is there, else
None) -- for :func:`~privacykit.playbooks.engine.perform`; the read-only blocker check
(:func:`open_requested_tickets`). :func:`why` and :func:`clip` are re-exported from
:mod:`privacykit.playbooks.reasons`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privacykit import clock
from privacykit.errors import NotFoundError, ValidationError, ZendeskError
from privacykit.playbooks.erasure.state import PERMANENTLY_DELETED_NAME, as_int
from privacykit.playbooks.ports import ErasureClient
from privacykit.playbooks.reasons import clip, why

__all__ = [
    "blocked_text",
    "ticket_ids_from",
    "clip",
    "delete_profile",
    "deleted_state",
    "open_requested_tickets",
    "permanently_delete",
    "put_profile",
    "reconcile_permanent",
    "reconcile_profile_delete",
    "reconcile_put",
    "reconcile_soft",
    "soft_delete",
    "why",
]


def put_profile(client: ErasureClient, pid: str, replacement: Mapping[str, Any]) -> dict[str, Any]:
    client.replace_profile(pid, dict(replacement))
    return {"profile_id": pid, "status": 200}


def _ident_set(items: Any) -> set[tuple[str, str]]:
    out = set()
    for item in items or []:
        if isinstance(item, Mapping):
            out.add((str(item.get("type")), str(item.get("value"))))
    return out


def reconcile_put(
    client: ErasureClient, pid: str, replacement: Mapping[str, Any]
) -> dict[str, Any] | None:
    try:
        now = client.profile_by_id(pid)
    except NotFoundError:
        return {"profile_id": pid, "state": "gone"}
    same_ids = _ident_set(now.get("identifiers")) == _ident_set(replacement.get("identifiers"))
    same_attrs = (now.get("attributes") or {}) == replacement.get("attributes")
    return {"profile_id": pid, "state": "replaced"} if same_ids and same_attrs else None


def delete_profile(client: ErasureClient, pid: str) -> dict[str, Any]:
    client.delete_profile(pid)
    return {"profile_id": pid, "status": 204}


def reconcile_profile_delete(client: ErasureClient, pid: str) -> dict[str, Any] | None:
    try:
        client.profile_by_id(pid)
    except NotFoundError:
        return {"profile_id": pid, "state": "deleted"}
    return None


def soft_delete(client: ErasureClient, uid: int) -> dict[str, Any]:
    client.soft_delete_user(uid)
    return {"user_id": uid, "status": 200, "state": "soft_deleted"}


def deleted_state(client: ErasureClient, uid: int) -> str | None:
    """``soft_deleted``, ``permanently_deleted`` or None (still active / unknown)."""
    try:
        deleted = client.show_deleted_user(uid)
    except NotFoundError:
        return None
    if deleted.get("name") == PERMANENTLY_DELETED_NAME:
        return "permanently_deleted"
    return "soft_deleted"


def reconcile_soft(client: ErasureClient, uid: int) -> dict[str, Any] | None:
    state = deleted_state(client, uid)
    return None if state is None else {"user_id": uid, "state": state}


def permanently_delete(client: ErasureClient, uid: int) -> dict[str, Any]:
    client.permanently_delete_user(uid)
    return {"user_id": uid, "status": 200, "state": "permanently_deleted", "at": clock.now_iso()}


def reconcile_permanent(client: ErasureClient, uid: int) -> dict[str, Any] | None:
    state = deleted_state(client, uid)
    if state == "permanently_deleted":
        return {"user_id": uid, "state": state, "at": clock.now_iso()}
    if state is None:
        return None
    # Name still shown: check whether Zendesk already queued the compliance deletion.
    try:
        rows = client.compliance_deletion_statuses(uid)
    except NotFoundError:
        return None
    if any(r.get("action") == "request_deletion" for r in rows):
        return {"user_id": uid, "state": "permanently_deleted", "at": clock.now_iso()}
    return None


def open_requested_tickets(client: ErasureClient, uid: int) -> list[int]:
    """Ids of the tickets ``uid`` requested that are not closed: Zendesk refuses to delete
    such a requester. Read-only; raises :class:`ZendeskError` when the answer cannot be
    trusted (the caller then cannot conclude "no blocker")."""
    iterate = getattr(client, "iter_user_tickets", None)
    tickets = iterate(uid, "requested") if callable(iterate) else client.requested_tickets(uid)
    blocking = set()
    for ticket in tickets:
        tid = as_int(ticket.get("id")) if isinstance(ticket, Mapping) else None
        status = ticket.get("status") if isinstance(ticket, Mapping) else None
        if tid is None or tid <= 0 or not isinstance(status, str):
            raise ZendeskError(
                f"GET /api/v2/users/{{id}}/tickets/requested: a ticket of user {uid} has no "
                "usable id or status"
            )
        if status != "closed":
            blocking.add(tid)
    return sorted(blocking)


def blocked_text(uid: int, blocking: list[int]) -> str:
    """The review reason for a user who requested tickets that are not closed."""
    shown = ", ".join(f"#{t}" for t in blocking[:20])
    more = f" (+{len(blocking) - 20} more)" if len(blocking) > 20 else ""
    return (
        f"user {uid} is the requester of {len(blocking)} ticket(s) that are not "
        f"closed: {shown}{more}; close or reassign them, then run again"
    )


def ticket_ids_from(exc: ValidationError) -> list[int]:
    """The ticket ids a 422 refusal of a soft deletion names (Zendesk's error details)."""
    body = exc.body
    ids: list[int] = []
    if isinstance(body, dict):
        for items in (body.get("details") or {}).values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    for t in item.get("ticket_ids", []):
                        if isinstance(t, int) and not isinstance(t, bool) and t > 0:
                            ids.append(t)
    return sorted(set(ids))
