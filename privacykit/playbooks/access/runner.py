"""The access run: one request per subject, read-only steps in threads, delivery in order.

Owns :func:`access_request` (what the CLI calls: validate everything, then run),
:func:`run_access` (the batch pipeline: read-only steps on a bounded window of worker
threads, ``export`` and ``evidence`` on the calling thread in input order) and the two
writing steps (:class:`Deliverer`: the files, the ledger entries, the signed report).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, cast

from privacykit import clock
from privacykit.config import ZendeskConfig, privacykit_home
from privacykit.errors import (
    AuthenticationError,
    EvidenceError,
    ForbiddenError,
    SubjectError,
    UsageError,
    ZendeskError,
)
from privacykit.playbooks.access.collect import AccessClient, Collector
from privacykit.playbooks.access.evidence import REPORT_FILE, evidence_record, ledger_view
from privacykit.playbooks.access.export import deliver
from privacykit.playbooks.access.files import (
    check_case_refs,
    folder_names,
    prepare_output_dir,
    subject_dir,
    write_private_file,
)
from privacykit.playbooks.access.job import AccessJob, AccessRun, Outcome, SubjectResult, now
from privacykit.playbooks.access.kind import AccessPolicy, engine_playbook
from privacykit.playbooks.engine import Engine, Halt
from privacykit.playbooks.loader import Step, load_playbook, resolve_playbook
from privacykit.playbooks.subjects import Subject, read_subjects

__all__ = ["Deliverer", "access_request", "produce_report", "run_access"]


def produce_report(
    ledger: Any, request_id: str, kind: str, record: Mapping[str, Any], *, home: Path
) -> tuple[Path, str]:
    """Render, sign and store the access report (the PDF stack is imported only here)."""
    from privacykit.evidence import produce_report as produce

    report = produce(ledger, request_id, kind, dict(record), home=home)
    return report.path, report.sha256


class Deliverer:
    """The steps that write: ``export`` (files into the output directory) and ``evidence``
    (the record in the ledger, the signed report). They run on the calling thread."""

    def __init__(
        self,
        *,
        policy: AccessPolicy,
        ledger: Any,
        home: Path,
        out: Path,
        batch: bool,
        confirm_ambiguous: bool,
        operator: str | None,
        produce_reports: bool = True,
    ) -> None:
        self.policy = policy
        self.ledger = ledger
        self.home = home
        self.out = out
        self.batch = batch
        self.confirm_ambiguous = confirm_ambiguous
        self.operator = operator
        self.produce_reports = produce_reports

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {"export": self.step_export, "evidence": self.step_evidence}

    def step_export(self, job: AccessJob, step: Step) -> Halt | None:
        """data.json and the CSVs, unless the discovery is ambiguous (and not confirmed)
        or the collection incomplete: then nothing goes out and a person must look."""
        collected = job.collected(self.policy)
        found = collected.discovery
        ledger, rid = self.ledger, job.request_id
        ledger.record(rid, "discover", "info", found.summary())
        ledger.record(
            rid,
            "collect",
            "info",
            {
                "counts": collected.gathered.counts(),
                "events_per_profile": dict(sorted(collected.events_per_profile.items())),
                "ticket_ids": [t.get("id") for t in collected.gathered.tickets],
            },
        )
        job.result.counts = collected.gathered.counts()
        reasons = list(collected.incomplete)
        if found.ambiguities and not self.confirm_ambiguous:
            reasons += found.ambiguities
            reasons.append(
                "check that every user found is the person, then re-run with --confirm-ambiguous"
            )
        elif found.ambiguities:
            ledger.record(rid, "confirm_ambiguous", "info", {"ambiguities": len(found.ambiguities)})
        if reasons:
            return Halt("needs_review", "needs_review", tuple(reasons))

        target = subject_dir(self.out, job.folder) if self.batch else self.out
        try:
            delivered = deliver(
                collected, subject=job.subject, request_id=rid, target=target, policy=self.policy
            )
        except EvidenceError as exc:
            # Zendesk sent something the documented format cannot hold: deliver nothing for
            # this subject, say why, carry on with the others.
            ledger.record(rid, "deliver", "info", {"error": "export_schema"})
            return Halt("failed", "failed", (str(exc),))
        ledger.record(rid, "deliver", "info", {"files": [f.as_dict() for f in delivered]})
        job.result.out_dir = target
        job.result.files = delivered
        return None

    def step_evidence(self, job: AccessJob, step: Step) -> Halt | None:
        """The evidence record (ledger), the final status, the signed report (delivered
        next to the data when there is data to deliver; skipped when ``produce_reports``
        is off, which only tests and benches do)."""
        ledger, rid, halt = self.ledger, job.request_id, job.halt
        if halt is not None:
            outcome = cast(Outcome, halt.outcome)
            reasons = list(halt.reasons)
        else:
            found = job.discovery is not None and job.discovery.found
            outcome = "data_found" if found else "no_data_found"
            reasons = []
        record = evidence_record(
            request_id=rid,
            subject_ref=job.subject_ref,
            outcome=outcome,
            reasons=reasons,
            collected=job.collected(self.policy),
            policy=self.policy,
            delivered=job.result.files,
            operator=self.operator,
            started_at=job.started_at,
            completed_at=now(),
        )
        ledger.record(rid, "evidence", "info", ledger_view(record))
        if self.produce_reports:
            self._report(job, record)
        # The final status comes last (as in erasure): a run interrupted before the report
        # was delivered leaves the request open, and the next run resumes it under the same
        # id. The report states the outcome; its status line says the request was still
        # being answered when it was signed.
        if halt is not None:
            ledger.set_status(rid, halt.status, reason="; ".join(reasons)[:1000])
        else:
            ledger.set_status(rid, "completed", reason=outcome)
        job.result.outcome = outcome
        job.result.reasons = reasons
        return None

    def _report(self, job: AccessJob, record: Mapping[str, Any]) -> None:
        ledger, rid = self.ledger, job.request_id
        stored, sha256 = produce_report(ledger, rid, "access", record, home=self.home)
        job.result.report_sha256 = sha256
        job.result.report_path = stored
        if job.result.out_dir is not None:
            copy = write_private_file(job.result.out_dir, REPORT_FILE, stored.read_bytes())
            if copy.sha256 != sha256:
                raise EvidenceError("the access report changed while it was being delivered")
            ledger.record(rid, "deliver:report", "info", copy.as_dict())
            job.result.files = [*job.result.files, copy]
            job.result.report_path = job.result.out_dir / REPORT_FILE


def run_access(
    subjects: Sequence[Subject],
    out: Path,
    *,
    policy: AccessPolicy,
    client: AccessClient,
    ledger: Any,
    home: Path,
    confirm_ambiguous: bool = False,
    received_at: date | None = None,
    operator: str | None = None,
    workers: int = 4,
    produce_reports: bool = True,
    case_refs: Sequence[str | None] | None = None,
    on_result: Callable[[SubjectResult], None] | None = None,
) -> AccessRun:
    """Answer one access request per subject into ``out`` (already prepared with
    :func:`prepare_output_dir`): one subject writes into ``out`` itself, several write one
    subdirectory each, named by the subject's case reference (``case_refs``, parallel to
    ``subjects``) when one is given, else by request id.

    The playbook's steps run on the step engine: the read-only ones (up to ``export``) in
    ``workers`` threads, ``export`` and ``evidence`` on the calling thread, in input order
    (the ledger, the files and the reports are written from one place). A subject whose
    discovery is ambiguous (unless ``confirm_ambiguous``) or incomplete is marked *needs
    review* and nothing is delivered for it. The ledger is checkpointed at the end,
    whatever happened."""
    if not subjects:
        raise SubjectError("no SUBJECT given")
    cases = list(case_refs) if case_refs is not None else [None] * len(subjects)
    if len(cases) != len(subjects):
        raise ValueError("case_refs must be parallel to subjects")
    check_case_refs(cases)  # before any request is opened
    received = received_at or clock.today()
    jobs: list[AccessJob] = []
    results: list[SubjectResult] = []
    checkpoint_size: int | None = None
    try:
        for position, subject in enumerate(subjects, start=1):
            ref = ledger.subject_ref(subject.key)
            existing = ledger.find_open_request("access", ref)
            if existing is not None:
                request_id = existing.request_id  # an interrupted run: answer the same request
            else:
                request_id = ledger.create_request(
                    "access",
                    ref,
                    received_at=received,
                    playbook_name=policy.name,
                    playbook_sha256=policy.sha256,
                    operator=operator,
                )
            ledger.set_status(request_id, "in_progress")
            jobs.append(
                AccessJob(subject, position=position, request_id=request_id, subject_ref=ref)
            )
        names = folder_names((j.request_id, case) for j, case in zip(jobs, cases, strict=True))
        for each, name in zip(jobs, names, strict=True):
            each.folder = name
        # The ledger fills in the operator when none is given; the evidence repeats it.
        if operator is None:
            operator = ledger.get_request(jobs[0].request_id).operator

        deliverer = Deliverer(
            policy=policy,
            ledger=ledger,
            home=home,
            out=out,
            batch=len(jobs) > 1,
            confirm_ambiguous=confirm_ambiguous,
            operator=operator,
            produce_reports=produce_reports,
        )
        engine = Engine(
            engine_playbook(policy),
            {**Collector(client, policy).functions(), **deliverer.functions()},
        )

        def read_only_steps(job: AccessJob) -> AccessJob:
            engine.run(job, pause_before={"export"})
            return job

        pool_size = max(1, min(workers, len(jobs)))
        # Collected data waits in memory until its turn to be delivered; a bounded window of
        # jobs in flight keeps a batch of thousands from holding everyone's data at once.
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
                    _finish(job, future, engine, ledger)
                    results.append(job.result)
                    if on_result is not None:
                        on_result(job.result)
            finally:
                for _job, future in pending:
                    future.cancel()
    finally:
        if jobs:
            checkpoint_size = ledger.checkpoint().size
    return AccessRun(out, results, checkpoint_size)


def _finish(job: AccessJob, future: Future[AccessJob], engine: Engine, ledger: Any) -> None:
    """Wait for one job's read-only steps, then run its export and evidence steps."""
    rid = job.request_id
    try:
        future.result()
    except (AuthenticationError, ForbiddenError) as exc:
        # Every other subject would fail the same way: stop the run, say why.
        ledger.record(rid, "collect", "info", {"error": type(exc).__name__})
        ledger.set_status(
            rid, "failed", reason=f"Zendesk refused the credentials ({exc.status_code})"
        )
        raise
    except ZendeskError as exc:
        status = getattr(exc, "status_code", None)
        reason = f"Zendesk error {type(exc).__name__}" + (f" ({status})" if status else "")
        ledger.record(rid, "collect", "info", {"error": type(exc).__name__, "status": status})
        ledger.set_status(rid, "failed", reason=reason)
        job.result.reasons = [reason]
        return
    engine.run(job)


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
) -> AccessRun:
    """``privacykit access``: validate everything (subjects, playbook, configuration, output
    directory -- any problem is a :class:`UsageError` before a single request is sent),
    then answer one access request per subject with :func:`run_access`."""
    if out is None:
        raise UsageError("--out DIR is required: where the answer is written")
    subjects = read_subjects(subject_args, from_file)
    if not subjects:
        raise SubjectError("give at least one SUBJECT or --from-file with subjects")
    from privacykit.ledger import Ledger
    from privacykit.ledger.dates import parse_date
    from privacykit.zendesk import ZendeskClient

    received_at = parse_date(received, "--received") if received else None
    home = privacykit_home(env)
    book = load_playbook(resolve_playbook(playbook or "access", home=home))
    policy = AccessPolicy.from_playbook(book)
    config = ZendeskConfig.from_env(env)
    prepare_output_dir(out, force=force)
    ledger = Ledger.open(home)
    if on_start is not None:
        on_start(len(subjects))
    try:
        with ZendeskClient(config) as client:
            return run_access(
                subjects,
                out,
                policy=policy,
                client=client,
                ledger=ledger,
                home=home,
                confirm_ambiguous=confirm_ambiguous,
                received_at=received_at,
                workers=workers,
                produce_reports=produce_reports,
                case_refs=case_refs,
                on_result=on_result,
            )
    finally:
        ledger.close()
