"""Erasure (GDPR Art. 17): the steps of the erasure playbook and the batch pipeline.

Owns :func:`erase` (the one library call behind ``privacykit erase``), the step functions
the ``erasure`` kind's engine runs (resolve, discover, check safety, replace profiles, soft
delete, permanently delete, poll compliance, evidence), reconciliation of every destructive
call with Zendesk's state, the erasure evidence record (``privacykit.erasure-evidence/1``)
and the batch pipeline.

Pipeline: discovery, profile replacement and soft deletion run in a pool of
``concurrency`` threads; each soft-deleted user then goes into a queue served by a few
permanent-deletion workers, whose requests the shared governor paces at Zendesk's
documented 700 per 10 minutes. Later subjects are prepared while earlier users wait for
deletion budget, so a batch of N users takes about N/700 x 10 minutes. Compliance
statuses are polled once per run and never block: pending users leave the request in
``pending_compliance`` and ``privacykit erase --resume`` polls again.

What reaches the ledger and the evidence: Zendesk ids, roles, counts, statuses and keyed
subject references -- never identifiers, names or profile contents.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from privacykit import __version__
from privacykit.errors import (
    ForbiddenError,
    NetworkError,
    NotFoundError,
    PrivacykitError,
    UsageError,
    ValidationError,
    ZendeskError,
)
from privacykit.ledger.guard import looks_personal
from privacykit.playbooks.discovery import Discovery, DiscoveryRun
from privacykit.playbooks.engine import Engine, Halt, RunContext, perform
from privacykit.playbooks.loader import Playbook, Step
from privacykit.playbooks.policy import ErasurePolicy, ProfilePlan, plan_profile, protected_reason
from privacykit.playbooks.subjects import Subject

__all__ = [
    "DESTRUCTIVE_STEPS",
    "EVIDENCE_SCHEMA",
    "PERMANENTLY_DELETED_NAME",
    "BatchProgress",
    "EraseCommand",
    "EraseOptions",
    "EraseReport",
    "ErasureJob",
    "ErasureRunner",
    "compliance_state",
    "default_operator",
    "erase",
    "run_erase",
]

EVIDENCE_SCHEMA = "privacykit.erasure-evidence/1"
#: Documented (deleted users list): a permanently deleted user stays visible under this name.
PERMANENTLY_DELETED_NAME = "Permanently Deleted User"
DESTRUCTIVE_STEPS = frozenset(
    {"replace_profiles", "soft_delete_users", "permanently_delete_users", "poll_compliance"}
)
# Outcomes that count as success for the exit code: pending compliance is Zendesk's own
# asynchronous work, not something the operator must act on (yet).
SUCCESS_OUTCOMES = frozenset({"erased", "no_data_found", "pending_compliance"})
_PERMANENT_DELETE_STEP = "permanently_delete_users"


def default_operator() -> str:
    """Who runs this: ``PRIVACYKIT_OPERATOR`` or the OS user."""
    name = os.environ.get("PRIVACYKIT_OPERATOR", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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


# --- per-request state -----------------------------------------------------------------


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

    def plan_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "role": self.role,
            "identities": self.identities,
            "profiles": self.profiles,
            "protected": self.protected,
            "active": self.active,
        }


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
        return cls(
            plan.profile_id,
            plan.source_type,
            plan.user_id,
            plan.action,
            plan.identifiers_removed,
            plan.identifiers_kept,
            plan.attributes_removed,
            plan.attributes_kept,
            why=plan.why,
        )

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
    """One subject's erasure request as it moves through the playbook."""

    index: int = 0
    subject: Subject | None = None
    subject_ref: str = ""
    request_id: str | None = None
    resumed: bool = False
    run: DiscoveryRun | None = None
    discovery: Discovery | None = None
    searched: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    users: dict[int, UserState] = field(default_factory=dict)
    profiles: dict[str, ProfileState] = field(default_factory=dict)
    profile_plans: dict[str, ProfilePlan] = field(default_factory=dict)
    ambiguities: list[str] = field(default_factory=list)
    limit_reached: str | None = None
    missing_user_ids: list[int] = field(default_factory=list)
    planned: bool = False
    ambiguity_confirmed: bool = False
    destructive_started: bool = False
    reasons: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: str | None = None
    status: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    evidence: dict[str, Any] | None = None
    report_path: str | None = None
    report_sha256: str | None = None
    pending_info: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    entries_at_load: int = 0
    previous_outcome: str | None = None
    outstanding: int = 0
    error: str | None = None
    plan_error: str | None = None

    def would_change(self) -> bool:
        """Whether running this job could still change something in Zendesk (a planned
        job not stopped for review, with a profile or user left to process)."""
        if self.halt is not None:
            return False
        if self.plan_error or not self.planned:
            return True
        return any(not p.finished for p in self.profiles.values()) or any(
            not u.permanently_deleted for u in self.users.values()
        )

    def label(self) -> str:
        """How the CLI names this job: its position and form, never the value."""
        what = self.subject.describe() if self.subject is not None else "resumed request"
        return f"#{self.index} {what}"

    def result(self) -> dict[str, Any]:
        """Summary for the CLI / JSON (ids, counts, statuses only)."""
        return {
            "index": self.index,
            "subject": self.subject.describe() if self.subject else None,
            "subject_ref": self.subject_ref,
            "request_id": self.request_id,
            "resumed": self.resumed,
            "outcome": self.outcome,
            "status": self.status,
            "reasons": list(self.reasons),
            "counts": self.evidence["counts"] if self.evidence else self._counts(),
            "users": [u.plan_dict() for u in self.users.values()],
            "profiles": [
                {
                    "profile_id": p.profile_id,
                    "source_type": p.source_type,
                    "user_id": p.user_id,
                    "action": p.action,
                }
                for p in self.profiles.values()
            ],
            "report": self.report_path,
            "report_sha256": self.report_sha256,
        }

    def _counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "identities": sum(u.identities for u in self.users.values()),
            "profiles": len(self.profiles),
        }


# --- the step functions ----------------------------------------------------------------


class _Aborted(BaseException):
    """Another worker hit a fatal error (or the operator interrupted): stop at a boundary."""


