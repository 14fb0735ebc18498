"""Settling a request's bulk ticket groups: what the shared ``destroy_many`` jobs did.

Owns :class:`GroupSettler`, used by :class:`~.ticket_steps.TicketSteps` for both kinds of
group (ledger steps ``ticket:soft_delete_many:<first>`` and ``ticket:purge:<first>``, see
:mod:`.purge`):

* :meth:`GroupSettler.settle` -- while the subject goes on: wait for the group's job(s)
  (or follow an earlier run's job), settle every ticket a job did not confirm from its
  state (soft deletion is done once the ticket is not live; permanent deletion once it
  is gone), send a ticket still in the state before again once, record the outcome.
* :meth:`GroupSettler.settle_stopped` -- at the evidence of a subject whose request ends
  with groups still open (stopped for review, or by a failure, before the step that
  settles them: e.g. a run killed after a shared job was sent, resumed and then halted
  in ``check_safety`` or ``erase_tickets``). Read only: tickets not yet sent are taken
  off the queue (:meth:`~.purge.TicketJobs.withdraw`), a job that was sent is followed
  (``job_statuses/show_many``), anything else is read from the tickets' state; nothing is
  ever sent again for a held subject. The outcome is recorded with ``reconciled: true``
  and ``read_only: true``, so the evidence states what the ledger backs. When even the
  reads fail the intent is left open (a later ``--resume`` settles it) and the tickets
  are marked unknown (:attr:`~.tickets.TicketState.unknown`): the evidence says the
  outcome is unknown and why, never "not deleted".
"""

from __future__ import annotations

from collections.abc import Callable

from privacykit.errors import RateLimitWaitExceeded, ZendeskError
from privacykit.playbooks.erasure.keys import StepKey
from privacykit.playbooks.erasure.purge import PURGE, SOFT_DELETE, TicketJobs
from privacykit.playbooks.erasure.state import ErasureJob
from privacykit.playbooks.erasure.tickets import TicketGroup, TicketPlan, ids_text
from privacykit.playbooks.reasons import is_transient, why

__all__ = ["GROUP_OUTCOME", "GROUP_STEP", "GroupSettler"]

#: Per kind of group: its ledger step, and what its outcome calls done and not done.
GROUP_STEP = {SOFT_DELETE: StepKey.ticket_delete_many, PURGE: StepKey.ticket_purge}
GROUP_OUTCOME = {
    SOFT_DELETE: ("soft_deleted", "not_soft_deleted"),
    PURGE: ("purged", "not_purged"),
}
_WHAT = {SOFT_DELETE: "soft deletion", PURGE: "permanent deletion"}


