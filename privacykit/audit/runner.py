"""One audit run: the checks in order, within a budget, recorded in the ledger.

Owns :func:`run_audit`. A run

1. verifies the whole ledger first (before appending anything to it), then signs the
   reports an earlier run left owed (``settle_owed_reports``, as every run does);
2. opens its own ledger request (kind ``audit``, through
   :class:`~privacykit.playbooks.request.RequestSession`) so the run is on record even if
   it dies;
3. asks Zendesk, read-only and at most ``max_requests`` requests (:mod:`.sweep`):
   a. every erasure that is not completed (lingering soft deletions, deletions that must
      hold, compliance deletion progress (:mod:`.compliance`), which it records and which
      completes a ``pending_compliance`` request once every application reports
      ``complete``);
   b. completed erasures in rotation (never re-checked ones first, then round-robin
      from where the last run stopped), so a ledger of 100,000 erasures is covered over
      a number of nights instead of in one run;
4. checks every open request's Art. 12(3) deadline (as it stands after step 3);
5. records findings, the rotation cursor and the audit evidence record (:mod:`.record`)
   and writes its final status; then, one checkpoint per run (#13): ONE checkpoint, the
   reports of the erasures it completed and its own signed audit PDF (optional; it states
   the status the ledger shows at signing) all naming it, and a closing checkpoint over
   the reports' registrations -- two whatever the run moved, never over a ledger that
   failed verification (the reports then stay owed; the next run settles them).

Read-only is enforced, not just intended: the run's Zendesk client sends through a
transport that refuses any method but GET.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from privacykit import clock
from privacykit.audit.context import AuditContext, Budget, one_line
from privacykit.audit.findings import AuditResult, CheckError, Finding
from privacykit.audit.ledger_checks import check_deadlines, check_integrity
from privacykit.audit.options import (
    DEFAULT_DUE_WITHIN_DAYS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_SOFT_DELETE_GRACE_HOURS,
    DEFAULT_STUCK_AFTER_DAYS,
    AuditOptions,
)
from privacykit.audit.record import (
    AUDIT_EVIDENCE_SCHEMA,
    AUDIT_SUBJECT,
    CURSOR_STEP,
    evidence_record,
    finding_order,
    previous_cursor,
)
from privacykit.audit.review_checks import check_needs_review
from privacykit.audit.sweep import ZendeskSweep
from privacykit.config import ZendeskConfig, privacykit_home
from privacykit.errors import (
    ConfigError,
    LedgerIntegrityError,
    PrivacykitError,
    ZendeskError,
)
from privacykit.ledger import Ledger
from privacykit.ledger.store import DB_FILE
from privacykit.zendesk import Governor, ZendeskClient
from privacykit.zendesk.readonly import ReadOnlyTransport

if TYPE_CHECKING:
    from privacykit.ledger.checkpoint import Checkpoint
    from privacykit.playbooks.request import RequestSession

__all__ = [
    "AUDIT_EVIDENCE_SCHEMA",
    "DEFAULT_DUE_WITHIN_DAYS",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_SOFT_DELETE_GRACE_HOURS",
    "DEFAULT_STUCK_AFTER_DAYS",
    "AuditOptions",
    "ReadOnlyTransport",
    "run_audit",
]


def run_audit(
    options: AuditOptions | None = None,
    *,
    home: Path | str | None = None,
    config: ZendeskConfig | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    max_wait: float | None = None,
    request_deadline: float | None = None,
) -> AuditResult:
    """Run every check once and return what was found (see the module docstring).

    Raises a :class:`~privacykit.errors.PrivacykitError` when the audit cannot run at all
    (no Zendesk configuration, ledger missing keys or unreadable); checks that could not
    complete are reported in ``AuditResult.errors`` instead (exit code 2 either way).
    ``max_wait`` and ``request_deadline`` bound the client (``--max-wait``,
    ``--request-deadline``; None: its defaults): past either, the Zendesk part is
    incomplete, never a clean bill."""
    from privacykit.app import client_bounds

    options = options or AuditOptions()
    bounds = client_bounds(max_wait=max_wait, request_deadline=request_deadline)
    # Configuration first: a misconfigured cron job must fail before touching anything.
    config = config or ZendeskConfig.from_env(env)
    home_path = Path(home) if home is not None else privacykit_home(env, create=False)
    if not (home_path / DB_FILE).is_file():
        # Never start a fresh, empty ledger here: a cron job pointed at the wrong
        # PRIVACYKIT_HOME would otherwise report "all clear" every night.
        from privacykit.config import describe_home

        shown = describe_home(home_path, env) if home is None else str(home_path)
        raise ConfigError(f"no ledger at {shown}: set PRIVACYKIT_HOME to this installation's home")
    from privacykit.app import preflight

    readonly = ReadOnlyTransport(transport)
    # The shared governor keeps the run inside the account-wide budget and backs off
    # on 429 for every thread; max_requests bounds how much of the budget it uses.
    with ZendeskClient(config, governor=Governor(), transport=readonly, **bounds) as client:
        # Refused credentials are a configuration error (exit 2) before the audit opens
        # its request: nothing recorded, nothing signed. Zendesk unreachable is not: the
        # ledger checks still run and the Zendesk part is reported incomplete.
        start = client.stats.calls
        unreached: ZendeskError | None = None
        try:
            preflight(client)
        except ZendeskError as exc:
            # Kept, not sent again: a second try would double the time a slow or
            # unreachable Zendesk holds the run (one more request deadline).
            unreached = exc
        # An unmounted witness is reported as a finding (ledger.witness), not a crash.
        ledger = Ledger.open(home_path, require_witness=False)
        try:
            budget = Budget(client, options.max_requests)
            budget.start_at(start)  # the preflight is the run's reachability check
            now = options.now or clock.now()
            ctx = AuditContext(
                ledger,
                client,
                readonly,
                options,
                home_path,
                now,
                AuditResult(started_at=clock.iso(now)),
                budget,
            )
            return _AuditRun(ctx, unreached=unreached).run()
        finally:
            ledger.close()


class _AuditRun:
    def __init__(self, ctx: AuditContext, *, unreached: ZendeskError | None = None) -> None:
        self.ctx = ctx
        self.unreached = unreached  # why the preflight failed; None: Zendesk answered

    def run(self) -> AuditResult:
        from privacykit.playbooks.request import RequestSession

        ctx = self.ctx
        ledger, result = ctx.ledger, ctx.result
        result.home = str(ctx.home)
        integrity = check_integrity(ledger)
        result.findings.extend(integrity.findings)
        ctx.checked["ledger_entries"] = integrity.entries
        if integrity.ok:
            self._settle_owed()
        requests = ledger.list_requests()
        previous = previous_cursor(ledger, requests)

        # No playbook drives an audit: its request is named by its kind.
        session = RequestSession(
            ledger,
            "audit",
            None,
            subject_ref=ledger.subject_ref(AUDIT_SUBJECT),
            received_at=ctx.today,
            home=ctx.home,
        )
        result.audit_request_id = session.open()
        session.record(
            "audit:start",
            "info",
            {
                "options": ctx.options.to_dict(),
                "now": clock.iso(ctx.now),
                "ledger": {
                    "verified": integrity.ok,
                    "entries": integrity.entries,
                    "checkpoints": integrity.checkpoints,
                    "latest_checkpoint_size": integrity.latest_checkpoint_size,
                    "entries_after_latest_checkpoint": integrity.unchecked_tail,
                },
            },
        )

        erasures = [r for r in requests if r.kind == "erasure"]
        cursor = dict(previous)
        sweep = ZendeskSweep(ctx)
        try:
            if self.unreached is not None:
                raise self.unreached
            cursor = sweep.run(erasures, previous)
        except ZendeskError as exc:
            # Everything checked so far stands; the rest is unknown, so the run is
            # incomplete (exit 2) and the cursor only moves past what was checked.
            result.errors.append(CheckError("zendesk", one_line(exc)))
            cursor = sweep.partial or dict(previous)

        # Deadlines last, so a request this run saw complete (compliance confirmed) is
        # judged as it stands now.
        current = ledger.list_requests()
        deadline_findings, open_rows = check_deadlines(
            current,
            today=ctx.today,
            due_within_days=ctx.options.due_within_days,
        )
        result.findings.extend(deadline_findings)
        review_findings = check_needs_review(ledger, current, today=ctx.today)
        result.findings.extend(review_findings)
        ctx.checked["requests_in_review"] = len(review_findings)
        result.open_requests = open_rows
        ctx.checked["open_requests"] = len(open_rows)
        result.findings.sort(key=finding_order)
        result.cursor = cursor
        result.checked = dict(sorted(ctx.checked.items()))
        result.zendesk_requests = ctx.budget.used
        result.zendesk_methods = dict(sorted(ctx.transport.methods.items()))
        result.completed_at = clock.iso(clock.now() if ctx.options.now is None else ctx.now)
        self._finish(session, integrity.ok)
        return result

    def _settle_owed(self) -> None:
        """Reports an earlier run left owed (its final statuses written, its reports not
        signed: killed, or a report that failed), signed now like every run does first."""
        from privacykit.playbooks.request import settle_owed_reports

        ctx = self.ctx
        try:
            settled = settle_owed_reports(ctx.ledger, home=ctx.home)
        except (PrivacykitError, OSError) as exc:
            ctx.result.errors.append(CheckError("report", one_line(exc)))
            return
        if settled:
            ctx.checked["reports_settled"] = len(settled)

    def _finish(self, session: RequestSession, ledger_verified: bool) -> None:
        """Cursor, evidence, final status; then ONE checkpoint, every report of the run
        naming it (the erasures it completed first, then its own, which states its final
        status), then the closing checkpoint covering the reports' registrations -- two
        per run whatever it moved (#13). Never a signature over a ledger that failed
        verification: the reports then stay owed (intent and marker)."""
        ctx = self.ctx
        result = ctx.result
        assert session.request_id is not None
        session.record(CURSOR_STEP, "info", result.cursor)
        record = evidence_record(result, session.request_id, ctx.options)
        report = ctx.options.report and ledger_verified
        if ctx.options.report and not ledger_verified:
            # A signed report over a ledger that failed verification would lend it
            # credibility. The finding is the output.
            result.report_skipped_reason = "the ledger failed verification"
        status = "failed" if result.errors else "completed"
        # Raises when the record or the status cannot be written; the report is owed.
        session.finish(
            status,
            record,
            reason=_reason(result),
            produce_report=report,
            status_in_record=False,
            defer_report=True,
        )
        if not ledger_verified:
            # Signing now would put this installation's signature over a tree that failed
            # verification; the finding stands until someone restores the ledger.
            result.checkpoint_skipped_reason = "the ledger failed verification"
            return
        try:
            checkpoint = ctx.ledger.checkpoint()  # after every final status of the run
        except LedgerIntegrityError as exc:
            result.findings.append(
                Finding("ledger.integrity", f"could not sign a checkpoint: {one_line(exc)}")
            )
            result.checkpoint_skipped_reason = "the ledger changed under the audit"
            return
        self._sign_reports(session, checkpoint)
        result.checkpoint_size = ctx.ledger.checkpoint().size  # the closing one

    def _sign_reports(self, session: RequestSession, checkpoint: Checkpoint) -> None:
        """The erasures' reports, then the audit's own, all naming ``checkpoint``. A report
        not signed stays owed (the next run settles it) and the run failed: its status
        says so before its own report is signed, so that report states it."""
        from privacykit.playbooks.request import sign_deferred_reports

        ctx, result = self.ctx, self.ctx.result
        erasures = sorted(ctx.deferred, key=lambda s: s.request_id or "")
        signed = sign_deferred_reports(ctx.ledger, erasures, checkpoint)
        for erasure, outcome in zip(erasures, signed, strict=True):
            if isinstance(outcome, Exception):
                result.errors.append(CheckError("report", one_line(outcome), erasure.request_id))
        if result.errors and session.status != "failed":
            session.set_status("failed", _reason(result))
        if not session.report_deferred:
            return
        (own,) = sign_deferred_reports(ctx.ledger, [session], checkpoint)
        if isinstance(own, Exception):
            # Owed (the ledger's ``report`` intent; the next run settles it): failed.
            result.errors.append(CheckError("report", one_line(own)))
            session.set_status("failed", _reason(result))
        elif own is not None and own.report_path is not None:
            result.report_path = str(own.report_path)
            result.report_sha256 = own.report_sha256


def _reason(result: AuditResult) -> str:
    return f"{len(result.findings)} finding(s), {len(result.errors)} check(s) incomplete"