class ErasureRunner:
    """Runs the erasure playbook for jobs: the step functions plus ledger bookkeeping.

    ``ledger`` may be None only for planning (``--dry-run``), which records nothing."""

    def __init__(
        self,
        client: Any,
        ledger: Any,
        playbook: Playbook,
        *,
        home: Path | None = None,
        operator: str | None = None,
        confirm_ambiguous: bool = False,
        received_at: date | None = None,
        batch_id: str | None = None,
        produce_reports: bool = True,
    ) -> None:
        if playbook.kind != "erasure":
            raise UsageError(f"{playbook.name} is a {playbook.kind} playbook, not an erasure one")
        self.client = client
        self.ledger = ledger
        self.playbook = playbook
        self.policy = ErasurePolicy.from_playbook(playbook)
        self.home = home
        self.operator = operator or default_operator()
        self.confirm_ambiguous = confirm_ambiguous or bool(playbook.policy.get("confirm_ambiguous"))
        self.received_at = received_at or date.today()
        self.batch_id = batch_id
        self.produce_reports = produce_reports
        self.aborted = threading.Event()
        self.on_change: Callable[[ErasureJob, str], None] = lambda job, what: None
        self.engine = Engine(
            playbook,
            {
                "resolve_subject": self.step_resolve_subject,
                "discover": self.step_discover,
                "check_safety": self.step_check_safety,
                "replace_profiles": self.step_replace_profiles,
                "soft_delete_users": self.step_soft_delete_users,
                "permanently_delete_users": self.step_permanently_delete_users,
                "poll_compliance": self.step_poll_compliance,
                "evidence": self.step_evidence,
            },
        )

    # -- ledger bookkeeping -------------------------------------------------------------

    def _check_abort(self) -> None:
        if self.aborted.is_set():
            raise _Aborted()

    def _info(self, job: ErasureJob, key: str, data: dict[str, Any]) -> None:
        if job.request_id is None:
            job.pending_info.append((key, data))
        else:
            self.ledger.record(job.request_id, key, "info", data)

    def ensure_request(self, job: ErasureJob) -> str:
        """Create (or continue) the job's ledger request and flush buffered info."""
        if self.ledger is None:
            raise UsageError("planning only: no ledger to record a request in")
        if job.request_id is None:
            job.request_id = self.ledger.create_request(
                "erasure",
                job.subject_ref,
                received_at=self.received_at,
                playbook_name=self.playbook.name,
                playbook_sha256=self.playbook.sha256,
                operator=self.operator,
                batch_id=self.batch_id,
                tool_version=__version__,
            )
            job.started_at = self.ledger.get_request(job.request_id).created_at
        for key, data in job.pending_info:
            self.ledger.record(job.request_id, key, "info", data)
        job.pending_info.clear()
        if self.ledger.get_request(job.request_id).status != "in_progress":
            self.ledger.set_status(job.request_id, "in_progress")
        return job.request_id

    def new_job(self, index: int, subject: Subject | None, request: Any = None) -> ErasureJob:
        """A job for a subject (continuing its open request, if any) or for an open request
        found by ``--resume`` (``subject`` None)."""
        job = ErasureJob(index=index, subject=subject)
        if subject is not None:
            job.subject_ref = self.subject_ref(subject)
            if request is None and self.ledger is not None:
                request = self.ledger.find_open_request("erasure", job.subject_ref)
        if request is not None:
            job.request_id = request.request_id
            job.subject_ref = request.subject_ref
            job.started_at = request.created_at
            job.resumed = True
            self._load(job)
        return job

    def subject_ref(self, subject: Subject) -> str:
        if self.ledger is None:
            return ""
        return str(self.ledger.subject_ref(subject.key))

    def _load(self, job: ErasureJob) -> None:
        """Rebuild a resumed job from its ledger entries: the recorded plan and what each
        destructive step reached."""
        assert job.request_id is not None
        plan: dict[str, Any] | None = None
        states: dict[str, tuple[str, dict[str, Any]]] = {}
        entries = self.ledger.entries(job.request_id)
        job.entries_at_load = len(entries)
        for entry in entries:
            key, phase, data = entry.step_key, entry.phase, entry.data
            if phase == "info":
                if key == "evidence":
                    job.previous_outcome = data.get("outcome")
                elif key == "plan":
                    plan = data
                elif key == "discovery":
                    job.searched = data.get("searched", {})
                elif key.startswith("blocked:user:"):
                    uid = int(key.rsplit(":", 1)[1])
                    states[f"blocked:{uid}"] = ("info", data)
                elif key.startswith("compliance:user:"):
                    states[key] = ("info", data)
                elif key.startswith("profile:gone:"):
                    states[key] = ("info", data)
                elif key == "confirmed_ambiguous":
                    states[key] = ("info", data)
            elif phase in ("intent", "outcome"):
                if phase == "intent":
                    job.destructive_started = True
                states[key] = (phase, data)
        if plan is None:
            return
        # Without its subject (``--resume`` alone) a request can only go on from its plan.
        # With the subject and nothing destructive done yet, discovery runs afresh instead.
        if job.subject is not None and not job.destructive_started:
            return
        self._apply_plan(job, plan)
        job.ambiguity_confirmed = "confirmed_ambiguous" in states
        for uid, user in job.users.items():
            soft = states.get(f"soft_delete:user:{uid}")
            hard = states.get(f"permanent_delete:user:{uid}")
            user.soft_deleted = _done(soft)
            user.permanently_deleted = _done(hard)
            if user.permanently_deleted and hard is not None:
                user.soft_deleted = True
                user.permanently_deleted_at = hard[1].get("at")
            blocked = states.get(f"blocked:{uid}")
            if blocked is not None and not user.soft_deleted:
                user.blocking_tickets = list(blocked[1].get("ticket_ids", []))
            comp = states.get(f"compliance:user:{uid}")
            if comp is not None:
                user.compliance = dict(comp[1].get("applications", {}))
                user.compliance_complete = bool(comp[1].get("complete"))
        for pid, profile in job.profiles.items():
            profile.replaced = _done(states.get(f"profile:replace:{pid}"))
            profile.deleted = _done(states.get(f"profile:delete:{pid}"))
            profile.gone = f"profile:gone:{pid}" in states

    def _apply_plan(self, job: ErasureJob, plan: Mapping[str, Any]) -> None:
        job.planned = True
        job.counts = dict(plan.get("counts", {}))
        job.ambiguities = list(plan.get("ambiguities", []))
        job.limit_reached = plan.get("limit_reached")
        job.missing_user_ids = list(plan.get("missing_user_ids", []))
        job.users = {
            int(u["user_id"]): UserState(
                int(u["user_id"]),
                str(u.get("role", "end-user")),
                int(u.get("identities", 0)),
                int(u.get("profiles", 0)),
                u.get("protected"),
                bool(u.get("active", True)),
            )
            for u in plan.get("users", [])
        }
        job.profiles = {
            str(p["profile_id"]): ProfileState(
                str(p["profile_id"]),
                str(p.get("source_type", "")),
                _as_int(p.get("user_id")),
                str(p.get("action", "delete")),
                int(p.get("identifiers_removed", 0)),
                int(p.get("identifiers_kept", 0)),
                int(p.get("attributes_removed", 0)),
                int(p.get("attributes_kept", 0)),
                why=p.get("why"),
            )
            for p in plan.get("profiles", [])
        }

    # -- steps --------------------------------------------------------------------------

    def step_resolve_subject(self, job: ErasureJob, step: Step) -> Halt | None:
        """Find the users the subject names directly (email, user id, external id, query)."""
        if job.planned:
            return None
        if job.subject is None:
            return Halt(
                "needs_review",
                "needs_review",
                ("the run was interrupted before discovery finished; give the SUBJECT again",),
            )
        job.run = DiscoveryRun(self.client, job.subject, self.policy.discovery)
        job.run.resolve()
        self.on_change(job, "resolved")
        return None

    def step_discover(self, job: ErasureJob, step: Step) -> Halt | None:
        """Follow identities and profiles to a fixed point; record counts, never contents."""
        if job.planned or job.run is None:
            return None
        discovery = job.run.expand(self._check_abort)
        job.discovery = discovery
        job.searched = discovery.searched()
        self._info(job, "discovery", discovery.summary())
        self.on_change(job, "discovered")
        return None

    def step_check_safety(self, job: ErasureJob, step: Step) -> Halt | None:
        """Plan every profile and user; refuse protected roles, unconfirmed ambiguity and
        an incomplete discovery. Nothing destructive happens before this step passes."""
        if not job.planned:
            self._plan(job)
        reasons: list[str] = []
        if job.limit_reached:
            reasons.append(
                f"discovery stopped at {job.limit_reached}: the person may have more "
                "records; raise the playbook's discovery bounds and run again"
            )
        for user in job.users.values():
            if user.protected:
                reasons.append(user.protected)
        if job.ambiguities and not (self.confirm_ambiguous or job.ambiguity_confirmed):
            reasons.extend(
                f"ambiguous subject: {text}; confirm with --confirm-ambiguous"
                for text in job.ambiguities
            )
        if reasons:
            return Halt("needs_review", "needs_review", tuple(reasons))
        if job.ambiguities and not job.ambiguity_confirmed:
            # Remembered, so a resumed run does not stop half-way for the same question.
            job.ambiguity_confirmed = True
            self._info(
                job,
                "confirmed_ambiguous",
                {"ambiguities": len(job.ambiguities), "operator_confirmed": True},
            )
        if not job.users and not job.profiles:
            return Halt("completed", "no_data_found")
        return None

    def _plan(self, job: ErasureJob) -> None:
        discovery = job.discovery
        if discovery is None:
            return
        job.ambiguities = list(discovery.ambiguities)
        job.limit_reached = discovery.limit_reached
        job.missing_user_ids = sorted(discovery.missing_user_ids)
        job.counts = discovery.counts()
        job.users = {}
        for uid, user in sorted(discovery.users.items()):
            job.users[uid] = UserState(
                uid,
                str(user.get("role") or "end-user"),
                identities=len(discovery.identities.get(uid, [])),
                profiles=len(discovery.profiles_of(uid)),
                protected=protected_reason(user, self.policy),
                active=bool(user.get("active", True)),
            )
            if not job.users[uid].active:
                # A user already soft-deleted (e.g. by hand) only needs the permanent step.
                job.users[uid].soft_deleted = True
        job.profile_plans = {
            pid: plan_profile(profile, self.policy)
            for pid, profile in sorted(discovery.profiles.items())
        }
        job.profiles = {
            pid: ProfileState.from_plan(plan) for pid, plan in job.profile_plans.items()
        }
        job.planned = True
        self._info(job, "plan", self.plan_record(job))

    def plan_record(self, job: ErasureJob) -> dict[str, Any]:
        """The plan as recorded in the ledger and shown by ``--dry-run``: ids and counts."""
        return {
            "counts": dict(job.counts),
            "users": [u.plan_dict() for u in job.users.values()],
            "profiles": [
                {
                    "profile_id": p.profile_id,
                    "source_type": p.source_type,
                    "user_id": p.user_id,
                    "action": p.action,
                    "identifiers_removed": p.identifiers_removed,
                    "identifiers_kept": p.identifiers_kept,
                    "attributes_removed": p.attributes_removed,
                    "attributes_kept": p.attributes_kept,
                    "why": p.why,
                }
                for p in job.profiles.values()
            ],
            "ambiguities": list(job.ambiguities),
            "limit_reached": job.limit_reached,
            "missing_user_ids": list(job.missing_user_ids),
        }

    def step_replace_profiles(self, job: ErasureJob, step: Step) -> Halt | None:
        """PUT each profile without what the policy removes; delete per policy."""
        assert job.request_id is not None
        for pid, profile in job.profiles.items():
            self._check_abort()
            if profile.finished:
                continue
            try:
                self._profile(job, pid, profile)
            except ZendeskError as exc:
                job.failures.append(f"profile {pid} could not be processed ({_why(exc)})")
        self.on_change(job, "profiles")
        return None

    def _profile(self, job: ErasureJob, pid: str, profile: ProfileState) -> None:
        rid = job.request_id
        assert rid is not None
        # The recorded plan decides what happens; the content to keep is not in the ledger
        # (by design), so a resumed run fetches the profile again to build the PUT body.
        needs_put = profile.action in ("scrub", "scrub_then_delete") and not profile.replaced
        needs_delete = profile.action in ("delete", "scrub_then_delete") and not profile.deleted
        plan = job.profile_plans.get(pid)
        if needs_put and plan is None:
            try:
                current = self.client.profile_by_id(pid)
            except NotFoundError:
                profile.gone = True
                self._info(job, f"profile:gone:{pid}", {"profile_id": pid})
                return
            plan = plan_profile(current, self.policy)
            job.profile_plans[pid] = plan
            if plan.replacement is None:
                # Nothing may be kept any more: the profile can only go.
                needs_put, needs_delete, profile.action = False, not profile.deleted, "delete"
        if needs_put and plan is not None:
            replacement = plan.replacement or {}

            def reconcile_put() -> dict[str, Any] | None:
                try:
                    now = self.client.profile_by_id(pid)
                except NotFoundError:
                    return {"profile_id": pid, "state": "gone"}
                same_ids = _ident_set(now.get("identifiers")) == _ident_set(
                    replacement.get("identifiers")
                )
                same_attrs = (now.get("attributes") or {}) == replacement.get("attributes")
                return {"profile_id": pid, "state": "replaced"} if same_ids and same_attrs else None

            performed = perform(
                self.ledger,
                rid,
                f"profile:replace:{pid}",
                {"profile_id": pid, "identifiers_kept": plan.identifiers_kept},
                action=lambda: _put(self.client, pid, replacement),
                reconcile=reconcile_put,
            )
            profile.replaced = True
            if performed.data.get("state") == "gone":
                profile.gone = True
                return
        if needs_delete:

            def reconcile_delete() -> dict[str, Any] | None:
                try:
                    self.client.profile_by_id(pid)
                except NotFoundError:
                    return {"profile_id": pid, "state": "deleted"}
                return None

            perform(
                self.ledger,
                rid,
                f"profile:delete:{pid}",
                {"profile_id": pid},
                action=lambda: _delete_profile(self.client, pid),
                reconcile=reconcile_delete,
            )
            profile.deleted = True

    def step_soft_delete_users(self, job: ErasureJob, step: Step) -> Halt | None:
        """``DELETE /api/v2/users/{id}`` for each user. Open tickets block: their ids are
        recorded and the request needs review; tickets are never touched."""
        assert job.request_id is not None
        for uid, user in job.users.items():
            self._check_abort()
            if user.soft_deleted:
                continue
            try:
                self._soft_delete(job, uid, user)
            except ValidationError as exc:
                self._blocked(job, uid, user, exc)
            except ForbiddenError:
                job.failures.append(
                    f"Zendesk refused to delete user {uid} (403; the account owner and "
                    "users this agent may not manage cannot be deleted)"
                )
            except ZendeskError as exc:
                job.failures.append(f"user {uid} could not be soft-deleted ({_why(exc)})")
        self.on_change(job, "soft_deleted")
        return None

    def _soft_delete(self, job: ErasureJob, uid: int, user: UserState) -> None:
        assert job.request_id is not None

        def reconcile() -> dict[str, Any] | None:
            state = self._deleted_state(uid)
            return None if state is None else {"user_id": uid, "state": state}

        performed = perform(
            self.ledger,
            job.request_id,
            f"soft_delete:user:{uid}",
            {"user_id": uid},
            action=lambda: _soft(self.client, uid),
            reconcile=reconcile,
        )
        user.soft_deleted = True
        user.blocking_tickets = []
        if performed.data.get("state") == "permanently_deleted":
            user.permanently_deleted = True

    def _deleted_state(self, uid: int) -> str | None:
        """``soft_deleted``, ``permanently_deleted`` or None (still active / unknown)."""
        try:
            deleted = self.client.show_deleted_user(uid)
        except NotFoundError:
            return None
        if deleted.get("name") == PERMANENTLY_DELETED_NAME:
            return "permanently_deleted"
        return "soft_deleted"

    def _blocked(self, job: ErasureJob, uid: int, user: UserState, exc: ValidationError) -> None:
        try:
            tickets = self.client.requested_tickets(uid)
            blocking = sorted(
                int(t["id"]) for t in tickets if t.get("status") != "closed" and "id" in t
            )
        except ZendeskError:
            blocking = _ticket_ids_from(exc)
        user.blocking_tickets = blocking
        self._info(job, f"blocked:user:{uid}", {"user_id": uid, "ticket_ids": blocking})
        if blocking:
            shown = ", ".join(f"#{t}" for t in blocking[:20])
            more = f" (+{len(blocking) - 20} more)" if len(blocking) > 20 else ""
            job.failures.append(
                f"user {uid} is the requester of {len(blocking)} ticket(s) that are not "
                f"closed: {shown}{more}; close or reassign them, then run again"
            )
        else:
            job.failures.append(f"Zendesk refused to soft-delete user {uid} ({_why(exc)})")

    def users_to_permanently_delete(self, job: ErasureJob) -> list[int]:
        return [uid for uid, u in job.users.items() if u.soft_deleted and not u.permanently_deleted]

    def step_permanently_delete_users(self, job: ErasureJob, step: Step) -> Halt | None:
        """``DELETE /api/v2/deleted_users/{id}`` for each soft-deleted user (the governor
        keeps these within 700 per 10 minutes)."""
        for uid in self.users_to_permanently_delete(job):
            self._check_abort()
            self.permanently_delete_one(job, uid)
        return None

    def permanently_delete_one(self, job: ErasureJob, uid: int) -> None:
        """One user's permanent deletion, reconciled; failures go to ``job.failures``."""
        assert job.request_id is not None
        user = job.users[uid]

        def reconcile() -> dict[str, Any] | None:
            state = self._deleted_state(uid)
            if state == "permanently_deleted":
                return {"user_id": uid, "state": state, "at": _now_iso()}
            if state is None:
                return None
            # Name still shown: check whether Zendesk already queued the compliance deletion.
            try:
                rows = self.client.compliance_deletion_statuses(uid)
            except NotFoundError:
                return None
            if any(r.get("action") == "request_deletion" for r in rows):
                return {"user_id": uid, "state": "permanently_deleted", "at": _now_iso()}
            return None

        try:
            performed = perform(
                self.ledger,
                job.request_id,
                f"permanent_delete:user:{uid}",
                {"user_id": uid},
                action=lambda: {**_permanent(self.client, uid), "at": _now_iso()},
                reconcile=reconcile,
            )
        except ZendeskError as exc:
            job.failures.append(f"user {uid} could not be permanently deleted ({_why(exc)})")
            return
        user.permanently_deleted = True
        user.permanently_deleted_at = performed.data.get("at") or _now_iso()
        self.on_change(job, "permanently_deleted")

    def step_poll_compliance(self, job: ErasureJob, step: Step) -> Halt | None:
        """One look at ``compliance_deletion_statuses`` per pending user; never waits."""
        for uid, user in job.users.items():
            self._check_abort()
            if not user.permanently_deleted or user.compliance_complete:
                continue
            try:
                rows = self.client.compliance_deletion_statuses(uid)
            except ZendeskError as exc:
                job.notes.append(f"compliance status of user {uid} unavailable ({_why(exc)})")
                continue
            complete, apps = compliance_state(rows, self.policy.compliance_applications)
            if apps != user.compliance or complete != user.compliance_complete:
                self._info(
                    job,
                    f"compliance:user:{uid}",
                    {"user_id": uid, "complete": complete, "applications": apps},
                )
            user.compliance, user.compliance_complete = apps, complete
        return None

    def step_evidence(self, job: ErasureJob, step: Step) -> Halt | None:
        """Decide the outcome, record the evidence record and produce the report."""
        self._decide(job)
        if job.request_id is None and self.ledger is not None:
            self.ensure_request(job)
        record = self.evidence_record(job)
        job.evidence = record
        if self.ledger is None or job.request_id is None:
            return None
        unchanged = (
            job.resumed
            and job.outcome == job.previous_outcome
            and not self._changed_since_load(job)
        )
        # A resumed request where nothing happened (e.g. compliance still pending): the
        # last evidence still says it all; do not pile up identical reports.
        if not unchanged:
            self.ledger.record(job.request_id, "evidence", "info", _ledger_view(record))
            if self.produce_reports:
                self._report(job, record)
        elif self.produce_reports and self._report_missing(job):
            # Killed between recording the evidence and storing its signed report: the
            # evidence is unchanged, but the report was never stored, so sign it now.
            self._report(job, record)
        reason = "; ".join(job.reasons) if job.reasons else None
        self.ledger.set_status(job.request_id, job.status or "needs_review", _clip(reason))
        self.on_change(job, "finished")
        return None

    def _report_missing(self, job: ErasureJob) -> bool:
        """True when the latest ``evidence`` entry has no signed report stored after it."""
        assert job.request_id is not None and self.ledger is not None
        evidence = [e.seq for e in self.ledger.entries(job.request_id) if e.step_key == "evidence"]
        reports = [a.seq for a in self.ledger.artifacts(job.request_id) if a.kind == "report"]
        return bool(evidence) and (not reports or max(reports) < max(evidence))

    def _changed_since_load(self, job: ErasureJob) -> bool:
        assert job.request_id is not None
        entries = self.ledger.entries(job.request_id)
        # ensure_request's status change to in_progress is bookkeeping, not progress.
        return any(e.step_key != "ledger:status" for e in entries[job.entries_at_load :])

    def _decide(self, job: ErasureJob) -> None:
        """Outcome, status and reasons from the job's state (idempotent: evidence may be
        recorded again after an error)."""
        halt = job.halt
        if halt is not None:
            job.outcome, job.status = halt.outcome, halt.status
            job.reasons = list(halt.reasons) + job.failures + job.notes
            if halt.outcome == "no_data_found":
                job.completed_at = _now_iso()
            return
        job.reasons = job.failures + job.notes
        stuck = self._compliance_overdue(job)
        if job.failures:
            job.outcome = job.status = "needs_review"
        elif not all(p.finished for p in job.profiles.values()):
            job.outcome = job.status = "needs_review"
            job.reasons.append("some profiles were not processed")
        elif not all(u.permanently_deleted for u in job.users.values()) and (
            self.playbook.has_step(_PERMANENT_DELETE_STEP)
        ):
            job.outcome = job.status = "needs_review"
            job.reasons.append("some users were not permanently deleted")
        elif stuck:
            job.outcome = job.status = "needs_review"
            job.reasons.extend(stuck)
        elif self.playbook.has_step("poll_compliance") and not all(
            u.compliance_complete for u in job.users.values()
        ):
            job.outcome = job.status = "pending_compliance"
        else:
            job.outcome, job.status = "erased", "completed"
            job.completed_at = _now_iso()

    def _compliance_overdue(self, job: ErasureJob) -> list[str]:
        limit = timedelta(days=self.policy.compliance_wait_days)
        out = []
        for user in job.users.values():
            if not user.permanently_deleted or user.compliance_complete:
                continue
            at = _parse_ts(user.permanently_deleted_at)
            if at is not None and datetime.now(UTC) - at > limit:
                pending = sorted(a for a, s in user.compliance.items() if s["status"] != "complete")
                out.append(
                    f"compliance deletion of user {user.user_id} not complete after "
                    f"{self.policy.compliance_wait_days} days ({', '.join(pending) or 'no report'})"
                )
        return out

    def evidence_record(self, job: ErasureJob) -> dict[str, Any]:
        """The ``privacykit.erasure-evidence/1`` record (see docs/ARCHITECTURE.md)."""
        users = job.users.values()
        profiles = job.profiles.values()
        steps: list[dict[str, Any]] = []
        if self.ledger is not None and job.request_id is not None:
            for entry in self.ledger.entries(job.request_id):
                if entry.phase != "outcome":
                    continue
                data = entry.data
                status = data.get("status")
                result = data.get("result", "ok")
                if result == "ok":
                    shown = str(status) if status is not None else str(data.get("state", "ok"))
                    if data.get("reconciled"):
                        shown += " (reconciled)"
                else:
                    shown = result + (f" {status}" if status is not None else "")
                steps.append({"step": entry.step_key, "at": entry.ts, "outcome": shown})
        compliance = [
            {"user_id": u.user_id, "application": app, "status": s["status"], "at": s.get("at")}
            for u in users
            for app, s in u.compliance.items()
        ]
        return {
            "schema": EVIDENCE_SCHEMA,
            "request_id": job.request_id,
            "subject_ref": job.subject_ref,
            "outcome": job.outcome,
            "reasons": list(job.reasons),
            "gdpr": {"ground": self.policy.ground, "exceptions": self.policy.exceptions()},
            "searched": {
                "systems": job.searched.get("systems", []),
                "endpoints": job.searched.get("endpoints", []),
                "profile_sources": job.searched.get("profile_sources", []),
                "requests": job.searched.get("requests", {}),
            },
            "counts": {
                "users": len(job.users),
                "identities": sum(u.identities for u in users),
                "profiles": len(job.profiles),
                "profiles_scrubbed": sum(
                    1 for p in profiles if p.evidence_action == "scrubbed" and p.finished
                ),
                "profiles_deleted": sum(
                    1 for p in profiles if p.evidence_action == "deleted" and p.finished
                ),
                "profiles_retained": sum(1 for p in profiles if p.evidence_action == "retained"),
                "users_soft_deleted": sum(1 for u in users if u.soft_deleted),
                "users_permanently_deleted": sum(1 for u in users if u.permanently_deleted),
            },
            "users": [
                {
                    "user_id": u.user_id,
                    "role": u.role,
                    "identities": u.identities,
                    "profiles": u.profiles,
                    "soft_deleted": u.soft_deleted,
                    "permanently_deleted": u.permanently_deleted,
                    "blocking_tickets": list(u.blocking_tickets),
                }
                for u in users
            ],
            "profiles": [
                {
                    "profile_id": p.profile_id,
                    "source_type": p.source_type,
                    "user_id": p.user_id,
                    "action": p.evidence_action,
                    "done": p.finished,
                    "identifiers_removed": p.identifiers_removed,
                    "identifiers_kept": p.identifiers_kept,
                    "events_remain": p.evidence_action != "deleted",
                    "why": p.why if p.evidence_action != "deleted" else None,
                }
                for p in profiles
            ],
            "compliance": compliance,
            "steps": steps,
            "art19_recipients": {
                "recipients": list(self.policy.art19_recipients),
                "none_reason": self.policy.art19_none_reason,
            },
            "playbook": {"name": self.playbook.name, "sha256": self.playbook.sha256},
            "tool_version": __version__,
            "operator": self.operator,
            "started_at": job.started_at,
            "completed_at": job.completed_at,
        }

    def _report(self, job: ErasureJob, record: dict[str, Any]) -> None:
        try:
            from privacykit.evidence import produce_report
        except ImportError:
            # The evidence package has no report producer yet: the JSON record in the
            # ledger is the evidence until it does.
            return
        assert job.request_id is not None
        result = produce_report(self.ledger, job.request_id, "erasure", record, home=self.home)
        path, sha = _path_and_sha(result)
        job.report_path, job.report_sha256 = path, sha

    # -- running one job ------------------------------------------------------------------

    def plan_job(self, job: ErasureJob) -> None:
        """Run the non-destructive steps (no ledger writes): for ``--dry-run`` and the
        confirmation prompt."""
        self.engine.run(job, pause_before=DESTRUCTIVE_STEPS | {"evidence"})

    def run_job(self, job: ErasureJob, *, pause_before: Iterable[str] = ()) -> bool:
        """Create/continue the request and run (until a pause point)."""
        self.ensure_request(job)
        return self.engine.run(job, pause_before=frozenset(pause_before))


