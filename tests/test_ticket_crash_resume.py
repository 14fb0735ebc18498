"""Crash anywhere in a batch erasure's conversations (#14, #15): 6 people with tickets
(3 closed and 1 solved requested each, a comment on someone else's ticket) erased in a
separate process that is SIGKILLed while a ticket close, the shared soft-delete job, a
job-status poll and the permanent-deletion job are each on the wire (applied by the
sandbox, the answer not yet read), then resumed with the same subjects until done. The
checks (``bench/ticket_soak.py``) read the sandbox's request log and the ledger: every
planned ticket permanently deleted, none sent to a job again after its job had ended,
every user deleted exactly once, nothing left in progress, ``ledger verify`` passes, the
evidence and the signed report list exactly the ledger's tickets, no subject data in the
ledger. The long randomised runs are ``make soak``."""

from __future__ import annotations

from bench.ticket_soak import ticket_crash_trial


def test_killed_ticket_jobs_resume_to_exactly_once() -> None:
    points = ["ticket_close", "soft_job_queued", "job_poll", "purge_job_queued"]
    result = ticket_crash_trial(subjects=6, seed=5, points=points, hand_over_rate=1.0)
    assert result.failures == []
    assert result.kills >= 3, result.kills_by_point  # the points come in this order
    assert result.completed + result.needs_review == 6
    assert result.tickets_purged >= 4 * result.completed - result.hand_overs
    assert result.soft_jobs >= 1 and result.purge_jobs >= 1
