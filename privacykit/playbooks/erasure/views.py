"""What the library hands the CLI: the plan and the result of each job, as plain data.

Owns :func:`plan_view` (``--dry-run`` and the confirmation) and :func:`result_view` (how
a job ended). The CLI prints these as JSON or turns the same view into text -- it never
reads a job's internals. Ids, counts, statuses and reasons only.
"""

from __future__ import annotations

from typing import Any

from privacykit.playbooks.erasure.state import ErasureJob, UserState
from privacykit.playbooks.erasure.tickets import tickets_view

__all__ = ["plan_view", "result_view", "would"]


def would(job: ErasureJob) -> str:
    """What running the plan would do for ``job``, in the plan's words."""
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


def plan_view(job: ErasureJob) -> dict[str, Any]:
    """What the run would do for ``job`` (``--dry-run``, the confirmation): ids, counts,
    actions and reasons. The CLI prints this as JSON or as text -- nothing else."""
    halt = job.halt
    return {
        "index": job.index,
        "label": job.label(),
        "subject": job.subject.describe() if job.subject else None,
        "request_id": job.request_id,
        "resumed": job.resumed,
        "would": would(job),
        "error": job.plan_error,
        "reasons": list(halt.reasons) if halt else [],
        "searched": job.searched,
        "counts": job.counts_found(),
        "users": [{**u.plan_dict(), "actions": _user_actions(u, job)} for u in job.users.values()],
        "profiles": [
            {
                "profile_id": p.profile_id,
                "source_type": p.source_type,
                "user_id": p.user_id,
                "action": p.action,
                "identifiers_removed": p.identifiers_removed,
                "identifiers_kept": p.identifiers_kept,
                "why": p.why,
            }
            for p in job.profiles.values()
        ],
        "tickets": tickets_view(job.tickets),
    }


def result_view(job: ErasureJob) -> dict[str, Any]:
    """How ``job`` ended (ids, counts, statuses, the report)."""
    return {
        "index": job.index,
        "label": job.label(),
        "subject": job.subject.describe() if job.subject else None,
        "subject_ref": job.subject_ref,
        "request_id": job.request_id,
        "resumed": job.resumed,
        "outcome": job.outcome,
        "status": job.status,
        "reasons": list(job.reasons),
        "not_done": list(job.evidence["not_done"]) if job.evidence else [],
        "searched": job.searched,
        "counts": dict(job.evidence["counts"]) if job.evidence else job.counts_found(),
        "users": [u.plan_dict() for u in job.users.values()],
        "profiles": [
            {
                "profile_id": p.profile_id,
                "source_type": p.source_type,
                "user_id": p.user_id,
                "action": p.action,
            }
            for p in job.profiles.values()
        ],
        "report": job.report_path,
        "report_sha256": job.report_sha256,
        "report_error": job.report_error,
    }
