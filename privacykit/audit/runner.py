"""One audit run: the checks in order, within a budget, recorded in the ledger.

Owns :func:`run_audit` and :class:`AuditOptions`. A run

1. verifies the whole ledger first (before appending anything to it);
2. opens its own ledger request (kind ``audit``) so the run is on record even if it dies;
3. asks Zendesk, read-only and at most ``max_requests`` requests:
   a. every erasure that is not completed (lingering soft deletions, deletions that must
      hold, compliance deletion progress, which it records and which completes a
      ``pending_compliance`` request once every application reports ``complete``);
   b. completed erasures in rotation (never re-checked ones first, then round-robin
      from where the last run stopped), so a ledger of 100,000 erasures is covered over
      a number of nights instead of in one run;
4. checks every open request's Art. 12(3) deadline (as it stands after step 3);
5. records findings, the rotation cursor and the audit evidence record, optionally
   renders the signed audit PDF, and signs a checkpoint (never over a ledger that
   failed verification).

Read-only is enforced, not just intended: the run's Zendesk client sends through a
transport that refuses any method but GET.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from privacykit import __version__, clock
from privacykit.audit.erasures import (
    ErasureView,
    OrderKey,
    as_key,
    compliance_step,
    load_erasure,
    order_key,
    plan_rotation,
    rotate,
)
from privacykit.audit.findings import CHECKS, AuditResult, CheckError, Finding
from privacykit.audit.ledger_checks import check_deadlines, check_integrity
from privacykit.audit.options import (
    DEFAULT_DUE_WITHIN_DAYS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_SOFT_DELETE_GRACE_HOURS,
    DEFAULT_STUCK_AFTER_DAYS,
    AuditOptions,
)
from privacykit.audit.review_checks import check_needs_review
from privacykit.audit.zendesk_checks import (
    DeletedTickets,
    check_gone,
    check_lingering,
    poll_compliance,
)
from privacykit.config import ZendeskConfig, privacykit_home
from privacykit.errors import (
    ConfigError,
    LedgerError,
    LedgerIntegrityError,
    PrivacykitError,
    ZendeskError,
)
from privacykit.ledger import Ledger, RequestRecord
from privacykit.ledger.store import DB_FILE
from privacykit.zendesk import Governor, ZendeskClient
from privacykit.zendesk.readonly import ReadOnlyTransport

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

AUDIT_EVIDENCE_SCHEMA = "privacykit.audit-evidence/1"
#: The keyed reference an audit request is "about": the installation itself.
AUDIT_SUBJECT = "privacykit:audit"
CURSOR_STEP = "audit:cursor"
_APP_NAME = re.compile(r"^[a-z0-9_/-]{1,40}$")
# Findings recorded in the ledger per run (the JSON output has all of them): keeps one
# entry far below the ledger's 1 MiB limit even when thousands of requests are overdue.
MAX_RECORDED_FINDINGS = 2_000


def run_audit(
    options: AuditOptions | None = None,
    *,
    home: Path | str | None = None,
    config: ZendeskConfig | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> AuditResult:
    """Run every check once and return what was found (see the module docstring).

    Raises a :class:`~privacykit.errors.PrivacykitError` when the audit cannot run at all
    (no Zendesk configuration, ledger missing keys or unreadable); checks that could not
    complete are reported in ``AuditResult.errors`` instead (exit code 2 either way)."""
    options = options or AuditOptions()
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
    with ZendeskClient(config, governor=Governor(), transport=readonly) as client:
        # Refused credentials are a configuration error (exit 2) before the audit opens
        # its request: nothing recorded, nothing signed. Zendesk unreachable is not: the
        # ledger checks still run and the Zendesk part is reported incomplete.
        start = client.stats.calls
        try:
            preflight(client)
            reached = True
        except ZendeskError:
            reached = False
        # An unmounted witness is reported as a finding (ledger.witness), not a crash.
        ledger = Ledger.open(home_path, require_witness=False)
        try:
            run = _AuditRun(ledger, client, readonly, options, home_path, reached=reached)
            run.budget.start_at(start)  # the preflight is the run's reachability check
            return run.run()
        finally:
            ledger.close()


class _Budget:
    """Zendesk requests left for this run, counted from the client's own statistics."""

    def __init__(self, client: ZendeskClient, limit: int) -> None:
        self._client = client
        self._start = client.stats.calls
        self.limit = limit

    def start_at(self, calls: int) -> None:
        self._start = calls

    @property
    def used(self) -> int:
        return self._client.stats.calls - self._start

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def fits(self, cost: int, *, first: bool) -> bool:
        # The first item of a phase is always taken, so an erasure bigger than the whole
        # budget cannot block the rotation for ever (the overrun is at most that item).
        return cost <= self.remaining or (first and self.remaining > 0)


