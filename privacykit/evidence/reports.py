"""Evidence reports: the record plus the ledger's view of the request, rendered and signed.

Owns :func:`produce_report` (the contract with the playbooks, docs/ARCHITECTURE.md
"Evidence records"), :func:`reproduce_report` (render again from the ``evidence`` entry
the ledger holds, with the free texts the ledger withheld restored from the request's
playbook copy) and :func:`request_reports`. What a report states is decided in
:mod:`privacykit.evidence.context`; this module makes sure it is only ever signed over a
ledger that verifies (:mod:`privacykit.evidence.integrity`).

reportlab, jinja2 and pyHanko are imported inside the functions that render and sign.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacykit.errors import EvidenceError, UsageError
from privacykit.evidence.context import KNOWN_KEYS, REPORT_KINDS, WITHHELD, build_context
from privacykit.evidence.integrity import require_verified

if TYPE_CHECKING:
    from privacykit.evidence.keys import SigningKeys
    from privacykit.ledger import Checkpoint, Ledger

__all__ = [
    "ARTIFACT_KIND",
    "KNOWN_KEYS",
    "REPORT_KINDS",
    "WITHHELD",
    "Report",
    "build_context",
    "produce_report",
    "reproduce_report",
    "request_reports",
]

ARTIFACT_KIND = "report"
EVIDENCE_STEP = "evidence"
CLOSING_SCHEMA = "privacykit.closing-evidence/1"


@dataclass(frozen=True)
class Report:
    """A signed report stored as a ledger artifact. Unpacks as ``path, sha256``."""

    path: Path
    sha256: str
    request_id: str = ""
    kind: str = ""
    signer_fingerprint: str = ""
    checkpoint_size: int = 0
    restored_texts: int = 0
    unrecovered_texts: int = 0

    def __iter__(self) -> Iterator[Any]:
        yield self.path
        yield self.sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "request_id": self.request_id,
            "kind": self.kind,
            "signer_fingerprint": self.signer_fingerprint,
            "checkpoint_size": self.checkpoint_size,
            "restored_texts": self.restored_texts,
            "unrecovered_texts": self.unrecovered_texts,
        }


def _check_record(ledger: Ledger, request_id: str, kind: str, record: Mapping[str, Any]) -> None:
    """A new report states the ledger at signing time: a record whose status is not the
    request's status now is refused, so is a closing record of another schema. (An audit
    record's ``status`` is the audit's result, not its request's status.)"""
    status = record.get("status")
    if kind != "audit" and isinstance(status, str) and status:
        current = ledger.get_request(request_id).status  # UsageError for an unknown id
        if status != current:
            raise EvidenceError(
                f"the evidence record of {request_id} says status {status} but the ledger says "
                f"{current}; write the final status before producing the report"
            )
    if kind == "closing" and record.get("schema") not in (None, CLOSING_SCHEMA):
        raise EvidenceError(f"a closing report renders {CLOSING_SCHEMA} records")


def _covering(ledger: Ledger, request_id: str, given: Checkpoint | None) -> Checkpoint:
    """The checkpoint the report names: ``given`` (a batch's one checkpoint) when it covers
    every entry of the request so far, else the ledger's latest when that does (a batch
    that signed its checkpoint before its reports), else a fresh one -- the report says
    its entries are covered by the root it prints, so that must be true."""
    if given is not None:
        last = max((e.seq for e in ledger.iter_entries(request_id)), default=0)
        if given.size >= last:
            return given
    return ledger.checkpoint_covering(request_id)


