"""The erasure's records: the plan (ledger ``plan`` entry, ``--dry-run``) and the evidence
record (``privacykit.erasure-evidence/1``), as types, built from a job.

Owns :class:`ErasureEvidence` and its parts (TypedDicts: what the evidence package may
rely on, see docs/ARCHITECTURE.md "Evidence records"), :func:`plan_record` and
:func:`evidence_record`. A record says exactly what the ledger shows when it is signed:
the final ``status``, the playbook actually used, ``not_done`` (one line per thing found
and not erased, with why -- empty only when everything found was erased), ``interim``
while Zendesk's compliance deletion is pending, and ``compliance_completed_at`` once it
is complete. Ids, counts, statuses and the playbook's own texts only.
"""

from __future__ import annotations

from typing import Any, TypedDict

from privacykit import __version__
from privacykit.playbooks.erasure.state import EVIDENCE_SCHEMA, ErasureJob, ProfileState
from privacykit.playbooks.erasure.ticket_evidence import TicketEvidence, ticket_evidence
from privacykit.playbooks.policy import ErasurePolicy
from privacykit.playbooks.request import Recorded

__all__ = [
    "ComplianceRow",
    "ErasureEvidence",
    "NotDone",
    "PlaybookRef",
    "ProfileEvidence",
    "StepRow",
    "UserEvidence",
    "evidence_record",
    "not_done",
    "plan_record",
]


class NotDone(TypedDict):
    item: str  # "user 12", "profile 01H...", "discovery"
    why: str


class UserEvidence(TypedDict):
    user_id: int
    role: str
    identities: int
    profiles: int
    soft_deleted: bool
    permanently_deleted: bool
    blocking_tickets: list[int]


class ProfileEvidence(TypedDict):
    profile_id: str
    source_type: str
    user_id: int | None
    action: str  # deleted | scrubbed | retained
    done: bool
    identifiers_removed: int
    identifiers_kept: int
    events_remain: bool
    why: str | None


class ComplianceRow(TypedDict):
    user_id: int
    application: str
    status: str  # complete | started | pending
    at: str | None


class StepRow(TypedDict):
    step: str
    at: str
    outcome: str


class PlaybookRef(TypedDict):
    name: str
    sha256: str


class ErasureEvidence(TypedDict):
    schema: str
    request_id: str | None
    subject_ref: str
    status: str | None  # the request's final status, written before the report
    outcome: str | None  # erased | no_data_found | needs_review | pending_compliance | failed
    interim: bool  # pending compliance: a later report follows
    reasons: list[str]
    not_done: list[NotDone]
    gdpr: dict[str, Any]
    searched: dict[str, Any]
    counts: dict[str, int]
    users: list[UserEvidence]
    profiles: list[ProfileEvidence]
    compliance: list[ComplianceRow]
    #: The person's tickets and what was done to each (issue 15; [] without ticket steps).
    tickets: list[TicketEvidence]
    compliance_completed_at: str | None
    steps: list[StepRow]
    art19_recipients: dict[str, Any]
    playbook: PlaybookRef
    tool_version: str
    operator: str
    started_at: str | None
    completed_at: str | None


def plan_record(job: ErasureJob) -> dict[str, Any]:
    """The plan as recorded in the ledger (``plan``) and shown by ``--dry-run``."""
    return {
        "counts": dict(job.counts),
        "users": [u.plan_dict() for u in job.users.values()],
        "profiles": [p.plan_dict() for p in job.profiles.values()],
        "ambiguities": list(job.ambiguities),
        "limit_reached": job.limit_reached,
        "missing_user_ids": list(job.missing_user_ids),
    }


def _user_erased(job: ErasureJob, uid: int, permanent: bool) -> bool:
    user = job.users[uid]
    return user.permanently_deleted if permanent else user.soft_deleted


def not_done(job: ErasureJob, *, permanent: bool) -> list[NotDone]:
    """What was found and not (fully) erased, and why. ``permanent``: the playbook
    permanently deletes users (else soft deletion is the end of its work)."""
    if job.outcome == "no_data_found":
        return []
    halt_why = "; ".join(job.halt.reasons) if job.halt is not None and job.halt.reasons else None
    out: list[NotDone] = []
    if not job.planned:
        # Discovery did not finish: nothing can be said to be erased.
        out.append({"item": "discovery", "why": halt_why or "discovery did not complete"})
    if job.limit_reached:
        out.append({"item": "discovery", "why": f"stopped at a bound: {job.limit_reached}"})
    for uid, user in job.users.items():
        if _user_erased(job, uid, permanent):
            continue
        why = job.user_why.get(uid) or user.protected
        if why is None and user.blocking_tickets:
            shown = ", ".join(f"#{t}" for t in user.blocking_tickets[:20])
            why = f"requester of ticket(s) that are not closed: {shown}"
        why = why or halt_why or ("not permanently deleted" if user.soft_deleted else "not deleted")
        out.append({"item": f"user {uid}", "why": why})
    for pid, profile in job.profiles.items():
        if profile.finished and profile.evidence_action == "deleted":
            continue
        out.append({"item": f"profile {pid}", "why": _profile_why(job, pid, profile, halt_why)})
    return out


