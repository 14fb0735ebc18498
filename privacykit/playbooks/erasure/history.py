"""What an erasure request's ledger entries say happened, folded once.

Owns :class:`ErasureHistory` (:meth:`ErasureHistory.from_entries`): per user whether the
soft and permanent deletions are done (and when), the blocking tickets, the latest
compliance progress; per profile whether it was replaced, deleted or already gone; the
recorded plan, what was searched, the latest evidence record. The engine resumes a
request from it and the audit re-checks a request from it, so both read the ledger by the
same rules (:mod:`.keys`, and the ledger's: the last intent or outcome of a step decides,
``ok`` is done).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from privacykit.playbooks.erasure import keys
from privacykit.playbooks.erasure.keys import StepKey, StepKind
from privacykit.playbooks.erasure.state import ErasureJob, ProfileState, UserState

__all__ = ["EntryLike", "ErasureHistory", "ProfileHistory", "UserHistory", "resume_job"]


class EntryLike(Protocol):
    """A ledger entry (:class:`privacykit.ledger.Entry` or a session's ``Recorded``)."""

    @property
    def step_key(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def ts(self) -> str: ...


@dataclass
class _Step:
    """The ledger's view of one intent/outcome step."""

    state: str = "none"  # none | intent | done
    data: dict[str, Any] = field(default_factory=dict)
    ts: str | None = None

    def apply(self, phase: str, data: Mapping[str, Any], ts: str) -> None:
        if phase == "intent":
            self.state, self.data, self.ts = "intent", dict(data), ts
        elif phase == "outcome":
            result = data.get("result", "ok")
            self.state = {"ok": "done", "failed": "none"}.get(str(result), "intent")
            self.data, self.ts = dict(data), ts

    @property
    def done(self) -> bool:
        return self.state == "done"


@dataclass
class UserHistory:
    """One user, as the ledger tells it (ids, flags and times only)."""

    user_id: int
    soft: _Step = field(default_factory=_Step)
    permanent: _Step = field(default_factory=_Step)
    blocking_tickets: list[int] | None = None
    compliance: dict[str, Any] | None = None
    compliance_at: str | None = None

    @property
    def permanently_deleted(self) -> bool:
        return self.permanent.done or (
            self.soft.done and self.soft.data.get("state") == "permanently_deleted"
        )

    @property
    def soft_deleted(self) -> bool:
        return self.soft.done or self.permanently_deleted

    @property
    def soft_deleted_at(self) -> str | None:
        return (
            self.soft.ts if self.soft.done else self.permanent.ts if self.permanent.done else None
        )

    @property
    def permanently_deleted_at(self) -> str | None:
        if self.permanent.done:
            at = self.permanent.data.get("at")
            return at if isinstance(at, str) else self.permanent.ts
        return self.soft.ts if self.permanently_deleted else None


@dataclass
class ProfileHistory:
    """One profile, as the ledger tells it."""

    profile_id: str
    replace: _Step = field(default_factory=_Step)
    delete: _Step = field(default_factory=_Step)
    gone: bool = False

    @property
    def user_id(self) -> int | None:
        value = self.delete.data.get("user_id")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class ErasureHistory:
    """An erasure request's entries, folded (see the module docstring)."""

    plan: dict[str, Any] | None = None
    searched: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None
    ambiguity_confirmed: bool = False
    destructive_started: bool = False
    users: dict[int, UserHistory] = field(default_factory=dict)
    profiles: dict[str, ProfileHistory] = field(default_factory=dict)
    last_compliance_poll: str | None = None

    def user(self, user_id: int) -> UserHistory:
        found = self.users.get(user_id)
        if found is None:
            found = self.users[user_id] = UserHistory(user_id)
        return found

    def profile(self, profile_id: str) -> ProfileHistory:
        found = self.profiles.get(profile_id)
        if found is None:
            found = self.profiles[profile_id] = ProfileHistory(profile_id)
        return found

    @classmethod
    def from_entries(cls, entries: Iterable[EntryLike]) -> ErasureHistory:
        history = cls()
        for entry in entries:
            history._apply(entry.step_key, entry.phase, entry.data, entry.ts)
        return history

    def _apply(self, key: str, phase: str, data: Mapping[str, Any], ts: str) -> None:
        if phase == "info":
            if key == keys.EVIDENCE:
                if str(data.get("schema", "")).startswith("privacykit.erasure-evidence/"):
                    self.evidence = dict(data)
                return
            if key == keys.PLAN:
                self.plan = dict(data)
                return
            if key == keys.DISCOVERY:
                searched = data.get("searched")
                self.searched = dict(searched) if isinstance(searched, Mapping) else {}
                return
            if key == keys.CONFIRMED_AMBIGUOUS:
                self.ambiguity_confirmed = True
                return
        parsed = StepKey.parse(key)
        if parsed is None:
            return
        if phase == "intent":
            self.destructive_started = True
        kind = parsed.kind
        if kind is StepKind.SOFT_DELETE:
            self.user(parsed.user_id).soft.apply(phase, data, ts)
        elif kind is StepKind.PERMANENT_DELETE:
            self.user(parsed.user_id).permanent.apply(phase, data, ts)
        elif kind is StepKind.PROFILE_REPLACE:
            self.profile(parsed.profile_id).replace.apply(phase, data, ts)
        elif kind is StepKind.PROFILE_DELETE:
            self.profile(parsed.profile_id).delete.apply(phase, data, ts)
        elif phase != "info":
            return
        elif kind is StepKind.PROFILE_GONE:
            self.profile(parsed.profile_id).gone = True
        elif kind is StepKind.BLOCKED:
            tickets = data.get("ticket_ids")
            self.user(parsed.user_id).blocking_tickets = [
                int(t) for t in tickets or [] if isinstance(t, int) and not isinstance(t, bool)
            ]
        elif kind is StepKind.COMPLIANCE:
            user = self.user(parsed.user_id)
            user.compliance, user.compliance_at = dict(data), ts
            self.last_compliance_poll = ts


def resume_job(job: ErasureJob, history: ErasureHistory) -> None:
    """Put a resumed job where its ledger history says it is: the recorded plan and what
    each destructive step reached. Without its subject (``--resume`` alone) a request can
    only go on from its plan; with the subject and nothing destructive done yet,
    discovery runs afresh instead (the plan is not applied)."""
    job.previous_outcome = (history.evidence or {}).get("outcome")
    job.searched = history.searched
    job.destructive_started = history.destructive_started
    if history.plan is None:
        return
    if job.subject is not None and not job.destructive_started:
        return
    _apply_plan(job, history.plan)
    job.ambiguity_confirmed = history.ambiguity_confirmed
    for uid, user in job.users.items():
        past = history.users.get(uid)
        if past is None:
            continue
        user.soft_deleted = user.soft_deleted or past.soft_deleted
        user.permanently_deleted = past.permanently_deleted
        user.permanently_deleted_at = past.permanently_deleted_at
        if past.blocking_tickets is not None and not user.soft_deleted:
            user.blocking_tickets = list(past.blocking_tickets)
        if past.compliance is not None:
            user.compliance = dict(past.compliance.get("applications", {}))
            user.compliance_complete = bool(past.compliance.get("complete"))
    for pid, profile in job.profiles.items():
        done = history.profiles.get(pid)
        if done is not None:
            profile.replaced = done.replace.done
            profile.deleted = done.delete.done
            profile.gone = done.gone


def _apply_plan(job: ErasureJob, plan: dict[str, Any]) -> None:
    job.planned = True
    job.counts = dict(plan.get("counts", {}))
    job.ambiguities = list(plan.get("ambiguities", []))
    job.limit_reached = plan.get("limit_reached")
    job.missing_user_ids = list(plan.get("missing_user_ids", []))
    job.users = {}
    for row in plan.get("users", []):
        user = UserState.from_plan(row)
        # A user inactive when planned was soft-deleted before this erasure reached it.
        user.soft_deleted = not user.active
        job.users[user.user_id] = user
    job.profiles = {
        str(p["profile_id"]): ProfileState.from_row(p) for p in plan.get("profiles", [])
    }