def _ledger_view(value: Any) -> Any:
    """The evidence record as the ledger keeps it. It holds ids and counts only, but the
    playbook's free texts (Art. 19 recipients, retention reasons) are the DPO's and may
    name an address; the ledger's guard rightly refuses those, so they are kept as their
    sha256 (the playbook, whose hash the request carries, has them verbatim; the report is
    rendered from the full record)."""
    if isinstance(value, str):
        if looks_personal(value):
            return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
        return value
    if isinstance(value, Mapping):
        return {key: _ledger_view(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_ledger_view(item) for item in value]
    return value


def _done(state: tuple[str, dict[str, Any]] | None) -> bool:
    return state is not None and state[0] == "outcome" and state[1].get("result", "ok") == "ok"


def _ident_set(items: Any) -> set[tuple[str, str]]:
    out = set()
    for item in items or []:
        if isinstance(item, Mapping):
            out.add((str(item.get("type")), str(item.get("value"))))
    return out


def _put(client: Any, pid: str, replacement: Mapping[str, Any]) -> dict[str, Any]:
    client.replace_profile(pid, replacement)
    return {"profile_id": pid, "status": 200}


def _delete_profile(client: Any, pid: str) -> dict[str, Any]:
    client.delete_profile(pid)
    return {"profile_id": pid, "status": 204}


def _soft(client: Any, uid: int) -> dict[str, Any]:
    client.soft_delete_user(uid)
    return {"user_id": uid, "status": 200, "state": "soft_deleted"}


def _permanent(client: Any, uid: int) -> dict[str, Any]:
    client.permanently_delete_user(uid)
    return {"user_id": uid, "status": 200, "state": "permanently_deleted"}


def _why(exc: BaseException) -> str:
    """A short, safe description of an error: our own errors' messages carry ids and
    codes only (errors.py contract); anything else is named by its type."""
    status = getattr(exc, "status_code", None)
    # Private subclasses (the client's "never sent" marker) are named by their public parent.
    public = next(c.__name__ for c in type(exc).__mro__ if not c.__name__.startswith("_"))
    name = f"{public} {status}" if status else public
    # The client's messages are redacted by contract (method, path with query values masked,
    # status, error code); a transport failure's message is what tells the DPO what to fix.
    if isinstance(exc, PrivacykitError) and (
        not isinstance(exc, ZendeskError) or isinstance(exc, NetworkError)
    ):
        message = str(exc).replace("\n", " ").strip()
        if message:
            return f"{name}: {_clip(message, 200)}"
    return name


def _ticket_ids_from(exc: ValidationError) -> list[int]:
    body = exc.body
    ids: list[int] = []
    if isinstance(body, Mapping):
        for items in (body.get("details") or {}).values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping):
                    ids.extend(int(t) for t in item.get("ticket_ids", []) if _as_int(t))
    return sorted(set(ids))


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _clip(text: str | None, limit: int = 1000) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _path_and_sha(result: Any) -> tuple[str | None, str | None]:
    if result is None:
        return None, None
    if isinstance(result, tuple) and len(result) == 2:
        return str(result[0]), str(result[1])
    path = getattr(result, "path", None)
    sha = getattr(result, "sha256", None)
    if isinstance(result, Mapping):
        path, sha = result.get("path"), result.get("sha256")
    return (str(path) if path is not None else None, str(sha) if sha is not None else None)


