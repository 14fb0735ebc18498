"""The ledger: SQLite, append-only entries forming an RFC 6962 Merkle tree, signed
checkpoints (and their witness), keyed subject references, artifacts, one writer at a time.

``Ledger`` is the whole API (see docs/ARCHITECTURE.md "Ledger"); ``hold_home`` is the
home's writer lock; ``merkle`` holds pure proof functions; ``canonical_bytes``/
``entry_leaf_hash`` and ``verify_checkpoint_note`` let an offline verifier check exported
entries and checkpoints without the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.ledger import merkle
    from privacykit.ledger.canonical import (
        canonical_bytes,
        canonical_json,
        entry_canonical_bytes,
        entry_leaf_hash,
    )
    from privacykit.ledger.checkpoint import (
        Checkpoint,
        parse_verifier_key,
        verifier_key,
        verify_checkpoint_note,
    )
    from privacykit.ledger.dates import (
        add_months,
        days_remaining,
        due_date,
    )
    from privacykit.ledger.lock import (
        hold_home,
        home_writer,
        lock_home,
    )
    from privacykit.ledger.records import (
        KINDS,
        PHASES,
        RESULTS,
        STATUSES,
        TERMINAL_STATUSES,
        ArtifactRecord,
        Entry,
        RequestRecord,
        StepInfo,
        StepState,
        VerifyReport,
    )
    from privacykit.ledger.requests import (
        DSAR_KINDS,
        AuditRun,
    )
    from privacykit.ledger.signing import (
        RunCheckpoints,
        TreeHead,
        sign_at_end,
    )
    from privacykit.ledger.store import (
        Ledger,
        Step,
    )
    from privacykit.ledger.subject import (
        is_subject_ref,
    )

__all__ = [
    "DSAR_KINDS",
    "KINDS",
    "PHASES",
    "RESULTS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "ArtifactRecord",
    "AuditRun",
    "Checkpoint",
    "Entry",
    "Ledger",
    "RequestRecord",
    "RunCheckpoints",
    "Step",
    "StepInfo",
    "StepState",
    "TreeHead",
    "VerifyReport",
    "add_months",
    "canonical_bytes",
    "canonical_json",
    "days_remaining",
    "due_date",
    "entry_canonical_bytes",
    "entry_leaf_hash",
    "hold_home",
    "home_writer",
    "is_subject_ref",
    "lock_home",
    "merkle",
    "parse_verifier_key",
    "sign_at_end",
    "verifier_key",
    "verify_checkpoint_note",
]

# Imported on first use (see privacykit._lazy): importing this package stays cheap.
_EXPORTS = {
    "privacykit.ledger": ("merkle",),  # the submodule itself
    "privacykit.ledger.canonical": (
        "canonical_bytes",
        "canonical_json",
        "entry_canonical_bytes",
        "entry_leaf_hash",
    ),
    "privacykit.ledger.checkpoint": (
        "Checkpoint",
        "parse_verifier_key",
        "verifier_key",
        "verify_checkpoint_note",
    ),
    "privacykit.ledger.dates": (
        "add_months",
        "days_remaining",
        "due_date",
    ),
    "privacykit.ledger.lock": (
        "hold_home",
        "home_writer",
        "lock_home",
    ),
    "privacykit.ledger.records": (
        "KINDS",
        "PHASES",
        "RESULTS",
        "STATUSES",
        "TERMINAL_STATUSES",
        "ArtifactRecord",
        "Entry",
        "RequestRecord",
        "StepInfo",
        "StepState",
        "VerifyReport",
    ),
    "privacykit.ledger.requests": (
        "DSAR_KINDS",
        "AuditRun",
    ),
    "privacykit.ledger.signing": (
        "RunCheckpoints",
        "TreeHead",
        "sign_at_end",
    ),
    "privacykit.ledger.store": (
        "Ledger",
        "Step",
    ),
    "privacykit.ledger.subject": ("is_subject_ref",),
}
lazy_exports(__name__, _EXPORTS)
