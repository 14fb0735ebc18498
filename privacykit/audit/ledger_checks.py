"""The checks that need only the ledger: its integrity, and request deadlines.

Owns ``ledger.integrity`` (the full :meth:`Ledger.verify`, plus the latest checkpoint's
signature checked again, explicitly, against this installation's checkpoint key: it is
what an auditor relies on), ``ledger.witness`` (no witness directory configured, not
mounted, or behind the ledger's latest checkpoint: without it a rewrite re-signed with the
key in the home goes unnoticed) and ``deadline.due_soon`` / ``deadline.overdue`` (GDPR
Art. 12(3): one month from receipt, extended by at most two more months with a recorded
reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from privacykit.audit.findings import Finding
from privacykit.errors import ConfigError, LedgerIntegrityError
from privacykit.ledger import Ledger, RequestRecord, verify_checkpoint_note
from privacykit.ledger.dates import MAX_EXTENSION_MONTHS

__all__ = [
    "IntegrityResult",
    "check_deadlines",
    "check_integrity",
    "check_witness",
    "deadline_row",
]


@dataclass
class IntegrityResult:
    ok: bool
    findings: list[Finding] = field(default_factory=list)
    entries: int = 0
    checkpoints: int = 0
    unchecked_tail: int = 0  # entries after the latest checkpoint (signed by this run)
    latest_checkpoint_size: int | None = None


def _witness_unusable(ledger: Ledger) -> Finding | None:
    """A configured witness that is not there: the run goes on without it (its checkpoint
    is then not witnessed, which the next audit reports as stale)."""
    witness = ledger.witness
    if witness is None or witness.directory.is_dir():
        return None
    ledger.witness = None
    return Finding(
        "ledger.witness",
        f"the witness directory {witness.directory} (PRIVACYKIT_WITNESS_DIR) is not there: "
        "is it mounted? The ledger was checked without it",
        None,
        {"witness": str(witness.directory)},
    )


def check_witness(ledger: Ledger, witnessed: int, latest_witnessed: int | None) -> list[Finding]:
    """ledger.witness: none configured, or it lacks the latest stored checkpoint."""
    if ledger.witness is None:
        return [
            Finding(
                "ledger.witness",
                "no witness: PRIVACYKIT_WITNESS_DIR is not set, so a ledger rewritten or "
                "rolled back and re-signed with the key in PRIVACYKIT_HOME would not be "
                "detected (README: threat model)",
                None,
                {"witness": None},
            )
        ]
    latest = ledger.latest_checkpoint()
    if latest is None or (latest_witnessed or 0) >= latest.size:
        return []
    held = f"checkpoints up to size {latest_witnessed}" if witnessed else "no checkpoint"
    return [
        Finding(
            "ledger.witness",
            f"the witness is stale: it holds {held} of this ledger but the latest is size "
            f"{latest.size} (signed while the witness was not set or not mounted); this "
            "audit's checkpoint is witnessed again",
            None,
            {
                "witness": str(ledger.witness.directory),
                "latest_witnessed": latest_witnessed,
                "latest_checkpoint": latest.size,
            },
        )
    ]


def check_integrity(ledger: Ledger) -> IntegrityResult:
    """ledger.integrity: everything :meth:`Ledger.verify` checks, then the latest
    checkpoint's signature against this installation's key; ledger.witness as well."""
    unusable = _witness_unusable(ledger)
    try:
        try:
            report = ledger.verify()
        except ConfigError as exc:  # the witness went away between the check and the read
            ledger.witness = None
            unusable = unusable or Finding("ledger.witness", _one_line(exc), None, {})
            report = ledger.verify()
    except LedgerIntegrityError as exc:
        where = f" (first bad entry: {exc.entry})" if exc.entry is not None else ""
        failed = IntegrityResult(
            False,
            [
                Finding(
                    "ledger.integrity",
                    f"ledger verification failed{where}: {_one_line(exc)}",
                    None,
                    {"entry": exc.entry},
                )
            ],
        )
        if unusable is not None:
            failed.findings.append(unusable)
        elif ledger.witness is None:
            failed.findings.extend(check_witness(ledger, 0, None))
        return failed
    result = IntegrityResult(True, entries=report.entries, checkpoints=report.checkpoints)
    if report.stale_unsigned_to is not None and report.unsigned_from is not None:
        # Well-formed, but signed by nothing when the audit started: an interrupted run (or
        # entries added outside privacykit). This audit's checkpoint signs them.
        result.findings.append(
            Finding(
                "ledger.integrity",
                f"entries {report.unsigned_from}..{report.stale_unsigned_to} were not covered "
                "by any signed checkpoint when the audit started (an interrupted run, or "
                "entries added outside privacykit); they verify, and this audit's checkpoint "
                "signs them",
                None,
                {"from": report.unsigned_from, "to": report.stale_unsigned_to},
            )
        )
    result.findings.extend(
        [unusable] if unusable else check_witness(ledger, report.witnessed, report.latest_witnessed)
    )
    latest = report.latest_checkpoint
    if latest is None:
        if report.entries:
            result.ok = False
            result.findings.append(
                Finding(
                    "ledger.integrity",
                    f"the ledger holds {report.entries} entries but no signed checkpoint",
                    None,
                    {"entries": report.entries},
                )
            )
        return result
    result.latest_checkpoint_size = latest.size
    result.unchecked_tail = report.entries - latest.size
    try:
        origin, size, root = verify_checkpoint_note(latest.note, ledger.checkpoint_public_key)
        if origin != ledger.origin or size != latest.size or root != latest.root:
            raise LedgerIntegrityError("its signed content does not match the stored checkpoint")
    except LedgerIntegrityError as exc:
        result.ok = False
        result.findings.append(
            Finding(
                "ledger.integrity",
                "the latest checkpoint is not signed by this installation's key: " + _one_line(exc),
                None,
                {"checkpoint_size": latest.size},
            )
        )
    return result


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _extension_text(request: RequestRecord) -> str:
    if request.extension_months:
        return f"extended by {request.extension_months} month(s)"
    return "not extended"


def deadline_row(request: RequestRecord, today: date) -> dict[str, Any]:
    """An open request's deadline facts (ids, dates, counts: nothing personal)."""
    days = request.days_remaining(today)
    return {
        "request_id": request.request_id,
        "kind": request.kind,
        "status": request.status,
        "received_at": request.received_at.isoformat(),
        "due_date": request.due_date.isoformat(),
        "days_to_deadline": days,
        "overdue": days < 0,
        "extension_months": request.extension_months,
        "extended": request.extension_months > 0,
        "extension_available": request.extension_months < MAX_EXTENSION_MONTHS,
    }


