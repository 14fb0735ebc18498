"""What an audit run produces: the catalogue of checks, findings, and the run's result.

Owns the stable check ids (monitoring and the README rely on them never changing),
their severities, the :class:`Finding` and :class:`CheckError` records and the
:class:`AuditResult` with its exit code (0 all clear, 1 findings, 2 could not run).

A finding's ``message`` is one line built only from ledger request ids, Zendesk
user/profile ids, counts, dates and statuses: never an identifier a subject asked
us to erase (the ledger does not even hold those).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CHECKS",
    "AuditResult",
    "CheckError",
    "CheckInfo",
    "Finding",
    "Severity",
]


class Severity(StrEnum):
    """How urgent a finding is. Every finding, whatever its severity, makes the exit code 1."""

    CRITICAL = "critical"  # the evidence or an erasure cannot be trusted
    HIGH = "high"  # a legal obligation is, or is about to be, missed
    WARNING = "warning"  # needs attention soon


@dataclass(frozen=True)
class CheckInfo:
    """One check: its stable id, the severity of its findings and what it means."""

    id: str
    severity: Severity
    title: str
    meaning: str


CHECKS: dict[str, CheckInfo] = {
    info.id: info
    for info in (
        CheckInfo(
            "erasure.gone",
            Severity.CRITICAL,
            "Erased people are really gone",
            "A recorded Zendesk user of a completed erasure is not permanently deleted "
            "(active again, or only soft-deleted), or a profile id the erasure deleted "
            "resolves again.",
        ),
        CheckInfo(
            "erasure.compliance_stuck",
            Severity.HIGH,
            "Deletion not stuck",
            "Zendesk's compliance deletion status of an erased user has not reached "
            "'complete' for every application within --stuck-after days.",
        ),
        CheckInfo(
            "erasure.lingering_soft_delete",
            Severity.HIGH,
            "Lingering soft deletions",
            "A user privacykit soft-deleted is still only soft-deleted (its personal data "
            "is still in Zendesk) after the grace period.",
        ),
        CheckInfo(
            "deadline.overdue",
            Severity.HIGH,
            "Overdue requests",
            "An open request is past its Art. 12(3) deadline (one month from receipt, "
            "plus any recorded extension).",
        ),
        CheckInfo(
            "deadline.due_soon",
            Severity.WARNING,
            "Requests due soon",
            "An open request is due within --due-within days.",
        ),
        CheckInfo(
            "request.needs_review",
            Severity.HIGH,
            "Requests waiting for review",
            "A request stopped for a person to review it (its recorded reason says why); "
            "it cannot finish until someone acts, so it is reported from the first day.",
        ),
        CheckInfo(
            "ledger.witness",
            Severity.HIGH,
            "Ledger witness",
            "No witness directory is configured (PRIVACYKIT_WITNESS_DIR), it is not mounted, "
            "or it lacks the ledger's latest checkpoints: a ledger rewritten or rolled back "
            "and re-signed with the key in PRIVACYKIT_HOME would not be detected.",
        ),
        CheckInfo(
            "ledger.integrity",
            Severity.CRITICAL,
            "Ledger integrity",
            "The full ledger verification failed, or the latest checkpoint is missing or "
            "not signed by this installation's key.",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    """One problem found. ``message`` is one line with ids, counts and dates only."""

    check: str
    message: str
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"unknown check id {self.check!r}")
        if "\n" in self.message:
            raise ValueError("a finding's message is one line")

    @property
    def severity(self) -> Severity:
        return CHECKS[self.check].severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": str(self.severity),
            "request_id": self.request_id,
            "message": self.message,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class CheckError:
    """A check that could not complete (e.g. Zendesk unreachable): the run is incomplete."""

    check: str
    reason: str
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "request_id": self.request_id, "reason": self.reason}


@dataclass
class AuditResult:
    """Everything one audit run found, checked and recorded."""

    started_at: str
    completed_at: str = ""
    findings: list[Finding] = field(default_factory=list)
    errors: list[CheckError] = field(default_factory=list)
    # What was looked at, so an empty findings list can be told from "nothing checked".
    checked: dict[str, int] = field(default_factory=dict)
    # Open requests with their days to deadline (the report's chart; the table's summary).
    open_requests: list[dict[str, Any]] = field(default_factory=list)
    # Compliance polling progress recorded in this run.
    compliance_progress: list[dict[str, Any]] = field(default_factory=list)
    # The incremental re-check position after this run (also recorded in the ledger).
    cursor: dict[str, Any] = field(default_factory=dict)
    audit_request_id: str | None = None
    #: The home whose ledger was checked (named in the output, like `ledger verify`).
    home: str = ""
    checkpoint_size: int | None = None
    checkpoint_skipped_reason: str | None = None
    report_path: str | None = None
    report_sha256: str | None = None
    report_skipped_reason: str | None = None
    zendesk_requests: int = 0
    zendesk_methods: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """2 when a check could not complete (the answer is incomplete, so "all clear"
        cannot be claimed), else 1 when anything was found, else 0."""
        if self.errors:
            return 2
        return 1 if self.findings else 0

    def to_document(self) -> dict[str, Any]:
        """The one machine-readable document ``--json`` prints."""
        return {
            "schema": "privacykit.audit-result/1",
            "exit_code": self.exit_code,
            "status": {0: "clear", 1: "findings", 2: "incomplete"}[self.exit_code],
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "findings": [f.to_dict() for f in self.findings],
            "errors": [e.to_dict() for e in self.errors],
            "checked": dict(self.checked),
            "open_requests": list(self.open_requests),
            "compliance_progress": list(self.compliance_progress),
            "cursor": dict(self.cursor),
            "audit_request_id": self.audit_request_id,
            "home": self.home,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_skipped_reason": self.checkpoint_skipped_reason,
            "report": (
                {"path": self.report_path, "sha256": self.report_sha256}
                if self.report_path
                else None
            ),
            "report_skipped_reason": self.report_skipped_reason,
            "zendesk": {"requests": self.zendesk_requests, "methods": dict(self.zendesk_methods)},
        }
