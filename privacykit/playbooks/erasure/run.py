"""The library call behind ``privacykit erase``: plan, then run, and the views of both.

Owns :class:`ErasureBatch` (the jobs of one invocation: :meth:`~ErasureBatch.plan` is
read-only and records nothing, :meth:`~ErasureBatch.run` erases), :func:`erase` (plan or
run per :class:`EraseOptions`), :class:`EraseReport` (what a run did or would do, with the
one view the CLI prints as text or JSON), and :func:`open_erasure` / :func:`run_erase`
(from the command's raw input through the application layer: home, configuration,
preflight, ledger). The library never asks the operator anything: the CLI shows the plan,
asks, and calls :meth:`ErasureBatch.run`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from privacykit import clock
from privacykit.errors import LedgerError, RateLimitWaitExceeded, UsageError, ZendeskError
from privacykit.playbooks.batches import BatchTracker
from privacykit.playbooks.engine import Halt
from privacykit.playbooks.erasure.actions import why
from privacykit.playbooks.erasure.pipeline import BatchProgress, Pipeline
from privacykit.playbooks.erasure.state import SUCCESS_OUTCOMES, ErasureJob
from privacykit.playbooks.erasure.steps import ErasureRunner
from privacykit.playbooks.erasure.views import plan_view, result_view, would
from privacykit.playbooks.finished import finished_erasures, finished_in_batch, skipped_view
from privacykit.playbooks.intake import TicketIntake
from privacykit.playbooks.loader import Playbook
from privacykit.playbooks.ports import ErasureClient, RequestLedger
from privacykit.playbooks.request import (
    default_operator,
    parse_received,
    recorded_playbook,
    settle_owed_reports,
    sign_deferred_reports,
)
from privacykit.playbooks.request_facts import subject_facts
from privacykit.playbooks.subjects import Subject

__all__ = [
    "EraseCommand",
    "EraseOptions",
    "EraseReport",
    "ErasureBatch",
    "erase",
    "open_erasure",
    "plan_view",
    "result_view",
    "run_erase",
]


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
    #: A subject with a finished erasure is skipped ("already erased on DATE (REQ)")
    #: unless this says the run is a new request of that person.
    new_request: bool = False
    #: The DPO's case reference and the identity verification (one SUBJECT only).
    case_ref: str | None = None
    identity_verified: date | None = None
    identity_method: str | None = None

    def subject_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        for name in ("case_ref", "identity_verified", "identity_method"):
            if getattr(self, name) is not None:
                facts[name] = getattr(self, name)
        return facts


@dataclass
class EraseReport:
    """What a run did (or would do, for a plan); ``exit_code`` for the CLI."""

    jobs: list[ErasureJob]
    dry_run: bool = False
    confirmed: bool = True
    stats: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    checkpoint: dict[str, Any] | None = None
    executed: bool = False
    settled_reports: list[str] = field(default_factory=list)
    #: Subjects not run because their erasure already finished (:func:`skipped_view`).
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: Stopped by the operator (Ctrl-C) at step boundaries; ``not_started`` subjects of
    #: batch ``batch_id`` wait for ``erase --resume --from-file FILE``.
    interrupted: bool = False
    #: Why the run stopped by itself (Zendesk asked to wait past ``--max-wait``, the
    #: ledger or the disk could not be written): one line for the operator, or None.
    stopped: str | None = None
    batch_id: str | None = None
    not_started: int = 0
    #: Remembered batches (other runs) with subjects not started (ids and counts).
    waiting: list[dict[str, Any]] = field(default_factory=list)

    @property
    def would_change(self) -> bool:
        """Whether running the plan could change anything in Zendesk."""
        return any(job.would_change() for job in self.jobs)

    @property
    def needs_review(self) -> bool:
        """Whether a planned subject would stop for review (or could not be planned)."""
        return any(would(job) in ("stop for review", "retry discovery") for job in self.jobs)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 1
        if self.dry_run:
            # A dry run is a check: it fails when some subject would not be erased.
            return 1 if self.needs_review else 0
        if not self.confirmed:
            return 0
        ok = all(job.outcome in SUCCESS_OUTCOMES and not job.report_error for job in self.jobs)
        return 0 if ok else 1

    @property
    def needs_subjects(self) -> int:
        """Requests stopped before their discovery finished: the ledger keeps only a keyed
        hash of the subject, so they continue only when the subject is given again
        (``--resume`` alone would end them as needing review)."""
        return sum(
            1
            for job in self.jobs
            if self.interrupted and job.outcome is None and job.request_id and job.needs_discovery()
        )

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs:
            key = job.outcome or ("planned" if not self.executed else "not_run")
            if self.interrupted and job.outcome is None:
                key = "interrupted" if job.request_id else "not_started"
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "confirmed": self.confirmed,
            "summary": self.summary(),
            "requests": [result_view(j) if self.executed else plan_view(j) for j in self.jobs],
            "stats": self.stats,
            "elapsed_seconds": round(self.elapsed, 3),
            "checkpoint": self.checkpoint,
            "skipped": list(self.skipped),
            "interrupted": self.interrupted,
            "stopped": self.stopped,
            "batch_id": self.batch_id,
            "not_started": self.not_started,
            "needs_subjects": self.needs_subjects,
            "waiting_batches": list(self.waiting),
            "exit_code": self.exit_code,
        }


def stop_reason(exc: BaseException) -> str:
    """One line saying why a run stopped by itself and when to continue it."""
    if isinstance(exc, RateLimitWaitExceeded):
        return (
            f"Zendesk asked to wait {exc.retry_after:.0f} s, longer than --max-wait: stopped; "
            f"everything is recorded; continue after {clock.iso(exc.resume_at)}"
        )
    if isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        return f"stopped: a file could not be written ({what}); free space, then continue"
    return f"stopped: the ledger could not record ({why(exc)}); fix it, then continue"


def _stats(client: Any) -> dict[str, Any]:
    stats = getattr(client, "stats", None)
    snapshot = getattr(stats, "snapshot", None)
    return dict(snapshot()) if callable(snapshot) else {}


def _hex(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes | bytearray) else value


class ErasureBatch:
    """The jobs of one ``erase`` invocation: every subject (continuing its open request)
    and, with ``resume``, every open erasure request. Plan first (read-only), then run."""

    def __init__(
        self,
        client: ErasureClient,
        ledger: RequestLedger | None,
        options: EraseOptions,
        *,
        home: Path | None = None,
        intake: TicketIntake | None = None,
    ) -> None:
        if options.playbook is None:
            raise UsageError("no playbook given")
        self.client = client
        self.ledger = ledger
        self.options = options
        self.home = home
        self.started = time.monotonic()
        refs = [ledger.subject_ref(s.key) for s in options.subjects] if ledger else []
        # The batch's memory (keyed references only): a --resume with the same subjects
        # continues an interrupted batch under its id.
        self.tracker = BatchTracker(
            ledger,
            home,
            "erasure",
            refs,
            resume=options.resume,
            new_id=f"batch-{clock.now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
        )
        self.batch_id = self.tracker.batch_id
        self.intake = intake
        self.runners: dict[str, ErasureRunner] = {}
        self.runner = self._runner_for(options.playbook)
        self.jobs: list[ErasureJob] = []
        self.skipped: list[dict[str, Any]] = []
        finished = {}
        if ledger is not None and not options.new_request:
            finished = finished_erasures(ledger, refs)
        if ledger is not None and self.tracker.continues is not None:
            finished.update(finished_in_batch(ledger, "erasure", self.tracker.batch_id))
        seen: set[str] = set()
        for index, subject in enumerate(options.subjects, start=1):
            job = self.runner.new_job(index, subject)
            done = finished.get(job.subject_ref)
            if done is not None and not job.resumed:
                self.skipped.append(skipped_view(index, job.label(), done))
                continue
            job = self._continue_under_its_playbook(job)
            self.jobs.append(job)
            if job.request_id:
                seen.add(job.request_id)
        if options.resume and ledger is not None:
            # Requests that need review are continued by giving their SUBJECT again, once
            # the cause (open tickets, a role, an ambiguity) has been dealt with.
            for request in ledger.list_requests(
                status=["open", "in_progress", "pending_compliance"], kind="erasure"
            ):
                if request.request_id not in seen:
                    job = self.runner.new_job(len(self.jobs) + 1, None, request)
                    self.jobs.append(self._continue_under_its_playbook(job))
                    seen.add(request.request_id)
        self.planned = False
        #: The application context when opened through :func:`open_erasure` (its
        #: ``close_error`` says whether the ledger closed cleanly).
        self.app: Any = None

    def close_error(self) -> str | None:
        """After the batch is closed: why the ledger's final checkpoint was not signed."""
        return getattr(self.app, "close_error", None)

    def _runner_for(self, playbook: Playbook) -> ErasureRunner:
        runner = self.runners.get(playbook.sha256)
        if runner is None:
            runner = self.runners[playbook.sha256] = ErasureRunner(
                self.client,
                self.ledger,
                playbook,
                home=self.home,
                operator=self.options.operator,
                confirm_ambiguous=self.options.confirm_ambiguous,
                received_at=self.options.received_at,
                batch_id=self.batch_id,
                produce_reports=self.options.produce_reports,
                subject_facts=self.options.subject_facts(),
                intake=self.intake,
            )
            runner.defer_reports = True  # signed together by _sign_reports
        return runner

    def _sign_reports(self) -> None:
        """The reports the jobs' final statuses left owed, signed once every job has its
        final status: one checkpoint first, which every report of the batch names (#13;
        :func:`~privacykit.playbooks.owed_reports.sign_deferred_reports`). A report that
        cannot be signed stays owed (its intent and marker): the next run settles it."""
        assert self.ledger is not None
        jobs = [job for job in self.jobs if job.session is not None]
        signed = sign_deferred_reports(self.ledger, [job.session for job in jobs])
        for job, result in zip(jobs, signed, strict=True):
            if isinstance(result, Exception):
                job.report_error = why(result)
            elif result is not None and result.report_path is not None:
                job.report_path = str(result.report_path)
                job.report_sha256 = result.report_sha256

    def _continue_under_its_playbook(self, job: ErasureJob) -> ErasureJob:
        """A request goes on under the playbook it was opened with, so what runs and what
        the ledger, the evidence and the report name are the same playbook. A subject's
        open request under another playbook in which nothing destructive happened yet is
        superseded by a new request under the playbook given now."""
        session = job.session
        if session is None or not session.resumed or session.recorded_playbook is None:
            return job
        name, sha = session.recorded_playbook
        if sha == job.playbook_sha256:
            return job
        if job.subject is not None and not job.destructive_started:
            fresh = self.runner.new_job(job.index, job.subject, fresh=True)
            assert fresh.session is not None and session.request_id is not None
            fresh.session.supersedes = session.request_id
            return fresh
        assert self.ledger is not None and session.request_id is not None
        book = recorded_playbook(
            self.ledger, self.ledger.get_request(session.request_id), home=self.home
        )
        if book is None:
            job.halt = Halt(
                "needs_review",
                "needs_review",
                (
                    f"the playbook this request was opened with ({name}, sha256 {sha[:12]}…) "
                    "is not available: restore it, then run again",
                ),
            )
            return job
        runner = self._runner_for(book)
        again = runner.new_job(job.index, job.subject, self.ledger.get_request(session.request_id))
        return again

    def plan(self) -> EraseReport:
        """Plan every job (read-only: GET requests, nothing recorded). A subject whose
        discovery fails is marked, shown as such, and discovered again by :meth:`run`."""

        def plan(job: ErasureJob) -> None:
            try:
                self.runners[job.playbook_sha256].plan_job(job)
            except ZendeskError as exc:
                job.plan_error = why(exc)

        workers = max(1, self.options.concurrency)
        with ThreadPoolExecutor(workers, thread_name_prefix="erase-plan") as pool:
            for future in [pool.submit(plan, job) for job in self.jobs]:
                future.result()
        self.planned = True
        return EraseReport(
            list(self.jobs),
            dry_run=True,
            stats=_stats(self.client),
            elapsed=time.monotonic() - self.started,
            skipped=list(self.skipped),
        )

    def run(self, *, on_progress: Callable[[BatchProgress], None] | None = None) -> EraseReport:
        """Erase: every job from where it is (a planned job goes on from its plan; one
        whose planning failed starts afresh). Ends with one signed checkpoint."""
        if self.ledger is None:
            raise UsageError("erasing needs a ledger")
        # Jobs whose planning failed start afresh (same position and subject).
        self.jobs = [
            self.runners[job.playbook_sha256].new_job(job.index, job.subject)
            if job.plan_error
            else job
            for job in self.jobs
        ]
        settled: list[str] = []
        interrupted = False
        stopped: str | None = None
        try:
            self.tracker.start()
            if self.options.produce_reports:
                settled = settle_owed_reports(self.ledger, home=self.home)
            Pipeline(
                self.runners,
                self.jobs,
                concurrency=self.options.concurrency,
                deleters=self.options.deleters,
                on_progress=on_progress,
            ).run()
        except KeyboardInterrupt:
            # The operator's Ctrl-C: the pipeline stopped every job at a step boundary
            # (intent and outcome recorded); say what was done and how to continue.
            interrupted = True
        except (RateLimitWaitExceeded, LedgerError, OSError) as exc:
            # Nothing any subject could get past in this run: stopped the same way.
            interrupted, stopped = True, stop_reason(exc)
        try:
            self._sign_reports()
        except (LedgerError, OSError) as exc:  # the batch's checkpoint: reports stay owed
            interrupted = True
            stopped = stopped or stop_reason(exc)
        checkpoint = None
        left: list[str] = []
        try:
            left = self.tracker.finish(
                started_now=[job.subject_ref for job in self.jobs if job.request_id]
            )
            checkpoint = self.ledger.checkpoint()
        except (LedgerError, OSError) as exc:
            # Never hide the first error behind the last one: keep the first reason.
            interrupted = True
            stopped = stopped or stop_reason(exc)
        report = EraseReport(
            self.jobs,
            stats=_stats(self.client),
            elapsed=time.monotonic() - self.started,
            executed=True,
            settled_reports=settled,
            skipped=list(self.skipped),
            interrupted=interrupted,
            stopped=stopped,
            batch_id=self.tracker.batch_id,
            not_started=len(left),
            waiting=[w for w in self.tracker.waiting() if w["batch_id"] != self.tracker.batch_id]
            if self.options.resume
            else [],
        )
        if checkpoint is not None:
            report.checkpoint = {
                "tree_size": getattr(checkpoint, "size", None),
                "root": _hex(getattr(checkpoint, "root", None)),
            }
        return report


