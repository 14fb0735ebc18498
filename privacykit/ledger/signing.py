"""Signing checkpoints: the tree size and root, signed with the installation's Ed25519 key,
stored in the ledger, copied to ``ledger-checkpoint.latest`` and appended to the witness.

Owns :meth:`Ledger.checkpoint` and the run-scoped API the engine and evidence use so that
a batch signs once (:meth:`Ledger.run`), plus :meth:`Ledger.checkpoint_covering` for a
report made outside a batch. Before signing, the ledger is verified (:mod:`.verify`:
fully the first time in a process, incrementally after), so a checkpoint never launders
tampering, and the new tree must extend every checkpoint kept elsewhere (the latest
file, the witness's largest), so it never signs a rollback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from privacykit.errors import LedgerError
from privacykit.ledger.base import LedgerBase
from privacykit.ledger.checkpoint import Checkpoint, CheckpointSigner
from privacykit.ledger.checkpoints import LATEST_CHECKPOINT_FILE, write_latest

__all__ = ["CheckpointsMixin", "RunCheckpoints", "TreeHead", "sign_at_end"]

log = logging.getLogger("privacykit.ledger")

# A checkpoint's time is that of the last entry it covers: signed through the tree, unlike
# a time column would be.
_CHECKPOINT_QUERY = (
    "SELECT COALESCE(e.ts, ''), c.size, c.root, c.note FROM checkpoints c "
    "LEFT JOIN entries e ON e.seq = c.size"
)


@dataclass(frozen=True)
class TreeHead:
    """The tree as it is now, unsigned: ``size`` entries with Merkle root ``root``."""

    size: int
    root: bytes


def sign_at_end(ledger: Any) -> Checkpoint | None:
    """The final checkpoint of a run, for a ``finally:`` block (anything with
    ``checkpoint()``): if an exception is already propagating, a failure to sign (a full
    disk) is added to that exception as a note and logged, and None returned, so the run's
    own error is the one reported; otherwise the failure (one-line :class:`LedgerError`)
    is raised."""
    pending = sys.exc_info()[1]
    try:
        checkpoint: Checkpoint = ledger.checkpoint()
    except Exception as failure:
        if pending is None:
            raise
        message = " ".join(str(failure).split()) or type(failure).__name__
        pending.add_note(f"the final checkpoint could not be signed either: {message}")
        log.error("final checkpoint not signed: %s", message)
        return None
    return checkpoint


class RunCheckpoints:
    """What :meth:`Ledger.run` yields: :meth:`checkpoint` signs (once) the checkpoint the
    run's reports reference; ``final`` is the checkpoint that closed the run."""

    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger
        self.signed: Checkpoint | None = None
        self.final: Checkpoint | None = None

    def checkpoint(self) -> Checkpoint:
        """Sign the tree now, unless the run's checkpoint already covers every entry."""
        self.signed = self._ledger.checkpoint()
        return self.signed


