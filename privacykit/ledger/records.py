"""The ledger's record types: entries, requests, artifacts, step state, verification report.

Plain frozen dataclasses with ``to_dict()`` for ``--json`` output. None of them ever
holds personal data: subject references are keyed hashes and entry data passed the
privacy guard before it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from privacykit import clock
from privacykit.ledger import merkle
from privacykit.ledger.canonical import entry_canonical_bytes
from privacykit.ledger.checkpoint import Checkpoint
from privacykit.ledger.dates import days_remaining

__all__ = [
    "KINDS",
    "CLOSING_GROUNDS",
    "OPEN_STATUSES",
    "PHASES",
    "RESULTS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "ArtifactRecord",
    "Checkpoint",
    "Entry",
    "RequestRecord",
    "StepInfo",
    "StepState",
    "VerifyReport",
]

KINDS = ("erasure", "access", "audit")
PHASES = ("intent", "outcome", "info")
STATUSES = (
    "open",
    "in_progress",
    "needs_review",
    "pending_compliance",
    "completed",
    "failed",
    "closed",
)
#: ``closed``: not carried out, with a ground (see :data:`CLOSING_GROUNDS`); the deadline
#: stops as for a finished request.
TERMINAL_STATUSES = ("completed", "failed", "closed")
#: Why a request was closed without being carried out: withdrawn by the subject, refused
#: (Art. 12(5), or an Art. 17(3) exception for an erasure), or opened by mistake.
CLOSING_GROUNDS = ("withdrawn", "refused", "mistake")
OPEN_STATUSES = tuple(s for s in STATUSES if s not in TERMINAL_STATUSES)
#: ``result`` of an outcome entry: ``ok`` (done), ``failed`` (definitely not applied, safe to
#: retry), ``unknown`` (may or may not have been applied: reconcile before repeating).
RESULTS = ("ok", "failed", "unknown")

StepState = Literal["none", "intent", "done"]


@dataclass(frozen=True)
class Entry:
    """One append-only ledger entry; its leaf hash is ``merkle.leaf_hash(canonical_bytes())``."""

    seq: int
    request_id: str
    ts: str
    step_key: str
    phase: str
    data: dict[str, Any]

    @property
    def index(self) -> int:
        """Position of this entry's leaf in the Merkle tree (``seq - 1``)."""
        return self.seq - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "request_id": self.request_id,
            "ts": self.ts,
            "step_key": self.step_key,
            "phase": self.phase,
            "data": self.data,
        }

    def canonical_bytes(self) -> bytes:
        return entry_canonical_bytes(self.to_dict())

    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.canonical_bytes())


@dataclass(frozen=True)
class RequestRecord:
    """A data subject request as derived from its ledger entries."""

    request_id: str
    kind: str
    subject_ref: str
    received_at: date
    identity_verified_at: date | None
    extension_months: int
    extension_reason: str | None
    due_date: date
    status: str
    status_reason: str | None
    operator: str | None
    playbook_name: str | None
    playbook_sha256: str | None
    tool_version: str
    batch_id: str | None
    created_at: str
    updated_at: str
    closed_at: str | None
    # Facts kept in the request's ``ledger:*`` entries (not columns of the derived table,
    # so a ledger made before them opens unchanged): the DPO's case reference, how the
    # identity was verified, when the subject was told of the extension, and the ground
    # (and article) of a closing.
    case_ref: str | None = None
    identity_method: str | None = None
    extension_notified_at: date | None = None
    closing_ground: str | None = None
    closing_article: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    def days_remaining(self, today: date | None = None) -> int:
        """Days until the due date (0 on it, negative when late)."""
        return days_remaining(self.due_date, today or clock.today())

    def is_overdue(self, today: date | None = None) -> bool:
        """Still open after its due date."""
        return self.is_open and self.days_remaining(today) < 0

    def to_dict(self, today: date | None = None) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "subject_ref": self.subject_ref,
            "received_at": self.received_at.isoformat(),
            "identity_verified_at": (
                self.identity_verified_at.isoformat() if self.identity_verified_at else None
            ),
            "extension_months": self.extension_months,
            "extension_reason": self.extension_reason,
            "due_date": self.due_date.isoformat(),
            "days_remaining": self.days_remaining(today),
            "overdue": self.is_overdue(today),
            "status": self.status,
            "status_reason": self.status_reason,
            "operator": self.operator,
            "playbook_name": self.playbook_name,
            "playbook_sha256": self.playbook_sha256,
            "tool_version": self.tool_version,
            "batch_id": self.batch_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "closed_at": self.closed_at,
            "case_ref": self.case_ref,
            "identity_method": self.identity_method,
            "extension_notified_at": (
                self.extension_notified_at.isoformat() if self.extension_notified_at else None
            ),
            "closing_ground": self.closing_ground,
            "closing_article": self.closing_article,
        }


