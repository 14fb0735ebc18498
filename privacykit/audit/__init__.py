"""Audit checks: "are we compliant right now?", safe to run unattended every night.

:func:`run_audit` runs every check once (read-only against Zendesk, within a request
budget), records the run in the ledger and returns an :class:`AuditResult` whose
``exit_code`` is 0 all clear, 1 findings, 2 could not run. :data:`CHECKS` lists the
stable check ids with their severities and meanings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.audit.findings import (
        CHECKS,
        AuditResult,
        CheckError,
        CheckInfo,
        Finding,
        Severity,
    )
    from privacykit.audit.options import (
        DEFAULT_DUE_WITHIN_DAYS,
        DEFAULT_MAX_REQUESTS,
        DEFAULT_SOFT_DELETE_GRACE_HOURS,
        DEFAULT_STUCK_AFTER_DAYS,
        AuditOptions,
    )
    from privacykit.audit.runner import (
        AUDIT_EVIDENCE_SCHEMA,
        ReadOnlyTransport,
        run_audit,
    )

__all__ = [
    "AUDIT_EVIDENCE_SCHEMA",
    "CHECKS",
    "DEFAULT_DUE_WITHIN_DAYS",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_SOFT_DELETE_GRACE_HOURS",
    "DEFAULT_STUCK_AFTER_DAYS",
    "AuditOptions",
    "AuditResult",
    "CheckError",
    "CheckInfo",
    "Finding",
    "ReadOnlyTransport",
    "Severity",
    "run_audit",
]

# Imported on first use (see privacykit._lazy): importing this package stays cheap.
_EXPORTS = {
    "privacykit.audit.findings": (
        "CHECKS",
        "AuditResult",
        "CheckError",
        "CheckInfo",
        "Finding",
        "Severity",
    ),
    "privacykit.audit.options": (
        "DEFAULT_DUE_WITHIN_DAYS",
        "DEFAULT_MAX_REQUESTS",
        "DEFAULT_SOFT_DELETE_GRACE_HOURS",
        "DEFAULT_STUCK_AFTER_DAYS",
        "AuditOptions",
    ),
    "privacykit.audit.runner": (
        "AUDIT_EVIDENCE_SCHEMA",
        "ReadOnlyTransport",
        "run_audit",
    ),
}
lazy_exports(__name__, _EXPORTS)
