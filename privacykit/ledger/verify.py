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

Speed: one pass over the entries with the C JSON scanner, one canonical-encoder call per
4,096 entries (see :func:`canonical.is_canonical_batch`) and the Merkle tree built level
by level at the end; SQLite's integrity check runs meanwhile on a second connection (it
releases the GIL). From :data:`PARALLEL_FROM` entries on, a full verification also checks
the entries' canonical form in a second interpreter (:func:`canonical_scan`, started with
this package's own code) while this one hashes and replays them. Whenever anything is
amiss (a byte that is not UTF-8 included), the careful single pass runs again from the
start, so the entry named is always the first bad one.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacykit.errors import LedgerError, LedgerIntegrityError
from privacykit.ledger import merkle
from privacykit.ledger.artifacts import sha256_file
from privacykit.ledger.canonical import (
    canonical_json,
    encode_basestring,
    is_canonical_batch,
    scan_json,
)
from privacykit.ledger.checkpoint import Checkpoint, verify_checkpoint_note
from privacykit.ledger.checkpoints import LATEST_CHECKPOINT_FILE, Witness, read_note_file
from privacykit.ledger.records import PHASES, RESULTS, VerifyReport
from privacykit.ledger.replay import (
    ARTIFACT_COLUMNS,
    ARTIFACT_KEY,
    REQUEST_COLUMNS,
    RESERVED_PREFIX,
    apply_artifact,
    apply_request_entry,
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

_BATCH = 4096


@dataclass(frozen=True)
class Trust:
    """What a ledger is checked against: its checkpoint key and origin, and the ``meta``
    rows it must hold (None: not compared, for a verifier that only has the public key)."""

    public_key: bytes
    origin: str
    meta: Mapping[str, str] | None = None


@dataclass
class _Found:
    """A checkpoint from somewhere: its label for messages, size, root and note."""

    label: str
    size: int
    root: bytes
    note: str


def _bad(message: str, entry: int | None = None) -> LedgerIntegrityError:
    if entry is not None:
        message = f"entry {entry}: {message}"
    return LedgerIntegrityError(message, entry=entry)


@dataclass
class Verified:
    """What a verification established, so a writer can extend it before signing
    (:func:`verify_since`) instead of starting over: the tree rebuilt from content, the
    replay of the ``ledger:*`` entries, and the stored checkpoints checked so far."""

    tree: merkle.MerkleTree
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    last_seq_of: dict[str, int] = field(default_factory=dict)
    stored: list[_Found] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.tree)


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
        raise _bad(f"the database schema was changed: {'; '.join(differences)}")
    checks.append("schema and append-only triggers")
    if trust.meta is not None:
        wrong = meta_problems(conn, trust.meta)
        if wrong:
            raise _bad(f"the ledger's metadata was changed: {'; '.join(wrong)}")
        checks.append("metadata")


#: From this many entries on, a full verification checks the entries' canonical form in a
#: second process while this one hashes and replays them (starting one costs ~0.3 s).
PARALLEL_FROM = 200_000


def _entries(conn: sqlite3.Connection, state: Verified) -> set[str]:
    """Check and replay every entry after ``state.size`` (see :func:`_replay`). A large
    full verification shares the work with a second process; whenever anything is amiss
    the whole replay runs again here, in order, so the first bad entry is the one named."""
    if state.size == 0:
        touched = _entries_in_parallel(conn, state)
        if touched is not None:
            return touched
    try:
        return _replay(conn, state, fast=True)
    except _NotText:
        return _replay(conn, state, fast=False)


def _database_path(conn: sqlite3.Connection) -> str:
    rows = conn.execute("PRAGMA database_list").fetchall()
    return next((str(row[2]) for row in rows if row[1] == "main"), "")