# --- the batch pipeline ----------------------------------------------------------------


@dataclass
class BatchProgress:
    """Counts per stage for the progress display, and an ETA from the deletion budget."""

    total: int = 0
    discovered: int = 0
    profiles_done: int = 0
    soft_deleted: int = 0
    users_to_delete: int = 0
    permanently_deleted: int = 0
    finished: int = 0
    needs_review: int = 0
    pending_compliance: int = 0
    eta_seconds: float | None = None

    def label(self) -> str:
        eta = "" if self.eta_seconds is None else f" eta {_duration(self.eta_seconds)}"
        return (
            f"found {self.discovered}/{self.total}  profiles {self.profiles_done}  "
            f"soft {self.soft_deleted}  permanent {self.permanently_deleted}/"
            f"{self.users_to_delete}  review {self.needs_review}{eta}"
        )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class _Pipeline:
    """Runs many jobs: a prepare pool, permanent-deletion workers, a finish step."""

    def __init__(
        self,
        runner: ErasureRunner,
        jobs: Sequence[ErasureJob],
        *,
        concurrency: int,
        deleters: int,
        on_progress: Callable[[BatchProgress], None] | None,
    ) -> None:
        self.runner = runner
        self.jobs = list(jobs)
        self.concurrency = max(1, concurrency)
        self.deleters = max(1, deleters)
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.all_done = threading.Condition(self.lock)
        self.remaining = len(self.jobs)
        self.fatal: BaseException | None = None
        self.queue: queue.Queue[tuple[ErasureJob, int] | None] = queue.Queue()
        self.progress = BatchProgress(total=len(self.jobs))
        self._last_progress = 0.0
        runner.on_change = self._changed

    # progress --------------------------------------------------------------------------

    def _changed(self, job: ErasureJob, what: str) -> None:
        with self.lock:
            p = self.progress
            if what == "discovered":
                p.discovered += 1
            elif what == "profiles":
                p.profiles_done += 1
            elif what == "soft_deleted":
                p.soft_deleted += sum(1 for u in job.users.values() if u.soft_deleted)
            elif what == "permanently_deleted":
                p.permanently_deleted += 1
            elif what == "finished":
                p.finished += 1
                if job.status == "needs_review":
                    p.needs_review += 1
                elif job.status == "pending_compliance":
                    p.pending_compliance += 1
            self._emit(force=what == "finished" and p.finished == p.total)

    def _emit(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.2:
            return
        self._last_progress = now
        p = self.progress
        undiscovered = max(0, p.total - p.discovered)
        left = max(0, p.users_to_delete - p.permanently_deleted) + undiscovered
        p.eta_seconds = _deletion_eta(self.runner.client, left)
        self.on_progress(p)

    # workers ---------------------------------------------------------------------------

    def _guard(self, job: ErasureJob, fn: Callable[[], None]) -> None:
        try:
            if self.fatal is not None:
                raise _Aborted()
            fn()
        except _Aborted:
            self._finish(job, aborted=True)
        except PrivacykitError as exc:
            job.error = _why(exc)
            self._fail(job, exc)
        except BaseException as exc:  # noqa: BLE001 - a crash must stop the whole batch
            with self.lock:
                if self.fatal is None:
                    self.fatal = exc
                self.runner.aborted.set()
            self._finish(job, aborted=True)

    def _fail(self, job: ErasureJob, exc: BaseException) -> None:
        """An unexpected Zendesk/ledger error: record what we can and keep the batch going.
        The request stays open (needs review) so a later run continues it."""
        job.failures.append(f"stopped by an error: {_why(exc)}")
        try:
            if job.request_id is not None:
                job.halt = None
                job.cursor = len(self.runner.playbook.steps) - 1  # the evidence step
                self.runner.engine.run(job)
        except Exception:  # noqa: BLE001 - evidence is best effort after a failure
            job.outcome = job.status = "needs_review"
        self._finish(job)

    def _finish(self, job: ErasureJob, aborted: bool = False) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining <= 0 or aborted:
                self.all_done.notify_all()

    def _prepare(self, job: ErasureJob) -> None:
        def work() -> None:
            done = self.runner.run_job(job, pause_before={_PERMANENT_DELETE_STEP})
            if done:
                self._finish(job)
                return
            users = self.runner.users_to_permanently_delete(job)
            if not users:
                self._continue(job)
                return
            with self.lock:
                job.outstanding = len(users)
                self.progress.users_to_delete += len(users)
            for uid in users:
                self.queue.put((job, uid))

        self._guard(job, work)

    def _continue(self, job: ErasureJob) -> None:
        def work() -> None:
            self.runner.engine.run(job)
            self._finish(job)

        self._guard(job, work)

    def _deleter(self, pool: ThreadPoolExecutor) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            job, uid = item
            try:
                if self.fatal is None:
                    self.runner.permanently_delete_one(job, uid)
            except BaseException as exc:  # noqa: BLE001 - see _guard
                with self.lock:
                    if self.fatal is None:
                        self.fatal = exc
                    self.runner.aborted.set()
                    self.all_done.notify_all()
            with self.lock:
                job.outstanding -= 1
                last = job.outstanding == 0
            if last:
                if self.fatal is not None:
                    self._finish(job, aborted=True)
                else:
                    pool.submit(self._continue, job)

    def run(self) -> None:
        if not self.jobs:
            return
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="erase")
        workers = [
            threading.Thread(target=self._deleter, args=(pool,), name=f"erase-delete-{i}")
            for i in range(self.deleters)
        ]
        for worker in workers:
            worker.start()
        try:
            for job in self.jobs:
                pool.submit(self._prepare, job)
            with self.lock:
                while self.remaining > 0 and self.fatal is None:
                    self.all_done.wait(0.5)
                    self._emit()
        except BaseException as exc:  # the operator's Ctrl-C: stop at step boundaries
            with self.lock:
                if self.fatal is None:
                    self.fatal = exc
            self.runner.aborted.set()
        finally:
            for _ in workers:
                self.queue.put(None)
            for worker in workers:
                worker.join()
            pool.shutdown(wait=True, cancel_futures=True)
        if self.fatal is not None:
            raise self.fatal