class _AuditRun:
    def __init__(
        self,
        ledger: Ledger,
        client: ZendeskClient,
        transport: ReadOnlyTransport,
        options: AuditOptions,
        home: Path,
        *,
        reached: bool = False,
    ) -> None:
        self.reached = reached
        self.ledger = ledger
        self.client = client
        self.transport = transport
        self.options = options
        self.home = home
        self.now = options.now or clock.now()
        self.today = self.now.astimezone().date()
        self.result = AuditResult(started_at=_iso(self.now))
        self.checked: Counter[str] = Counter()
        self.budget = _Budget(client, options.max_requests)
        self.audit_rid: str | None = None
        self._playbooks: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Soft-deleted tickets, listed at most once per run (#15: purged ones re-checked).
        self._deleted_tickets = DeletedTickets(client)

    # ------------------------------------------------------------------ the run

    def run(self) -> AuditResult:
        result = self.result
        result.home = str(self.home)
        integrity = check_integrity(self.ledger)
        result.findings.extend(integrity.findings)
        self.checked["ledger_entries"] = integrity.entries
        requests = self.ledger.list_requests()
        previous_cursor = self._previous_cursor(requests)

        self.audit_rid = self.ledger.create_request(
            "audit",
            self.ledger.subject_ref(AUDIT_SUBJECT),
            received_at=self.today,
            playbook_name="audit",
            status="in_progress",
        )
        result.audit_request_id = self.audit_rid
        self.ledger.record(
            self.audit_rid,
            "audit:start",
            "info",
            {
                "options": self.options.to_dict(),
                "now": _iso(self.now),
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
        cursor = dict(previous_cursor)
        try:
            if not self.reached:
                self.client.request("GET", "/api/v2/users/me")
            cursor = self._zendesk_checks(erasures, previous_cursor)
        except ZendeskError as exc:
            # Everything checked so far stands; the rest is unknown, so the run is
            # incomplete (exit 2) and the cursor only moves past what was checked.
            result.errors.append(CheckError("zendesk", _one_line(exc)))
            cursor = self._partial_cursor or dict(previous_cursor)

        # Deadlines last, so a request this run saw complete (compliance confirmed) is
        # judged as it stands now.
        current = self.ledger.list_requests()
        deadline_findings, open_rows = check_deadlines(
            current,
            today=self.today,
            due_within_days=self.options.due_within_days,
        )
        result.findings.extend(deadline_findings)
        review_findings = check_needs_review(self.ledger, current, today=self.today)
        result.findings.extend(review_findings)
        self.checked["requests_in_review"] = len(review_findings)
        result.open_requests = open_rows
        self.checked["open_requests"] = len(open_rows)
        result.findings.sort(key=_finding_order)
        result.cursor = cursor
        result.checked = dict(sorted(self.checked.items()))
        result.zendesk_requests = self.budget.used
        result.zendesk_methods = dict(sorted(self.transport.methods.items()))
        result.completed_at = clock.iso(clock.now() if self.options.now is None else self.now)
        self._record_end(integrity.ok)
        return result

    # ------------------------------------------------------------------ Zendesk phase

    _partial_cursor: dict[str, Any] | None = None

    def _zendesk_checks(
        self, erasures: list[RequestRecord], previous: Mapping[str, Any]
    ) -> dict[str, Any]:
        cursor: dict[str, Any] = {
            "active_after": previous.get("active_after"),
            "high_water": previous.get("high_water"),
            "rotation_after": previous.get("rotation_after"),
        }
        self._partial_cursor = dict(cursor)

        # a. Erasures still under way (or stopped short): every run, round-robin if the
        # budget cannot cover them all.
        active = [r for r in erasures if r.status != "completed"]
        order = rotate(active, order_key, after=as_key(cursor["active_after"]))
        done = self._take(order, self._check_active, "active_erasures")
        if len(done) == len(order):
            cursor["active_after"] = None  # all seen: start from the top next run
        elif done:
            cursor["active_after"] = list(order_key(done[-1]))
        self.checked["active_erasures_deferred"] = len(order) - len(done)
        self._partial_cursor = dict(cursor)

        # b. Completed erasures in rotation: never re-checked ones first.
        completed = [r for r in erasures if r.status == "completed"]
        high_water = as_key(cursor["high_water"])
        fresh, rotation = plan_rotation(
            completed,
            order_key,
            high_water=high_water,
            rotation_after=as_key(cursor["rotation_after"]),
        )
        workers = self.options.workers
        taken_fresh = self._take(
            fresh, self._check_completed, "completed_erasures", workers=workers
        )
        if taken_fresh:
            cursor["high_water"] = list(order_key(taken_fresh[-1]))
            self._partial_cursor = dict(cursor)
        if len(taken_fresh) == len(fresh):
            taken_old = self._take(
                rotation,
                self._check_completed,
                "completed_erasures",
                first=not taken_fresh,
                workers=workers,
            )
            if taken_old:
                cursor["rotation_after"] = list(order_key(taken_old[-1]))
            deferred = len(rotation) - len(taken_old)
        else:
            deferred = len(fresh) - len(taken_fresh) + len(rotation)
        self.checked["completed_erasures_total"] = len(completed)
        self.checked["completed_erasures_deferred"] = deferred
        return cursor

    def _take(
        self,
        requests: list[RequestRecord],
        check: Callable[[ErasureView], None],
        counter: str,
        *,
        first: bool = True,
        workers: int = 1,
    ) -> list[RequestRecord]:
        """Check requests in order while the budget lasts; returns those checked.

        Requests go in batches whose estimated cost fits what is left of the budget, each
        batch checked by ``workers`` threads (Zendesk's latency, not its budget, would
        otherwise bound a single thread; the shared governor keeps all of them inside
        the account budget). Each finished request moves the cursor at once, so a Zendesk
        failure later in the run does not lose what was checked; a failure stops the
        phase after the batch in flight."""
        taken: list[RequestRecord] = []
        index, out_of_budget = 0, False
        batch_size = max(1, workers) * 4
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="audit") as pool:
            while index < len(requests) and not out_of_budget:
                batch: list[ErasureView] = []
                reserved = 0
                while index < len(requests) and len(batch) < batch_size:
                    view = load_erasure(self.ledger, requests[index])
                    cost = self._cost(view)
                    if cost and not self.budget.fits(
                        reserved + cost, first=first and not taken and not batch
                    ):
                        out_of_budget = True
                        break
                    batch.append(view)
                    reserved += cost
                    index += 1
                if not batch:
                    break
                if workers > 1:
                    futures = [pool.submit(_capture, check, view) for view in batch]
                    errors = [future.result() for future in futures]
                else:
                    errors = [_capture(check, view) for view in batch]
                for view, error in zip(batch, errors, strict=True):
                    if error is not None:
                        raise error
                    taken.append(view.request)
                    self.checked[counter] += 1
                    self._progress(counter, view.request)
        return taken

    def _progress(self, counter: str, request: RequestRecord) -> None:
        """Move the partial cursor past ``request`` (used if Zendesk fails mid-run)."""
        cursor = self._partial_cursor
        if cursor is None:
            return
        if counter == "active_erasures":
            cursor["active_after"] = list(order_key(request))
        elif request_key_above(order_key(request), as_key(cursor.get("high_water"))):
            cursor["high_water"] = list(order_key(request))
        else:
            cursor["rotation_after"] = list(order_key(request))

    def _cost(self, view: ErasureView) -> int:
        cost = view.gone_cost()
        if view.request.status != "completed":
            cost += len(view.compliance_pending())
        return cost

    def _check_completed(self, view: ErasureView) -> None:
        self._gone_and_lingering(view)

    def _check_active(self, view: ErasureView) -> None:
        self._gone_and_lingering(view)
        if not view.compliance_pending():
            return
        if view.request.status == "pending_compliance" and self._resume_erasure(view):
            view = load_erasure(self.ledger, self.ledger.get_request(view.request_id))
        else:
            self._poll_directly(view)
        self._stuck(view)

    def _gone_and_lingering(self, view: ErasureView) -> None:
        # Runs in worker threads: Zendesk calls outside the lock, bookkeeping inside.
        findings = check_gone(self.client, view, deleted_tickets=self._deleted_tickets)
        grace = timedelta(hours=self.options.soft_delete_grace_hours)
        lingering = check_lingering(self.client, view, now=self.now, grace=grace)
        with self._lock:
            self.checked["users_rechecked"] += len(view.permanently_deleted)
            self.checked["profiles_rechecked"] += len(view.deleted_profiles)
            if view.purged_tickets or view.redacted_comments:
                self.checked["tickets_rechecked"] += len(view.purged_tickets)
                self.checked["comments_rechecked"] += len(view.redacted_comments)
            self.checked["soft_deleted_users_checked"] += lingering.checked
            if lingering.within_grace:
                self.checked["soft_deleted_users_within_grace"] += lingering.within_grace
            self.result.findings.extend(findings)
            self.result.findings.extend(lingering.findings)

    # ------------------------------------------------------------------ compliance

    def _resume_erasure(self, view: ErasureView) -> bool:
        """Continue a ``pending_compliance`` erasure with the erasure engine itself, as
        ``privacykit erase --resume`` would: every destructive step is already done (the
        ledger says so, and this client could not send one anyway), so it polls the
        compliance statuses, records the progress and, once every application is
        complete, records the final evidence (and report) and completes the request.
        Returns False when the request's playbook cannot be loaded any more."""
        from privacykit.playbooks.erasure import ErasureRunner
        from privacykit.playbooks.loader import Playbook
        from privacykit.playbooks.request import recorded_playbook

        # The playbook the request was opened with (its stored copy), never a file that
        # merely has the same name now.
        key = view.request.playbook_sha256 or ""
        playbook: Playbook | None = self._playbooks.get(key)
        if playbook is None:
            playbook = recorded_playbook(self.ledger, view.request, home=self.home)
            if playbook is None:
                self.checked["compliance_playbook_unavailable"] += 1
                return False
            self._playbooks[key] = playbook
        before = view.request.status
        try:
            runner = ErasureRunner(self.client, self.ledger, playbook, home=self.home)
            job = runner.new_job(0, None, self.ledger.get_request(view.request_id))
            runner.run_job(job)
        except ZendeskError:
            raise
        except PrivacykitError as exc:
            self.result.errors.append(
                CheckError("erasure.compliance_stuck", _one_line(exc), view.request_id)
            )
            return True
        self.checked["compliance_polled"] += len(view.compliance_pending())
        after = self.ledger.get_request(view.request_id).status
        self.result.compliance_progress.append(
            {"request_id": view.request_id, "status_before": before, "status_after": after}
        )
        if after == "completed":
            self.checked["erasures_completed_by_audit"] += 1
        return True

    def _poll_directly(self, view: ErasureView) -> None:
        """Poll the pending users of an erasure the engine does not continue on its own
        (e.g. needing review for another reason) and record progress in the engine's
        format, only when it changed, like the engine does."""
        changed = 0
        for user in view.compliance_pending():
            previous = view.compliance.get(user.user_id, {})
            expected = list((previous.get("applications") or {}).keys())
            state = poll_compliance(self.client, user.user_id, expected)
            self.checked["compliance_polled"] += 1
            if state is None:
                continue
            if state["applications"] != previous.get("applications") or state[
                "complete"
            ] != previous.get("complete"):
                self.ledger.record(
                    view.request_id,
                    compliance_step(user.user_id),
                    "info",
                    {**state, "recorded_by": "audit"},
                )
                view.compliance[user.user_id] = state
                changed += 1
        self.result.compliance_progress.append(
            {
                "request_id": view.request_id,
                "status_before": view.request.status,
                "status_after": view.request.status,
                "users_changed": changed,
            }
        )

    def _stuck(self, view: ErasureView) -> None:
        """erasure.compliance_stuck for users still pending ``stuck_after_days`` after
        their permanent deletion."""
        limit = timedelta(days=self.options.stuck_after_days)
        for user in view.compliance_pending():
            since = user.permanently_deleted_at or view.completed_at or _parse_created(view.request)
            if since is None or self.now - since < limit:
                continue
            apps = view.compliance.get(user.user_id, {}).get("applications") or {}
            pending = sorted(
                str(a)
                for a, s in apps.items()
                if isinstance(s, dict) and s.get("status") != "complete"
            )
            days = (self.now - since).days
            what = ", ".join(_safe_app(a) for a in pending) or "no application reported yet"
            self.result.findings.append(
                Finding(
                    "erasure.compliance_stuck",
                    f"user {user.user_id}: compliance deletion not complete {days} day(s) "
                    f"after permanent deletion (pending: {what}; limit "
                    f"{self.options.stuck_after_days} day(s))",
                    view.request_id,
                    {"user_id": user.user_id, "pending_applications": pending, "days": days},
                )
            )

    # ------------------------------------------------------------------ recording

    def _previous_cursor(self, requests: list[RequestRecord]) -> dict[str, Any]:
        """The cursor of the most recent audit run that recorded one."""
        audits = sorted((r for r in requests if r.kind == "audit"), key=order_key, reverse=True)
        for audit in audits[:20]:
            for entry in reversed(self.ledger.entries(audit.request_id)):
                if entry.step_key == CURSOR_STEP and entry.phase == "info":
                    return dict(entry.data)
        return {}

    def _evidence_record(self) -> dict[str, Any]:
        result = self.result
        counts = Counter(f.check for f in result.findings)
        recorded = result.findings[:MAX_RECORDED_FINDINGS]
        return {
            "schema": AUDIT_EVIDENCE_SCHEMA,
            "request_id": self.audit_rid,
            "status": {0: "clear", 1: "findings", 2: "incomplete"}[result.exit_code],
            "summary": {
                "findings": len(result.findings),
                "could_not_complete": len(result.errors),
                "open_requests": len(result.open_requests),
                "overdue_requests": counts["deadline.overdue"],
                "zendesk_requests": result.zendesk_requests,
                **{f"checked_{k}": v for k, v in result.checked.items()},
            },
            "checks": [
                {
                    "check": info.id,
                    "severity": str(info.severity),
                    "title": info.title,
                    "findings": counts[info.id],
                }
                for info in CHECKS.values()
            ],
            "findings": [
                {
                    "check": f.check,
                    "severity": str(f.severity),
                    "request_id": f.request_id,
                    "message": f.message,
                }
                for f in recorded
            ],
            "findings_not_recorded": len(result.findings) - len(recorded),
            "errors": [e.to_dict() for e in result.errors],
            "open_requests": result.open_requests[:MAX_RECORDED_FINDINGS],
            "cursor": result.cursor,
            "options": self.options.to_dict(),
            "zendesk": {
                "requests": result.zendesk_requests,
                "methods": result.zendesk_methods,
                "read_only": True,
            },
            "tool_version": __version__,
            "started_at": result.started_at,
            "completed_at": result.completed_at,
        }

    def _record_end(self, ledger_verified: bool) -> None:
        result, rid = self.result, self.audit_rid
        assert rid is not None
        self.ledger.record(rid, CURSOR_STEP, "info", result.cursor)
        record = self._evidence_record()
        self.ledger.record(rid, "evidence", "info", record)
        # The final status first: the report states the status the ledger shows when it is
        # signed (#12), never "in_progress".
        self._set_status()
        if self.options.report and not ledger_verified:
            # produce_report signs a checkpoint first; a signed report over a ledger that
            # failed verification would lend it credibility. The finding is the output.
            result.report_skipped_reason = "the ledger failed verification"
        elif self.options.report:
            errors = len(result.errors)
            self._report(record)
            if len(result.errors) > errors:
                self._set_status()  # the report could not be produced: the run failed
        if not ledger_verified:
            # Signing now would put this installation's signature over a tree that failed
            # verification; the finding stands until someone restores the ledger.
            result.checkpoint_skipped_reason = "the ledger failed verification"
            return
        try:
            checkpoint = self.ledger.checkpoint()
        except LedgerIntegrityError as exc:
            result.findings.append(
                Finding("ledger.integrity", f"could not sign a checkpoint: {_one_line(exc)}")
            )
            result.checkpoint_skipped_reason = "the ledger changed under the audit"
            return
        result.checkpoint_size = checkpoint.size

    def _set_status(self) -> None:
        result = self.result
        assert self.audit_rid is not None
        self.ledger.set_status(
            self.audit_rid,
            "failed" if result.errors else "completed",
            reason=f"{len(result.findings)} finding(s), {len(result.errors)} check(s) incomplete",
        )

    def _report(self, record: dict[str, Any]) -> None:
        from privacykit.evidence import produce_report

        assert self.audit_rid is not None
        try:
            produced = produce_report(self.ledger, self.audit_rid, "audit", record, home=self.home)
        except (LedgerError, PrivacykitError) as exc:
            self.result.errors.append(CheckError("report", _one_line(exc)))
            return
        path, sha = _path_and_sha(produced)
        self.result.report_path = str(path) if path is not None else None
        self.result.report_sha256 = sha


def _path_and_sha(produced: Any) -> tuple[Path | None, str | None]:
    """``produce_report`` returns the PDF's path and sha256 (a tuple or an object)."""
    if isinstance(produced, tuple) and len(produced) == 2:
        return Path(produced[0]), str(produced[1])
    path = getattr(produced, "path", None)
    sha = getattr(produced, "sha256", None)
    return (Path(path) if path is not None else None), (str(sha) if sha else None)


def _finding_order(finding: Finding) -> tuple[int, str, str, str]:
    rank = {"critical": 0, "high": 1, "warning": 2}.get(str(finding.severity), 9)
    return (rank, finding.check, finding.request_id or "", finding.message)


def _capture(check: Callable[[ErasureView], None], view: ErasureView) -> ZendeskError | None:
    """Run one check; a Zendesk failure is returned (to stop the phase in order), anything
    else propagates."""
    try:
        check(view)
    except ZendeskError as exc:
        return exc
    return None


def _safe_app(name: str) -> str:
    return name if _APP_NAME.match(name) else "(unprintable)"


def _parse_created(request: RequestRecord) -> datetime | None:
    try:
        return datetime.fromisoformat(request.created_at.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return clock.iso(moment)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def request_key_above(key: OrderKey, high_water: OrderKey | None) -> bool:
    return high_water is None or key > high_water
