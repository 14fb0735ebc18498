"""The erasure playbook's steps, run by the step engine for one job at a time.

Owns :class:`ErasureRunner`: the step functions of the ``erasure`` kind (``resolve_subject``
and ``discover`` come from :mod:`privacykit.playbooks.person`; here: ``check_safety``,
``replace_profiles``, ``soft_delete_users``, ``permanently_delete_users``,
``poll_compliance``, ``evidence``), the plan, the decision of the outcome, and resuming a
request from its ledger history (:mod:`.history`). Every destructive call goes through
:func:`~privacykit.playbooks.engine.perform` with the job's request session as its ledger
(intent before, outcome after, reconciliation of an unknown outcome).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from privacykit import clock
from privacykit.errors import (
    ForbiddenError,
    NotFoundError,
    UsageError,
    ValidationError,
    ZendeskError,
)
from privacykit.playbooks.engine import Engine, Halt, perform
from privacykit.playbooks.erasure import actions, keys
from privacykit.playbooks.erasure.actions import clip, why
from privacykit.playbooks.erasure.dsar_ticket import (
    close_dsar_ticket,
    closing_first,
    note_dsar_ticket,
)
from privacykit.playbooks.erasure.history import ErasureHistory, resume_job
from privacykit.playbooks.erasure.keys import StepKey
from privacykit.playbooks.erasure.outcome import decide
from privacykit.playbooks.erasure.records import (
    ErasureEvidence,
    PlaybookRef,
    evidence_record,
    plan_record,
)
from privacykit.playbooks.erasure.state import (
    DESTRUCTIVE_STEPS,
    PERMANENT_DELETE_STEP,
    ErasureJob,
    ProfileState,
    UserState,
)
from privacykit.playbooks.erasure.ticket_steps import TicketSteps
from privacykit.playbooks.erasure.tickets import known_blockers
from privacykit.playbooks.intake import TicketIntake
from privacykit.playbooks.loader import Playbook, Step
from privacykit.playbooks.person import PersonSteps, incomplete_reason, untrusted_answer
from privacykit.playbooks.policy import ErasurePolicy, plan_profile, protected_reason
from privacykit.playbooks.ports import ErasureClient, RequestLedger
from privacykit.playbooks.reasons import stops_the_run
from privacykit.playbooks.request import RequestSession, default_operator
from privacykit.playbooks.subjects import Subject

__all__ = ["Aborted", "ErasureRunner"]


class Aborted(BaseException):
    """Another worker hit a fatal error (or the operator interrupted): stop at a boundary."""


class ErasureRunner:
    """Runs the erasure playbook for jobs: the step functions plus request bookkeeping.

    ``ledger`` may be None only for planning without a ledger, which records nothing."""

    def __init__(
        self,
        client: ErasureClient,
        ledger: RequestLedger | None,
        playbook: Playbook,
        *,
        home: Path | None = None,
        operator: str | None = None,
        confirm_ambiguous: bool = False,
        received_at: date | None = None,
        batch_id: str | None = None,
        produce_reports: bool = True,
        subject_facts: dict[str, Any] | None = None,
        intake: TicketIntake | None = None,
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
        self.received_at = received_at or clock.today()
        self.batch_id = batch_id
        self.produce_reports = produce_reports
        # A batch signs its reports together once every job has its final status (one
        # checkpoint they all name): finish() then leaves each report owed until then.
        self.defer_reports = False
        # Case reference and identity verification given with a SUBJECT (never applied to
        # the other open requests --resume continues): RequestSession fields.
        self.subject_facts = dict(subject_facts or {})
        # The DSAR ticket the request came from (``--from-ticket``): closed with a note just
        # before its requester is deleted, or noted with the outcome otherwise.
        self.intake = intake
        self.permanent = playbook.has_step(PERMANENT_DELETE_STEP)
        self.aborted = threading.Event()
        self.on_change: Callable[[ErasureJob, str], None] = lambda job, what: None
        person = PersonSteps(
            client,
            self.policy.discovery,
            check=self.check_abort,
            on_change=lambda job, what: self._person_changed(job, what),  # type: ignore[arg-type]
        )
        # The person's conversations (issue 15): one TicketJobs per runner, shared by its jobs.
        self.tickets = TicketSteps.for_runner(client, self.policy, playbook, self.check_abort)
        # The DSAR ticket (--from-ticket) is closed with its note before the person's
        # tickets are handled per policy (and so before the requester is deleted).
        ticket_functions = closing_first(self.tickets.functions(), self._close_dsar_ticket)
        self.engine = Engine(
            playbook,
            {
                **person.functions(),
                **ticket_functions,
                "check_safety": self.step_check_safety,
                "replace_profiles": self.step_replace_profiles,
                "soft_delete_users": self.step_soft_delete_users,
                "permanently_delete_users": self.step_permanently_delete_users,
                "poll_compliance": self.step_poll_compliance,
                "evidence": self.step_evidence,
            },
        )

    # -- jobs and their requests ------------------------------------------------------------

    def check_abort(self) -> None:
        if self.aborted.is_set():
            raise Aborted()

    def _session_options(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "received_at": self.received_at,
            "batch_id": self.batch_id,
            "home": self.home,
        }

    def new_job(
        self, index: int, subject: Subject | None, request: Any = None, *, fresh: bool = False
    ) -> ErasureJob:
        """A job for a subject (continuing its open request, if any; a new request with
        ``fresh``) or for an open request found by ``--resume`` (``subject`` None)."""
        job = ErasureJob(index=index, subject=subject, playbook_sha256=self.playbook.sha256)
        if self.ledger is None:
            return job
        if request is not None:
            job.session = RequestSession.for_request(
                self.ledger, request, self.playbook, **self._session_options()
            )
        elif subject is not None and fresh:
            job.session = RequestSession(
                self.ledger,
                "erasure",
                self.playbook,
                subject_ref=self.ledger.subject_ref(subject.key),
                **self._session_options(),
            )
        elif subject is not None:
            job.session = RequestSession.for_subject(
                self.ledger,
                "erasure",
                self.playbook,
                subject.key,
                **self._session_options(),
                **self.subject_facts,
            )
        if job.resumed:
            self._load(job)
        return job

    def ensure_request(self, job: ErasureJob) -> str:
        """Create (or continue) the job's ledger request and flush buffered info."""
        if job.session is None:
            raise UsageError("planning only: no ledger to record a request in")
        return job.session.open()

    def _load(self, job: ErasureJob) -> None:
        """Rebuild a resumed job from its ledger history (read once, by the session)."""
        assert job.session is not None
        resume_job(job, ErasureHistory.from_entries(job.session.entries))

    # -- the person (shared steps) ------------------------------------------------------------

    def _person_changed(self, job: ErasureJob, what: str) -> None:
        if what == "discovered" and job.discovery is not None:
            job.searched = job.discovery.searched()
            job.info(keys.DISCOVERY, job.discovery.summary())
        self.on_change(job, what)

    # -- check_safety: the plan ---------------------------------------------------------------

    def step_check_safety(self, job: ErasureJob, step: Step) -> Halt | None:
        """Plan every profile and user and find everything that would stop the erasure --
        an incomplete discovery, protected roles, open requested tickets (Zendesk refuses
        to delete their requester), unconfirmed ambiguity -- with GET requests only. Such a
        subject needs review and gets no mutating request at all."""
        fresh = not job.planned
        if fresh:
            self._plan(job)
        reasons: list[str] = []
        if job.discovery is not None:
            incomplete = incomplete_reason(job.discovery)
            if incomplete:
                reasons.append(incomplete)
        elif job.limit_reached:
            reasons.append(f"discovery stopped at a bound: {job.limit_reached}")
        for user in job.users.values():
            if user.protected:
                reasons.append(user.protected)
        try:
            reasons.extend(self._ticket_blockers(job))
        except (ZendeskError, TypeError, ValueError, KeyError, AttributeError) as exc:
            halt = untrusted_answer(exc, "the check for open tickets")
            if halt is None:
                raise
            reasons.extend(halt.reasons)
        if fresh and job.planned:
            job.info(keys.PLAN, plan_record(job))
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
            job.info(
                keys.CONFIRMED_AMBIGUOUS,
                {"ambiguities": len(job.ambiguities), "operator_confirmed": True},
            )
        if not job.users and not job.profiles:
            return Halt("completed", "no_data_found")
        return None

    def _ticket_blockers(self, job: ErasureJob) -> list[str]:
        """Users still to be soft-deleted who requested tickets that are not closed (asked
        live every time the plan is checked: tickets get closed between runs)."""
        if not self.playbook.has_step("soft_delete_users"):
            return []
        reasons = []
        for uid, user in job.users.items():
            self.check_abort()
            if user.soft_deleted or user.protected:
                continue
            known = known_blockers(job.tickets, uid)  # from the ticket discovery (issue 15)
            user.blocking_tickets = (
                known if known is not None else actions.open_requested_tickets(self.client, uid)
            )
            if self.intake is not None and job.subject is not None:
                # The DSAR ticket of --from-ticket is closed by this run, with its note,
                # just before its requester is soft-deleted: not a blocker.
                user.blocking_tickets = [
                    t for t in user.blocking_tickets if t != self.intake.ticket_id
                ]
            if user.blocking_tickets:
                job.info(
                    str(StepKey.blocked(uid)), {"user_id": uid, "ticket_ids": user.blocking_tickets}
                )
                reasons.append(actions.blocked_text(uid, user.blocking_tickets))
        return reasons

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
            state = UserState(
                uid,
                str(user.get("role") or "end-user"),
                identities=len(discovery.identities.get(uid, [])),
                profiles=len(discovery.profiles_of(uid)),
                protected=protected_reason(user, self.policy),
                active=bool(user.get("active", True)),
            )
            # A user already soft-deleted (e.g. by hand) only needs the permanent step.
            state.soft_deleted = not state.active
            job.users[uid] = state
        job.profile_plans = {
            pid: plan_profile(profile, self.policy)
            for pid, profile in sorted(discovery.profiles.items())
        }
        job.profiles = {
            pid: ProfileState.from_plan(plan) for pid, plan in job.profile_plans.items()
        }
        job.planned = True

    # -- replace_profiles -----------------------------------------------------------------------

    def step_replace_profiles(self, job: ErasureJob, step: Step) -> Halt | None:
        """PUT each profile without what the policy removes; delete per policy."""
        for pid, profile in job.profiles.items():
            self.check_abort()
            if profile.finished:
                continue
            try:
                self._profile(job, pid, profile)
            except ZendeskError as exc:
                if stops_the_run(exc):
                    raise
                text = f"profile {pid} could not be processed ({why(exc)})"
                job.failures.append(text)
                job.profile_why[pid] = text
        self.on_change(job, "profiles")
        return None

    def _profile(self, job: ErasureJob, pid: str, profile: ProfileState) -> None:
        session = job.session
        assert session is not None and session.request_id is not None
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
                job.info(str(StepKey.profile_gone(pid)), {"profile_id": pid})
                return
            plan = plan_profile(current, self.policy)
            job.profile_plans[pid] = plan
            if plan.replacement is None:
                # Nothing may be kept any more: the profile can only go.
                needs_put, needs_delete, profile.action = False, not profile.deleted, "delete"
        if needs_put and plan is not None:
            replacement = plan.replacement or {}
            performed = perform(
                session.steps,
                session.request_id,
                str(StepKey.profile_replace(pid)),
                {"profile_id": pid, "identifiers_kept": plan.identifiers_kept},
                action=lambda: actions.put_profile(self.client, pid, replacement),
                reconcile=lambda: actions.reconcile_put(self.client, pid, replacement),
            )
            profile.replaced = True
            if performed.data.get("state") == "gone":
                profile.gone = True
                return
        if needs_delete:
            perform(
                session.steps,
                session.request_id,
                str(StepKey.profile_delete(pid)),
                {"profile_id": pid, "user_id": profile.user_id},
                action=lambda: actions.delete_profile(self.client, pid),
                reconcile=lambda: actions.reconcile_profile_delete(self.client, pid),
            )
            profile.deleted = True

    # -- soft_delete_users ----------------------------------------------------------------------

    def step_soft_delete_users(self, job: ErasureJob, step: Step) -> Halt | None:
        """``DELETE /api/v2/users/{id}`` for each user. Open tickets block: their ids are
        recorded and the request needs review; tickets are never touched (except the DSAR
        ticket of ``--from-ticket``, closed with a note first: it is the requester's)."""
        self._close_dsar_ticket(job)
        for uid, user in job.users.items():
            self.check_abort()
            if user.soft_deleted:
                continue
            try:
                self.soft_delete_one(job, uid)
            except ValidationError as exc:
                self._blocked(job, uid, user, exc)
            except ForbiddenError:
                self._user_failed(
                    job,
                    uid,
                    f"Zendesk refused to delete user {uid} (403; the account owner and "
                    "users this agent may not manage cannot be deleted)",
                )
            except ZendeskError as exc:
                if stops_the_run(exc):
                    raise
                self._user_failed(job, uid, f"user {uid} could not be soft-deleted ({why(exc)})")
        self.on_change(job, "soft_deleted")
        return None

    def soft_delete_one(self, job: ErasureJob, uid: int) -> None:
        session = job.session
        assert session is not None and session.request_id is not None
        user = job.users[uid]
        performed = perform(
            session.steps,
            session.request_id,
            str(StepKey.soft_delete(uid)),
            {"user_id": uid},
            action=lambda: actions.soft_delete(self.client, uid),
            reconcile=lambda: actions.reconcile_soft(self.client, uid),
        )
        user.soft_deleted = True
        user.blocking_tickets = []
        if performed.data.get("state") == "permanently_deleted":
            user.permanently_deleted = True

    def _user_failed(self, job: ErasureJob, uid: int, text: str) -> None:
        job.failures.append(text)
        job.user_why[uid] = text

    def _blocked(self, job: ErasureJob, uid: int, user: UserState, exc: ValidationError) -> None:
        try:
            blocking = actions.open_requested_tickets(self.client, uid)
        except ZendeskError as error:
            if stops_the_run(error):
                raise
            blocking = actions.ticket_ids_from(exc)
        user.blocking_tickets = blocking
        job.info(str(StepKey.blocked(uid)), {"user_id": uid, "ticket_ids": blocking})
        if blocking:
            self._user_failed(job, uid, actions.blocked_text(uid, blocking))
        else:
            self._user_failed(job, uid, f"Zendesk refused to soft-delete user {uid} ({why(exc)})")

    # -- permanently_delete_users ---------------------------------------------------------------

    def users_to_permanently_delete(self, job: ErasureJob) -> list[int]:
        return [uid for uid, u in job.users.items() if u.soft_deleted and not u.permanently_deleted]

    def step_permanently_delete_users(self, job: ErasureJob, step: Step) -> Halt | None:
        """``DELETE /api/v2/deleted_users/{id}`` for each soft-deleted user (the governor
        keeps these within 700 per 10 minutes)."""
        for uid in self.users_to_permanently_delete(job):
            self.check_abort()
            self.permanently_delete_one(job, uid)
        return None

    def permanently_delete_one(self, job: ErasureJob, uid: int) -> None:
        """One user's permanent deletion, reconciled; failures go to ``job.failures``."""
        session = job.session
        assert session is not None and session.request_id is not None
        user = job.users[uid]
        try:
            performed = perform(
                session.steps,
                session.request_id,
                str(StepKey.permanent_delete(uid)),
                {"user_id": uid},
                action=lambda: actions.permanently_delete(self.client, uid),
                reconcile=lambda: actions.reconcile_permanent(self.client, uid),
            )
        except ZendeskError as exc:
            if stops_the_run(exc):
                raise
            self._user_failed(job, uid, f"user {uid} could not be permanently deleted ({why(exc)})")
            return
        user.permanently_deleted = True
        user.permanently_deleted_at = performed.data.get("at") or clock.now_iso()
        # Zendesk starts its compliance deletion now: a look at it in this run cannot show
        # progress yet, so it is left to ``--resume`` and the audit (one request saved).
        user.deleted_this_run = not performed.already
        self.on_change(job, "permanently_deleted")

    # -- poll_compliance ------------------------------------------------------------------------

    def step_poll_compliance(self, job: ErasureJob, step: Step) -> Halt | None:
        """One look at ``compliance_deletion_statuses`` per pending user deleted in an
        earlier run (``--resume``, the audit); never waits. Progress is recorded when it
        changed."""
        from privacykit.playbooks.erasure.state import compliance_state

        expected = self.policy.compliance_applications
        for uid, user in job.users.items():
            self.check_abort()
            if not user.permanently_deleted or user.compliance_complete:
                continue
            if not user.compliance:
                # Nothing reported yet: every expected application is pending (not recorded:
                # nothing was observed).
                user.compliance = compliance_state([], expected)[1]
            if user.deleted_this_run:
                continue
            try:
                rows = self.client.compliance_deletion_statuses(uid)
            except ZendeskError as exc:
                if stops_the_run(exc):
                    raise
                job.notes.append(f"compliance status of user {uid} unavailable ({why(exc)})")
                continue
            complete, apps = compliance_state(rows, expected)
            if apps != user.compliance or complete != user.compliance_complete:
                job.info(
                    str(StepKey.compliance(uid)),
                    {"user_id": uid, "complete": complete, "applications": apps},
                )
            user.compliance, user.compliance_complete = apps, complete
        return None

    # -- evidence -------------------------------------------------------------------------------

    def playbook_ref(self, job: ErasureJob) -> PlaybookRef:
        """The playbook the ledger says the request runs under (a resumed request keeps
        the one it was opened with)."""
        recorded = job.session.recorded_playbook if job.session is not None else None
        if recorded is not None:
            return {"name": recorded[0], "sha256": recorded[1]}
        return {"name": self.playbook.name, "sha256": self.playbook.sha256}

    def evidence_record(self, job: ErasureJob) -> ErasureEvidence:
        return evidence_record(
            job,
            policy=self.policy,
            playbook=self.playbook_ref(job),
            operator=self.operator,
            permanent=self.permanent,
        )

    def step_evidence(self, job: ErasureJob, step: Step) -> Halt | None:
        """Decide the outcome, record the evidence, write the final status, then sign the
        report (through the request session, in that order). Ticket groups a stopped
        subject left open are settled first, read only (``TicketSteps.settle_stopped``)."""
        self.tickets.settle_stopped(job)
        self._decide(job)
        session = job.session
        if session is not None and not session.opened:
            session.open()
        record = self.evidence_record(job)
        job.evidence = dict(record)
        if session is None:
            return None
        # A resumed request where nothing happened (e.g. compliance still pending): the
        # last evidence still says it all; do not pile up identical reports.
        unchanged = (
            job.resumed and job.outcome == job.previous_outcome and not session.changed_since_load()
        )
        reason = "; ".join(job.reasons) if job.reasons else None
        try:
            finished = session.finish(
                job.status or "needs_review",
                dict(record),
                reason=clip(reason) if reason else None,
                produce_report=self.produce_reports,
                record_evidence=not unchanged,
                defer_report=self.defer_reports,
            )
        except Exception as exc:
            # The final status is written; the report is owed (the ledger's ``report`` intent
            # and the reports-owed marker): say so instead of hiding it.
            job.report_error = why(exc)
            raise
        if finished.report_path is not None:
            job.report_path = str(finished.report_path)
            job.report_sha256 = finished.report_sha256
        self._note_dsar_ticket(job)
        self.on_change(job, "finished")
        return None

    # -- the DSAR ticket (--from-ticket) ------------------------------------------------------

    def _close_dsar_ticket(self, job: ErasureJob) -> None:
        if self.intake is not None:
            close_dsar_ticket(self.client, job, self.intake)

    def _note_dsar_ticket(self, job: ErasureJob) -> None:
        if self.intake is not None:
            note_dsar_ticket(self.client, job, self.intake)

    def _decide(self, job: ErasureJob) -> None:
        decide(
            job,
            self.policy,
            permanent=self.permanent,
            polls_compliance=self.playbook.has_step("poll_compliance"),
        )

    # -- running one job ------------------------------------------------------------------------

    def plan_job(self, job: ErasureJob) -> None:
        """Run the non-destructive steps (no ledger writes): for ``--dry-run`` and the
        confirmation prompt."""
        self.engine.run(job, pause_before=DESTRUCTIVE_STEPS | {"evidence"})

    def run_job(self, job: ErasureJob, *, pause_before: Iterable[str] = ()) -> bool:
        """Create/continue the request and run (until a pause point)."""
        self.ensure_request(job)
        with self.tickets.preparing(job):  # others may wait to share a ticket job with it
            return self.engine.run(job, pause_before=frozenset(pause_before))

    def finish_after_error(self, job: ErasureJob) -> None:
        """A step raised: stop the job for review and let the engine run what is left of
        the playbook, i.e. its final ``evidence`` step (the failure is in the reasons)."""
        if job.halt is None or job.halt.status != "needs_review":
            job.halt = Halt("needs_review", "needs_review", job.halt.reasons if job.halt else ())
        self.engine.run(job)