def _deletion_eta(client: Any, users_left: int) -> float | None:
    """Seconds the permanent-deletion budget needs for ``users_left`` users: the server's
    budget as the governor learned it, else the documented 700 per 600 s."""
    if users_left <= 0:
        return 0.0
    governor = getattr(client, "governor", None)
    limit, window = 700, 600.0
    if governor is not None:
        try:
            budget = governor.limits.permanent_delete
            limit, window = budget.limit, budget.window
            snapshot = governor.snapshot()
            window *= float(snapshot.get("time_scale") or 1.0)
            learned = snapshot.get("scopes", {}).get("permanent-delete") or {}
            if learned.get("limit"):
                limit = int(learned["limit"])
            if learned.get("learned_window"):
                window = float(learned["learned_window"])
        except (AttributeError, TypeError, ValueError):
            pass
    return users_left / max(1, limit) * window


# --- the library call behind `privacykit erase` ----------------------------------------


@dataclass
class EraseOptions:
    """Everything ``privacykit erase`` was asked to do."""

    subjects: Sequence[Subject] = ()
    playbook: Playbook | None = None
    dry_run: bool = False
    yes: bool = False
    resume: bool = False
    confirm_ambiguous: bool = False
    concurrency: int = 8
    deleters: int = 4
    received_at: date | None = None
    operator: str | None = None
    produce_reports: bool = True


