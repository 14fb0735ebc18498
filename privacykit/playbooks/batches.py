"""What a batch was asked to do, remembered until every one of its subjects has started.

Owns :class:`BatchMemory` and the files ``<home>/batches/<batch id>.json`` (owner-only):
when an ``erase`` batch starts, the keyed references (``ledger.subject_ref``) of its
subjects, in order, are written there -- never a raw subject: the subjects file stays the
DPO's. The ledger already records which requests each batch opened (``batch_id``), so
"not started" is simply a remembered reference without a request of that batch, nor a
finished or open request of the same kind.

Why a file beside the ledger and not ledger entries: every ledger entry belongs to a
request, and a batch is not one; the memory is operational (what is left to do), not
evidence -- what was done is in the ledger. Written atomically (a crash leaves the old
file or the new one), removed when nothing in it is left to start.

After an interruption, ``privacykit erase --resume`` names the batches with subjects not
started, and ``privacykit erase --resume --from-file FILE`` (the same file) continues them
under the same batch id: the file's subjects are matched by keyed reference.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacykit import clock
from privacykit.errors import UsageError
from privacykit.playbooks.ports import RequestLedger

__all__ = [
    "BATCH_DIR",
    "BATCH_SCHEMA",
    "BatchMemory",
    "BatchTracker",
    "forget",
    "load_batches",
    "not_started",
    "remember",
    "started_refs",
]

BATCH_DIR = "batches"
BATCH_SCHEMA = "privacykit.batch/1"
_BATCH_ID = re.compile(r"^batch-[A-Za-z0-9T_-]{1,80}$")
_REF = re.compile(r"^sr1:[0-9a-f]{16,128}$")


@dataclass(frozen=True)
class BatchMemory:
    """One remembered batch: its id, kind, when it started and its subjects' references."""

    batch_id: str
    kind: str
    created_at: str
    subject_refs: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": BATCH_SCHEMA,
            "batch_id": self.batch_id,
            "kind": self.kind,
            "created_at": self.created_at,
            "subject_refs": list(self.subject_refs),
        }


def _folder(home: Path) -> Path:
    return Path(home) / BATCH_DIR


def _path(home: Path, batch_id: str) -> Path:
    if not _BATCH_ID.match(batch_id):
        raise UsageError("a batch id looks like batch-20260131T120000-abc123")
    return _folder(home) / f"{batch_id}.json"


def remember(home: Path, batch_id: str, kind: str, subject_refs: Sequence[str]) -> BatchMemory:
    """Write (or replace) the memory of a batch: its subjects' keyed references only."""
    refs = tuple(dict.fromkeys(subject_refs))
    if any(not _REF.match(ref) for ref in refs):
        raise UsageError("a batch remembers keyed subject references only")
    memory = BatchMemory(batch_id, kind, clock.now_iso(), refs)
    path = _path(home, batch_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".batch-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(memory.to_dict(), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return memory


def forget(home: Path, batch_id: str) -> None:
    """Remove a batch's memory (nothing in it is left to start)."""
    _path(home, batch_id).unlink(missing_ok=True)


def _parse(data: Any) -> BatchMemory | None:
    if not isinstance(data, dict) or data.get("schema") != BATCH_SCHEMA:
        return None
    batch_id, kind, created = data.get("batch_id"), data.get("kind"), data.get("created_at")
    refs = data.get("subject_refs")
    if not (isinstance(batch_id, str) and _BATCH_ID.match(batch_id)):
        return None
    if not isinstance(kind, str) or not isinstance(created, str) or not isinstance(refs, list):
        return None
    if any(not isinstance(ref, str) or not _REF.match(ref) for ref in refs):
        return None
    return BatchMemory(batch_id, kind, created, tuple(refs))


def load_batches(home: Path, kind: str) -> list[BatchMemory]:
    """The remembered batches of ``kind``, oldest first. A file that does not parse is
    skipped (it holds nothing the ledger does not, and is never trusted for more)."""
    folder = _folder(home)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("batch-*.json")):
        try:
            if path.stat().st_size > 64 * 1024 * 1024:
                continue
            memory = _parse(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        if memory is not None and memory.kind == kind:
            found.append(memory)
    return sorted(found, key=lambda m: (m.created_at, m.batch_id))


def not_started(memory: BatchMemory, started_refs: Iterable[str]) -> list[str]:
    """The batch's references (in its order) that have no request yet."""
    started = set(started_refs)
    return [ref for ref in memory.subject_refs if ref not in started]


def started_refs(ledger: RequestLedger, memory: BatchMemory) -> set[str]:
    """References of the batch that need nothing more from its subjects file: a request
    of this batch exists, an open request of the kind will be continued by ``--resume``,
    or (erasure) the subject's erasure already finished."""
    started = {
        r.subject_ref
        for r in ledger.list_requests(kind=memory.kind)
        if r.batch_id == memory.batch_id or r.is_open
    }
    if memory.kind == "erasure":
        from privacykit.playbooks.finished import finished_erasures

        rest = [ref for ref in memory.subject_refs if ref not in started]
        started |= set(finished_erasures(ledger, rest))
    return started


class BatchTracker:
    """The batch memory of one invocation: which remembered batch it continues (on
    ``--resume`` with subjects sharing a reference with one), what other batches still
    wait for their subjects file, and remembering/forgetting around the run."""

    def __init__(
        self,
        ledger: RequestLedger | None,
        home: Path | None,
        kind: str,
        subject_refs: Sequence[str],
        *,
        resume: bool,
        new_id: str,
    ) -> None:
        self.ledger = ledger
        self.home = home
        self.kind = kind
        self.refs = list(dict.fromkeys(subject_refs))
        self.batch_id = new_id
        self.continues: BatchMemory | None = None
        self.memories = load_batches(home, kind) if home is not None and ledger else []
        if resume and self.refs:
            given = set(self.refs)
            for memory in reversed(self.memories):
                if given & set(memory.subject_refs):
                    self.continues, self.batch_id = memory, memory.batch_id
                    break

    def waiting(self) -> list[dict[str, Any]]:
        """Remembered batches with subjects not started (ids and counts only), and how many
        of those this invocation's subjects cover."""
        if self.ledger is None:
            return []
        given = set(self.refs)
        out = []
        for memory in self.memories:
            left = not_started(memory, started_refs(self.ledger, memory))
            if left:
                out.append(
                    {
                        "batch_id": memory.batch_id,
                        "created_at": memory.created_at,
                        "subjects": len(memory.subject_refs),
                        "not_started": len(left),
                        "given_now": sum(1 for ref in left if ref in given),
                    }
                )
        return out

    def start(self) -> None:
        """Remember the batch before anything runs (the continued batch keeps its list)."""
        if self.home is None or not self.refs:
            return
        refs = list(self.continues.subject_refs) if self.continues else []
        refs.extend(ref for ref in self.refs if ref not in set(refs))
        remember(self.home, self.batch_id, self.kind, refs)

    def finish(self, *, started_now: Iterable[str]) -> list[str]:
        """After the run: forget the batch when nothing in it is left to start; returns the
        references still not started (empty when forgotten)."""
        if self.home is None or self.ledger is None or not self.refs:
            return []
        memory = next(
            (m for m in load_batches(self.home, self.kind) if m.batch_id == self.batch_id), None
        )
        if memory is None:
            return []
        left = not_started(memory, started_refs(self.ledger, memory) | set(started_now))
        if not left:  # interrupted mid-way requests are open: --resume needs no file
            forget(self.home, self.batch_id)
        return left
