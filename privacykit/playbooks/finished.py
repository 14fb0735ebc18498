"""Subjects whose request was already carried out, so a re-run does not open another.

Owns :func:`finished_erasures` and :class:`Finished`: running a subjects file again after
part of it completed must not open a new "no data found" request (and sign a report) for
everyone already erased. A subject with a finished erasure -- status ``completed`` and its
latest evidence outcome ``erased`` -- is reported as "already erased on DATE (REQ)" and
skipped, unless the operator says this is a new request (``--new-request``). Reads the
ledger only (keyed references, never identifiers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from privacykit.playbooks.ports import RequestLedger

__all__ = ["Finished", "finished_erasures", "finished_in_batch", "skipped_view"]

_EVIDENCE_STEP = "evidence"


@dataclass(frozen=True)
class Finished:
    """A subject's latest finished erasure: its request and the day it completed."""

    subject_ref: str
    request_id: str
    on: str  # YYYY-MM-DD, when the request was completed
    #: ``already_erased``, or ``finished_in_batch`` (an interrupted batch continued with
    #: ``--resume``: the subject's request of that batch already ended).
    why: str = "already_erased"

    def text(self) -> str:
        if self.why == "finished_in_batch":
            return f"already finished on {self.on} in this batch ({self.request_id})"
        return f"already erased on {self.on} ({self.request_id})"


def _outcome(ledger: RequestLedger, request_id: str) -> Any:
    for entry in reversed(ledger.entries(request_id)):
        if entry.step_key == _EVIDENCE_STEP and entry.phase == "info":
            return entry.data.get("outcome")
    return None


def finished_erasures(ledger: RequestLedger, subject_refs: Iterable[str]) -> dict[str, Finished]:
    """For each of ``subject_refs`` with a completed erasure whose evidence says
    ``erased``: the most recently completed one. One query for the completed erasures,
    then the evidence of the matching requests only."""
    wanted = set(subject_refs)
    if not wanted:
        return {}
    candidates: dict[str, list[Any]] = {}
    for request in ledger.list_requests(status="completed", kind="erasure"):
        if request.subject_ref in wanted:
            candidates.setdefault(request.subject_ref, []).append(request)
    found: dict[str, Finished] = {}
    for ref, requests in candidates.items():
        requests.sort(key=lambda r: (r.closed_at or r.updated_at, r.request_id), reverse=True)
        for request in requests:
            if _outcome(ledger, request.request_id) == "erased":
                day = (request.closed_at or request.updated_at)[:10]
                found[ref] = Finished(ref, request.request_id, day)
                break
    return found


def finished_in_batch(ledger: RequestLedger, kind: str, batch_id: str) -> dict[str, Finished]:
    """The subjects whose request of ``batch_id`` has ended (any final status)."""
    found: dict[str, Finished] = {}
    for request in ledger.list_requests(kind=kind):
        if request.batch_id == batch_id and not request.is_open:
            day = (request.closed_at or request.updated_at)[:10]
            found[request.subject_ref] = Finished(
                request.subject_ref, request.request_id, day, "finished_in_batch"
            )
    return found


def skipped_view(index: int, label: str, finished: Finished) -> dict[str, Any]:
    """How a skipped subject appears in a run's results (text and ``--json``)."""
    return {
        "index": index,
        "label": label,
        "subject_ref": finished.subject_ref,
        "skipped": finished.why,
        "on": finished.on,
        "request_id": finished.request_id,
        "text": finished.text(),
    }
