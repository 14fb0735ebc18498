"""Reports a request owes: produced after its final status, settled if a run died first.

Owns the crash safety of the signed report (see :mod:`privacykit.playbooks.request`): a
``report`` intent is recorded before the final status and its outcome after the PDF is
stored; the marker ``<home>/reports-owed/<request id>`` (:func:`owed_marker`) indexes the
requests between the two, and :func:`settle_owed_reports` (called at the start of every
run) signs what a killed run owed, from the ledger's evidence record. :func:`produce` is
the one call into the evidence package that renders and signs a request's report.

One checkpoint per run (#13): a run that finishes several requests defers their reports
(``RequestSession.finish(defer_report=True)``) and, once every final status of the run is
written, calls :func:`sign_deferred_reports`: one checkpoint, then every report naming it.
Closing the run signs one more covering the reports' own registrations, so a run adds
at most two checkpoints whatever its size (erasure batches, ``access``, ``audit``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacykit.errors import EvidenceError, LedgerError, UsageError
from privacykit.playbooks.ports import RequestLedger

if TYPE_CHECKING:
    from privacykit.ledger.checkpoint import Checkpoint
    from privacykit.playbooks.request import Finished, RequestSession

__all__ = [
    "EVIDENCE_STEP",
    "REPORT_STEP",
    "owed_marker",
    "produce",
    "settle_owed_reports",
    "sign_deferred_reports",
]

EVIDENCE_STEP = "evidence"
REPORT_STEP = "report"
_OWED_DIR = "reports-owed"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def produce(
    ledger: RequestLedger,
    rid: str,
    kind: str,
    record: Mapping[str, Any],
    home: Path,
    checkpoint: Checkpoint | None = None,
) -> tuple[Path, str]:
    """Render and sign ``record`` as the request's report; (path, sha256)."""
    try:
        from privacykit.evidence import produce_report
    except ImportError as exc:
        # Never "completed" without the report it promises: say so, the request keeps a
        # report owed (the ledger's ``report`` intent) for the next run.
        raise EvidenceError(
            f"the signed report cannot be produced: the PDF stack does not load ({exc.name})"
        ) from None
    result = produce_report(
        ledger,  # type: ignore[arg-type]
        rid,
        kind,
        record,
        home=home,
        checkpoint=checkpoint,
    )
    return Path(result.path), str(result.sha256)


def owed_marker(home: Path, rid: str) -> Path:
    """``<home>/reports-owed/<request id>``: present while a request's report is owed
    (every way of finishing a request uses it, closing included)."""
    if not _REQUEST_ID.match(rid):
        raise LedgerError("the ledger returned a request id that is not a safe file name")
    return home / _OWED_DIR / rid


def settle_owed_reports(ledger: RequestLedger, *, home: Path | None = None) -> list[str]:
    """Sign the reports a killed run owed (its final status written, its report not yet
    stored), from the ledger's evidence record. Returns the request ids settled."""
    base = Path(home) if home is not None else Path(ledger.home)
    folder = base / _OWED_DIR
    if not folder.is_dir():
        return []
    settled = []
    for marker in sorted(folder.iterdir()):
        rid = marker.name
        if not _REQUEST_ID.match(rid):
            continue
        try:
            request = ledger.get_request(rid)
        except UsageError:
            marker.unlink(missing_ok=True)
            continue
        if request.status in ("open", "in_progress"):
            # Killed before its final status: the request itself is continued (and its
            # report produced) by the run that resumes it.
            continue
        entries = ledger.entries(rid)
        evidence = [e.seq for e in entries if e.step_key == EVIDENCE_STEP and e.phase == "info"]
        stored = [a for a in ledger.artifacts(rid) if a.kind == "report"]
        if evidence and stored and max(evidence) < stored[-1].seq:
            # Killed after the report was stored, before its outcome was recorded.
            ledger.record(
                rid,
                REPORT_STEP,
                "outcome",
                {"sha256": stored[-1].sha256, "evidence_seq": max(evidence), "reconciled": True},
            )
        elif evidence:
            from privacykit.evidence import reproduce_report

            result = reproduce_report(ledger, rid, home=base)  # type: ignore[arg-type]
            ledger.record(
                rid,
                REPORT_STEP,
                "outcome",
                {"sha256": result.sha256, "evidence_seq": max(evidence), "settled": True},
            )
            settled.append(rid)
        marker.unlink(missing_ok=True)
    return settled


def sign_deferred_reports(
    ledger: RequestLedger,
    sessions: Iterable[RequestSession | None],
    checkpoint: Checkpoint | None = None,
) -> list[Finished | Exception | None]:
    """The reports a run's sessions left deferred, signed once every final status of the
    run is written: ONE checkpoint first (``checkpoint`` when the caller signed it, else
    one signed here; none when no report is owed), then every report naming it.
    Returns, parallel to ``sessions``, the :class:`Finished` of each report signed, the
    exception of each that could not be (it stays owed -- its ``report`` intent and marker
    -- and the next run's :func:`settle_owed_reports` signs it), or None for a session with
    no report deferred. A checkpoint that cannot be signed raises
    (:class:`LedgerError`, ``OSError``): every report then stays owed."""
    listed = list(sessions)
    results: list[Finished | Exception | None] = [None] * len(listed)
    owed = [i for i, s in enumerate(listed) if s is not None and s.report_deferred]
    if not owed:
        return results
    if checkpoint is None:
        checkpoint = ledger.checkpoint()
    for i in owed:
        session = listed[i]
        assert session is not None
        try:
            results[i] = session.sign_report(checkpoint)
        except Exception as exc:  # noqa: BLE001 - per request: the others are still signed
            results[i] = exc
    return results
