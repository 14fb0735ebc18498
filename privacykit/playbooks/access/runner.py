"""The access run: one request per subject, read-only steps in threads, delivery in order.

Owns :func:`access_request` (what the CLI calls: validate everything, preflight, then
run), :func:`run_access` (the batch pipeline: read-only steps on a bounded window of
worker threads, ``export`` and ``evidence`` on the calling thread in input order) and the
two writing steps (:class:`Deliverer`: the files, the ledger entries, the signed report).

Every request goes through :class:`~privacykit.playbooks.request.RequestSession`: opened
or resumed with the operator and received date, entries through the ledger's guard, and
finished by storing the evidence record and writing the final status, its report left
owed (intent and marker). One checkpoint per run (#13): once every subject's final status
is written, the run signs ONE checkpoint and every report naming it (then copies each
next to its answer), and closing the run signs one more covering the reports' own
registrations -- two per run whatever its size. A run killed in between leaves the
reports owed; the next run signs them first (``settle_owed_reports``). Zendesk is read
through the read-only transport: a request other than GET never leaves the process.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, Protocol, cast

from privacykit.errors import (
    AuthenticationError,
    EvidenceError,
    ForbiddenError,
    HTTPStatusError,
    MalformedResponseError,
    RateLimitWaitExceeded,
    ResponseTooLarge,
    SubjectError,
    UsageError,
    ZendeskError,
)
from privacykit.playbooks.access.collect import AccessClient, Collector
from privacykit.playbooks.access.evidence import REPORT_FILE, evidence_record
from privacykit.playbooks.access.export import deliver
from privacykit.playbooks.access.files import (
    check_case_refs,
    check_output_dir,
    folder_names,
    output_dir,
    subject_dir,
    write_private_file,
)
from privacykit.playbooks.access.job import AccessJob, AccessRun, Outcome, SubjectResult, now
from privacykit.playbooks.access.kind import AccessPolicy, engine_playbook
from privacykit.playbooks.engine import Engine, Halt
from privacykit.playbooks.loader import Step, load_playbook, resolve_playbook
from privacykit.playbooks.ports import RequestLedger
from privacykit.playbooks.request import (
    RequestSession,
    parse_received,
    settle_owed_reports,
    sign_deferred_reports,
)
from privacykit.playbooks.request_facts import subject_facts
from privacykit.playbooks.subjects import Subject, read_subjects

__all__ = ["Deliverer", "access_request", "run_access"]

KIND = "access"


class AccessLedger(RequestLedger, Protocol):
    """The ledger as an access run uses it: one request's part, and the run's checkpoint."""

    def checkpoint(self) -> Any: ...


class Deliverer:
    """The steps that write: ``export`` (files into the output directory) and ``evidence``
    (the record in the ledger, the final status, the signed report). They run on the
    calling thread."""

    def __init__(
        self,
        *,
        policy: AccessPolicy,
        out: Path,
        batch: bool,
        confirm_ambiguous: bool,
        produce_reports: bool = True,
    ) -> None:
        self.policy = policy
        self.out = out
        self.batch = batch
        self.confirm_ambiguous = confirm_ambiguous
        self.produce_reports = produce_reports

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {"export": self.step_export, "evidence": self.step_evidence}

    def step_export(self, job: AccessJob, step: Step) -> Halt | None:
        """The answer's files, unless the discovery is ambiguous (and not confirmed) or
        the collection incomplete: then nothing goes out and a person must look."""
        session = job.session
        collected = job.collected(self.policy)
        found = collected.discovery
        session.info("discover", found.summary())
        counts = collected.gathered.counts()
        session.info(
            "collect",
            {
                "counts": counts,
                "events_per_profile": dict(sorted(collected.events_per_profile.items())),
                "ticket_ids": job.conversations.ticket_ids(),
                "organization_ids": sorted(job.organizations),
            },
        )
        job.result.counts = counts
        reasons = list(collected.incomplete)
        if found.ambiguities and not self.confirm_ambiguous:
            reasons += found.ambiguities
            reasons.append(
                "check that every user found is the person, then re-run with --confirm-ambiguous"
            )
        elif found.ambiguities:
            session.info("confirm_ambiguous", {"ambiguities": len(found.ambiguities)})
        if reasons:
            return Halt("needs_review", "needs_review", tuple(reasons))

        target = subject_dir(self.out, job.folder) if self.batch else self.out
        assert job.subject is not None  # access jobs always carry their subject
        try:
            prepared = deliver(
                collected,
                subject=job.subject,
                request_id=job.request_id,
                target=target,
                policy=self.policy,
            )
        except EvidenceError as exc:
            # Zendesk sent something the documented format cannot hold: prepare nothing
            # for this subject, say why, carry on with the others.
            session.info("deliver", {"error": "export_schema"})
            return Halt("failed", "failed", (str(exc),))
        session.info("deliver", {"files": [f.as_dict() for f in prepared]})
        job.result.out_dir = target
        job.result.files = prepared
        return None

    def step_evidence(self, job: AccessJob, step: Step) -> Halt | None:
        """The evidence record and the final status; the report is left owed, signed by
        :meth:`sign_reports` once the whole run has its final statuses (skipped when
        ``produce_reports`` is off, which only tests and benches do)."""
        session, halt = job.session, job.halt
        if halt is not None:
            outcome = cast(Outcome, halt.outcome)
            reasons = list(halt.reasons)
            status = halt.status
        else:
            found = job.discovery is not None and job.discovery.found
            outcome = "data_found" if found else "no_data_found"
            reasons = []
            status = "completed"
        record = evidence_record(
            request_id=job.request_id,
            subject_ref=job.subject_ref,
            outcome=outcome,
            reasons=reasons,
            collected=job.collected(self.policy) if job.discovery is not None else None,
            policy=self.policy,
            prepared=job.result.files,
            operator=session.operator,
            started_at=job.started_at,
            completed_at=now(),
        )
        finished = session.finish(
            status,
            record,
            reason="; ".join(reasons) if reasons else outcome,
            produce_report=self.produce_reports,
            defer_report=True,
        )
        assert finished.report_path is None  # signed by sign_reports, after every status
        job.result.outcome = outcome
        job.result.reasons = reasons
        return None

    @staticmethod
    def sign_reports(ledger: RequestLedger, jobs: Sequence[AccessJob]) -> Exception | None:
        """Every report the run's final statuses left owed: one checkpoint, every report
        naming it (:func:`~privacykit.playbooks.request.sign_deferred_reports`), each
        copied next to its answer. A report not signed stays owed for the next run; the
        first such failure is returned (the run reports it) after the others are signed.
        With an exception already propagating (the run stopped), a checkpoint that
        cannot be signed is added to it as a note instead of hiding it."""
        pending = sys.exc_info()[1]
        try:
            signed = sign_deferred_reports(ledger, [job.session for job in jobs])
        except Exception as exc:
            if pending is None:
                raise
            pending.add_note(f"the reports could not be signed either: {exc}")
            return None
        first: Exception | None = None
        for job, result in zip(jobs, signed, strict=True):
            if isinstance(result, Exception):
                first = first or result
            elif result is not None and result.report_path is not None:
                assert result.report_sha256 is not None
                try:
                    Deliverer._copy_report(job, result.report_path, result.report_sha256)
                except (EvidenceError, OSError) as exc:
                    first = first or exc
        return first

    @staticmethod
    def _copy_report(job: AccessJob, stored: Path, sha256: str) -> None:
        job.result.report_sha256 = sha256
        job.result.report_path = stored
        if job.result.out_dir is None:
            return
        copy = write_private_file(job.result.out_dir, REPORT_FILE, stored.read_bytes())
        if copy.sha256 != sha256:
            raise EvidenceError("the access report changed while it was being copied")
        job.session.info("deliver:report", copy.as_dict())
        job.result.files = [*job.result.files, copy]
        job.result.report_path = job.result.out_dir / REPORT_FILE


def run_access(
    subjects: Sequence[Subject],
    out: Path,
    *,
    policy: AccessPolicy,
    client: AccessClient,
    ledger: AccessLedger,
    home: Path,
    confirm_ambiguous: bool = False,
    received_at: date | None = None,
    operator: str | None = None,
    workers: int = 4,
    produce_reports: bool = True,
    case_refs: Sequence[str | None] | None = None,
    on_result: Callable[[SubjectResult], None] | None = None,
    identity: Mapping[str, Any] | None = None,
    closing_checkpoint: bool = True,
) -> AccessRun:
    """Answer one access request per subject into ``out`` (already prepared with
    :func:`prepare_output_dir`): one subject writes into ``out`` itself, several write one
    subdirectory each, named by the subject's case reference (``case_refs``, parallel to
    ``subjects``) when one is given, else by request id.

    The playbook's steps run on the step engine: the read-only ones (up to ``export``) in
    ``workers`` threads, ``export`` and ``evidence`` on the calling thread, in input order
    (the ledger, the files and the reports are written from one place). A subject whose
    discovery is ambiguous (unless ``confirm_ambiguous``) or incomplete is marked *needs
    review* and nothing is delivered for it.

    Reports are signed after every subject's final status, naming one checkpoint; the
    ledger is checkpointed again at the end, whatever happened (``closing_checkpoint``
    False leaves that to the caller, which writes more first: the DSAR ticket's note).
    ``on_result`` is called as each subject's answer is delivered, before its report is
    signed."""
    if not subjects:
        raise SubjectError("no SUBJECT given")
    cases = list(case_refs) if case_refs is not None else [None] * len(subjects)
    if len(cases) != len(subjects):
        raise ValueError("case_refs must be parallel to subjects")
    check_case_refs(cases)  # before any request is opened
    playbook = engine_playbook(policy)
    extra: dict[str, Any] = {"operator": operator} if operator is not None else {}
    jobs: list[AccessJob] = []
    results: list[SubjectResult] = []
    checkpoint_size: int | None = None
    unsigned: Exception | None = None
    try:
        if produce_reports:
            settle_owed_reports(ledger, home=home)
        for position, subject in enumerate(subjects, start=1):
            # The case reference names the folder and is kept with the request; identity
            # verification (``identity``: one subject) too.
            facts = dict(identity or {})
            if cases[position - 1] is not None:
                facts["case_ref"] = cases[position - 1]
            session = RequestSession.for_subject(
                ledger,
                KIND,
                playbook,
                subject.key,
                received_at=received_at,
                home=home,
                **extra,
                **facts,
            )
            request_id = session.open()  # an interrupted run's request is answered again
            jobs.append(AccessJob(subject, position=position, session=session))
            assert request_id == jobs[-1].request_id
        names = folder_names((j.request_id, case) for j, case in zip(jobs, cases, strict=True))
        for each, name in zip(jobs, names, strict=True):
            each.folder = name

        deliverer = Deliverer(
            policy=policy,
            out=out,
            batch=len(jobs) > 1,
            confirm_ambiguous=confirm_ambiguous,
            produce_reports=produce_reports,
        )
        collector = Collector(client, policy, out)
        engine = Engine(playbook, {**collector.functions(), **deliverer.functions()})

        def read_only_steps(job: AccessJob) -> AccessJob:
            engine.run(job, pause_before={"export"})
            collector.finish(job)
            return job

        pool_size = max(1, min(workers, len(jobs)))
        # Collected data waits until its turn to be delivered; a bounded window of jobs in
        # flight keeps a batch of thousands from holding everyone's data at once.
        window = pool_size * 4
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            pending: deque[tuple[AccessJob, Future[AccessJob]]] = deque()
            queue = iter(jobs)
            try:
                while True:
                    while len(pending) < window:
                        job = next(queue, None)
                        if job is None:
                            break
                        pending.append((job, pool.submit(read_only_steps, job)))
                    if not pending:
                        break
                    job, future = pending.popleft()
                    try:
                        _finish(job, future, engine)
                    finally:
                        # Whatever happened, the work files go: the answer (if any) has
                        # been written, and nothing is delivered for the others.
                        job.conversations.remove()
                    results.append(job.result)
                    if on_result is not None:
                        on_result(job.result)
            finally:
                for waiting, future in pending:
                    future.cancel()
                    try:
                        future.result()
                    except Exception:  # noqa: S110 - its own failure is not ours to raise
                        pass
                    waiting.conversations.remove()
    finally:
        if jobs:
            # Every final status is written (or the run stopped): the reports, one
            # checkpoint for all of them. A failure to sign (a full disk) never hides the
            # run's own error.
            from privacykit.ledger import sign_at_end

            unsigned = Deliverer.sign_reports(ledger, jobs)
            if closing_checkpoint:
                signed = sign_at_end(ledger)
                checkpoint_size = signed.size if signed is not None else None
    if unsigned is not None:
        # The request's final status stands and its report stays owed (intent and
        # marker): the next run signs it. This run says so.
        raise unsigned
    return AccessRun(out, results, checkpoint_size)


def _finish(job: AccessJob, future: Future[AccessJob], engine: Engine) -> None:
    """Wait for one job's read-only steps, then run its export and evidence steps. A
    Zendesk answer nothing may be concluded from halts the job (needs review, or failed),
    and its evidence and report say why; nothing is delivered for it."""
    try:
        future.result()
    except (AuthenticationError, ForbiddenError) as exc:
        # Every other subject would fail the same way: stop the run, say why.
        job.session.info("collect", {"error": type(exc).__name__})
        job.session.set_status(
            "failed", f"Zendesk refused the credentials ({exc.status_code}) during the run"
        )
        raise
    except RateLimitWaitExceeded:
        # Stop cleanly: the request stays open and the next run answers it afresh.
        job.session.info("collect", {"error": "RateLimitWaitExceeded"})
        raise
    except ZendeskError as exc:
        job.session.info("collect", _error_data(exc))
        job.halt = _halt_for(exc)
    engine.run(job)


def _error_data(exc: ZendeskError) -> dict[str, Any]:
    data: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, HTTPStatusError):
        data["status"] = exc.status_code
    endpoint = getattr(exc, "endpoint", None)
    if isinstance(endpoint, str):
        data["endpoint"] = endpoint
    return data


def _halt_for(exc: ZendeskError) -> Halt:
    """How a Zendesk error ends a subject's request: an answer that does not match what
    the endpoint documents, or one too large to read, needs a person to look (needs
    review, naming the endpoint, never the body); anything else failed."""
    if isinstance(exc, MalformedResponseError | ResponseTooLarge):
        reason = f"Zendesk sent an answer that cannot be relied on ({exc.endpoint}): {exc}"
        return Halt("needs_review", "needs_review", (reason,))
    status = exc.status_code if isinstance(exc, HTTPStatusError) else None
    reason = f"Zendesk error {type(exc).__name__}" + (f" ({status})" if status else "")
    return Halt("failed", "failed", (reason,))


def access_request(
    subject_args: Sequence[str],
    *,
    out: Path | None,
    from_file: Path | None = None,
    playbook: str | None = None,
    force: bool = False,
    confirm_ambiguous: bool = False,
    received: str | None = None,
    workers: int = 4,
    produce_reports: bool = True,
    case_refs: Sequence[str | None] | None = None,
    env: Mapping[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[SubjectResult], None] | None = None,
    case_ref: str | None = None,
    identity_verified: str | None = None,
    identity_method: str | None = None,
    from_ticket: str | int | None = None,
    max_wait: float | None = None,
    request_deadline: float | None = None,
) -> AccessRun:
    """``privacykit access``: validate everything (subjects, dates, playbook, output
    directory -- any problem is a :class:`UsageError` before a single request is sent),
    check the credentials (one ``GET /api/v2/users/me``), then answer one access request
    per subject with :func:`run_access`, through the read-only transport.

    ``max_wait`` and ``request_deadline`` bound the client (``--max-wait``,
    ``--request-deadline``; None: its defaults). When the run stops with an exception
    (e.g. Zendesk asked to wait past ``max_wait``), an ``out`` directory this call
    created is removed again if nothing was written into it."""
    from privacykit.app import Home, client_bounds, open_app
    from privacykit.playbooks.intake import read_ticket, ticket_option

    if out is None:
        raise UsageError("--out DIR is required: where the answer is written")
    subjects = read_subjects(subject_args, from_file)
    ticket_id = ticket_option(from_ticket, subjects, case_ref=case_ref, received=received)
    if ticket_id is None and not subjects:
        raise SubjectError("give at least one SUBJECT or --from-file with subjects")
    facts = subject_facts(
        subjects if ticket_id is None else ["the ticket's requester"],
        case_ref=case_ref,
        identity_verified=identity_verified,
        identity_method=identity_method,
    )
    if "case_ref" in facts:
        case_refs = [facts.pop("case_ref")]
    received_at = parse_received(received)
    home = Home.from_env(env, create=False)  # created after the preflight (open_app)
    book = load_playbook(resolve_playbook(playbook or "access", home=home.path))
    policy = AccessPolicy.from_playbook(book)
    check_output_dir(out, force=force)
    bounds = client_bounds(max_wait=max_wait, request_deadline=request_deadline)
    # The DSAR ticket is read (a GET, through the read-only client) before the ledger is
    # opened: a ticket that does not exist leaves nothing behind.
    with open_app(
        env,
        command="access",
        read_only=True,
        client_options=bounds,
        prepare=None if ticket_id is None else (lambda client: read_ticket(client, ticket_id)),
    ) as app:
        intake = app.prepared
        if intake is not None:
            from privacykit.playbooks.subjects import parse_subject

            subjects = [parse_subject(intake.subject_arg)]
            received_at, case_refs = intake.received_at, [intake.case_ref]
        with output_dir(out, force=force):
            if on_start is not None:
                on_start(len(subjects))
            run = run_access(
                subjects,
                out,
                policy=policy,
                client=app.client,
                ledger=app.ledger,
                home=app.home.path,
                confirm_ambiguous=confirm_ambiguous,
                received_at=received_at,
                workers=workers,
                produce_reports=produce_reports,
                case_refs=case_refs,
                on_result=on_result,
                identity=facts,
                closing_checkpoint=intake is None,
            )
        if intake is not None:
            from privacykit.ledger import sign_at_end

            # The note is recorded before the run's closing checkpoint: two per run still.
            try:
                _note_ticket(app, intake, run, bounds)
            finally:
                closed = sign_at_end(app.ledger)
            run.checkpoint_size = closed.size if closed is not None else None
        return run


def _note_ticket(app: Any, intake: Any, run: AccessRun, bounds: Mapping[str, Any]) -> None:
    """The outcome as an internal note on the DSAR ticket: the only write ``access`` makes
    to Zendesk, through its own client (collection stays behind the read-only transport).
    A recorded step like every write (intent before, outcome after); a run killed between
    the two left an earlier answer to this ticket at its intent, reconciled here from the
    ticket's comments. A failure is reported, not raised (the answer stands)."""
    from privacykit.app import make_client
    from privacykit.errors import ZendeskError
    from privacykit.playbooks.engine import perform
    from privacykit.playbooks.intake import add_note, note_text, reconcile_note

    (result,) = run.results
    ledger, tid, step = app.ledger, intake.ticket_id, intake.note_step
    body = note_text("access", result.request_id, result.outcome, counts=dict(result.counts))
    try:
        for earlier in ledger.list_requests(kind="access", case_ref=intake.case_ref):
            rid = earlier.request_id
            if rid != result.request_id and ledger.step_state(rid, step) == "intent":
                found = reconcile_note(app.client, tid, "access", rid)
                data = found or {"ticket_id": tid, "result": "failed"}
                ledger.record(rid, step, "outcome", {**data, "reconciled": True})
        with make_client(app.config, **bounds) as writer:
            perform(
                ledger,
                result.request_id,
                step,
                {"ticket_id": tid},
                action=lambda: add_note(writer, tid, body),
                reconcile=lambda: reconcile_note(app.client, tid, "access", result.request_id),
            )
    except ZendeskError:
        result.reasons = [*result.reasons, f"the DSAR ticket {tid} got no note"]