@dataclass
class EraseReport:
    """What a run did (or would do, for ``--dry-run``); ``exit_code`` for the CLI."""

    jobs: list[ErasureJob]
    dry_run: bool = False
    confirmed: bool = True
    stats: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    checkpoint: dict[str, Any] | None = None
    executed: bool = False

    @property
    def exit_code(self) -> int:
        if self.dry_run or not self.confirmed:
            return 0
        return 0 if all(job.outcome in SUCCESS_OUTCOMES for job in self.jobs) else 1

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs:
            key = job.outcome or ("planned" if self.dry_run else "not_run")
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "confirmed": self.confirmed,
            "summary": self.summary(),
            "requests": [job.result() if self.executed else _plan_view(job) for job in self.jobs],
            "stats": self.stats,
            "elapsed_seconds": round(self.elapsed, 3),
            "checkpoint": self.checkpoint,
            "exit_code": self.exit_code,
        }


def _plan_view(job: ErasureJob) -> dict[str, Any]:
    halt = job.halt
    return {
        "index": job.index,
        "subject": job.subject.describe() if job.subject else None,
        "request_id": job.request_id,
        "resumed": job.resumed,
        "would": _would(job),
        "error": job.plan_error,
        "reasons": list(halt.reasons) if halt else [],
        "searched": job.searched,
        "counts": job._counts(),
        "users": [{**u.plan_dict(), "actions": _user_actions(u, job)} for u in job.users.values()],
        "profiles": [
            {
                "profile_id": p.profile_id,
                "source_type": p.source_type,
                "user_id": p.user_id,
                "action": p.action,
                "identifiers_removed": p.identifiers_removed,
                "identifiers_kept": p.identifiers_kept,
            }
            for p in job.profiles.values()
        ],
    }


