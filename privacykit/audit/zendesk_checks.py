"""The checks that ask Zendesk: erased people gone, lingering soft deletions, compliance.

Owns how a recorded deletion is re-checked against Zendesk, read-only (GET only), by the
Zendesk ids the ledger recorded. The ledger holds keyed hashes, never the identifiers a
subject asked us to erase, so the audit cannot search for the person again by email;
it asks instead whether each recorded user id is still permanently deleted and each
deleted profile id still fails to resolve (README, "Audit", explains the limits).

A user's deletion state (:func:`user_state`) comes from ``GET deleted_users/{id}``:

* a record named "Permanently Deleted User" with its personal fields null is
  permanently deleted (the documented tombstone);
* a record with personal fields is only soft-deleted;
* 404 means the user is not in the deleted users collection: ``GET users/{id}`` then
  tells an active user (a finding) from one that is not in the account at all (gone).

The person's conversations (#15): a ticket recorded as permanently deleted must be
neither live (``tickets/show_many``) nor soft-deleted (``deleted_tickets``, listed once
per audit run: :class:`DeletedTickets`); a comment recorded as redacted must show no
text but ▇ (``tickets/{id}/comments``; a ticket deleted since is fine).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from privacykit.audit.erasures import ErasureView
from privacykit.audit.findings import Finding
from privacykit.errors import NotFoundError
from privacykit.zendesk import ZendeskClient

__all__ = [
    "PERMANENTLY_DELETED_NAME",
    "DeletedTickets",
    "UserState",
    "check_gone",
    "check_lingering",
    "poll_compliance",
    "user_state",
]

#: Documented: permanently deleted users are listed with this name and null personal fields.
PERMANENTLY_DELETED_NAME = "Permanently Deleted User"
_PERSONAL_FIELDS = ("email", "phone", "external_id", "alias", "notes", "details")
# Profile ids are opaque ULID-like strings; anything else is never printed.
_SAFE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")

UserState = Literal["permanently_deleted", "soft_deleted", "active", "absent"]


def _safe_id(value: Any) -> str:
    text = str(value)
    return text if _SAFE_ID.match(text) else "(unprintable id)"


def user_state(client: ZendeskClient, user_id: int) -> UserState:
    """Where user ``user_id`` stands in Zendesk now (one request, two when not deleted)."""
    try:
        deleted = client.show_deleted_user(user_id)
    except NotFoundError:
        try:
            user = client.show_user(user_id)
        except NotFoundError:
            return "absent"
        # Zendesk shows a soft-deleted user with active false (assumption, as the sandbox).
        return "soft_deleted" if user.get("active") is False else "active"
    scrubbed = deleted.get("name") == PERMANENTLY_DELETED_NAME and all(
        deleted.get(name) in (None, "") for name in _PERSONAL_FIELDS
    )
    return "permanently_deleted" if scrubbed else "soft_deleted"


class DeletedTickets:
    """The account's soft-deleted ticket ids, listed once (``GET deleted_tickets``: 10
    requests a minute) and shared by every check of one audit run. Thread-safe."""

    def __init__(self, client: ZendeskClient) -> None:
        self.client = client
        self._ids: set[int] | None = None
        self._lock = threading.Lock()

    def ids(self) -> set[int]:
        with self._lock:
            if self._ids is None:
                self._ids = {
                    t["id"] for t in self.client.iter_deleted_tickets() if isinstance(t, dict)
                }
            return self._ids


def check_tickets_gone(
    client: ZendeskClient, view: ErasureView, deleted: DeletedTickets | None = None
) -> list[Finding]:
    """erasure.gone for conversations: tickets recorded as permanently deleted are in
    neither the live nor the deleted tickets, and comments recorded as redacted show no
    text. Ids only in findings."""
    from privacykit.playbooks.erasure.ticket_actions import text_left

    findings: list[Finding] = []
    rid = view.request_id
    purged = view.purged_tickets
    if purged:
        live = {t.get("id") for t in client.show_many_tickets(purged)}
        soft = (deleted or DeletedTickets(client)).ids()
        for tid in purged:
            where = "live" if tid in live else "soft-deleted" if tid in soft else None
            if where is not None:
                findings.append(
                    Finding(
                        "erasure.gone",
                        f"ticket {tid} is recorded as permanently deleted but Zendesk holds "
                        f"it as {where}",
                        rid,
                        {"ticket_id": tid, "zendesk_state": where.replace("-", "_")},
                    )
                )
    by_ticket: dict[int, set[int]] = {}
    for tid, cid in view.redacted_comments:
        by_ticket.setdefault(tid, set()).add(cid)
    for tid, comment_ids in sorted(by_ticket.items()):
        try:
            comments = list(client.iter_ticket_comments(tid))
        except NotFoundError:
            continue  # the ticket is gone since: so are the comments
        for comment in comments:
            found = comment.get("id")
            if found in comment_ids and text_left(comment):
                findings.append(
                    Finding(
                        "erasure.gone",
                        f"comment {found} on ticket {tid} is recorded as redacted but shows text",
                        rid,
                        {"ticket_id": tid, "comment_id": found},
                    )
                )
    return findings


def check_gone(
    client: ZendeskClient, view: ErasureView, *, deleted_tickets: DeletedTickets | None = None
) -> list[Finding]:
    """erasure.gone: every user recorded as permanently deleted still is, every profile
    id the erasure deleted still does not resolve, and the recorded tickets and comments
    are still purged or redacted (:func:`check_tickets_gone`)."""
    findings: list[Finding] = check_tickets_gone(client, view, deleted_tickets)
    rid = view.request_id
    for user in view.permanently_deleted:
        state = user_state(client, user.user_id)
        if state == "soft_deleted":
            findings.append(
                Finding(
                    "erasure.gone",
                    f"user {user.user_id} is recorded as permanently deleted but Zendesk "
                    "still holds it as soft-deleted (personal data present)",
                    rid,
                    {"user_id": user.user_id, "zendesk_state": state},
                )
            )
        elif state == "active":
            findings.append(
                Finding(
                    "erasure.gone",
                    f"user {user.user_id} is recorded as permanently deleted but is an "
                    "active user in Zendesk",
                    rid,
                    {"user_id": user.user_id, "zendesk_state": state},
                )
            )
    for profile_id, recorded_user in sorted(view.deleted_profiles.items()):
        try:
            profile = client.profile_by_id(profile_id)
        except NotFoundError:
            continue
        # The Profiles API gives user_id as a string of digits.
        raw_owner = profile.get("user_id")
        owner = int(str(raw_owner)) if str(raw_owner).isdigit() else None
        owner_text = f" (now attached to user {owner})" if owner is not None else ""
        findings.append(
            Finding(
                "erasure.gone",
                f"profile {_safe_id(profile_id)} deleted by this erasure resolves again"
                + owner_text,
                rid,
                {
                    "profile_id": _safe_id(profile_id),
                    "user_id": owner,
                    "recorded_user_id": recorded_user,
                },
            )
        )
    return findings


@dataclass
class LingeringResult:
    findings: list[Finding] = field(default_factory=list)
    within_grace: int = 0
    checked: int = 0


def check_lingering(
    client: ZendeskClient, view: ErasureView, *, now: datetime, grace: timedelta
) -> LingeringResult:
    """erasure.lingering_soft_delete: users privacykit soft-deleted (and did not record as
    permanently deleted) that Zendesk still holds soft-deleted after ``grace``."""
    result = LingeringResult()
    rid = view.request_id
    for user in view.soft_deleted_only:
        since = user.soft_deleted_at
        if since is not None and now - since < grace:
            result.within_grace += 1
            continue
        result.checked += 1
        state = user_state(client, user.user_id)
        age = _age(now, since)
        if state == "soft_deleted":
            result.findings.append(
                Finding(
                    "erasure.lingering_soft_delete",
                    f"user {user.user_id} was soft-deleted by privacykit{age} but is not "
                    "permanently deleted",
                    rid,
                    {
                        "user_id": user.user_id,
                        "soft_deleted_at": since.isoformat() if since else None,
                        "request_status": view.request.status,
                    },
                )
            )
        elif state == "active":
            result.findings.append(
                Finding(
                    "erasure.gone",
                    f"user {user.user_id} was soft-deleted by privacykit{age} but is an "
                    "active user in Zendesk again",
                    rid,
                    {"user_id": user.user_id, "zendesk_state": state},
                )
            )
    return result


def _age(now: datetime, since: datetime | None) -> str:
    if since is None:
        return ""
    hours = (now - since).total_seconds() / 3600
    if hours < 48:
        return f" {max(0, int(hours))} hour(s) ago"
    return f" {int(hours // 24)} day(s) ago"


# ------------------------------------------------------------------ compliance


def poll_compliance(
    client: ZendeskClient, user_id: int, expected: Iterable[str] = ()
) -> dict[str, Any] | None:
    """One look at a user's compliance deletion statuses, folded by the erasure engine's
    own :func:`~privacykit.playbooks.erasure.compliance_state` (one definition of
    "complete" for the engine and the audit). Returns the engine's progress record
    ``{"user_id", "complete", "applications"}``, or None when Zendesk does not know the
    user (404: nothing can be confirmed, so it stays pending)."""
    from privacykit.playbooks.erasure import compliance_state

    try:
        rows = client.compliance_deletion_statuses(user_id)
    except NotFoundError:
        return None
    complete, applications = compliance_state(rows, expected)
    return {"user_id": user_id, "complete": complete, "applications": applications}