class CheckpointsMixin(LedgerBase):
    """Checkpoint methods of :class:`~privacykit.ledger.Ledger`."""

    def _signer_or_fail(self) -> CheckpointSigner:
        if self._signer is None or self.readonly:
            raise LedgerError("checkpoints are signed only by a ledger opened for writing")
        return self._signer

    @property
    def checkpoint_public_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key that signs this ledger's checkpoints."""
        assert self._signer is not None
        return self._signer.public_key

    @property
    def checkpoint_verifier_key(self) -> str:
        """The same key as a signed-note verifier key (the content of ``ledger-checkpoint.pub``)."""
        assert self._signer is not None
        return self._signer.verifier_key

    @property
    def origin(self) -> str:
        """The origin line of this ledger's checkpoints."""
        assert self._signer is not None
        return self._signer.origin

    def checkpoints(self) -> list[Checkpoint]:
        """All stored checkpoints, oldest first."""
        with self._read() as conn:
            rows = conn.execute(_CHECKPOINT_QUERY + " ORDER BY c.id").fetchall()
        return [
            Checkpoint(size, bytes.fromhex(root), note, self.origin, ts)
            for ts, size, root, note in rows
        ]

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._read() as conn:
            row = conn.execute(_CHECKPOINT_QUERY + " ORDER BY c.id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        ts, size, root, note = row
        return Checkpoint(size, bytes.fromhex(root), note, self.origin, ts)

    def tree_head(self) -> TreeHead:
        """The current size and root, unsigned (a checkpoint signed later extends it)."""
        with self._lock:
            tree = self._current_tree()
            return TreeHead(len(tree), tree.root())

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree size and root, and return the checkpoint.

        Never signs over a ledger that does not verify: the whole ledger is verified the
        first time in a process, and what was written since every time after (entries,
        derived rows, stored checkpoints, the latest file, the witness's largest note); a
        problem is :class:`LedgerIntegrityError` and nothing is signed. Never signs twice
        for the same tree: if nothing was added since the latest stored checkpoint, that
        one is returned (and copied to the witness if it lacks it). A file that cannot be
        written (a full disk) is one :class:`LedgerError` line; the checkpoint is then
        already stored in the ledger."""
        signer = self._signer_or_fail()
        if self._verified is None and not self._connection().in_transaction:
            # The full verification first, outside the write transaction (a big ledger
            # shares it with a second process, which reads what is committed); inside,
            # only what was written in between is checked.
            self._verify_before_signing()
        with self._write() as conn:
            state = self._verify_before_signing()
            tree = state.tree
            previous = conn.execute(_CHECKPOINT_QUERY + " ORDER BY c.id DESC LIMIT 1").fetchone()
            if previous is not None and previous[1] == len(tree):
                old_ts, old_size, old_root, old_note = previous
                checkpoint = Checkpoint(
                    old_size, bytes.fromhex(old_root), old_note, signer.origin, old_ts
                )
                fresh = False
            else:
                size = len(tree)
                root = tree.root(size)
                note = signer.sign(size, root)
                last = conn.execute("SELECT ts FROM entries WHERE seq = ?", (size,)).fetchone()
                conn.execute(
                    "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)",
                    (size, root.hex(), note),
                )
                # Inside a batch: commit now, so the files below never run ahead of the table.
                self._commit_inside_batch(conn)
                checkpoint = Checkpoint(size, root, note, signer.origin, last[0] if last else "")
                fresh = True
        self._publish(checkpoint, fresh)
        return checkpoint

    def _publish(self, checkpoint: Checkpoint, fresh: bool) -> None:
        """Copy a stored checkpoint to the latest file and the witness."""
        assert self._signer is not None
        latest = self.home / LATEST_CHECKPOINT_FILE
        try:
            if fresh or not latest.exists():
                write_latest(self.home, checkpoint.note)
        except OSError as exc:
            raise LedgerError(
                f"checkpoint of size {checkpoint.size} is signed and stored in the ledger, but "
                f"{LATEST_CHECKPOINT_FILE} could not be written: {exc.strerror or exc}"
            ) from None
        if self.witness is not None:
            self.witness.append(
                checkpoint.size, checkpoint.root, checkpoint.note, self._signer.verifier_key
            )

    def checkpoint_covering(self, request_id: str) -> Checkpoint:
        """A checkpoint covering every entry of ``request_id`` so far: the latest stored one
        when it does (a report in a batch after the run's checkpoint), else a new one (a
        report made outside a batch gets its own)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT MAX(seq) FROM entries WHERE request_id = ?", (request_id,)
            ).fetchone()
        last = row[0] or 0
        latest = self.latest_checkpoint()
        if latest is not None and latest.size >= last:
            return latest
        return self.checkpoint()

    def checkpoint_if_needed(self) -> Checkpoint:
        """The latest checkpoint if it covers every entry, else a new one (the same as
        :meth:`checkpoint`, named for the call sites that read better this way)."""
        return self.checkpoint()

    @contextmanager
    def run(self) -> Iterator[RunCheckpoints]:
        """One run (a batch): everything it writes is covered by checkpoints when it ends::

            with ledger.run() as run:
                ...                           # every subject: steps, final status
                cp = run.checkpoint()         # once: the checkpoint the reports reference
                ...                           # produce_report(..., checkpoint=cp)
            run.final                         # covers the report registrations too

        On leaving, a checkpoint is signed if entries were written after the last one
        (none when nothing was). If the block raised, that error is the one that
        propagates: a checkpoint that cannot be signed then (a full disk) is added as a
        note to it and logged, never hiding it."""
        scope = RunCheckpoints(self)
        try:
            yield scope
        except BaseException as exc:
            if self._conn is not None and not self.readonly:
                try:
                    scope.final = self.checkpoint()
                except Exception as failure:  # noqa: BLE001 - the run's own error comes first
                    message = " ".join(str(failure).split()) or type(failure).__name__
                    exc.add_note(f"the final checkpoint could not be signed either: {message}")
                    log.error("final checkpoint not signed: %s", message)
            raise
        scope.final = self.checkpoint()