def _sign_and_store(
    ledger: Ledger,
    request_id: str,
    kind: str,
    record: Mapping[str, Any],
    *,
    home: Path,
    tsa_url: str | None,
    keys: SigningKeys | None,
    checkpoint: Checkpoint | None = None,
) -> Report:
    from privacykit.evidence.keys import ensure_keys
    from privacykit.evidence.render import render_pdf
    from privacykit.evidence.sign import make_timestamper, sign_pdf

    if tsa_url:
        make_timestamper(tsa_url)  # a bad URL is bad input: refused before anything is signed

    if kind not in REPORT_KINDS:
        raise UsageError(f"report kind must be one of {', '.join(REPORT_KINDS)}")
    req = ledger.get_request(request_id)  # UsageError (exit 2) for an unknown id
    if kind != "closing" and req.kind != kind:
        raise UsageError(f"request {request_id} is a {req.kind} request, not {kind}")
    require_verified(ledger, request_id)  # before the checkpoint: never sign a bad tree
    keys = keys or ensure_keys(home)
    checkpoint = _covering(ledger, request_id, checkpoint)
    context = build_context(ledger, request_id, kind, record, keys=keys, checkpoint=checkpoint)
    unsigned = render_pdf(
        f"{kind}.xml.j2", context, subject=f"GDPR evidence, request {context['request']['id']}"
    )
    signed = sign_pdf(unsigned, keys, tsa_url=tsa_url)
    with tempfile.TemporaryDirectory(dir=home, prefix=".report-") as tmp:
        path = Path(tmp) / f"{kind}-report.pdf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(signed)
        sha = ledger.add_artifact(request_id, path, ARTIFACT_KIND)
    return Report(
        path=ledger.artifact_path(sha),
        sha256=sha,
        request_id=request_id,
        kind=kind,
        signer_fingerprint=keys.fingerprint,
        checkpoint_size=checkpoint.size,
    )


def produce_report(
    ledger: Ledger,
    request_id: str,
    kind: str,
    record: Mapping[str, Any],
    *,
    home: Path | None = None,
    tsa_url: str | None = None,
    keys: SigningKeys | None = None,
    checkpoint: Checkpoint | None = None,
) -> Report:
    """Render ``record`` with the request's ledger metadata, sign it (PAdES; RFC 3161
    timestamp with ``tsa_url`` or ``$PRIVACYKIT_TSA_URL``), store it as a ``report``
    artifact of the request and return its stored path and sha256.

    ``kind`` is the request's kind (``erasure``, ``access``, ``audit``) or ``closing``
    (a request closed without being carried out; record schema
    ``privacykit.closing-evidence/1``). Refuses (:class:`LedgerIntegrityError`, exit 1)
    when the ledger does not verify, and (:class:`EvidenceError`) when the record's
    ``status`` is not the request's status in the ledger. The root printed in the report
    covers every entry of the request so far: ``checkpoint`` (a batch signs one for all its
    reports) when it does, else a fresh checkpoint written first.
    Signing keys are created on first use (:func:`~privacykit.evidence.ensure_keys`)."""
    _check_record(ledger, request_id, kind, record)
    home = Path(home) if home is not None else Path(ledger.home)
    return _sign_and_store(
        ledger,
        request_id,
        kind,
        record,
        home=home,
        tsa_url=tsa_url,
        keys=keys,
        checkpoint=checkpoint,
    )


def reproduce_report(
    ledger: Ledger,
    request_id: str,
    *,
    home: Path | None = None,
    tsa_url: str | None = None,
    keys: SigningKeys | None = None,
) -> Report:
    """Produce the report again from the latest ``evidence`` entry the ledger holds for
    the request (e.g. to add an RFC 3161 timestamp, or after a DPO changed the wording).

    The ledger keeps free texts its privacy guard refuses (a DPO's contact address) only
    as their sha256; they are restored from the copy of the playbook the request used
    (:mod:`privacykit.evidence.withheld`), so the report states what the original did.
    The record's status is the one it was written with; if the ledger's status moved on
    since, the report shows both."""
    from privacykit.evidence.withheld import restore_from_playbook

    req = ledger.get_request(request_id)
    require_verified(ledger, request_id)
    evidence = [
        e
        for e in ledger.iter_entries(request_id)
        if e.step_key == EVIDENCE_STEP and e.phase == "info"
    ]
    if not evidence:
        raise EvidenceError(f"request {request_id} has no evidence record in the ledger yet")
    record = evidence[-1].data
    kind = "closing" if record.get("schema") == CLOSING_SCHEMA else req.kind
    restored = restore_from_playbook(ledger, req, record)
    home = Path(home) if home is not None else Path(ledger.home)
    report = _sign_and_store(
        ledger, request_id, kind, restored.record, home=home, tsa_url=tsa_url, keys=keys
    )
    return Report(
        **{
            **report.__dict__,
            "restored_texts": restored.restored,
            "unrecovered_texts": restored.missing,
        }
    )


def request_reports(ledger: Ledger, request_id: str) -> list[dict[str, Any]]:
    """The signed reports stored for a request, oldest first."""
    ledger.get_request(request_id)  # UsageError for an unknown id
    return [a.to_dict() for a in ledger.artifacts(request_id) if a.kind == ARTIFACT_KIND]
