"""The sandbox's data: :class:`SandboxState`, assembled from one layer per resource.

Owns the assembly, the reset (account owner and authenticating admin), inspection
(``counts``) and the public seeding and inspection helpers tests use instead of the
records. The rules Zendesk applies live in the resource modules (as documented in
``../shared/zendesk-docs``; where the docs are silent the assumption is written next to
the code):

==========================  ===============================================================
:mod:`.model`               error answers, identifier normalisation, the shared records
:mod:`.core`                lock, virtual clock, ids (the bottom layer)
:mod:`.jobs`                ``job_statuses`` on the virtual clock, the 30-job cap, expiry
:mod:`.users`               users, identities, search
:mod:`.organizations`       organizations and memberships
:mod:`.profiles`            Sunshine profiles and events
:mod:`.comments`            comment and attachment records, their text and HTML forms
:mod:`.tickets`             tickets, lists, updates, soft and permanent deletion
:mod:`.conversations`       seeding conversations, comment listing, redactions, ratings
:mod:`.deletion`            soft/bulk/permanent user deletion, compliance statuses
==========================  ===============================================================

All public methods are thread-safe (one re-entrant lock) and return plain JSON-ready
dicts shaped like Zendesk's. Rule violations raise :class:`ApiError`.
"""

from __future__ import annotations

from typing import Any

from privacykit.sandbox.deletion import UserDeletionState
from privacykit.sandbox.model import (
    APPLICATIONS,
    MAX_QUEUED_JOBS,
    PROFILES_PER_USER,
    STANDARD_IDENTIFIERS,
    TICKET_STATUSES,
    ApiError,
    IdentifierQuery,
    parse_identifier_query,
    profile_error,
    record_invalid,
    record_not_found,
)

__all__ = [
    "APPLICATIONS",
    "MAX_QUEUED_JOBS",
    "PROFILES_PER_USER",
    "STANDARD_IDENTIFIERS",
    "TICKET_STATUSES",
    "ApiError",
    "IdentifierQuery",
    "SandboxState",
    "parse_identifier_query",
    "profile_error",
    "record_invalid",
    "record_not_found",
]


class SandboxState(UserDeletionState):
    """All sandbox data behind one lock. Public methods return Zendesk-shaped dicts."""

    def _clear(self) -> None:
        super()._clear()
        owner = self.add_user("Sandbox Account Owner", email="owner@example.org", role="admin")
        self.users[owner["id"]].owner = True
        admin = self.add_user("Sandbox DPO", email=self.admin_email, role="admin", verified=True)
        self.admin_id = admin["id"]
        self.owner_id = owner["id"]

    def reset(self) -> None:
        """Forget everything, then create the account owner and the authenticating admin."""
        with self.lock:
            self._clear()

    def settle(self) -> None:
        """Apply whatever the virtual clock has made due (job items, scheduled purges)."""
        with self.lock:
            self._settle()

    # ------------------------------------------------------------------ inspection
    # Each first applies what the virtual clock made due (a job's items, the 30-day
    # scrub), so a test sees the state a request at this instant would see.

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        """The active user holding ``email`` as an identity, or None."""
        with self.lock:
            self._settle()
            owner = self._owner_of("email", email)
            return None if owner is None else self.user_json(self.users[owner])

    def user_id_by_identity(self, kind: str, value: str) -> int | None:
        """The active user holding an identity (``email``, ``phone_number``, ``twitter``…,
        or ``external_id``), compared the way Zendesk compares them; None if nobody."""
        with self.lock:
            self._settle()
            return self._owner_of("phone_number" if kind == "phone" else kind, value)

    def user_status(self, user_id: int) -> str:
        """``active`` | ``soft_deleted`` | ``permanently_deleted`` (KeyError if unknown)."""
        with self.lock:
            self._settle()
            return self.users[user_id].status

    def user_names(self) -> list[str]:
        """Names of every user record, deleted ones included, in id order."""
        with self.lock:
            self._settle()
            return [self.users[uid].name for uid in sorted(self.users)]

    def profile_ids(self, user_id: int | None = None) -> list[str]:
        """Ids of every profile (or of one user's profiles), oldest first."""
        with self.lock:
            self._settle()
            if user_id is not None:
                return list(self._user_profiles.get(user_id, []))
            return [p.id for p in sorted(self.profiles.values(), key=lambda p: p.seq)]

    def profile(self, profile_id: str) -> dict[str, Any] | None:
        """A profile's JSON, or None if there is no such profile (any more)."""
        with self.lock:
            self._settle()
            found = self.profiles.get(profile_id)
            return None if found is None else self.profile_json(found)

    def find_text(self, text: str) -> list[str]:
        """Where ``text`` (case-insensitive) still appears in any record, as
        ``"<collection>[<id>]"`` names: users, identities, profiles, events, tickets…
        An empty list means Zendesk holds it nowhere (what erasure tests assert)."""
        needle = text.lower()
        with self.lock:
            self._settle()
            return [
                f"{name}[{key}]"
                for name, records in self._collections().items()
                for key, record in records.items()
                if needle in repr(record).lower()
            ]

    def _collections(self) -> dict[str, dict[Any, Any]]:
        return {
            "users": self.users,
            "identities": self.identities,
            "profiles": self.profiles,
            "events": self.events,
            "tickets": self.tickets,
            "comments": self.comments,
            "attachments": self.attachments,
            "organizations": self.organizations,
            "memberships": self.memberships,
            "jobs": self.jobs,
        }

    def counts(self) -> dict[str, int]:
        with self.lock:
            self._settle()
            return {
                "users": sum(1 for u in self.users.values() if u.active),
                "soft_deleted_users": sum(
                    1 for u in self.users.values() if u.status == "soft_deleted"
                ),
                "permanently_deleted_users": sum(
                    1 for u in self.users.values() if u.status == "permanently_deleted"
                ),
                "identities": len(self.identities),
                "profiles": len(self.profiles),
                "events": sum(len(v) for v in self.events.values()),
                "tickets": sum(1 for _ in self._live()),
                "open_tickets": sum(1 for t in self._live() if t.status != "closed"),
                "deleted_tickets": len(self.deleted_ticket_ids()),
                "comments": len(self.comments),
                "attachments": len(self.attachments),
                "organizations": len(self.organizations),
                "jobs": len(self.jobs),
            }

    # ------------------------------------------------------------------ seeding

    def change_profile_id(self, profile_id: str, new_id: str) -> dict[str, Any]:
        """Give a profile another id (as a sync restoring a profile under an old id
        would); events and identifiers stay. Returns the profile JSON."""
        with self.lock:
            profile = self._profile(profile_id)
            if new_id in self.profiles:
                raise ValueError("another profile already has that id")
            self._unindex_profile(profile)
            del self.profiles[profile_id]
            profile.id = new_id
            self.profiles[new_id] = profile
            self._index_profile(profile)
            owned = self._user_profiles[profile.user_id]
            owned[owned.index(profile_id)] = new_id
            if profile_id in self.events:
                self.events[new_id] = self.events.pop(profile_id)
                for event in self.events[new_id]:
                    event.profile_id = new_id
            return self.profile_json(profile)

    def add_compliance_history(self, user_id: int, executer_id: int | None = None) -> None:
        """Give a user a compliance deletion history (as if Zendesk had been asked to
        delete them before): ``request_deletion`` now, then each application's
        ``started``/``complete`` within the next hour of virtual time."""
        with self.lock:
            self._user(user_id)
            self._schedule_compliance(user_id, executer_id or self.admin_id)