def _entries_in_parallel(conn: sqlite3.Connection, state: Verified) -> set[str] | None:
    """The replay with the canonical-form check in a second process (a fresh interpreter
    running :func:`canonical_scan` on its own read-only connection: only when this
    connection has nothing uncommitted the other could not see). None when it does not
    apply, or when anything needs the careful pass."""
    path = _database_path(conn)
    count = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    if not path or conn.in_transaction or count < PARALLEL_FROM:
        return None
    import json
    import subprocess
    import sys

    # The same code as this process: the package directory comes first on the path.
    root = str(Path(__file__).resolve().parents[2])
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from privacykit.ledger.verify import canonical_scan; "
        "print(json.dumps(canonical_scan(sys.argv[2])))"
    )
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", code, root, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        try:
            touched: set[str] | None = _replay(conn, state, fast=True, canonical=False)
        except (LedgerIntegrityError, _NotText):
            touched = None
        out, _ = child.communicate(timeout=3600)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    try:
        checked, bad = json.loads(out)
    except (ValueError, TypeError):
        checked, bad = -1, None
    if touched is not None and bad is None and checked == state.size:
        return touched
    # Something is amiss (or the other process could not tell): start over, carefully.
    state.tree = merkle.MerkleTree()
    state.requests.clear()
    state.artifacts.clear()
    state.last_seq_of.clear()
    return None


