"""Never sign over a ledger that does not verify.

Owns :func:`require_verified`, called by :func:`~privacykit.evidence.produce_report`,
:func:`~privacykit.evidence.reproduce_report` and :func:`~privacykit.evidence.export_bundle`
before they sign anything (a report, a bundle manifest, or the checkpoint they trigger).
A signature of this installation over a ledger that fails verification would lend the
tampered history credibility, so they refuse with one line (exit 1).

Cost: a full :meth:`Ledger.verify` recomputes every entry, the Merkle tree and the
tables. A batch signs one report per subject, so the full verification runs once per
:class:`~privacykit.ledger.Ledger` object (one object per run); later calls on the same
object check only what changed since: every entry added since is re-hashed against its
stored leaf, and the request being signed has its ``requests`` row compared with the
replay of its own ``ledger:*`` entries (which is what catches, e.g., a ``requests.status``
edited to ``completed`` in the middle of a run). ``bench/evidence_bench.py`` measures both.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from privacykit.errors import LedgerIntegrityError

if TYPE_CHECKING:
    from privacykit.ledger import Ledger

__all__ = ["forget", "require_verified"]

# Ledger object -> tree size at which it was last found consistent. Weak, so a closed and
# dropped ledger does not linger; a new Ledger object (a new run) verifies in full again.
_VERIFIED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
# One verification at a time: worker threads producing reports at the start of a batch
# wait for the first full verification instead of each running their own.
_LOCK = threading.Lock()
# The ``requests`` columns that are facts a report or a bundle states.
_REQUEST_FACTS = (
    "kind",
    "subject_ref",
    "received_at",
    "identity_verified_at",
    "extension_months",
    "due_date",
    "status",
    "status_reason",
    "operator",
    "playbook_name",
    "playbook_sha256",
    "closed_at",
)


def _refuse(exc: LedgerIntegrityError) -> LedgerIntegrityError:
    return LedgerIntegrityError(
        f"refusing to sign evidence: the ledger does not verify ({exc}); "
        "run `privacykit ledger verify`",
        entry=exc.entry,
    )


def require_verified(ledger: Ledger, request_id: str | None = None) -> None:
    """Raise :class:`LedgerIntegrityError` (exit 1, one line) unless the ledger verifies:
    in full the first time for this ledger object, incrementally afterwards (see the
    module docstring); with ``request_id``, that request's row must also equal the replay
    of its entries."""
    with _LOCK:
        try:
            verified = _VERIFIED.get(ledger)
            if verified is None:
                report = ledger.verify()
                verified = int(report.entries)
            else:
                _check_new_entries(ledger, verified)
                verified = max(verified, int(ledger.size))
            if request_id is not None:
                _check_request(ledger, request_id)
        except LedgerIntegrityError as exc:
            _VERIFIED.pop(ledger, None)
            raise _refuse(exc) from None
        _VERIFIED[ledger] = verified


def forget(ledger: Ledger) -> None:
    """Make the next :func:`require_verified` on ``ledger`` verify in full again."""
    with _LOCK:
        _VERIFIED.pop(ledger, None)


def _check_new_entries(ledger: Ledger, verified: int) -> None:
    size = int(ledger.size)
    if size < verified:
        raise LedgerIntegrityError(
            f"the ledger lost entries during this run ({verified} -> {size})", entry=size + 1
        )
    for entry in ledger.iter_entries(start=verified + 1):
        if entry.leaf_hash() != ledger.leaf_hash(entry.seq):
            raise LedgerIntegrityError(
                f"entry {entry.seq} does not match its leaf hash", entry=entry.seq
            )


def replay_request(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``requests`` row the request's ``ledger:*`` entries (as dicts, in order) add up
    to, or None without a creation entry. ``ValueError`` when they do not fit together."""
    from privacykit.ledger.replay import (
        ARTIFACT_KEY,
        RESERVED_PREFIX,
        apply_request_entry,
        note_entry,
    )

    row: dict[str, Any] | None = None
    # What closing a finished request as a mistake depends on (the ledger's replay rule).
    no_data: dict[str, bool | None] = {}
    for entry in entries:
        key, rid = entry["step_key"], entry["request_id"]
        data = entry["data"] if isinstance(entry["data"], dict) else {}
        if not isinstance(key, str) or key == ARTIFACT_KEY:
            continue
        if not key.startswith(RESERVED_PREFIX):
            note_entry(no_data, rid, key, str(entry.get("phase")), data)
            continue
        fits = no_data.get(rid) is True
        row = apply_request_entry(row, rid, entry["ts"], key, data, no_data_unchanged=fits)
    return row


def _check_request(ledger: Ledger, request_id: str) -> None:
    entries = [e.to_dict() for e in ledger.iter_entries(request_id)]
    try:
        replayed = replay_request(entries)
    except ValueError as exc:
        raise LedgerIntegrityError(f"request {request_id}: {exc}") from None
    if replayed is None:
        raise LedgerIntegrityError(f"request {request_id} has no creation entry")
    stored = ledger.get_request(request_id).to_dict()
    for name in _REQUEST_FACTS:
        if stored.get(name) != replayed.get(name):
            raise LedgerIntegrityError(
                f"request {request_id}: the requests table says {name} "
                f"{stored.get(name)!r} but its entries say {replayed.get(name)!r}"
            )
