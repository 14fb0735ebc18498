"""How an erasure ended: the outcome, the request status and the reasons, from the job.

Owns :func:`decide` (pure: the job's state in, ``outcome``/``status``/``reasons`` set) and
:func:`compliance_overdue`. Idempotent: evidence may be decided again after an error.

* a step halted the run (review, no data found): the halt's outcome and status;
* a step failed, a profile (or, with that step, a user) was left, or compliance is
  overdue: ``needs_review``;
* deleted, and Zendesk's compliance deletion still runs: ``pending_compliance``;
* everything found was erased: outcome ``erased``, status ``completed``.
"""

from __future__ import annotations

from datetime import timedelta

from privacykit import clock
from privacykit.playbooks.erasure.state import ErasureJob
from privacykit.playbooks.policy import ErasurePolicy

__all__ = ["compliance_overdue", "decide"]


def decide(
    job: ErasureJob, policy: ErasurePolicy, *, permanent: bool, polls_compliance: bool
) -> None:
    """Set ``job.outcome``, ``job.status``, ``job.reasons`` (and ``completed_at``).
    ``permanent``: the playbook permanently deletes users; ``polls_compliance``: it waits
    for Zendesk's compliance deletion."""
    halt = job.halt
    if halt is not None:
        job.outcome, job.status = halt.outcome, halt.status
        job.reasons = list(halt.reasons) + job.failures + job.notes
        if halt.outcome == "no_data_found":
            job.completed_at = clock.now_iso()
        return
    job.reasons = job.failures + job.notes
    stuck = compliance_overdue(job, policy)
    if job.failures:
        job.outcome = job.status = "needs_review"
    elif not all(p.finished for p in job.profiles.values()):
        job.outcome = job.status = "needs_review"
        job.reasons.append("some profiles were not processed")
    elif permanent and not all(u.permanently_deleted for u in job.users.values()):
        job.outcome = job.status = "needs_review"
        job.reasons.append("some users were not permanently deleted")
    elif stuck:
        job.outcome = job.status = "needs_review"
        job.reasons.extend(stuck)
    elif polls_compliance and not all(u.compliance_complete for u in job.users.values()):
        job.outcome = job.status = "pending_compliance"
    else:
        job.outcome, job.status = "erased", "completed"
        job.completed_at = clock.now_iso()


def compliance_overdue(job: ErasureJob, policy: ErasurePolicy) -> list[str]:
    """Users whose compliance deletion is still not complete ``compliance_wait_days`` after
    their permanent deletion."""
    limit = timedelta(days=policy.compliance_wait_days)
    out = []
    for user in job.users.values():
        if not user.permanently_deleted or user.compliance_complete:
            continue
        at = clock.parse_iso(user.permanently_deleted_at)
        if at is not None and clock.now() - at > limit:
            pending = sorted(a for a, s in user.compliance.items() if s["status"] != "complete")
            out.append(
                f"compliance deletion of user {user.user_id} not complete after "
                f"{policy.compliance_wait_days} days ({', '.join(pending) or 'no report'})"
            )
    return out