def check_deadlines(
    requests: list[RequestRecord], *, today: date, due_within_days: int
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """deadline.overdue and deadline.due_soon over the open requests (every status but
    completed and closed; a failed request still owes the subject an answer, a request
    pending Zendesk's compliance deletion is not confirmed done, and a closed one --
    withdrawn, refused, a mistake -- has no deadline left). Audit runs are not requests."""
    findings: list[Finding] = []
    rows: list[dict[str, Any]] = []
    for request in requests:
        if request.kind == "audit" or request.status in ("completed", "closed"):
            continue
        row = deadline_row(request, today)
        rows.append(row)
        days = row["days_to_deadline"]
        extension = _extension_text(request)
        if days < 0:
            findings.append(
                Finding(
                    "deadline.overdue",
                    f"{request.kind} request is {-days} day(s) past its Art. 12(3) deadline "
                    f"{request.due_date.isoformat()} ({extension}; status {request.status})",
                    request.request_id,
                    row,
                )
            )
        elif days <= due_within_days:
            # Art. 12(3): the subject must be told of an extension within the first
            # month, so the hint is only useful before any extension was recorded.
            hint = (
                f"; it can be extended by up to {MAX_EXTENSION_MONTHS} month(s) with a reason"
                if request.extension_months == 0
                else ""
            )
            findings.append(
                Finding(
                    "deadline.due_soon",
                    f"{request.kind} request is due in {days} day(s) on "
                    f"{request.due_date.isoformat()} ({extension}; status {request.status})" + hint,
                    request.request_id,
                    row,
                )
            )
    rows.sort(key=lambda r: (r["days_to_deadline"], r["request_id"]))
    return findings, rows