def _would(job: ErasureJob) -> str:
    if job.plan_error:
        return "retry discovery"
    if job.halt is None:
        return "erase"
    return "nothing: no data found" if job.halt.outcome == "no_data_found" else "stop for review"


def _user_actions(user: UserState, job: ErasureJob) -> list[str]:
    if job.halt is not None:
        return []
    actions = []
    if not user.soft_deleted:
        actions.append("soft_delete")
    if not user.permanently_deleted:
        actions.append("permanent_delete")
    return actions


def erase(
    client: Any,
    ledger: Any,
    options: EraseOptions,
    *,
    home: Path | None = None,
    confirm: Callable[[EraseReport], bool] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> EraseReport:
    """Erase every subject (and, with ``resume``, continue every open erasure request).

    Without ``options.yes``, the plan is computed first (read-only) and ``confirm`` is asked
    with it; nothing is changed unless it answers True. ``dry_run`` returns the plan and
    sends no mutating request. Ends every run that wrote to the ledger with a signed
    checkpoint. Raises :class:`UsageError` when there is nothing to do."""
    if options.playbook is None:
        raise UsageError("no playbook given")
    started = time.monotonic()
    batch_id = f"batch-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    runner = ErasureRunner(
        client,
        ledger,
        options.playbook,
        home=home,
        operator=options.operator,
        confirm_ambiguous=options.confirm_ambiguous,
        received_at=options.received_at,
        batch_id=batch_id,
        produce_reports=options.produce_reports,
    )
    jobs: list[ErasureJob] = []
    seen_requests: set[str] = set()
    for index, subject in enumerate(options.subjects, start=1):
        job = runner.new_job(index, subject)
        jobs.append(job)
        if job.request_id:
            seen_requests.add(job.request_id)
    if options.resume and ledger is not None:
        # Requests that need review are continued by giving their SUBJECT again, once the
        # cause (open tickets, a role, an ambiguity) has been dealt with.
        for request in ledger.list_requests(
            status=["open", "in_progress", "pending_compliance"], kind="erasure"
        ):
            if request.request_id not in seen_requests:
                jobs.append(runner.new_job(len(jobs) + 1, None, request))
                seen_requests.add(request.request_id)
    if not jobs:
        if options.resume:
            return EraseReport([], dry_run=options.dry_run, elapsed=time.monotonic() - started)
        raise UsageError("nothing to erase: give a SUBJECT, --from-file FILE or --resume")

    if options.dry_run or not options.yes:
        _plan_all(runner, jobs, options.concurrency)
        report = EraseReport(jobs, dry_run=options.dry_run)
        if options.dry_run:
            report.stats = _stats(client)
            report.elapsed = time.monotonic() - started
            return report
        if confirm is None or not confirm(report):
            report.confirmed = False
            report.elapsed = time.monotonic() - started
            return report
        jobs = _replan_failed(runner, jobs)
    try:
        _Pipeline(
            runner,
            jobs,
            concurrency=options.concurrency,
            deleters=options.deleters,
            on_progress=on_progress,
        ).run()
    finally:
        checkpoint = ledger.checkpoint() if ledger is not None else None
    report = EraseReport(
        jobs, stats=_stats(client), elapsed=time.monotonic() - started, executed=True
    )
    if checkpoint is not None:
        report.checkpoint = {
            "tree_size": getattr(checkpoint, "size", None),
            "root": _hex(getattr(checkpoint, "root", None)),
        }
    return report