def _profile_why(job: ErasureJob, pid: str, profile: ProfileState, halt: str | None) -> str:
    if pid in job.profile_why:
        return job.profile_why[pid]
    if profile.finished:
        kept = "kept unchanged" if profile.action == "retain" else "scrubbed and kept"
        return f"{kept} ({profile.why or 'retention under the playbook'})"
    return halt or "not processed"


def _steps(outcomes: list[Recorded]) -> list[StepRow]:
    rows: list[StepRow] = []
    for entry in outcomes:
        data = entry.data
        status = data.get("status")
        result = data.get("result", "ok")
        if result == "ok":
            shown = str(status) if status is not None else str(data.get("state", "ok"))
            if data.get("reconciled"):
                shown += " (reconciled)"
        else:
            shown = str(result) + (f" {status}" if status is not None else "")
        rows.append({"step": entry.step_key, "at": entry.ts, "outcome": shown})
    return rows


def evidence_record(
    job: ErasureJob,
    *,
    policy: ErasurePolicy,
    playbook: PlaybookRef,
    operator: str,
    permanent: bool,
) -> ErasureEvidence:
    """The ``privacykit.erasure-evidence/1`` record of ``job`` as it stands (its outcome
    and status decided)."""
    users = list(job.users.values())
    profiles = list(job.profiles.values())
    compliance: list[ComplianceRow] = [
        {"user_id": u.user_id, "application": app, "status": s["status"], "at": s.get("at")}
        for u in users
        for app, s in u.compliance.items()
    ]
    completed_at = None
    if (
        users
        and all(u.compliance_complete for u in users if u.permanently_deleted)
        and any(u.permanently_deleted for u in users)
    ):
        times = [str(row["at"]) for row in compliance if row["status"] == "complete" and row["at"]]
        completed_at = max(times) if times else None
    outcomes = job.session.outcomes() if job.session is not None else []
    halt_why = "; ".join(job.halt.reasons) if job.halt is not None and job.halt.reasons else None
    tickets = ticket_evidence(job.tickets, halt_why=halt_why)
    return {
        "schema": EVIDENCE_SCHEMA,
        "request_id": job.request_id,
        "subject_ref": job.subject_ref,
        "status": job.status,
        "outcome": job.outcome,
        "interim": job.status == "pending_compliance",
        "reasons": list(job.reasons),
        "not_done": not_done(job, permanent=permanent)
        + ([] if job.outcome == "no_data_found" else list(tickets.not_done)),
        "gdpr": {"ground": policy.ground, "exceptions": policy.exceptions() + tickets.exceptions},
        "searched": {
            "systems": job.searched.get("systems", []),
            "endpoints": job.searched.get("endpoints", []),
            "profile_sources": job.searched.get("profile_sources", []),
            "requests": job.searched.get("requests", {}),
        },
        "counts": {
            **job.counts_found(),
            "profiles_scrubbed": sum(
                1 for p in profiles if p.evidence_action == "scrubbed" and p.finished
            ),
            "profiles_deleted": sum(
                1 for p in profiles if p.evidence_action == "deleted" and p.finished
            ),
            "profiles_retained": sum(1 for p in profiles if p.evidence_action == "retained"),
            "users_soft_deleted": sum(1 for u in users if u.soft_deleted),
            "users_permanently_deleted": sum(1 for u in users if u.permanently_deleted),
            **tickets.counts,
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
                # Counts of what was done, not what was planned: a profile left alone (its
                # person blocked, the run stopped) had nothing removed and keeps its events.
                "identifiers_removed": p.identifiers_removed if p.finished else 0,
                "identifiers_kept": p.identifiers_kept
                + (0 if p.finished else p.identifiers_removed),
                "events_remain": not (p.evidence_action == "deleted" and p.finished),
                "why": p.why if p.evidence_action != "deleted" else None,
            }
            for p in profiles
        ],
        "compliance": compliance,
        "tickets": tickets.rows,
        "compliance_completed_at": completed_at,
        "steps": _steps(outcomes),
        "art19_recipients": {
            "recipients": list(policy.art19_recipients),
            "none_reason": policy.art19_none_reason,
        },
        "playbook": playbook,
        "tool_version": __version__,
        "operator": operator,
        "started_at": job.started_at,
        # Erased once Zendesk reported the last application complete: that is when the
        # request completed (not when privacykit happened to look), so the report never
        # shows compliance completing after "Completed" (#17).
        "completed_at": (
            completed_at if job.outcome == "erased" and completed_at else job.completed_at
        ),
    }
