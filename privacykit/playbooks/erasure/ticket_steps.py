"""The erasure's ticket steps: ``discover_tickets``, ``erase_tickets`` and
``permanently_delete_tickets`` (issue 15).

Owns :class:`TicketSteps`, whose step functions the :class:`~.steps.ErasureRunner` runs
with the rest of the playbook:

* ``discover_tickets`` (read-only, part of the plan and the dry run): the person's
  tickets and the comments they wrote (:func:`~.tickets.discover_tickets`), recorded as
  the ``tickets`` info entry; a resumed request reads its recorded plan back instead and
  marks what its ledger says was done (:class:`~.ticket_history.TicketHistory`).
* ``erase_tickets`` (before the users are soft-deleted): per ticket, attachments of the
  person's comments redacted while the ticket is still open (Zendesk cannot afterwards),
  then ``open: close`` tickets closed, or the person's comments redacted through
  ``comment_redactions`` (``requested: redact`` and every ticket of others under
  ``elsewhere: redact``); then the requested tickets are soft-deleted (``requested:
  delete``) through ``tickets/destroy_many`` jobs shared with the other subjects of the
  batch (:class:`~.purge.TicketJobs`; ledger step ``ticket:soft_delete_many:<smallest
  id>``, intent before the job), or -- a subject with at most :data:`SINGLE_DELETES`
  tickets and nobody to share a job with -- one ``DELETE /tickets/{id}`` each
  (``ticket:soft_delete:<id>``: one request each is cheaper than a job plus its polls).
  Other people's tickets are never deleted. The soft-deleted tickets are then handed to
  permanent deletion (intent recorded first). Any failure stops the subject for review
  before its users are touched.
* ``permanently_delete_tickets``: waits for the bulk jobs holding the subject's tickets,
  settles every ticket whose outcome a job did not tell by reading the tickets' state
  (an expired job, a crash between submission and completion), and records the outcome.

Both kinds of group are settled alike (:class:`~.ticket_settle.GroupSettler`): the job's
word for each ticket, else the ticket's state -- soft deletion is done once the ticket is
not live (soft-deleted or gone), permanent deletion once it is gone; a ticket still in the
state before is sent again once, and anything else is reported for review, never assumed.
A request that ends with groups still open (the subject stopped for review, or failed,
before the step that settles them) has them settled read only just before its evidence
(:meth:`TicketSteps.settle_stopped`: nothing is sent again for a held subject).

Every call that changes Zendesk goes through :func:`~privacykit.playbooks.engine.perform`
(intent before, outcome after, reconciliation of an unknown outcome).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

from privacykit.errors import RateLimitWaitExceeded, ValidationError, ZendeskError
from privacykit.playbooks.engine import Halt, StepFunction, perform
from privacykit.playbooks.erasure import keys
from privacykit.playbooks.erasure import ticket_actions as act
from privacykit.playbooks.erasure.keys import StepKey
from privacykit.playbooks.erasure.purge import PURGE, SOFT_DELETE, TicketJobs
from privacykit.playbooks.erasure.state import ErasureJob
from privacykit.playbooks.erasure.ticket_history import TicketHistory
from privacykit.playbooks.erasure.ticket_settle import GroupSettler
from privacykit.playbooks.erasure.tickets import (
    CommentState,
    TicketClient,
    TicketGroup,
    TicketPlan,
    TicketState,
    discover_tickets,
)
from privacykit.playbooks.loader import Playbook, Step
from privacykit.playbooks.person import untrusted_answer
from privacykit.playbooks.policy import ErasurePolicy, protected_reason
from privacykit.playbooks.reasons import why

__all__ = ["CLOSED_ATTACHMENT", "SINGLE_DELETES", "TicketSteps"]

#: Why an attachment on a closed ticket stays (documented: not redactable there).
CLOSED_ATTACHMENT = "Zendesk cannot redact attachments on a closed ticket"
#: A subject with nobody to share a job with soft-deletes up to this many tickets with one
#: ``DELETE /tickets/{id}`` each: a ``destroy_many`` job costs one request plus at least
#: one poll (usually several: polls back off from 0.05 s while the job runs for seconds).
SINGLE_DELETES = 3


class TicketSteps:
    """The ticket step functions for one runner (see the module docstring)."""

    def __init__(
        self,
        client: TicketClient,
        policy: ErasurePolicy,
        *,
        check: Callable[[], None] = lambda: None,
        jobs: TicketJobs | None = None,
        purge: bool = True,
        erase_at: int | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.check = check
        #: The playbook deletes tickets for good (``permanently_delete_tickets``); without
        #: it they stay soft-deleted (Zendesk scrubs them about 30 days later).
        self.purge = purge
        #: The bulk jobs (soft and permanent deletion) shared by the runner's subjects.
        self.jobs = jobs if jobs is not None else TicketJobs(client)
        #: Settles the groups handed to those jobs (:mod:`.ticket_settle`).
        self.settler = GroupSettler(self.jobs, check)
        #: The index of ``erase_tickets`` among the playbook's steps (None: not in it).
        self.erase_at = erase_at

    @classmethod
    def for_runner(
        cls, client: Any, policy: ErasurePolicy, playbook: Playbook, check: Callable[[], None]
    ) -> TicketSteps:
        """The ticket steps of a runner of ``playbook`` (one :class:`TicketJobs`, shared by
        its jobs)."""
        names = [s.name for s in playbook.steps]
        return cls(
            client,
            policy,
            check=check,
            purge=playbook.has_step("permanently_delete_tickets"),
            erase_at=names.index("erase_tickets") if "erase_tickets" in names else None,
        )

    @contextmanager
    def preparing(self, job: ErasureJob) -> Iterator[None]:
        """Around a run of ``job`` up to a pause: while its ``erase_tickets`` step is still
        ahead it counts as on its way to share a soft-delete job (others wait for it, up to
        a bound), until it hands its tickets over or the run returns."""
        ahead = self.erase_at is not None and job.halt is None and job.cursor <= self.erase_at
        if ahead:
            self.jobs.coming(id(job))
        try:
            yield
        finally:
            self.jobs.arrived(id(job))

    def functions(self) -> dict[str, StepFunction]:
        return {
            "discover_tickets": self.step_discover_tickets,
            "erase_tickets": self.step_erase_tickets,
            "permanently_delete_tickets": self.step_permanently_delete_tickets,
        }

    # -- discover_tickets ---------------------------------------------------------------------

    def step_discover_tickets(self, job: ErasureJob, step: Step) -> Halt | None:
        """The person's tickets and comments (GET only); a resumed request's from its
        ledger. An answer that cannot be trusted stops the subject for review."""
        if job.tickets is not None:
            return None
        if job.planned and job.session is not None:
            history = TicketHistory.from_entries(job.session.entries)
            if history.plan is not None:
                plan = TicketPlan.from_record(history.plan, self.policy.tickets)
                plan.groups = history.apply(plan)
                plan.delete_groups = history.open_delete_groups()
                job.tickets = plan
                self._searched(job, plan)
                return None
        users = self._users(job)
        if not users:
            return None  # nobody found (or only protected users): nothing to search
        try:
            plan = discover_tickets(self.client, users, self.policy.tickets, check=self.check)
        except (ZendeskError, TypeError, ValueError, KeyError, AttributeError) as exc:
            halt = untrusted_answer(exc, "ticket discovery")
            if halt is None:
                raise
            return halt
        job.tickets = plan
        self._searched(job, plan)
        job.info(keys.TICKETS, plan.record())
        return None

    def _users(self, job: ErasureJob) -> list[int] | None:
        """The person's users whose tickets are searched: protected ones are skipped
        (the subject stops for review anyway, and an agent's tickets are not theirs)."""
        if job.discovery is not None:
            return sorted(
                uid
                for uid, user in job.discovery.users.items()
                if protected_reason(user, self.policy) is None
            )
        if job.planned:
            return sorted(uid for uid, user in job.users.items() if not user.protected)
        return None

    @staticmethod
    def _searched(job: ErasureJob, plan: TicketPlan) -> None:
        searched = dict(job.searched)
        extra = plan.searched()
        systems = list(searched.get("systems") or [])
        searched["systems"] = systems + [s for s in extra["systems"] if s not in systems]
        endpoints = set(searched.get("endpoints") or []) | set(extra["endpoints"])
        searched["endpoints"] = sorted(endpoints)
        job.searched = searched

    # -- erase_tickets --------------------------------------------------------------------------

    def step_erase_tickets(self, job: ErasureJob, step: Step) -> Halt | None:
        """Close, soft-delete or redact per policy (see the module docstring), then hand
        the soft-deleted tickets to permanent deletion. A failure stops the subject for
        review before its users are soft-deleted."""
        try:
            return self._erase_tickets(job)
        finally:
            self.jobs.arrived(id(job))

    def _erase_tickets(self, job: ErasureJob) -> Halt | None:
        plan = job.tickets
        if plan is None or job.session is None:
            return None
        try:
            not_theirs = set() if plan.fresh else self._requester_changed(plan)
        except RateLimitWaitExceeded:
            raise
        except ZendeskError as exc:
            # Whose tickets they are now cannot be told: nothing is deleted or closed.
            job.failures.append(f"the planned tickets could not be re-read ({why(exc)})")
            return Halt("needs_review", "needs_review", ())
        failures = [plan.tickets[tid].why or "" for tid in sorted(not_theirs)]
        to_delete: list[int] = []
        for ticket in plan.tickets.values():
            self.check()
            if ticket.gone or ticket.action == "none" and not ticket.close_first:
                continue
            if ticket.ticket_id in not_theirs:
                continue
            try:
                self._ticket(job, ticket)
            except RateLimitWaitExceeded:
                raise  # the run stops cleanly, resumable (the engine says when to come back)
            except ZendeskError as exc:
                text = f"ticket {ticket.ticket_id} could not be {self._verb(ticket)} ({why(exc)})"
                ticket.why = text
                failures.append(text)
                continue
            if ticket.action == "delete" and not ticket.soft_deleted and not ticket.gone:
                to_delete.append(ticket.ticket_id)
        failures.extend(self._soft_delete(job, plan, to_delete, not_theirs))
        if failures:
            # Stopped for review: nothing irreversible. Handed over, the tickets would go
            # in the batch's next shared permanent-deletion job while this subject never
            # reaches the step that records its outcome (found by bench/ticket_soak.py).
            job.failures.extend(failures)
            return Halt("needs_review", "needs_review", ())
        self._hand_over(job, plan)
        return None

    def _requester_changed(self, plan: TicketPlan) -> set[int]:
        """A plan read back from the ledger (a resumed request) may be days old: a ticket
        an agent has since given another requester is not the person's any more and must
        never be deleted or closed. One ``show_many`` read of the tickets still to delete
        or close; one whose requester is none of the person's users is left alone and the
        subject needs review. Tickets Zendesk no longer returns are left to the steps'
        own reconciliation (already deleted)."""
        pending = [
            t
            for t in plan.tickets.values()
            if not t.gone
            and (t.action == "delete" and not t.soft_deleted or t.close_first and not t.closed)
        ]
        if not pending:
            return set()
        self.check()
        live = {
            row.get("id"): row.get("requester_id")
            for row in self.client.show_many_tickets([t.ticket_id for t in pending])
            if isinstance(row, Mapping)
        }
        members = set(plan.user_ids)
        not_theirs = set()
        for ticket in pending:
            tid = ticket.ticket_id
            if tid in live and live[tid] not in members:
                ticket.why = f"ticket {tid} has another requester since the plan: left alone"
                not_theirs.add(tid)
        return not_theirs

    @staticmethod
    def _verb(ticket: TicketState) -> str:
        if ticket.close_first and not ticket.closed:
            return "closed"
        return {"delete": "soft-deleted", "redact": "redacted"}.get(ticket.action, "handled")

    def _ticket(self, job: ErasureJob, ticket: TicketState) -> None:
        session = job.session
        assert session is not None and session.request_id is not None
        rid, tid = session.request_id, ticket.ticket_id
        if ticket.action == "redact" and not ticket.is_closed:
            # Attachments first: once the ticket is closed Zendesk cannot redact them.
            self._attachments(job, ticket)
        if ticket.close_first and not ticket.closed:
            performed = perform(
                session.steps,
                rid,
                str(StepKey.ticket_close(tid)),
                {"ticket_id": tid, "from_status": ticket.status},
                action=lambda: act.close_ticket(self.client, tid),
                reconcile=lambda: act.reconcile_close(self.client, tid),
            )
            ticket.closed = True
            if performed.data.get("state") == "gone":
                ticket.gone = True
                return
        if ticket.action == "redact":
            if ticket.is_closed:
                for comment in ticket.comments.values():
                    for aid in comment.attachments_open:
                        self._retain(job, ticket, comment, aid, CLOSED_ATTACHMENT)
            for comment in ticket.comments.values():
                self.check()
                if not comment.redacted:
                    self._redact(job, ticket, comment)

    def _soft_delete(
        self, job: ErasureJob, plan: TicketPlan, ids: list[int], hold: set[int]
    ) -> list[str]:
        """Soft-delete the tickets ``ids`` (closed first where the policy says so); an
        earlier run's groups without an outcome are settled first (``hold``: tickets that
        changed hands since the plan, never sent). Returns what failed."""
        session = job.session
        assert session is not None and session.request_id is not None
        failures: list[str] = []
        for group in [g for g in plan.delete_groups if not g.done]:
            failures.extend(self.settler.settle_safely(job, plan, group, SOFT_DELETE, hold))
        grouped = {t for g in plan.delete_groups for t in g.ticket_ids}
        ids = sorted(t for t in ids if t not in grouped and not plan.tickets[t].soft_deleted)
        if not ids:
            return failures
        if len(ids) <= SINGLE_DELETES and self.jobs.alone(id(job)):
            self.jobs.arrived(id(job))
            for tid in ids:
                self.check()
                try:
                    perform(
                        session.steps,
                        session.request_id,
                        str(StepKey.ticket_delete(tid)),
                        {"ticket_id": tid},
                        action=partial(act.soft_delete_ticket, self.client, tid),
                        reconcile=partial(act.reconcile_soft_delete, self.client, tid),
                    )
                except RateLimitWaitExceeded:
                    raise
                except ZendeskError as exc:
                    text = f"ticket {tid} could not be soft-deleted ({why(exc)})"
                    plan.tickets[tid].why = text
                    failures.append(text)
                    continue
                plan.tickets[tid].soft_deleted = True
            return failures
        # Intent before the job: a crash after this line is settled from the ledger.
        group = TicketGroup(ids[0], ids, handed_over=True)
        session.record(str(StepKey.ticket_delete_many(group.first)), "intent", {"ticket_ids": ids})
        plan.delete_groups.append(group)
        self.jobs.add(
            ids, on_submitted=self.settler.submitted(job, group, SOFT_DELETE), kind=SOFT_DELETE
        )
        self.jobs.arrived(id(job))
        failures.extend(self.settler.settle_safely(job, plan, group, SOFT_DELETE, hold))
        return failures

    def _redact(self, job: ErasureJob, ticket: TicketState, comment: CommentState) -> None:
        session = job.session
        assert session is not None and session.request_id is not None
        tid, cid = ticket.ticket_id, comment.comment_id
        markup = comment.html_body
        performed = perform(
            session.steps,
            session.request_id,
            str(StepKey.comment_redact(cid)),
            {"ticket_id": tid, "comment_id": cid},
            action=lambda: act.redact_comment(self.client, tid, cid, markup),
            reconcile=lambda: act.reconcile_redaction(self.client, tid, cid),
        )
        comment.redacted = True
        comment.html_body = None  # not needed any more; keep no text longer than necessary
        links = performed.data.get("links_left")
        comment.links_left = links if isinstance(links, int) else 0

    def _attachments(self, job: ErasureJob, ticket: TicketState) -> None:
        session = job.session
        assert session is not None and session.request_id is not None
        tid = ticket.ticket_id
        refused: str | None = None
        for comment in ticket.comments.values():
            cid = comment.comment_id
            for aid in comment.attachments_open:
                self.check()
                if refused is not None:
                    self._retain(job, ticket, comment, aid, refused)
                    continue
                try:
                    perform(
                        session.steps,
                        session.request_id,
                        str(StepKey.attachment_redact(aid)),
                        {"ticket_id": tid, "comment_id": cid, "attachment_id": aid},
                        action=partial(act.redact_attachment, self.client, tid, cid, aid),
                        reconcile=partial(act.reconcile_attachment, self.client, tid, cid, aid),
                    )
                except ValidationError as exc:
                    # Refused: retained with the reason when the ticket is closed (it was
                    # closed since the plan), else a failure like any other.
                    if act.ticket_status(self.client, tid) != "closed":
                        raise
                    refused = f"{CLOSED_ATTACHMENT} (refused: {why(exc)})"
                    self._retain(job, ticket, comment, aid, refused)
                    continue
                comment.attachments_redacted.append(aid)

    def _retain(
        self, job: ErasureJob, ticket: TicketState, comment: CommentState, aid: int, reason: str
    ) -> None:
        comment.attachments_retained[aid] = reason
        job.info(
            str(StepKey.attachment_redact(aid)),
            {
                "ticket_id": ticket.ticket_id,
                "comment_id": comment.comment_id,
                "attachment_id": aid,
                "retained": reason,
            },
        )

    def _hand_over(self, job: ErasureJob, plan: TicketPlan) -> None:
        """Record the intent to delete the soft-deleted tickets for good, then queue them
        with the batch's jobs (sent by the first subject that waits)."""
        session = job.session
        assert session is not None
        if not self.purge:
            return
        grouped = {t for g in plan.groups if not g.done for t in g.ticket_ids}
        ready = sorted(
            t.ticket_id
            for t in plan.tickets.values()
            if t.action == "delete" and t.soft_deleted and not t.purged and not t.gone
            if t.ticket_id not in grouped
        )
        if not ready:
            return
        group = TicketGroup(ready[0], ready, handed_over=True)
        session.record(str(StepKey.ticket_purge(group.first)), "intent", {"ticket_ids": ready})
        plan.groups.append(group)
        self.jobs.add(ready, on_submitted=self.settler.submitted(job, group, PURGE), kind=PURGE)

    # -- permanently_delete_tickets ---------------------------------------------------------------

    def step_permanently_delete_tickets(self, job: ErasureJob, step: Step) -> Halt | None:
        """Wait for the jobs holding the subject's tickets; settle what they did not tell
        by reading the tickets' state; record the outcome of each group."""
        plan = job.tickets
        if plan is None or job.session is None:
            return None
        for group in [g for g in plan.groups if not g.done]:
            self.check()
            job.failures.extend(
                self.settler.settle_safely(job, plan, group, PURGE, raise_transient=True)
            )
        return None

    def settle_stopped(self, job: ErasureJob) -> None:
        """As the request ends (its evidence is next): settle, read only, the groups still
        open -- a subject stopped before the step that settles them never leaves an intent
        the evidence cannot back (:meth:`.ticket_settle.GroupSettler.settle_stopped`)."""
        self.settler.settle_stopped(job)
