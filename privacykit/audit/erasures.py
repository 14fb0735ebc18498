"""What the ledger says an erasure did, read back for re-checking, and the incremental cursor.

Owns :class:`ErasureView` (per erasure request: the users privacykit soft-deleted and
permanently deleted, the profiles it deleted, and the compliance polling so far), built
from the request's ledger entries: the latest evidence record (step ``evidence``, schema
``privacykit.erasure-evidence/1``) and the per-user destructive steps, so that a run that
crashed before writing its evidence is still seen.

Also owns the rotation that keeps a nightly audit bounded (:func:`plan_rotation`): each
run re-checks erasures never re-checked before first, then continues a round-robin over
the older ones from where the last run stopped, within a budget of Zendesk requests.
The position is two ordering keys kept in the audit's own ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from privacykit import clock
from privacykit.ledger import Ledger, RequestRecord
from privacykit.playbooks.erasure import keys
from privacykit.playbooks.erasure.history import ErasureHistory
from privacykit.playbooks.erasure.keys import StepKey
from privacykit.playbooks.erasure.ticket_history import TicketHistory

__all__ = [
    "as_key",
    "compliance_step",
    "EVIDENCE_STEP",
    "ErasureView",
    "OrderKey",
    "UserRecord",
    "load_erasure",
    "order_key",
    "parse_ts",
    "plan_rotation",
    "rotate",
]

T = TypeVar("T")

#: A request's place in the rotation: (created_at, request_id). created_at is the ledger's
#: fixed-width UTC timestamp, so tuples of strings sort in creation order.
OrderKey = tuple[str, str]

# The erasure engine's step keys are read through its own types (keys, history).
EVIDENCE_STEP = keys.EVIDENCE


def compliance_step(user_id: int) -> str:
    """The engine's step key for a user's compliance progress (``info`` entries holding
    ``{"user_id", "complete", "applications"}``); the audit records its polls there too,
    so ``privacykit erase --resume`` and the audit share one history."""
    return str(StepKey.compliance(user_id))


def order_key(request: RequestRecord) -> OrderKey:
    return (request.created_at, request.request_id)


def parse_ts(text: str | None) -> datetime | None:
    """A ledger or evidence timestamp as an aware datetime (None if absent or unreadable)."""
    return clock.parse_iso(text)


@dataclass
class UserRecord:
    """One Zendesk user an erasure acted on, as the ledger tells it."""

    user_id: int
    soft_deleted: bool = False
    permanently_deleted: bool = False
    soft_deleted_at: datetime | None = None
    permanently_deleted_at: datetime | None = None


@dataclass
class ErasureView:
    """An erasure request's recorded deletions (ids only) and compliance progress."""

    request: RequestRecord
    evidence: dict[str, Any] | None = None
    users: dict[int, UserRecord] = field(default_factory=dict)
    # Profile ids the erasure deleted (the evidence's action "deleted"), with their user id.
    deleted_profiles: dict[str, int | None] = field(default_factory=dict)
    # Latest recorded compliance progress per user id (the engine's format:
    # {"user_id", "complete", "applications": {app: {"status", "at"}}}).
    compliance: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_compliance_poll: datetime | None = None
    completed_at: datetime | None = None
    # The person's conversations (#15): tickets recorded as permanently deleted, and
    # (ticket id, comment id) of every comment recorded as redacted.
    purged_tickets: list[int] = field(default_factory=list)
    redacted_comments: list[tuple[int, int]] = field(default_factory=list)

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def permanently_deleted(self) -> list[UserRecord]:
        return [u for u in self.users.values() if u.permanently_deleted]

    @property
    def soft_deleted_only(self) -> list[UserRecord]:
        return [u for u in self.users.values() if u.soft_deleted and not u.permanently_deleted]

    def compliance_pending(self) -> list[UserRecord]:
        """Permanently deleted users whose compliance deletion is not recorded complete."""
        return [
            u
            for u in self.permanently_deleted
            if not self.compliance.get(u.user_id, {}).get("complete")
        ]

    def gone_cost(self) -> int:
        """Zendesk requests a full re-check of what this erasure deleted takes (typically:
        one per recorded user and one per deleted profile; tickets: one ``show_many`` per
        100 purged and one comment list per ticket with redacted comments)."""
        tickets = -(-len(self.purged_tickets) // 100)
        comments = len({tid for tid, _ in self.redacted_comments})
        return len(self.users) + len(self.deleted_profiles) + tickets + comments


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def load_erasure(ledger: Ledger, request: RequestRecord) -> ErasureView:
    """Read one erasure request's entries into an :class:`ErasureView` (through the
    engine's :class:`~privacykit.playbooks.erasure.history.ErasureHistory`)."""
    view = ErasureView(request)
    entries = list(ledger.iter_entries(request.request_id))
    history = ErasureHistory.from_entries(entries)
    tickets = TicketHistory.from_entries(entries)
    view.purged_tickets = tickets.purged
    view.redacted_comments = tickets.redacted
    for uid, past in sorted(history.users.items()):
        if past.soft_deleted:
            record = _user(view, uid)
            record.soft_deleted = True
            record.permanently_deleted = past.permanently_deleted
            record.soft_deleted_at = parse_ts(past.soft_deleted_at)
            record.permanently_deleted_at = parse_ts(past.permanently_deleted_at)
        if past.compliance is not None:
            view.compliance[uid] = dict(past.compliance)
    view.last_compliance_poll = parse_ts(history.last_compliance_poll)
    for pid, profile in history.profiles.items():
        if profile.delete.done or profile.gone:
            # Deleted by the erasure, or already gone when it got there: it must stay gone.
            view.deleted_profiles.setdefault(pid, profile.user_id)
    view.evidence = history.evidence
    if view.evidence is not None:
        _apply_evidence(view, view.evidence)
    return view


def _user(view: ErasureView, user_id: int) -> UserRecord:
    record = view.users.get(user_id)
    if record is None:
        record = view.users[user_id] = UserRecord(user_id)
    return record


def _apply_evidence(view: ErasureView, record: dict[str, Any]) -> None:
    completed = parse_ts(record.get("completed_at"))
    view.completed_at = completed
    for row in record.get("users") or []:
        if not isinstance(row, dict):
            continue
        uid = _int(row.get("user_id"))
        if uid is None:
            continue
        user = _user(view, uid)
        if row.get("soft_deleted"):
            user.soft_deleted = True
            user.soft_deleted_at = user.soft_deleted_at or completed
        if row.get("permanently_deleted"):
            user.soft_deleted = True
            user.permanently_deleted = True
            user.permanently_deleted_at = user.permanently_deleted_at or completed
    for row in record.get("profiles") or []:
        if (
            isinstance(row, dict)
            and row.get("action") == "deleted"
            and row.get("done", True)
            and row.get("profile_id")
        ):
            view.deleted_profiles[str(row["profile_id"])] = _int(row.get("user_id"))


def plan_rotation(
    items: Sequence[T],
    key: Callable[[T], OrderKey],
    *,
    high_water: OrderKey | None,
    rotation_after: OrderKey | None,
) -> tuple[list[T], list[T]]:
    """Split ``items`` (sorted by ``key``) into the never-checked ones (key above
    ``high_water``, oldest first) and the rest in round-robin order starting after
    ``rotation_after`` (wrapping around, each once)."""
    ordered = sorted(items, key=key)
    if high_water is None:
        return list(ordered), []
    fresh = [item for item in ordered if key(item) > high_water]
    seen = [item for item in ordered if key(item) <= high_water]
    return fresh, rotate(seen, key, after=rotation_after)


def rotate(items: Sequence[T], key: Callable[[T], OrderKey], *, after: OrderKey | None) -> list[T]:
    """``items`` in ``key`` order starting after ``after``, wrapping around, each once."""
    ordered = sorted(items, key=key)
    if after is None:
        return ordered
    start = next((i for i, item in enumerate(ordered) if key(item) > after), len(ordered))
    return ordered[start:] + ordered[:start]


def as_key(value: Iterable[Any] | None) -> OrderKey | None:
    """An :data:`OrderKey` read back from JSON (a two-string list), or None."""
    if value is None:
        return None
    parts = list(value)
    if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
        return None
    return (parts[0], parts[1])
