"""The erasure's step keys in the ledger, as types: written and read in one place.

Owns :class:`StepKey` (a kind and a target id; ``str(key)`` is the ledger text such as
``soft_delete:user:12``, :meth:`StepKey.parse` reads it back or returns None) and the plain
keys of the erasure's ``info`` entries. The erasure engine writes with these and both the
engine (resuming a request) and the audit (re-checking it) read with them -- nobody
formats or parses a key with an f-string or a regex of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CONFIRMED_AMBIGUOUS",
    "DISCOVERY",
    "EVIDENCE",
    "PLAN",
    "PREFLIGHT",
    "REPORT",
    "TICKETS",
    "StepKey",
    "StepKind",
]

#: ``info``: :meth:`Discovery.summary` (ids and counts).
DISCOVERY = "discovery"
#: ``info``: the plan (users with role/counts/blockers, profiles with their planned action).
PLAN = "plan"
#: ``info``: the operator confirmed an ambiguous subject (``--confirm-ambiguous``).
CONFIRMED_AMBIGUOUS = "confirmed_ambiguous"
#: ``info``: what the read-only phase found that stops the subject (no mutating request).
PREFLIGHT = "preflight"
#: ``info``: the ticket plan (ticket ids, relations, actions, comment ids; never texts).
TICKETS = "tickets"
#: ``info``: the evidence record (``privacykit.erasure-evidence/1``).
EVIDENCE = "evidence"
#: ``intent``/``outcome``: the signed report of the latest evidence record.
REPORT = "report"

_PROFILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class StepKind(StrEnum):
    """What a per-target step is; the value is the key's prefix."""

    PROFILE_REPLACE = "profile:replace"  # intent/outcome: PUT without what the policy removes
    PROFILE_DELETE = "profile:delete"  # intent/outcome: DELETE the profile (and its events)
    PROFILE_GONE = "profile:gone"  # info: already gone when the erasure reached it
    SOFT_DELETE = "soft_delete:user"  # intent/outcome: DELETE /users/{id}
    PERMANENT_DELETE = "permanent_delete:user"  # intent/outcome: DELETE /deleted_users/{id}
    BLOCKED = "blocked:user"  # info: open requested tickets stop this user ({ticket_ids})
    COMPLIANCE = "compliance:user"  # info: compliance deletion progress
    # Conversations (issue 15; written by playbooks.erasure.ticket_steps): a Zendesk id each.
    TICKET_CLOSE = "ticket:close"  # intent/outcome: PUT status closed (open: close)
    TICKET_DELETE = "ticket:soft_delete"  # intent/outcome: DELETE /tickets/{id}
    TICKET_DELETE_MANY = "ticket:soft_delete_many"  # intent/outcome: tickets/destroy_many group
    TICKET_PURGE = "ticket:purge"  # intent/outcome: deleted_tickets/destroy_many of a group
    COMMENT_REDACT = "comment:redact"  # intent/outcome: comment_redactions of one comment
    ATTACHMENT_REDACT = "attachment:redact"  # intent/outcome: one attachment -> redacted.txt

    @property
    def about_user(self) -> bool:
        return self.value.endswith(":user")

    @property
    def numeric(self) -> bool:
        """Whether the target is a Zendesk id (an integer); else a profile id."""
        return not self.value.startswith("profile:")


_BY_PREFIX = {kind.value: kind for kind in StepKind}


@dataclass(frozen=True)
class StepKey:
    """One per-target step: ``kind`` and the user id (int) or profile id (str)."""

    kind: StepKind
    target: int | str

    def __post_init__(self) -> None:
        if self.kind.numeric:
            if isinstance(self.target, bool) or not isinstance(self.target, int):
                raise TypeError(f"{self.kind} needs an integer Zendesk id")
        elif not isinstance(self.target, str) or not _PROFILE_ID.match(self.target):
            raise TypeError(f"{self.kind} needs a profile id")

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.target}"

    @property
    def user_id(self) -> int:
        assert isinstance(self.target, int)
        return self.target

    @property
    def zendesk_id(self) -> int:
        """The ticket, comment or attachment id of a conversation step."""
        assert isinstance(self.target, int)
        return self.target

    @property
    def profile_id(self) -> str:
        assert isinstance(self.target, str)
        return self.target

    @classmethod
    def parse(cls, text: str) -> StepKey | None:
        """The key ``text`` names, or None for any other key (plain keys, other kinds')."""
        prefix, _, target = text.rpartition(":")
        kind = _BY_PREFIX.get(prefix)
        if kind is None or not target:
            return None
        if kind.numeric:
            if not target.isascii() or not target.isdigit():
                return None
            return cls(kind, int(target))
        return cls(kind, target) if _PROFILE_ID.match(target) else None

    # Constructors, so writers read like what they record.
    @classmethod
    def soft_delete(cls, user_id: int) -> StepKey:
        return cls(StepKind.SOFT_DELETE, user_id)

    @classmethod
    def permanent_delete(cls, user_id: int) -> StepKey:
        return cls(StepKind.PERMANENT_DELETE, user_id)

    @classmethod
    def blocked(cls, user_id: int) -> StepKey:
        return cls(StepKind.BLOCKED, user_id)

    @classmethod
    def compliance(cls, user_id: int) -> StepKey:
        return cls(StepKind.COMPLIANCE, user_id)

    @classmethod
    def profile_replace(cls, profile_id: str) -> StepKey:
        return cls(StepKind.PROFILE_REPLACE, profile_id)

    @classmethod
    def profile_delete(cls, profile_id: str) -> StepKey:
        return cls(StepKind.PROFILE_DELETE, profile_id)

    @classmethod
    def profile_gone(cls, profile_id: str) -> StepKey:
        return cls(StepKind.PROFILE_GONE, profile_id)

    @classmethod
    def ticket_close(cls, ticket_id: int) -> StepKey:
        return cls(StepKind.TICKET_CLOSE, ticket_id)

    @classmethod
    def ticket_delete(cls, ticket_id: int) -> StepKey:
        return cls(StepKind.TICKET_DELETE, ticket_id)

    @classmethod
    def ticket_delete_many(cls, first_ticket_id: int) -> StepKey:
        """A group of one request's tickets soft-deleted by ``tickets/destroy_many`` jobs
        together, named by its smallest ticket id (groups of a request never overlap)."""
        return cls(StepKind.TICKET_DELETE_MANY, first_ticket_id)

    @classmethod
    def ticket_purge(cls, first_ticket_id: int) -> StepKey:
        """A group of one request's tickets handed to permanent deletion together, named
        by its smallest ticket id (groups of a request never overlap)."""
        return cls(StepKind.TICKET_PURGE, first_ticket_id)

    @classmethod
    def comment_redact(cls, comment_id: int) -> StepKey:
        return cls(StepKind.COMMENT_REDACT, comment_id)

    @classmethod
    def attachment_redact(cls, attachment_id: int) -> StepKey:
        return cls(StepKind.ATTACHMENT_REDACT, attachment_id)