def canonical_scan(path: str) -> tuple[int, int | None]:
    """In a second process: read every entry's data from the database at ``path`` and
    return ``(entries read, first seq whose data is not exactly one canonical JSON object
    or None)``; ``(-1, None)`` when the database cannot be read here."""
    try:
        conn = sqlite3.connect(
            "file:" + urllib.parse.quote(path) + "?mode=ro", uri=True, timeout=30.0
        )
    except sqlite3.Error:
        return -1, None
    values: list[Any] = []
    texts: list[str] = []
    seqs: list[int] = []

    def first_bad() -> int | None:
        if values and not is_canonical_batch(values, texts):
            for index, value in enumerate(values):
                if canonical_json(value) != texts[index]:
                    return seqs[index]
        del values[:], texts[:], seqs[:]
        return None

    count = 0
    try:
        for seq, text in conn.execute("SELECT seq, data FROM entries ORDER BY seq"):
            try:
                data, end = scan_json(text, 0)
            except (StopIteration, ValueError, TypeError):
                return count, seq
            if type(data) is not dict or end != len(text):
                return count, seq
            values.append(data)
            texts.append(text)
            seqs.append(seq)
            count += 1
            if len(values) >= _BATCH and (bad := first_bad()) is not None:
                return count, bad
        return count, first_bad()
    except sqlite3.Error:
        return -1, None
    finally:
        conn.close()


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
        _entries(conn, state)
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
    witnessed: list[_Found] = []
    if witness is not None:
        for item in witness.notes():
            label = f"witness note {item.name}"
            found = _parse(trust, item.note, label)
            if found.size != item.size:
                raise _bad(f"{label} is named for size {item.size} but signed at {found.size}")
            _check_against_tree(tree, [*stored, *witnessed], found)
            witnessed.append(found)
        for found in witnessed:
            # After every note was held against the tree, so a rewrite is named by its range.
            if found.note not in stored_notes:
                raise _bad(
                    f"{found.label} (size {found.size}) is not among the ledger's stored "
                    "checkpoints: checkpoint rows were removed"
                )
        checks.append("witness")

    covered = stored[-1].size if stored else 0
    limit = size if writing_after is None else min(size, writing_after)
    if covered < limit:
        if not stored:
            raise _bad(
                f"the ledger has {size} entries but no signed checkpoint covers them and no "
                "run is writing them: an interrupted first run (resume it: a run ends with a "
                "checkpoint), checkpoints removed, or entries added outside privacykit",
                1,
            )
        raise _bad(
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

    def as_checkpoint(found: _Found) -> Checkpoint:
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
    touched = _entries(conn, state)
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
        raise _bad(f"{LATEST_CHECKPOINT_FILE} is not among the stored checkpoints")
    return True


def _ts(conn: sqlite3.Connection, size: int) -> str:
    row = conn.execute("SELECT ts FROM entries WHERE seq = ?", (size,)).fetchone()
    return str(row[0]) if row else ""


def _parse(trust: Trust, note: str, label: str) -> _Found:
    try:
        origin, size, root = verify_checkpoint_note(note, trust.public_key)
    except LedgerIntegrityError as exc:
        raise _bad(f"{label}: {exc}") from None
    if origin != trust.origin:
        raise _bad(f"{label} belongs to another ledger (origin differs)")
    return _Found(label, size, root, note)


def _check_against_tree(tree: merkle.MerkleTree, stored: list[_Found], found: _Found) -> None:
    size = len(tree)
    if found.size > size:
        raise _bad(
            f"the ledger has {size} entries but {found.label} was signed at {found.size}: "
            "entries were removed from the end (or the ledger was rolled back)",
            size + 1,
        )
    if tree.root(found.size) != found.root:
        good = max(
            (cp.size for cp in stored if cp.size < found.size and tree.root(cp.size) == cp.root),
            default=0,
        )
        raise _bad(
            f"entries {good + 1}..{found.size} do not match {found.label} (an entry in this "
            "range was changed, inserted, removed or reordered)",
            good + 1,
        )


def _stored_checkpoints(
    conn: sqlite3.Connection, trust: Trust, known: list[_Found]
) -> list[_Found]:
    """The stored checkpoints, ``known`` ones (checked before) followed by the newer rows."""
    found = list(known)
    previous_size = found[-1].size if found else 0
    count = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    if count < len(found):
        raise _bad(f"signed checkpoint #{count + 1} is missing (checkpoint rows were removed)")
    for cid, size, root_hex, note in conn.execute(
        "SELECT id, size, root, note FROM checkpoints WHERE id > ? ORDER BY id", (len(found),)
    ):
        if cid != len(found) + 1:
            # Rows are only ever appended, so ids run 1, 2, 3...: a gap is a removed row.
            raise _bad(
                f"signed checkpoint #{len(found) + 1} is missing (the next stored is #{cid})"
            )
        label = f"signed checkpoint #{cid}"
        if not isinstance(note, str):
            raise _bad(f"{label} is malformed")
        item = _parse(trust, note, label)
        if item.size != size or not isinstance(root_hex, str) or item.root.hex() != root_hex:
            raise _bad(f"{label}: its columns do not match its signed note")
        if item.size < previous_size:
            raise _bad(f"{label} is smaller than the checkpoint before it")
        previous_size = item.size
        found.append(item)
    return found


class _NotText(Exception):
    """A field is not valid UTF-8: redo the pass byte-wise to name the entry."""


def _replay(
    conn: sqlite3.Connection, state: Verified, *, fast: bool, canonical: bool = True
) -> set[str]:
    """Check every entry after ``state.size`` and fold it into ``state``; returns the ids
    of the requests whose ``ledger:*`` entries were replayed.

    The hot loop of verification, written for speed: the leaf hash is computed inline
    (the same bytes as :func:`fast_entry_canonical_bytes`, with the request id's and the
    phase's JSON encodings reused from the previous entry), and the canonical form of
    ordinary entries is checked :data:`_BATCH` at a time (:func:`is_canonical_batch`)."""
    requests, artifacts, last_seq_of = state.requests, state.artifacts, state.last_seq_of
    touched: set[str] = set()
    leaves = bytearray()
    scan, enc, sha = scan_json, encode_basestring, hashlib.sha256
    phase_json = {phase: enc(phase) for phase in PHASES}
    values: list[Any] = []
    texts: list[str] = []
    seqs: list[int] = []
    expected = state.size + 1
    last_rid: object = None
    rid_json = ""

    def flush() -> None:
        # The canonical form of the ordinary entries collected so far (in seq order);
        # without ``canonical`` another process checks it (see _entries).
        if values and canonical and not is_canonical_batch(values, texts):
            for index, value in enumerate(values):
                if canonical_json(value) != texts[index]:
                    raise _bad("data is not canonical JSON", seqs[index])
        del values[:], texts[:], seqs[:]

    if not fast:
        conn.text_factory = bytes
    try:
        cursor = conn.execute(
            "SELECT seq, request_id, ts, step_key, phase, data, leaf FROM entries "
            "WHERE seq >= ? ORDER BY seq",
            (expected,),
        )
        try:
            for seq, rid, ts, key, phase, text, leaf in cursor:
                if seq != expected:
                    flush()
                    if isinstance(seq, int) and seq > expected:
                        raise _bad(
                            f"missing (the next stored entry is {seq}): an entry was deleted",
                            expected,
                        )
                    raise _bad(
                        f"unexpected sequence number {seq!r} (inserted or reordered)", expected
                    )
                if not fast:
                    try:
                        rid, ts, key, phase, text = (
                            rid.decode(),
                            ts.decode(),
                            key.decode(),
                            phase.decode(),
                            text.decode(),
                        )
                    except (AttributeError, UnicodeDecodeError):
                        flush()
                        raise _bad("a field is not valid text", seq) from None
                # A field that is not text (a BLOB) fails in the encoder or the scanner.
                try:
                    data, end = scan(text, 0)
                    if rid != last_rid:
                        last_rid, rid_json = rid, enc(rid)
                    # (The leading NUL is RFC 6962's leaf prefix, encoded with the rest.)
                    computed = sha(
                        (
                            f'\x00{{"data":{text},"phase":{phase_json[phase]},'
                            f'"request_id":{rid_json},"seq":{seq},"step_key":{enc(key)},'
                            f'"ts":{enc(ts)}}}'
                        ).encode()
                    ).digest()
                except (StopIteration, ValueError, KeyError, TypeError):
                    data = None
                if type(data) is not dict or end != len(text):
                    flush()
                    if not all(type(field) is str for field in (rid, ts, key, phase, text)):
                        raise _bad("a field is not valid text", seq)
                    raise _bad("phase or data is malformed (not one JSON object)", seq)
                if computed != leaf:
                    flush()
                    raise _bad(
                        "content does not match its leaf hash (changed, moved or inserted)", seq
                    )
                if key.startswith(RESERVED_PREFIX):
                    # Rare (requests, statuses, artifacts): checked on their own.
                    if canonical and canonical_json(data) != text:
                        flush()
                        raise _bad("data is not canonical JSON", seq)
                    try:
                        if key == ARTIFACT_KEY:
                            if rid not in requests:
                                raise ValueError("artifact for a request that was never created")
                            artifacts.append(apply_artifact(seq, rid, ts, data))
                        else:
                            requests[rid] = apply_request_entry(
                                requests.get(rid), rid, ts, key, data
                            )
                    except ValueError as exc:
                        flush()
                        raise _bad(f"{key} does not replay: {exc}", seq) from None
                    last_seq_of[rid] = seq
                    touched.add(rid)
                else:
                    if rid not in requests:
                        flush()
                        raise _bad("belongs to a request that was never created", seq)
                    if phase == "outcome" and data.get("result") not in RESULTS:
                        flush()
                        raise _bad("outcome without a valid result", seq)
                    if canonical:
                        values.append(data)
                        texts.append(text)
                        seqs.append(seq)
                        if len(values) >= _BATCH:
                            flush()
                leaves += computed
                expected += 1
        except sqlite3.OperationalError as exc:
            if fast and "decode" in str(exc).lower():
                raise _NotText from None
            raise
        flush()
    finally:
        conn.text_factory = str
    if state.size == 0:
        state.tree = merkle.MerkleTree.from_leaf_bytes(leaves)
    else:
        for start in range(0, len(leaves), merkle.HASH_SIZE):
            state.tree.append(bytes(leaves[start : start + merkle.HASH_SIZE]))
    return touched


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
            raise _bad(f"requests table has {str(rid)[:64]!r}, which no entry created")
        if row != expected:
            fields = sorted(k for k in REQUEST_COLUMNS if row[k] != expected[k])
            raise _bad(
                f"requests row {rid} does not match its entries ({', '.join(fields)})",
                last_seq_of.get(rid),
            )
        seen.add(rid)
    for rid in requests if touched is None else touched:
        if rid not in seen:
            raise _bad(f"request {rid} is missing from the requests table", last_seq_of.get(rid))
    count = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    if count != len(requests):
        raise _bad("the requests table has rows no entry created")
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
            raise _bad("artifacts table does not match the entries", row["seq"])
    if len(stored) != len(by_seq):
        missing = sorted(set(by_seq) - {row["seq"] for row in stored})
        raise _bad("artifact is missing from the artifacts table", missing[0] if missing else None)
    count = conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
    if count != len(artifacts):
        raise _bad("the artifacts table has rows no entry created")


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
            raise _bad(f"artifact file {path.name} is missing", row["seq"]) from None
        if actual != row["sha256"]:
            raise _bad(f"artifact file {path.name} does not match its sha256", row["seq"])
        checked.add(key)


def open_error(exc: BaseException) -> LedgerError:
    """A damaged database read as an integrity error, anything else as a ledger error."""
    if isinstance(exc, UnicodeDecodeError) or any(
        marker in str(exc) for marker in ("malformed", "not a database", "corrupt")
    ):
        return LedgerIntegrityError(f"the ledger database is damaged: {type(exc).__name__}")
    return LedgerError(f"ledger database error: {exc}")
