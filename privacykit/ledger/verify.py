"""Full verification of a ledger database: everything recomputed, nothing trusted.

Works on a bare SQLite connection and the ledger's public checkpoint key, so it needs
nothing from the store (no import of :mod:`.store`) and runs the same on a read-only
connection (``ledger verify``) as inside a writer. The first problem raises
:class:`LedgerIntegrityError`, naming the entry when one can be named. In order:

1. SQLite's own ``integrity_check``;
2. the schema, compared semantically (missing or changed append-only triggers,
   unexpected tables, ...) and the ``meta`` rows;
3. the stored checkpoints' signatures, order and columns;
4. every entry, streamed in order: ``seq`` is the next number, fields are text, data is
   canonical JSON, the leaf hash matches the content, ``ledger:*`` entries replay;
5. every checkpoint found anywhere (the table, ``ledger-checkpoint.latest``, notes the
   caller saved elsewhere, the witness) is signed by this ledger's key, not larger than
   the tree, and its root is the root of that many entries; a note in the latest file or
   the witness must also be one of the stored checkpoints (rows cannot quietly vanish);
6. coverage: a ledger with entries and no checkpoint, or with entries after its latest
   checkpoint while no run is writing them, fails;
7. the ``requests`` and ``artifacts`` tables equal the replay; artifact files re-hash.

Speed: the entries are checked in one pass by :mod:`.entries` (with a second interpreter
for a big ledger), while SQLite's integrity check runs on a second connection (SQLite
releases the GIL); whatever is found, the entry named is always the first bad one.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacykit.errors import LedgerIntegrityError
from privacykit.ledger import merkle
from privacykit.ledger.artifacts import sha256_file
from privacykit.ledger.checkpoint import Checkpoint, verify_checkpoint_note
from privacykit.ledger.checkpoints import LATEST_CHECKPOINT_FILE, Witness, read_note_file
from privacykit.ledger.entries import (
    PARALLEL_FROM,
    Found,
    Verified,
    bad,
    canonical_scan,
    check_entries,
)
from privacykit.ledger.records import VerifyReport
from privacykit.ledger.replay import (
    ARTIFACT_COLUMNS,
    REQUEST_COLUMNS,
)
from privacykit.ledger.schema import meta_problems, schema_problems

__all__ = [
    "PARALLEL_FROM",
    "Trust",
    "Verified",
    "canonical_scan",
    "verify_database",
    "verify_since",
]


@dataclass(frozen=True)
class Trust:
    """What a ledger is checked against: its checkpoint key and origin, and the ``meta``
    rows it must hold (None: not compared, for a verifier that only has the public key)."""

    public_key: bytes
    origin: str
    meta: Mapping[str, str] | None = None


class _IntegrityCheck:
    """``PRAGMA integrity_check`` of the database file on its own read-only connection in a
    thread (inline for a database without a file)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._problem: str | None = None
        self._error: BaseException | None = None
        rows = conn.execute("PRAGMA database_list").fetchall()
        path = next((row[2] for row in rows if row[1] == "main"), "")
        self._thread: threading.Thread | None = None
        if path:
            self._thread = threading.Thread(
                target=self._run, args=(path,), name="ledger-integrity", daemon=True
            )
            self._thread.start()
        else:
            self._problem = self._check(conn)

    @staticmethod
    def _check(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("PRAGMA integrity_check(1)").fetchone()
        return None if row is not None and row[0] == "ok" else str(row and row[0])

    def _run(self, path: str) -> None:
        try:
            uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30.0)
            try:
                self._problem = self._check(conn)
            finally:
                conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by raise_if_damaged
            self._error = exc

    def raise_if_damaged(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise LedgerIntegrityError(
                f"the ledger database is damaged: {type(error).__name__}"
            ) from None
        if self._problem is not None:
            raise LedgerIntegrityError(f"the ledger database is damaged: {self._problem}")


def _structure(conn: sqlite3.Connection, trust: Trust, checks: list[str]) -> None:
    differences = schema_problems(conn)
    if differences:
        raise bad(f"the database schema was changed: {'; '.join(differences)}")
    checks.append("schema and append-only triggers")
    if trust.meta is not None:
        wrong = meta_problems(conn, trust.meta)
        if wrong:
            raise bad(f"the ledger's metadata was changed: {'; '.join(wrong)}")
        checks.append("metadata")


def verify_database(
    conn: sqlite3.Connection,
    *,
    home: Path,
    trust: Trust,
    saved: Sequence[tuple[str, str]] = (),
    witness: Witness | None = None,
    check_artifacts: bool = True,
    writing_after: int | None = None,
    writer: str | None = None,
) -> tuple[VerifyReport, Verified]:
    """Verify the ledger on ``conn`` (see the module docstring); return what was checked
    and the verified state.

    ``saved`` are ``(label, note)`` pairs kept elsewhere (``--checkpoint`` files).
    ``writing_after``: entries after this seq are being written by a live run (``writer``
    names it) and need no checkpoint yet; None means no run is writing."""
    checks: list[str] = []
    # SQLite's own check runs on a second connection while Python replays the entries
    # (SQLite releases the GIL): its verdict still comes first.
    integrity = _IntegrityCheck(conn)
    try:
        _structure(conn, trust, checks)
        state = Verified(merkle.MerkleTree())
        state.stored = _stored_checkpoints(conn, trust, [])
        check_entries(conn, state)
    except BaseException:
        integrity.raise_if_damaged()
        raise
    integrity.raise_if_damaged()
    checks.insert(0, "sqlite integrity")
    checks.append("checkpoint signatures")
    tree, stored = state.tree, state.stored
    size = len(tree)
    checks.append("entry hashes and order")

    for cp in stored:
        _check_against_tree(tree, stored, cp)
    checks.append("checkpoint roots")

    stored_notes = {found.note for found in stored}
    if _check_latest_file(home, trust, state):
        checks.append("latest checkpoint file")
    for label, note in saved:
        _check_against_tree(tree, stored, _parse(trust, note, label))
    if saved:
        checks.append("saved checkpoints")
    witnessed: list[Found] = []
    if witness is not None:
        for item in witness.notes():
            label = f"witness note {item.name}"
            found = _parse(trust, item.note, label)
            if found.size != item.size:
                raise bad(f"{label} is named for size {item.size} but signed at {found.size}")
            _check_against_tree(tree, [*stored, *witnessed], found)
            witnessed.append(found)
        for found in witnessed:
            # After every note was held against the tree, so a rewrite is named by its range.
            if found.note not in stored_notes:
                raise bad(
                    f"{found.label} (size {found.size}) is not among the ledger's stored "
                    "checkpoints: checkpoint rows were removed"
                )
        checks.append("witness")

    covered = stored[-1].size if stored else 0
    limit = size if writing_after is None else min(size, writing_after)
    if covered < limit:
        if not stored:
            raise bad(
                f"the ledger has {size} entries but no signed checkpoint covers them and no "
                "run is writing them: an interrupted first run (resume it: a run ends with a "
                "checkpoint), checkpoints removed, or entries added outside privacykit",
                1,
            )
        raise bad(
            f"entries {covered + 1}..{size} are not covered by any signed checkpoint and no "
            "run is writing them: an interrupted run (resume it: a run ends with a "
            "checkpoint), or entries added outside privacykit; after checking them, "
            "`privacykit ledger checkpoint` signs them",
            covered + 1,
        )
    checks.append("checkpoint coverage")

    _check_derived(conn, state, None)
    checks.append("derived tables")

    if check_artifacts:
        _check_artifact_files(home / "artifacts", state.artifacts)
        checks.append("artifact hashes")

    def as_checkpoint(found: Found) -> Checkpoint:
        return Checkpoint(found.size, found.root, found.note, trust.origin, _ts(conn, found.size))

    report = VerifyReport(
        entries=size,
        requests=len(state.requests),
        checkpoints=len(stored),
        artifacts=len(state.artifacts),
        root=tree.root(),
        latest_checkpoint=as_checkpoint(stored[-1]) if stored else None,
        saved_checkpoints=len(saved),
        checks=tuple(checks),
        home=str(home),
        witness=str(witness.directory) if witness is not None else None,
        witnessed=len(witnessed),
        latest_witnessed=max((w.size for w in witnessed), default=None),
        unsigned_from=covered + 1 if covered < size else None,
        writer=writer if covered < size else None,
    )
    return report, state


def verify_since(
    conn: sqlite3.Connection,
    state: Verified,
    *,
    home: Path,
    trust: Trust,
    witness: Witness | None = None,
) -> Verified:
    """Extend ``state`` (verified earlier in this process) with everything written since,
    before a checkpoint is signed: the schema and metadata, new checkpoint rows, every new
    entry (content, hash, order, replay), the derived rows those entries touched and the
    tables' sizes, the latest file and the witness's largest note. Mutates ``state``;
    after a failure, throw it away."""
    _structure(conn, trust, [])
    state.stored = _stored_checkpoints(conn, trust, state.stored)
    previous_artifacts = len(state.artifacts)
    touched = check_entries(conn, state)
    for cp in state.stored:
        _check_against_tree(state.tree, state.stored, cp)
    _check_latest_file(home, trust, state)
    if witness is not None:
        for item in witness.largest():
            found = _parse(trust, item.note, f"witness note {item.name}")
            _check_against_tree(state.tree, state.stored, found)
    _check_derived(conn, state, touched, previous_artifacts)
    _check_artifact_files(home / "artifacts", state.artifacts[previous_artifacts:])
    return state


def _check_latest_file(home: Path, trust: Trust, state: Verified) -> bool:
    latest_path = home / LATEST_CHECKPOINT_FILE
    if not latest_path.exists():
        return False
    note = read_note_file(latest_path, LATEST_CHECKPOINT_FILE)
    found = _parse(trust, note, LATEST_CHECKPOINT_FILE)
    _check_against_tree(state.tree, state.stored, found)
    if found.note not in {cp.note for cp in state.stored}:
        raise bad(f"{LATEST_CHECKPOINT_FILE} is not among the stored checkpoints")
    return True


def _ts(conn: sqlite3.Connection, size: int) -> str:
    row = conn.execute("SELECT ts FROM entries WHERE seq = ?", (size,)).fetchone()
    return str(row[0]) if row else ""


def _parse(trust: Trust, note: str, label: str) -> Found:
    try:
        origin, size, root = verify_checkpoint_note(note, trust.public_key)
    except LedgerIntegrityError as exc:
        raise bad(f"{label}: {exc}") from None
    if origin != trust.origin:
        raise bad(f"{label} belongs to another ledger (origin differs)")
    return Found(label, size, root, note)


def _check_against_tree(tree: merkle.MerkleTree, stored: list[Found], found: Found) -> None:
    size = len(tree)
    if found.size > size:
        raise bad(
            f"the ledger has {size} entries but {found.label} was signed at {found.size}: "
            "entries were removed from the end (or the ledger was rolled back)",
            size + 1,
        )
    if tree.root(found.size) != found.root:
        good = max(
            (cp.size for cp in stored if cp.size < found.size and tree.root(cp.size) == cp.root),
            default=0,
        )
        raise bad(
            f"entries {good + 1}..{found.size} do not match {found.label} (an entry in this "
            "range was changed, inserted, removed or reordered)",
            good + 1,
        )


def _stored_checkpoints(conn: sqlite3.Connection, trust: Trust, known: list[Found]) -> list[Found]:
    """The stored checkpoints, ``known`` ones (checked before) followed by the newer rows."""
    found = list(known)
    previous_size = found[-1].size if found else 0
    count = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    if count < len(found):
        raise bad(f"signed checkpoint #{count + 1} is missing (checkpoint rows were removed)")
    for cid, size, root_hex, note in conn.execute(
        "SELECT id, size, root, note FROM checkpoints WHERE id > ? ORDER BY id", (len(found),)
    ):
        if cid != len(found) + 1:
            # Rows are only ever appended, so ids run 1, 2, 3...: a gap is a removed row.
            raise bad(f"signed checkpoint #{len(found) + 1} is missing (the next stored is #{cid})")
        label = f"signed checkpoint #{cid}"
        if not isinstance(note, str):
            raise bad(f"{label} is malformed")
        item = _parse(trust, note, label)
        if item.size != size or not isinstance(root_hex, str) or item.root.hex() != root_hex:
            raise bad(f"{label}: its columns do not match its signed note")
        if item.size < previous_size:
            raise bad(f"{label} is smaller than the checkpoint before it")
        previous_size = item.size
        found.append(item)
    return found


def _check_derived(
    conn: sqlite3.Connection, state: Verified, touched: set[str] | None, artifacts_from: int = 0
) -> None:
    """The ``requests`` and ``artifacts`` tables equal the replay: every row (``touched``
    None), or the rows of the ``touched`` requests, the artifacts from index
    ``artifacts_from`` on, and both tables' sizes."""
    requests, last_seq_of = state.requests, state.last_seq_of
    columns = ", ".join(REQUEST_COLUMNS)
    seen: set[str] = set()
    if touched is None:
        rows = conn.execute(f"SELECT {columns} FROM requests")
    else:
        chosen = sorted(touched)
        rows = conn.execute(
            f"SELECT {columns} FROM requests WHERE request_id IN "
            f"({', '.join('?' for _ in chosen)})",
            chosen,
        )
    for values in rows:
        row = dict(zip(REQUEST_COLUMNS, values, strict=True))
        rid = row["request_id"]
        expected = requests.get(rid)
        if expected is None:
            raise bad(f"requests table has {str(rid)[:64]!r}, which no entry created")
        if row != expected:
            fields = sorted(k for k in REQUEST_COLUMNS if row[k] != expected[k])
            raise bad(
                f"requests row {rid} does not match its entries ({', '.join(fields)})",
                last_seq_of.get(rid),
            )
        seen.add(rid)
    for rid in requests if touched is None else touched:
        if rid not in seen:
            raise bad(f"request {rid} is missing from the requests table", last_seq_of.get(rid))
    count = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    if count != len(requests):
        raise bad("the requests table has rows no entry created")
    columns = ", ".join(ARTIFACT_COLUMNS)
    artifacts = state.artifacts
    if artifacts_from < len(artifacts):
        since = artifacts[artifacts_from]["seq"]
    else:
        since = (artifacts[-1]["seq"] + 1) if artifacts else 0
    stored = [
        dict(zip(ARTIFACT_COLUMNS, values, strict=True))
        for values in conn.execute(
            f"SELECT {columns} FROM artifacts WHERE seq >= ? ORDER BY seq", (since,)
        )
    ]
    by_seq = {row["seq"]: row for row in artifacts if row["seq"] >= since}
    for row in stored:
        if by_seq.get(row["seq"]) != row:
            raise bad("artifacts table does not match the entries", row["seq"])
    if len(stored) != len(by_seq):
        missing = sorted(set(by_seq) - {row["seq"] for row in stored})
        raise bad("artifact is missing from the artifacts table", missing[0] if missing else None)
    count = conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
    if count != len(artifacts):
        raise bad("the artifacts table has rows no entry created")


def _check_artifact_files(directory: Path, artifacts: list[dict[str, Any]]) -> None:
    checked: set[tuple[str, str]] = set()
    for row in artifacts:
        key = (row["sha256"], row["suffix"])
        if key in checked:
            continue
        path = directory / f"{row['sha256']}{row['suffix']}"
        try:
            actual = sha256_file(path)
        except OSError:
            raise bad(f"artifact file {path.name} is missing", row["seq"]) from None
        if actual != row["sha256"]:
            raise bad(f"artifact file {path.name} does not match its sha256", row["seq"])
        checked.add(key)
