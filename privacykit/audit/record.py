"""What an audit run writes about itself: its evidence record and its rotation cursor.

Owns the audit's record schema (:data:`AUDIT_EVIDENCE_SCHEMA`, built by
:func:`evidence_record`), the keyed subject an audit request is about, the cursor's step
key and :func:`previous_cursor` (where the last run that recorded one stopped).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from privacykit import __version__
from privacykit.audit.erasures import order_key
from privacykit.audit.findings import CHECKS, AuditResult, Finding
from privacykit.audit.options import AuditOptions
from privacykit.ledger import Ledger, RequestRecord

__all__ = [
    "AUDIT_EVIDENCE_SCHEMA",
    "AUDIT_SUBJECT",
    "CURSOR_STEP",
    "MAX_RECORDED_FINDINGS",
    "evidence_record",
    "finding_order",
    "previous_cursor",
]

AUDIT_EVIDENCE_SCHEMA = "privacykit.audit-evidence/1"
#: The keyed reference an audit request is "about": the installation itself.
AUDIT_SUBJECT = "privacykit:audit"
CURSOR_STEP = "audit:cursor"
# Findings recorded in the ledger per run (the JSON output has all of them): keeps one
# entry far below the ledger's 1 MiB limit even when thousands of requests are overdue.
MAX_RECORDED_FINDINGS = 2_000


def previous_cursor(ledger: Ledger, requests: list[RequestRecord]) -> dict[str, Any]:
    """The cursor of the most recent audit run that recorded one."""
    audits = sorted((r for r in requests if r.kind == "audit"), key=order_key, reverse=True)
    for audit in audits[:20]:
        for entry in reversed(ledger.entries(audit.request_id)):
            if entry.step_key == CURSOR_STEP and entry.phase == "info":
                return dict(entry.data)
    return {}


def evidence_record(result: AuditResult, request_id: str, options: AuditOptions) -> dict[str, Any]:
    """The run's evidence record. Its ``status`` is the audit's result (clear, findings,
    incomplete), not its request's status (see ARCHITECTURE "Evidence records")."""
    counts = Counter(f.check for f in result.findings)
    recorded = result.findings[:MAX_RECORDED_FINDINGS]
    return {
        "schema": AUDIT_EVIDENCE_SCHEMA,
        "request_id": request_id,
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
        "options": options.to_dict(),
        "zendesk": {
            "requests": result.zendesk_requests,
            "methods": result.zendesk_methods,
            "read_only": True,
        },
        "tool_version": __version__,
        "started_at": result.started_at,
        "completed_at": result.completed_at,
    }


def finding_order(finding: Finding) -> tuple[int, str, str, str]:
    rank = {"critical": 0, "high": 1, "warning": 2}.get(str(finding.severity), 9)
    return (rank, finding.check, finding.request_id or "", finding.message)