def erase(
    client: ErasureClient,
    ledger: RequestLedger | None,
    options: EraseOptions,
    *,
    home: Path | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> EraseReport:
    """Erase every subject (and, with ``resume``, continue every open erasure request).

    ``dry_run`` returns the plan and sends no mutating request. Without ``yes`` the plan is
    returned unconfirmed (nothing changed): callers that ask a person use
    :class:`ErasureBatch` (plan, ask, run). Raises :class:`UsageError` when there is
    nothing to do."""
    batch = ErasureBatch(client, ledger, options, home=home)
    if not batch.jobs:
        if options.resume or batch.skipped:
            return EraseReport([], dry_run=options.dry_run, skipped=list(batch.skipped))
        raise UsageError("nothing to erase: give a SUBJECT, --from-file FILE or --resume")
    if options.dry_run:
        return batch.plan()
    if not options.yes:
        plan = batch.plan()
        plan.dry_run, plan.confirmed = False, False
        return plan
    return batch.run(on_progress=on_progress)


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
    new_request: bool = False
    #: Seconds a request may wait for rate-limit budget before the run stops cleanly
    #: (None: the client's default, 15 minutes).
    max_wait: float | None = None
    #: Total seconds one request to Zendesk may take (None: the client's default, 180 s).
    request_deadline: float | None = None
    case_ref: str | None = None
    identity_verified: str | None = None
    identity_method: str | None = None
    from_ticket: str | int | None = None


@contextmanager
def open_erasure(
    command: EraseCommand, *, env: Mapping[str, str] | None = None
) -> Iterator[ErasureBatch]:
    """Validate the input (subjects first, so a bad line is reported before any request),
    load the playbook, then open the application (configuration, preflight, ledger) and
    yield the batch. Input errors raise :class:`UsageError` subclasses (exit 2) with
    nothing sent; refused credentials too, with nothing recorded."""
    from privacykit.app import Home, client_bounds, open_app
    from privacykit.playbooks.intake import read_ticket, ticket_option
    from privacykit.playbooks.loader import load_playbook, resolve_playbook
    from privacykit.playbooks.subjects import parse_subject, read_subjects

    subjects = read_subjects(command.subjects, command.from_file)
    ticket_id = ticket_option(
        command.from_ticket, subjects, case_ref=command.case_ref, received=command.received
    )
    if ticket_id is None and not subjects and not command.resume:
        raise UsageError("nothing to erase: give a SUBJECT, --from-file FILE or --resume")
    if not 1 <= command.concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64")
    received_at = parse_received(command.received)
    facts = subject_facts(
        subjects if ticket_id is None else ["the ticket's requester"],
        case_ref=command.case_ref,
        identity_verified=command.identity_verified,
        identity_method=command.identity_method,
    )
    home = Home.from_env(env, create=False)  # created after the preflight (open_app)
    book = load_playbook(resolve_playbook(command.playbook, home=home.path))
    if book.kind != "erasure":
        raise UsageError(f"playbook {book.name!r} is for {book.kind} requests, not erasure")
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
        new_request=command.new_request,
        **facts,
    )
    client_options = client_bounds(
        max_wait=command.max_wait, request_deadline=command.request_deadline
    )
    with open_app(
        env,
        command="erase",
        client_options=client_options,
        keep_close_error=True,
        # The DSAR ticket: its requester is the subject, its creation day the receipt, its
        # id the case reference (one GET, after the credentials were checked and before
        # the ledger is opened: a ticket that does not exist leaves nothing behind).
        prepare=None if ticket_id is None else (lambda client: read_ticket(client, ticket_id)),
    ) as app:
        intake = app.prepared
        if intake is not None:
            options.subjects = [parse_subject(intake.subject_arg)]
            options.received_at = intake.received_at
            options.case_ref = intake.case_ref
        batch = ErasureBatch(app.client, app.ledger, options, home=app.home.path, intake=intake)
        batch.app = app
        if not batch.jobs and not command.resume and not batch.skipped:
            raise UsageError("nothing to erase: give a SUBJECT, --from-file FILE or --resume")
        yield batch


def run_erase(
    command: EraseCommand,
    *,
    env: Mapping[str, str] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> EraseReport:
    """Everything behind a non-interactive ``privacykit erase`` (``--yes`` or
    ``--dry-run``; without either, the plan comes back unconfirmed)."""
    with open_erasure(command, env=env) as batch:
        if not batch.jobs:
            return EraseReport([], dry_run=command.dry_run, skipped=list(batch.skipped))
        if command.dry_run:
            return batch.plan()
        if not command.yes:
            plan = batch.plan()
            plan.dry_run, plan.confirmed = False, False
            return plan
        return batch.run(on_progress=on_progress)
