"""Checking and replaying the entries: the hot loop of verification.

Owns :class:`Verified` (what a verification established, which a writer extends before
signing), :func:`check_entries` (every entry after a verified state: ``seq`` is the next
number, fields are text, data is exactly one canonical JSON object, the leaf hash matches
the content, ``ledger:*`` entries replay into the ``requests``/``artifacts`` rows) and
:func:`canonical_scan`, the part a second interpreter does for a big ledger. Used by
:mod:`.verify`; like it, it needs nothing from the store.

The loop is written for speed: the leaf hash is computed inline (the same bytes as
:func:`~privacykit.ledger.canonical.fast_entry_canonical_bytes`), the canonical form of
ordinary entries is checked :data:`_BATCH` at a time
(:func:`~privacykit.ledger.canonical.is_canonical_batch`), and from
:data:`PARALLEL_FROM` entries on that check runs in a second interpreter. Whenever
anything is amiss the careful single pass runs again from the start, so the entry named
is always the first bad one.
"""

from __future__ import annotations

import hashlib
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacykit.errors import LedgerIntegrityError
from privacykit.ledger import merkle
from privacykit.ledger.canonical import (
    canonical_json,
    encode_basestring,
    is_canonical_batch,
    scan_json,
)
from privacykit.ledger.records import PHASES, RESULTS
from privacykit.ledger.replay import (
    ARTIFACT_KEY,
    EVIDENCE_KEY,
    RESERVED_PREFIX,
    apply_artifact,
    apply_request_entry,
    note_entry,
)

__all__ = ["PARALLEL_FROM", "Found", "Verified", "bad", "canonical_scan", "check_entries"]

_BATCH = 4096


@dataclass
class Found:
    """A checkpoint from somewhere: its label for messages, size, root and note."""

    label: str
    size: int
    root: bytes
    note: str


def bad(message: str, entry: int | None = None) -> LedgerIntegrityError:
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
    stored: list[Found] = field(default_factory=list)
    no_data: dict[str, bool | None] = field(default_factory=dict)  # see replay.note_entry

    @property
    def size(self) -> int:
        return len(self.tree)


#: From this many entries on, a full verification checks the entries' canonical form in a
#: second process while this one hashes and replays them (starting one costs ~0.3 s).
PARALLEL_FROM = 200_000


def check_entries(conn: sqlite3.Connection, state: Verified) -> set[str]:
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
        "from privacykit.ledger.entries import canonical_scan; "
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
    state.no_data.clear()
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

    def firstbad() -> int | None:
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
            if len(values) >= _BATCH and (bad := firstbad()) is not None:
                return count, bad
        return count, firstbad()
    except sqlite3.Error:
        return -1, None
    finally:
        conn.close()


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
        # without ``canonical`` another process checks it (see check_entries).
        if values and canonical and not is_canonical_batch(values, texts):
            for index, value in enumerate(values):
                if canonical_json(value) != texts[index]:
                    raise bad("data is not canonical JSON", seqs[index])
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
                        raise bad(
                            f"missing (the next stored entry is {seq}): an entry was deleted",
                            expected,
                        )
                    raise bad(
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
                        raise bad("a field is not valid text", seq) from None
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
                        raise bad("a field is not valid text", seq)
                    raise bad("phase or data is malformed (not one JSON object)", seq)
                if computed != leaf:
                    flush()
                    raise bad(
                        "content does not match its leaf hash (changed, moved or inserted)", seq
                    )
                if key.startswith(RESERVED_PREFIX):
                    # Rare (requests, statuses, artifacts): checked on their own.
                    if canonical and canonical_json(data) != text:
                        flush()
                        raise bad("data is not canonical JSON", seq)
                    try:
                        if key == ARTIFACT_KEY:
                            if rid not in requests:
                                raise ValueError("artifact for a request that was never created")
                            artifacts.append(apply_artifact(seq, rid, ts, data))
                        else:
                            fits = state.no_data.get(rid) is True
                            requests[rid] = apply_request_entry(
                                requests.get(rid), rid, ts, key, data, no_data_unchanged=fits
                            )
                    except ValueError as exc:
                        flush()
                        raise bad(f"{key} does not replay: {exc}", seq) from None
                    last_seq_of[rid] = seq
                    touched.add(rid)
                else:
                    if rid not in requests:
                        flush()
                        raise bad("belongs to a request that was never created", seq)
                    if phase == "outcome" and data.get("result") not in RESULTS:
                        flush()
                        raise bad("outcome without a valid result", seq)
                    if phase == "intent" or key == EVIDENCE_KEY:
                        note_entry(state.no_data, rid, key, phase, data)
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
