"""One subject's erasure as it moves through the playbook: its users, profiles and request.

Owns :class:`ErasureJob` (the engine's run context for one subject), :class:`UserState`
and :class:`ProfileState` (ids, counts and what has been done; never contents),
:func:`compliance_state` (the one definition of "Zendesk's compliance deletion is
complete", shared with the audit) and the outcome vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privacykit.playbooks.discovery import Discovery, DiscoveryRun, as_int
from privacykit.playbooks.engine import RunContext
from privacykit.playbooks.erasure.tickets import TicketPlan
from privacykit.playbooks.policy import ProfilePlan
from privacykit.playbooks.request import RequestSession
from privacykit.playbooks.subjects import Subject

__all__ = [
    "DESTRUCTIVE_STEPS",
    "EVIDENCE_SCHEMA",
    "PERMANENTLY_DELETED_NAME",
    "SUCCESS_OUTCOMES",
    "ErasureJob",
    "ProfileState",
    "UserState",
    "as_int",
    "compliance_state",
]

EVIDENCE_SCHEMA = "privacykit.erasure-evidence/1"
#: Documented (deleted users list): a permanently deleted user stays visible under this name.
PERMANENTLY_DELETED_NAME = "Permanently Deleted User"
DESTRUCTIVE_STEPS = frozenset(
    {
        "replace_profiles",
        "erase_tickets",
        "soft_delete_users",
        "permanently_delete_users",
        "permanently_delete_tickets",
        "poll_compliance",
    }
)
PERMANENT_DELETE_STEP = "permanently_delete_users"
SOFT_DELETE_STEP = "soft_delete_users"
# Outcomes that count as success for the exit code: pending compliance is Zendesk's own
# asynchronous work, not something the operator must act on (yet).
SUCCESS_OUTCOMES = frozenset({"erased", "no_data_found", "pending_compliance"})


def compliance_state(
    rows: Iterable[Mapping[str, Any]], expected: Iterable[str] = ()
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Whether a permanently deleted user's compliance deletion is complete, and the status
    per application (``{"support": {"status": "complete", "at": "..."}}``).

    Complete means: every ``expected`` application and every application that reports at
    all (``application`` other than ``all``) has a ``complete`` row. An application that
    has not reported yet counts as ``pending`` only if it is expected -- the API cannot
    say which applications will report, so the playbook lists them."""
    apps: dict[str, dict[str, Any]] = {}
    for row in rows:
        app = str(row.get("application") or "")
        action = str(row.get("action") or "")
        if not app or app == "all":
            continue
        current = apps.get(app)
        if current is not None and current["status"] == "complete":
            continue
        status = "complete" if action == "complete" else "started"
        apps[app] = {"status": status, "at": row.get("created_at")}
    for app in expected:
        apps.setdefault(app, {"status": "pending", "at": None})
    complete = bool(apps) and all(item["status"] == "complete" for item in apps.values())
    return complete, dict(sorted(apps.items()))


@dataclass
class UserState:
    """One user of the person: ids, role, counts and what has been done (no contents)."""

    user_id: int
    role: str
    identities: int = 0
    profiles: int = 0
    protected: str | None = None
    active: bool = True
    soft_deleted: bool = False
    permanently_deleted: bool = False
    permanently_deleted_at: str | None = None
    blocking_tickets: list[int] = field(default_factory=list)
    compliance: dict[str, dict[str, Any]] = field(default_factory=dict)
    compliance_complete: bool = False
    #: Permanently deleted by this run (its compliance deletion has only just started).
    deleted_this_run: bool = False

    def plan_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "role": self.role,
            "identities": self.identities,
            "profiles": self.profiles,
            "protected": self.protected,
            "active": self.active,
            "blocking_tickets": list(self.blocking_tickets),
        }

    @classmethod
    def from_plan(cls, row: Mapping[str, Any]) -> UserState:
        return cls(
            int(row["user_id"]),
            str(row.get("role", "end-user")),
            int(row.get("identities", 0)),
            int(row.get("profiles", 0)),
            row.get("protected"),
            bool(row.get("active", True)),
            blocking_tickets=[
                n for n in (as_int(t) for t in row.get("blocking_tickets") or []) if n is not None
            ],
        )


