"""Deleting users: soft deletion, bulk deletion, the deleted_users collection,
permanent deletion and the compliance deletion statuses it starts.

Owns :class:`UserDeletionState` (see :mod:`privacykit.sandbox.core` for the layering),
the layer that sees every resource a user's deletion touches (tickets block it;
permanent deletion removes profiles and events).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from privacykit.sandbox.conversations import ConversationsState
from privacykit.sandbox.model import (
    APPLICATIONS,
    PERMANENTLY_DELETED_NAME,
    ApiError,
    ComplianceRow,
    norm_value,
    record_invalid,
    record_not_found,
)

__all__ = ["UserDeletionState"]


class UserDeletionState(ConversationsState):
    """Soft and permanent deletion of users, and compliance deletion statuses."""

    compliance: dict[int, list[ComplianceRow]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Applications that never report "complete" (configured, survives reseeding).
        self.stuck_applications: set[str] = set()
        super().__init__(*args, **kwargs)

    def _clear(self) -> None:
        super()._clear()
        self.compliance = {}

    # ------------------------------------------------------------------ deletion

    def soft_delete_user(self, user_id: int) -> dict[str, Any]:
        """``DELETE /api/v2/users/{id}``: the user becomes inactive and appears in
        deleted_users; identities are released. Refused for the account owner and for
        the requester of any ticket that is not closed."""
        with self.lock:
            # Assumption: deleting an already soft-deleted user answers 404, like any
            # other request for a user that is no longer in the users collection.
            user = self._user(user_id, active_only=True)
            if user.owner:
                # Documented: administrators can delete all users except the account
                # owner. Assumption: Zendesk's standard 403 body.
                raise ApiError(
                    403,
                    {
                        "error": "Forbidden",
                        "description": "You do not have access to this page. Please contact "
                        "the account owner of this help desk for further help.",
                    },
                )
            # Documented: "solved" is not enough; deleted tickets no longer count.
            blocking = sorted(
                t.id for t in self._live() if t.requester_id == user_id and t.status != "closed"
            )
            if blocking:
                raise record_invalid(
                    {
                        "base": [
                            {
                                "description": "User is requester on "
                                f"{len(blocking)} ticket(s) that are not closed.",
                                "error": "UserWithOpenTickets",
                                "ticket_ids": blocking,
                            }
                        ]
                    }
                )
            email = self._primary_email(user_id)
            user.deleted_email = email.value if email else None
            user.deleted_verified = bool(email and email.verified)
            self._release_identities(user_id)
            if user.external_id is not None:
                self._external_index.pop(norm_value("external_id", user.external_id), None)
            user.status = "soft_deleted"
            user.updated_at = self._now()
            return self.user_json(user)

    def _soft_delete_step(self, user_id: int) -> dict[str, Any]:
        try:
            self.soft_delete_user(user_id)
        except ApiError as exc:
            return {
                "action": "delete",
                "id": user_id,
                "status": "Failed",
                "success": False,
                "error": exc.body.get("error", "Error"),
            }
        return {"action": "delete", "id": user_id, "status": "Deleted", "success": True}

    def destroy_many(self, ids: list[int]) -> dict[str, Any]:
        """``DELETE /api/v2/users/destroy_many``: a job soft-deletes them one by one on
        the virtual clock (each with the same rules as ``DELETE /users/{id}``)."""
        with self.lock:
            steps = [_bind(self._soft_delete_step, uid) for uid in ids]
            return self.job_json(self._queue_job(steps))

    def deleted_user_ids(self) -> list[int]:
        with self.lock:
            return sorted(u.id for u in self.users.values() if not u.active)

    def render_deleted_users(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.deleted_user_json(self.users[uid]) for uid in ids if uid in self.users]

    def show_deleted_user(self, user_id: int) -> dict[str, Any]:
        # The docs describe this endpoint as returning users "deleted but not
        # permanently yet", but list the permanently deleted ones (scrubbed) in the
        # same collection. Assumption: show answers the scrubbed record too, so a
        # client can tell "permanently deleted" from "never soft-deleted" (404).
        with self.lock:
            user = self.users.get(user_id)
            if user is None or user.active:
                raise record_not_found()
            return self.deleted_user_json(user)

    def permanently_delete_user(
        self, user_id: int, executer_id: int | None = None
    ) -> dict[str, Any]:
        """``DELETE /api/v2/deleted_users/{id}``. Only a soft-deleted user can be
        permanently deleted: an active user is not in the deleted_users collection, so
        the answer is 404 RecordNotFound (assumption: the docs only say "you must delete
        the user first"). A second permanent deletion also answers 404: the scrubbed
        tombstone stays visible to GET but there is nothing left to delete."""
        with self.lock:
            user = self.users.get(user_id)
            if user is None or user.status != "soft_deleted":
                raise record_not_found()
            answer = self.deleted_user_json(user)
            user.status = "permanently_deleted"
            user.name = PERMANENTLY_DELETED_NAME
            user.deleted_email = None
            user.phone = None
            user.shared_phone_number = None
            user.external_id = None
            user.alias = user.signature = user.notes = user.details = None
            user.tags = []
            user.user_fields = {}
            user.organization_id = None
            user.updated_at = self._now()
            # Assumption: "Permanently deleting a user deletes all of their information",
            # including Sunshine profiles (and so their events) still attached to them.
            for pid in list(self._user_profiles.get(user_id, [])):
                self._delete_profile(pid)
            # Memberships go; tickets and comments stay (documented: tickets outlive
            # their requester; their author and requester ids keep pointing here).
            self._drop_memberships(user_id)
            self._schedule_compliance(user_id, executer_id or self.admin_id)
            return answer

    def deleted_users_count(self) -> dict[str, Any]:
        with self.lock:
            value = sum(1 for u in self.users.values() if not u.active)
            return {"value": value, "refreshed_at": self._now()}

    # ------------------------------------------------------------------ compliance

    def _schedule_compliance(self, user_id: int, executer_id: int) -> None:
        """One ``all``/``request_deletion`` row at once, then per application ``started``
        and ``complete`` after random virtual delays of minutes (together under an hour)."""
        now = self.clock.now()
        rows = [ComplianceRow(now, "request_deletion", "all", executer_id)]
        for app in APPLICATIONS:
            started = now + self._rng.uniform(60.0, 1800.0)
            rows.append(ComplianceRow(started, "started", app, None))
            rows.append(
                ComplianceRow(started + self._rng.uniform(60.0, 1800.0), "complete", app, None)
            )
        rows.sort(key=lambda r: r.at)
        self.compliance[user_id] = rows

    def compliance_rows(self, user_id: int, application: str | None = None) -> list[dict[str, Any]]:
        """Rows visible now; 404 for a user id that never existed. Applications marked
        stuck (``stuck_applications``) never report ``complete``."""
        with self.lock:
            if user_id not in self.users:
                raise record_not_found()
            now = self.clock.now()
            rows = []
            for row in self.compliance.get(user_id, []):
                if row.at > now:
                    continue
                if row.action == "complete" and row.application in self.stuck_applications:
                    continue
                if application is not None and row.application != application:
                    continue
                rows.append(
                    {
                        "account_subdomain": self.subdomain,
                        "action": row.action,
                        "application": row.application,
                        "created_at": self.clock.iso(row.at),
                        "executer_id": row.executer_id,
                        "user_id": user_id,
                    }
                )
            return rows


def _bind(func: Callable[[int], dict[str, Any]], user_id: int) -> Callable[[], dict[str, Any]]:
    return lambda: func(user_id)