class GroupSettler:
    """Settles ticket groups against the runner's shared :class:`~.purge.TicketJobs`
    (see the module docstring)."""

    def __init__(self, jobs: TicketJobs, check: Callable[[], None]) -> None:
        self.jobs = jobs
        self.check = check

    @staticmethod
    def submitted(
        job: ErasureJob, group: TicketGroup, kind: str
    ) -> Callable[[str, list[int]], None]:
        """Records the job id Zendesk gave for some of the group's tickets (an ``info``
        entry of the group's step), so a resumed run can follow that job."""
        session = job.session
        assert session is not None
        key = str(GROUP_STEP[kind](group.first))

        def submitted(job_id: str, owned: list[int]) -> None:
            group.job_ids.append(job_id)
            session.record(key, "info", {"job_id": job_id, "ticket_ids": sorted(owned)})

        return submitted

    def settle_safely(
        self,
        job: ErasureJob,
        plan: TicketPlan,
        group: TicketGroup,
        kind: str,
        hold: set[int] | None = None,
        *,
        raise_transient: bool = False,
    ) -> list[str]:
        """:meth:`settle`; a Zendesk error leaves the group open (the next run settles
        it) and is returned as a failure. A stopped run is raised; so are transient errors
        when ``raise_transient`` (the batch retries the subject)."""
        try:
            return self.settle(job, plan, group, kind, hold or set())
        except ZendeskError as exc:
            transient = is_transient(exc) and raise_transient
            if transient or isinstance(exc, RateLimitWaitExceeded):
                raise
            text = (
                f"{_WHAT[kind]} of ticket(s) {ids_text(group.ticket_ids)} could not be "
                f"confirmed ({why(exc)})"
            )
            return [text]

    def settle_stopped(self, job: ErasureJob) -> None:
        """Settle, read only, every group of ``job`` still open as its request ends (see
        the module docstring); what is not done, or unknown, goes to ``job.failures``."""
        plan = job.tickets
        if plan is None or job.session is None:
            return
        for kind, groups in ((SOFT_DELETE, plan.delete_groups), (PURGE, plan.groups)):
            for group in [g for g in groups if not g.done]:
                self.check()
                try:
                    job.failures.extend(self.settle(job, plan, group, kind, set(), resend=False))
                except ZendeskError as exc:
                    # Also a wait past --max-wait: this request ends now, so its evidence
                    # says unknown (the intent stays; a --resume settles it).
                    job.failures.append(self._unknown(plan, group, kind, why(exc)))

    @staticmethod
    def _unknown(plan: TicketPlan, group: TicketGroup, kind: str, reason: str) -> str:
        what = _WHAT[kind]
        text = (
            f"{what} outcome unknown: the job may have run, and neither it nor the tickets "
            f"could be read back ({reason})"
        )
        for tid in group.ticket_ids:
            ticket = plan.tickets.get(tid)
            if ticket is not None:
                ticket.unknown = kind
                ticket.why = text
        return f"{what} of ticket(s) {ids_text(group.ticket_ids)}: {text}"

    def settle(
        self,
        job: ErasureJob,
        plan: TicketPlan,
        group: TicketGroup,
        kind: str,
        hold: set[int],
        *,
        resend: bool = True,
    ) -> list[str]:
        """Wait for the group's job(s); settle every ticket a job did not confirm from its
        state (sent again once while it is still in the state before, unless ``resend``
        is false: read only); record the group's outcome. Returns a line per ticket not
        done."""
        session = job.session
        assert session is not None
        ids = list(group.ticket_ids)
        done: set[int] = set()
        failed: dict[int, str] = {}
        reconciled = not resend
        if not resend and group.handed_over:
            # Not sent yet: it never will be for this subject.
            self.jobs.withdraw(ids, kind=kind)
        if group.handed_over or group.job_ids:
            if not group.handed_over:
                # An earlier run's job: follow it (its status may have expired since).
                self.jobs.follow(group.job_ids[-1], ids, kind=kind)
                reconciled = True
            outcome = self.jobs.wait(ids, kind=kind, check=self.check, key=id(job), send=resend)
            done.update(outcome.done)
            failed.update(outcome.failed)
        left = [t for t in ids if t not in done]
        live: list[int] = []
        for attempt in range(2 if resend else 1):
            if not left:
                break
            # No job told us (or it told "failed"): Zendesk's state decides.
            reconciled = True
            if kind == SOFT_DELETE:
                # Soft deletion is done once the ticket is not live (soft-deleted or gone).
                live = sorted(self.jobs.live(left))
                done.update(t for t in left if t not in live)
                left = [t for t in live if t not in hold]
            else:
                states = self.jobs.states(left)
                done.update(t for t, s in states.items() if s == "gone")
                live = [t for t, s in states.items() if s == "live"]
                left = [t for t, s in states.items() if s == "soft_deleted"]
            if left and attempt == 0 and resend:
                # Still as before: send them again (once).
                self.jobs.add(left, on_submitted=self.submitted(job, group, kind), kind=kind)
                outcome = self.jobs.wait(left, kind=kind, check=self.check, key=id(job))
                done.update(outcome.done)
                failed.update(outcome.failed)
                left = [t for t in left if t not in done]
        not_done = [t for t in ids if t not in done]
        yes, no = GROUP_OUTCOME[kind]
        data = {
            "ticket_ids": ids,
            yes: sorted(done),
            no: not_done,
            "job_ids": list(dict.fromkeys(group.job_ids)),
            "reconciled": reconciled,
        }
        if not resend:
            data["read_only"] = True  # settled for a stopped subject: nothing sent again
        session.record(str(GROUP_STEP[kind](group.first)), "outcome", data)
        group.done = True
        for tid in done:
            if tid in plan.tickets:
                if kind == SOFT_DELETE:
                    plan.tickets[tid].soft_deleted = True
                else:
                    plan.tickets[tid].purged = True
                    plan.tickets[tid].soft_deleted = True
        failures = []
        held = "" if resend else "; not sent again: the request stopped first"
        for tid in not_done:
            if tid in hold:
                continue  # already reported: it changed hands since the plan
            if kind == SOFT_DELETE:
                code = failed.get(tid, "still live after the job" if resend else "still live")
                text = f"ticket {tid} could not be soft-deleted ({code}{held})"
            else:
                reason = (
                    "live again (restored since it was soft-deleted)"
                    if tid in live
                    else f"still soft-deleted ({failed.get(tid, 'no job confirmed it')}{held})"
                )
                text = f"ticket {tid} was not permanently deleted: {reason}"
            if tid in plan.tickets:
                plan.tickets[tid].why = text
            failures.append(text)
        return failures
