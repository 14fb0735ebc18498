"""The audit's compliance checks on erasures still waiting for Zendesk's compliance deletion.

Owns :class:`ComplianceChecks`: a ``pending_compliance`` erasure is continued with the
erasure engine itself (as ``privacykit erase --resume`` would, through the audit's
read-only client; the report of an erasure it completes is left owed in
``AuditContext.deferred`` and signed at the end of the run, naming its one checkpoint),
any other erasure with pending users is polled directly and its progress recorded in the
engine's format; either way a user still pending
``stuck_after_days`` after the permanent deletion is an ``erasure.compliance_stuck``
finding.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from privacykit.audit.context import AuditContext, one_line
from privacykit.audit.erasures import ErasureView, compliance_step, load_erasure
from privacykit.audit.findings import CheckError, Finding
from privacykit.audit.zendesk_checks import poll_compliance
from privacykit.errors import PrivacykitError, ZendeskError

if TYPE_CHECKING:
    from privacykit.ledger import RequestRecord

__all__ = ["ComplianceChecks"]

_APP_NAME = re.compile(r"^[a-z0-9_/-]{1,40}$")


class ComplianceChecks:
    """Compliance polling and the stuck check for one run (see the module docstring)."""

    def __init__(self, ctx: AuditContext) -> None:
        self.ctx = ctx
        self._playbooks: dict[str, Any] = {}

    def check(self, view: ErasureView) -> None:
        """Poll (or continue) an erasure with users pending, then look for stuck ones."""
        if not view.compliance_pending():
            return
        if view.request.status == "pending_compliance" and self.resume_erasure(view):
            ledger = self.ctx.ledger
            view = load_erasure(ledger, ledger.get_request(view.request_id))
        else:
            self.poll_directly(view)
        self.stuck(view)

    def resume_erasure(self, view: ErasureView) -> bool:
        """Continue a ``pending_compliance`` erasure with the erasure engine itself, as
        ``privacykit erase --resume`` would: every destructive step is already done (the
        ledger says so, and this client could not send one anyway), so it polls the
        compliance statuses, records the progress and, once every application is
        complete, records the final evidence (and report) and completes the request.
        Returns False when the request's playbook cannot be loaded any more."""
        from privacykit.playbooks.erasure import ErasureRunner
        from privacykit.playbooks.loader import Playbook
        from privacykit.playbooks.request import recorded_playbook

        ctx = self.ctx
        # The playbook the request was opened with (its stored copy), never a file that
        # merely has the same name now.
        key = view.request.playbook_sha256 or ""
        playbook: Playbook | None = self._playbooks.get(key)
        if playbook is None:
            playbook = recorded_playbook(ctx.ledger, view.request, home=ctx.home)
            if playbook is None:
                ctx.checked["compliance_playbook_unavailable"] += 1
                return False
            self._playbooks[key] = playbook
        before = view.request.status
        job = None
        try:
            runner = ErasureRunner(ctx.client, ctx.ledger, playbook, home=ctx.home)
            # Its report is signed with the audit's own, after the audit's final status,
            # naming the run's one checkpoint (runner._finish); until then it is owed.
            runner.defer_reports = True
            job = runner.new_job(0, None, ctx.ledger.get_request(view.request_id))
            runner.run_job(job)
        except ZendeskError:
            raise
        except PrivacykitError as exc:
            ctx.result.errors.append(
                CheckError("erasure.compliance_stuck", one_line(exc), view.request_id)
            )
            return True
        finally:
            session = job.session if job is not None else None
            if session is not None and session.report_deferred:
                with ctx.lock:
                    ctx.deferred.append(session)
        ctx.checked["compliance_polled"] += len(view.compliance_pending())
        after = ctx.ledger.get_request(view.request_id).status
        ctx.result.compliance_progress.append(
            {"request_id": view.request_id, "status_before": before, "status_after": after}
        )
        if after == "completed":
            ctx.checked["erasures_completed_by_audit"] += 1
        return True

    def poll_directly(self, view: ErasureView) -> None:
        """Poll the pending users of an erasure the engine does not continue on its own
        (e.g. needing review for another reason) and record progress in the engine's
        format, only when it changed, like the engine does."""
        ctx = self.ctx
        changed = 0
        for user in view.compliance_pending():
            previous = view.compliance.get(user.user_id, {})
            expected = list((previous.get("applications") or {}).keys())
            state = poll_compliance(ctx.client, user.user_id, expected)
            ctx.checked["compliance_polled"] += 1
            if state is None:
                continue
            if state["applications"] != previous.get("applications") or state[
                "complete"
            ] != previous.get("complete"):
                ctx.ledger.record(
                    view.request_id,
                    compliance_step(user.user_id),
                    "info",
                    {**state, "recorded_by": "audit"},
                )
                view.compliance[user.user_id] = state
                changed += 1
        ctx.result.compliance_progress.append(
            {
                "request_id": view.request_id,
                "status_before": view.request.status,
                "status_after": view.request.status,
                "users_changed": changed,
            }
        )

    def stuck(self, view: ErasureView) -> None:
        """erasure.compliance_stuck for users still pending ``stuck_after_days`` after
        their permanent deletion."""
        ctx = self.ctx
        limit = timedelta(days=ctx.options.stuck_after_days)
        for user in view.compliance_pending():
            since = user.permanently_deleted_at or view.completed_at or _parse_created(view.request)
            if since is None or ctx.now - since < limit:
                continue
            apps = view.compliance.get(user.user_id, {}).get("applications") or {}
            pending = sorted(
                str(a)
                for a, s in apps.items()
                if isinstance(s, dict) and s.get("status") != "complete"
            )
            days = (ctx.now - since).days
            what = ", ".join(_safe_app(a) for a in pending) or "no application reported yet"
            ctx.result.findings.append(
                Finding(
                    "erasure.compliance_stuck",
                    f"user {user.user_id}: compliance deletion not complete {days} day(s) "
                    f"after permanent deletion (pending: {what}; limit "
                    f"{ctx.options.stuck_after_days} day(s))",
                    view.request_id,
                    {"user_id": user.user_id, "pending_applications": pending, "days": days},
                )
            )


def _safe_app(name: str) -> str:
    return name if _APP_NAME.match(name) else "(unprintable)"


def _parse_created(request: RequestRecord) -> datetime | None:
    try:
        return datetime.fromisoformat(request.created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