def _hex(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes | bytearray) else value


def _plan_all(runner: ErasureRunner, jobs: Sequence[ErasureJob], concurrency: int) -> None:
    """Plan every job (read-only). A subject whose discovery fails (Zendesk unavailable)
    is marked, shown as such, and discovered again when the batch runs."""

    def plan(job: ErasureJob) -> None:
        try:
            runner.plan_job(job)
        except ZendeskError as exc:
            job.plan_error = _why(exc)

    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="erase-plan") as pool:
        for future in [pool.submit(plan, job) for job in jobs]:
            future.result()


def _replan_failed(runner: ErasureRunner, jobs: list[ErasureJob]) -> list[ErasureJob]:
    """Jobs whose planning failed start afresh in the run (same position and subject)."""
    return [runner.new_job(job.index, job.subject, None) if job.plan_error else job for job in jobs]


def _stats(client: Any) -> dict[str, Any]:
    stats = getattr(client, "stats", None)
    snapshot = getattr(stats, "snapshot", None)
    return dict(snapshot()) if callable(snapshot) else {}


@dataclass
class EraseCommand:
    """``privacykit erase`` as typed: raw SUBJECT arguments and option values."""

    subjects: Sequence[str] = ()
    from_file: str | Path | None = None
    playbook: str = "erasure"
    dry_run: bool = False
    yes: bool = False
    resume: bool = False
    confirm_ambiguous: bool = False
    concurrency: int = 8
    received: str | None = None
    produce_reports: bool = True


def run_erase(
    command: EraseCommand,
    *,
    env: Mapping[str, str] | None = None,
    confirm: Callable[[EraseReport], bool] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> EraseReport:
    """Everything behind ``privacykit erase``: validate the input (subjects first, so a
    bad line is reported before any request), load the playbook, connect, :func:`erase`.

    Input errors raise :class:`UsageError` subclasses (exit 2) with nothing sent."""
    from privacykit.config import ZendeskConfig, privacykit_home
    from privacykit.ledger import Ledger
    from privacykit.playbooks.loader import load_playbook, resolve_playbook
    from privacykit.playbooks.subjects import read_subjects
    from privacykit.zendesk import ZendeskClient

    subjects = read_subjects(command.subjects, command.from_file)
    if not subjects and not command.resume:
        raise UsageError("nothing to erase: give a SUBJECT, --from-file FILE or --resume")
    if not 1 <= command.concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64")
    received_at = _parse_received(command.received)
    home = privacykit_home(env)
    book = load_playbook(resolve_playbook(command.playbook, home=home))
    if book.kind != "erasure":
        raise UsageError(f"playbook {book.name!r} is for {book.kind} requests, not erasure")
    config = ZendeskConfig.from_env(env)
    options = EraseOptions(
        subjects=subjects,
        playbook=book,
        dry_run=command.dry_run,
        yes=command.yes,
        resume=command.resume,
        confirm_ambiguous=command.confirm_ambiguous,
        concurrency=command.concurrency,
        received_at=received_at,
        operator=default_operator(),
        produce_reports=command.produce_reports,
    )
    ledger = Ledger.open(home)
    try:
        with ZendeskClient(config) as client:
            return erase(
                client, ledger, options, home=home, confirm=confirm, on_progress=on_progress
            )
    finally:
        ledger.close()


def _parse_received(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError("--received must be a date like 2026-01-31") from None
    if value > date.today():
        raise UsageError("--received cannot be in the future")
    return value