@dataclass(frozen=True)
class ArtifactRecord:
    """A file registered with a request, stored as ``<home>/artifacts/<sha256><suffix>``."""

    sha256: str
    request_id: str
    kind: str
    suffix: str
    size: int
    seq: int
    created_at: str
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "request_id": self.request_id,
            "kind": self.kind,
            "suffix": self.suffix,
            "size": self.size,
            "seq": self.seq,
            "created_at": self.created_at,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class StepInfo:
    """Everything the ledger knows about one step of one request.

    ``state`` is what the engine acts on: ``none`` (never started, or failed without
    effect: run it), ``intent`` (started, outcome unknown: reconcile with Zendesk before
    repeating anything destructive), ``done`` (finished: skip it, use ``outcome``).
    """

    state: StepState
    attempts: int = 0
    intent: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    last_result: str | None = None
    intent_seq: int | None = None
    outcome_seq: int | None = None


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` checked; it raises instead of returning a failure."""

    entries: int
    requests: int
    checkpoints: int
    artifacts: int
    root: bytes
    latest_checkpoint: Checkpoint | None
    saved_checkpoints: int = 0
    seconds: float = 0.0
    checks: tuple[str, ...] = field(default_factory=tuple)
    #: The home that was checked (its directory).
    home: str = ""
    #: The witness directory checked against (None: no witness configured).
    witness: str | None = None
    #: How many of this ledger's checkpoints the witness holds, and the largest size.
    witnessed: int = 0
    latest_witnessed: int | None = None
    #: The first entry after the latest checkpoint (None: every entry is covered); such
    #: entries only verify while a run is writing them (``writer`` names it).
    unsigned_from: int | None = None
    writer: str | None = None
    #: For a writable ledger: the last unsigned entry that was already there when it was
    #: opened (left by an interrupted run, or added outside privacykit), else None.
    stale_unsigned_to: int | None = None

    @property
    def ok(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        latest = self.latest_checkpoint
        return {
            "ok": True,
            "entries": self.entries,
            "requests": self.requests,
            "checkpoints": self.checkpoints,
            "saved_checkpoints": self.saved_checkpoints,
            "artifacts": self.artifacts,
            "root": self.root.hex(),
            "latest_checkpoint": (
                {"size": latest.size, "root": latest.root.hex(), "ts": latest.ts}
                if latest
                else None
            ),
            "seconds": round(self.seconds, 3),
            "checks": list(self.checks),
            "home": self.home,
            "witness": (
                {
                    "directory": self.witness,
                    "checkpoints": self.witnessed,
                    "latest_size": self.latest_witnessed,
                }
                if self.witness is not None
                else None
            ),
            "unsigned": (
                {
                    "from": self.unsigned_from,
                    "to": self.entries,
                    "writer": self.writer,
                    "stale_to": self.stale_unsigned_to,
                }
                if self.unsigned_from is not None
                else None
            ),
        }