@dataclass
class ProfileState:
    """One profile of the person: the plan's counts and what has been done."""

    profile_id: str
    source_type: str
    user_id: int | None
    action: str
    identifiers_removed: int = 0
    identifiers_kept: int = 0
    attributes_removed: int = 0
    attributes_kept: int = 0
    replaced: bool = False
    deleted: bool = False
    gone: bool = False
    why: str | None = None

    @classmethod
    def from_plan(cls, plan: ProfilePlan) -> ProfileState:
        return cls.from_row({**plan.summary(), "why": plan.why})

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProfileState:
        return cls(
            str(row["profile_id"]),
            str(row.get("source_type", "")),
            as_int(row.get("user_id")),
            str(row.get("action", "delete")),
            int(row.get("identifiers_removed", 0)),
            int(row.get("identifiers_kept", 0)),
            int(row.get("attributes_removed", 0)),
            int(row.get("attributes_kept", 0)),
            why=row.get("why"),
        )

    def plan_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "source_type": self.source_type,
            "user_id": self.user_id,
            "action": self.action,
            "identifiers_removed": self.identifiers_removed,
            "identifiers_kept": self.identifiers_kept,
            "attributes_removed": self.attributes_removed,
            "attributes_kept": self.attributes_kept,
            "why": self.why,
        }

    @property
    def evidence_action(self) -> str:
        if self.action in ("delete", "scrub_then_delete") or self.gone:
            return "deleted"
        return "scrubbed" if self.action == "scrub" else "retained"

    @property
    def finished(self) -> bool:
        if self.gone:
            return True
        if self.action in ("delete", "scrub_then_delete"):
            return self.deleted
        if self.action == "scrub":
            return self.replaced
        return True


@dataclass
class ErasureJob(RunContext):
    """One subject's erasure request as it moves through the playbook.

    ``session`` is its ledger request (None only when planning without a ledger)."""

    index: int = 0
    subject: Subject | None = None
    session: RequestSession | None = None
    #: The playbook this job runs under (its runner in a batch).
    playbook_sha256: str = ""
    run: DiscoveryRun | None = None
    discovery: Discovery | None = None
    searched: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    users: dict[int, UserState] = field(default_factory=dict)
    profiles: dict[str, ProfileState] = field(default_factory=dict)
    profile_plans: dict[str, ProfilePlan] = field(default_factory=dict)
    #: The person's tickets and what is done to them (``discover_tickets``; issue 15).
    tickets: TicketPlan | None = None
    ambiguities: list[str] = field(default_factory=list)
    limit_reached: str | None = None
    missing_user_ids: list[int] = field(default_factory=list)
    planned: bool = False
    ambiguity_confirmed: bool = False
    destructive_started: bool = False
    reasons: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Why a user / profile was not (fully) erased, when a step failed for it.
    user_why: dict[int, str] = field(default_factory=dict)
    profile_why: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None
    status: str | None = None
    completed_at: str | None = None
    evidence: dict[str, Any] | None = None
    report_path: str | None = None
    report_sha256: str | None = None
    report_error: str | None = None
    previous_outcome: str | None = None
    outstanding: int = 0
    error: str | None = None
    plan_error: str | None = None

    # -- the request (through the session) ------------------------------------------------

    @property
    def request_id(self) -> str | None:
        return self.session.request_id if self.session is not None else None

    @property
    def subject_ref(self) -> str:
        return self.session.subject_ref if self.session is not None else ""

    @property
    def resumed(self) -> bool:
        return self.session is not None and self.session.resumed

    @property
    def started_at(self) -> str | None:
        return self.session.started_at if self.session is not None else None

    def info(self, key: str, data: dict[str, Any]) -> None:
        """An ``info`` entry (buffered until the request is opened; dropped without one)."""
        if self.session is not None:
            self.session.info(key, data)

    # -- the person -------------------------------------------------------------------------

    def needs_discovery(self) -> bool:
        return not self.planned

    def blocked(self) -> bool:
        """Whether the read-only phase found something that stops this subject."""
        return self.halt is not None and self.halt.status == "needs_review"

    def would_change(self) -> bool:
        """Whether running this job could still change something in Zendesk (a planned
        job not stopped for review, with a profile or user left to process)."""
        if self.halt is not None:
            return False
        if self.plan_error or not self.planned:
            return True
        return (
            any(not p.finished for p in self.profiles.values())
            or any(not u.permanently_deleted for u in self.users.values())
            or (self.tickets is not None and self.tickets.would_change())
        )

    def label(self) -> str:
        """How the CLI names this job: its position and form, never the value."""
        what = self.subject.describe() if self.subject is not None else "resumed request"
        return f"#{self.index} {what}"

    def counts_found(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "identities": sum(u.identities for u in self.users.values()),
            "profiles": len(self.profiles),
        }
