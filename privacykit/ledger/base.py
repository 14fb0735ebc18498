"""The ledger's core: one SQLite connection, transactions, appending and reading entries,
and the Merkle tree over them.

:class:`LedgerBase` is what the other parts of :class:`~privacykit.ledger.Ledger` build
on (requests in :mod:`.requests`, steps in :mod:`.steps`, signing checkpoints in
:mod:`.signing`; opening in :mod:`.store`). Source of truth is one append-only table,
``entries``: triggers refuse UPDATE and DELETE and any INSERT that is not exactly the next
``seq``. Each entry is a leaf of an RFC 6962 Merkle tree
(``merkle.leaf_hash(entry_canonical_bytes(entry))``). Request status, extensions, identity
verification and artifact registrations are entries too; the ``requests`` and
``artifacts`` tables are derived from them (:mod:`.replay`).

Threads: one SQLite connection opened with ``check_same_thread=False`` and every use of it
serialised by one re-entrant lock. SQLite admits one writer at a time anyway, each ledger
call is well under a millisecond next to a Zendesk round trip, and one connection means a
thread always reads what any thread has committed. Other processes are kept out by the
home's writer lock (:mod:`.lock`); readers use their own read-only connection (WAL).

Durability: ``synchronous=FULL``, and every :meth:`record` commits before it returns, so an
``intent`` is on disk before the destructive call it announces.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privacykit.errors import LedgerError, LedgerIntegrityError, UsageError
from privacykit.ledger import merkle
from privacykit.ledger.artifacts import ARTIFACTS_DIR
from privacykit.ledger.canonical import canonical_json, fast_entry_canonical_bytes, normalise_data
from privacykit.ledger.checkpoint import CheckpointSigner
from privacykit.ledger.checkpoints import Witness
from privacykit.ledger.guard import PrivacyGuard, looks_personal
from privacykit.ledger.lock import HomeLock
from privacykit.ledger.records import PHASES, RESULTS, Entry
from privacykit.ledger.replay import (
    ARTIFACT_KEY,
    EVIDENCE_KEY,
    REQUEST_KEY,
    RESERVED_PREFIX,
    STATUS_KEY,
    apply_artifact,
    apply_request_entry,
    carries_out,
)
from privacykit.ledger.schema import SCHEMA_VERSION
from privacykit.ledger.verify import Trust, Verified, verify_database, verify_since

__all__ = ["DB_FILE", "LedgerBase", "database_error", "format_ts"]

DB_FILE = "ledger.sqlite3"
MAX_DATA_BYTES = 1 << 20
MAX_STEP_KEY = 200
_PAGE = 2000
ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_REQUEST_UPSERT = (
    "INSERT OR REPLACE INTO requests (request_id, kind, subject_ref, received_at, "
    "identity_verified_at, extension_months, extension_reason, due_date, status, "
    "status_reason, operator, playbook_name, playbook_sha256, tool_version, batch_id, "
    "created_at, updated_at, closed_at) VALUES (:request_id, :kind, :subject_ref, "
    ":received_at, :identity_verified_at, :extension_months, :extension_reason, :due_date, "
    ":status, :status_reason, :operator, :playbook_name, :playbook_sha256, :tool_version, "
    ":batch_id, :created_at, :updated_at, :closed_at)"
)
_ARTIFACT_INSERT = (
    "INSERT INTO artifacts (seq, sha256, request_id, kind, suffix, size, created_at) "
    "VALUES (:seq, :sha256, :request_id, :kind, :suffix, :size, :created_at)"
)


def _no_data_unchanged(conn: sqlite3.Connection, request_id: str) -> bool:
    """What :func:`verify`'s replay tracks for ``request_id`` (``replay.note_entry``), read
    from the entries: no destructive intent, and the latest evidence
    record (a closing record aside) says ``no_data_found``. Asked only when a completed
    request is closed."""
    intents = conn.execute(
        "SELECT step_key FROM entries WHERE request_id = ? AND phase = 'intent'", (request_id,)
    )
    if any(carries_out(key, "intent") for (key,) in intents):
        return False
    row = conn.execute(
        "SELECT json_extract(data, '$.outcome') FROM entries WHERE request_id = ? "
        "AND step_key = ? AND json_extract(data, '$.outcome') IS NOT 'closed' "
        "ORDER BY seq DESC LIMIT 1",
        (request_id, EVIDENCE_KEY),
    ).fetchone()
    return row is not None and row[0] == "no_data_found"


def format_ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise LedgerError("ledger clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def database_error(exc: BaseException) -> LedgerError:
    """One of our errors for an SQLite failure: damage is an integrity error, a full disk
    says so plainly."""
    if isinstance(exc, sqlite3.IntegrityError):
        return LedgerError(f"the ledger refused the change: {exc}")
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError) or any(
        marker in text for marker in ("malformed", "not a database", "corrupt")
    ):
        return LedgerIntegrityError(f"the ledger database is damaged: {type(exc).__name__}")
    if "full" in text:
        return LedgerError(f"the ledger could not be written: {text} (nothing was lost)")
    return LedgerError(f"ledger database error: {text}")


class LedgerBase:
    """Connection, transactions, entries and the tree (see the module docstring)."""

    def __init__(
        self,
        home: Path,
        conn: sqlite3.Connection,
        secret: bytes | None,
        signer: CheckpointSigner | None,
        clock: Callable[[], datetime],
        *,
        home_lock: HomeLock | None = None,
        witness: Witness | None = None,
        readonly: bool = False,
    ) -> None:
        self.home = home
        self.path = home / DB_FILE
        self.artifacts_dir = home / ARTIFACTS_DIR
        self.readonly = readonly
        self.witness = witness
        self._conn: sqlite3.Connection | None = conn
        self._secret = secret
        self._signer = signer
        self._clock = clock
        self._home_lock = home_lock
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._tree: merkle.MerkleTree | None = None
        #: Entries after this seq were written through this object (its run is writing them).
        self._size_at_open = 0
        #: What a verification in this process established (extended before each signing).
        self._verified: Verified | None = None
        self.guard = PrivacyGuard()
        # The process's own Zendesk credentials must never be written, whatever their form.
        self.guard.forbid(
            os.environ.get("ZENDESK_API_TOKEN"), os.environ.get("ZENDESK_OAUTH_TOKEN")
        )

    def __repr__(self) -> str:
        return f"Ledger(home={str(self.home)!r})"

    # ------------------------------------------------------------------ trust

    def _expected_meta(self) -> dict[str, str]:
        assert self._signer is not None and self._secret is not None
        return {
            "schema_version": SCHEMA_VERSION,
            "origin": self._signer.origin,
            "checkpoint_public_key": self._signer.public_key.hex(),
            # Identifies the secret without revealing it, so a swapped key file is noticed
            # (it would silently break resume by changing every subject reference).
            "subject_key_id": hmac.new(
                self._secret, b"privacykit subject key id", hashlib.sha256
            ).hexdigest()[:16],
        }

    def _trust(self) -> Trust:
        assert self._signer is not None
        meta = self._expected_meta() if self._secret is not None else None
        return Trust(self._signer.public_key, self._signer.origin, meta)

    def _verify_before_signing(self) -> Verified:
        """Everything verified (fully the first time in this process, then what was written
        since) before a checkpoint puts this installation's signature on it."""
        conn = self._connection()
        try:
            if self._verified is None:
                _, state = verify_database(
                    conn,
                    home=self.home,
                    trust=self._trust(),
                    witness=self.witness,
                    # Artifact files are not in the tree (their hashes are): re-hashing every
                    # stored PDF is `ledger verify`'s job, not every run's.
                    check_artifacts=False,
                    writing_after=0,  # the checkpoint about to be signed covers the tail
                    writer="this run",
                )
            else:
                state = verify_since(
                    conn, self._verified, home=self.home, trust=self._trust(), witness=self.witness
                )
        except LedgerIntegrityError as exc:
            self._verified = None
            raise LedgerIntegrityError(
                f"refusing to sign a checkpoint over a ledger that does not verify: {exc}",
                entry=exc.entry,
            ) from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            self._verified = None
            raise database_error(exc) from None
        self._verified = state
        self._tree = state.tree.copy()
        return state

    # ------------------------------------------------------------------ transactions

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError("the ledger is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and an IMMEDIATE transaction; commit on success. Nested uses (a
        batch, a helper inside a public call) join the outer transaction."""
        with self._lock:
            conn = self._connection()
            if self.readonly:
                raise LedgerError("the ledger was opened read-only")
            if conn.in_transaction:
                yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise LedgerError(f"the ledger is busy or unwritable: {exc}") from None
            try:
                yield conn
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                    self._tree = None  # it may have been extended with rolled-back leaves
                if isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError):
                    raise database_error(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                    self._tree = None
                raise database_error(exc) from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                raise database_error(exc) from None

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Query rows as dicts (column name → value)."""
        with self._read() as conn:
            cursor = conn.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @contextmanager
    def batch(self) -> Iterator[Any]:
        """Group many entries into one transaction (bulk imports, benchmarks). Intents
        are still committed before :meth:`record` returns: the batch is committed there and
        a new one begun. Other threads wait while a batch is open."""
        with self._lock, self._write():
            self._batch_depth += 1
            try:
                yield self
            finally:
                self._batch_depth -= 1

    def _commit_inside_batch(self, conn: sqlite3.Connection) -> None:
        if self._batch_depth:
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")

    # ------------------------------------------------------------------ appending

    def _now(self) -> str:
        return format_ts(self._clock())

    def _append(
        self, conn: sqlite3.Connection, request_id: str, step_key: str, phase: str, data_json: str
    ) -> tuple[int, str]:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM entries").fetchone()[0]
        ts = self._now()
        leaf = merkle.leaf_hash(
            fast_entry_canonical_bytes(seq, request_id, ts, step_key, phase, data_json)
        )
        conn.execute(
            "INSERT INTO entries (seq, request_id, ts, step_key, phase, data, leaf) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, request_id, ts, step_key, phase, data_json, leaf),
        )
        return seq, ts

    def _encode(self, data: Any, where: str = "data") -> tuple[dict[str, Any], str]:
        value = normalise_data({} if data is None else data, where)
        if not isinstance(value, dict):
            raise LedgerError(f"{where} must be a JSON object")
        text = canonical_json(value)
        if len(text.encode("utf-8")) > MAX_DATA_BYTES:
            raise LedgerError(f"{where} is larger than {MAX_DATA_BYTES} bytes")
        self.guard.check(value, where)
        return value, text

    def _require_request(self, conn: sqlite3.Connection, request_id: str) -> dict[str, Any]:
        if not isinstance(request_id, str):
            raise UsageError("a request id is a string")
        cursor = conn.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,))
        row = cursor.fetchone()
        if row is None:
            # Echo the id only when it is one: a mistyped email must not reach stderr or logs.
            shown = repr(request_id) if ID_SHAPE.match(request_id) else "with that id"
            if looks_personal(request_id):
                shown = "with that id"
            raise UsageError(f"no request {shown} in the ledger")
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def _ledger_entry(
        self, request_id: str, step_key: str, data: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Append a ``ledger:*`` entry and update the derived table from it."""
        value, text = self._encode(data)
        with self._write() as conn:
            current = None if step_key == REQUEST_KEY else self._require_request(conn, request_id)
            seq, ts = self._append(conn, request_id, step_key, "info", text)
            if step_key == ARTIFACT_KEY:
                row = apply_artifact(seq, request_id, ts, value)
                conn.execute(_ARTIFACT_INSERT, row)
                return seq, row
            no_data = False
            if step_key == STATUS_KEY and current is not None and current["status"] == "completed":
                no_data = _no_data_unchanged(conn, request_id)
            try:
                row = apply_request_entry(
                    current, request_id, ts, step_key, value, no_data_unchanged=no_data
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            conn.execute(_REQUEST_UPSERT, row)
            return seq, row

    def record(
        self, request_id: str, step_key: str, phase: str, data: dict[str, Any] | None = None
    ) -> int:
        """Append one entry and commit it; returns its ``seq``.

        ``phase`` is ``intent`` (about to do something destructive), ``outcome`` (what
        happened; ``data["result"]`` is ``ok`` unless given as ``failed`` or ``unknown``)
        or ``info``. ``data`` holds ids, counts, statuses, hashes and keyed references
        only: the privacy guard refuses anything that looks like an email, phone number or
        token, and canonical JSON refuses floats. An intent is durable (fsync'd) before
        this returns, even inside :meth:`batch`."""
        if phase not in PHASES:
            raise LedgerError(f"phase must be one of {', '.join(PHASES)}")
        if not isinstance(step_key, str) or not step_key or len(step_key) > MAX_STEP_KEY:
            raise LedgerError(
                f"a step key is a non-empty string of at most {MAX_STEP_KEY} characters"
            )
        if step_key.startswith(RESERVED_PREFIX):
            raise LedgerError(f"step keys starting with {RESERVED_PREFIX!r} are the ledger's own")
        self.guard.check(step_key, "step_key")
        normalise_data(step_key, "step_key")
        value, text = self._encode(data)
        if phase == "outcome":
            result = value.setdefault("result", "ok")
            if result not in RESULTS:
                raise LedgerError(f"an outcome's result is one of {', '.join(RESULTS)}")
            text = canonical_json(value)
        with self._write() as conn:
            self._require_request(conn, request_id)
            seq, _ = self._append(conn, request_id, step_key, phase, text)
            if phase == "intent":
                self._commit_inside_batch(conn)
        return seq

    # ------------------------------------------------------------------ reading entries

    def entries(self, request_id: str | None = None) -> list[Entry]:
        """All entries (of one request), in order."""
        return list(self.iter_entries(request_id))

    def iter_entries(
        self, request_id: str | None = None, *, start: int = 1, stop: int | None = None
    ) -> Iterator[Entry]:
        """Entries with ``start <= seq <= stop`` (of one request), in order, streamed."""
        sql = "SELECT seq, request_id, ts, step_key, phase, data FROM entries WHERE seq >= ?"
        if stop is not None:
            sql += " AND seq <= ?"
        if request_id is not None:
            sql += " AND request_id = ?"
        sql += f" ORDER BY seq LIMIT {_PAGE}"
        # Page by seq so the lock is never held while the caller works on an entry.
        position = start
        while True:
            params: list[Any] = [position]
            if stop is not None:
                params.append(stop)
            if request_id is not None:
                params.append(request_id)
            with self._read() as conn:
                rows = conn.execute(sql, params).fetchall()
            for seq, rid, ts, step_key, phase, data in rows:
                yield Entry(seq, rid, ts, step_key, phase, json.loads(data))
            if len(rows) < _PAGE:
                return
            position = rows[-1][0] + 1

    def entry(self, seq: int) -> Entry:
        found = list(self.iter_entries(start=seq, stop=seq))
        if not found:
            raise UsageError(f"no entry {seq} in the ledger")
        return found[0]

    @property
    def size(self) -> int:
        """Number of entries (the Merkle tree size)."""
        with self._read() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0])

    # ------------------------------------------------------------------ Merkle tree

    def _current_tree(self) -> merkle.MerkleTree:
        """The tree over the stored leaf hashes, extended incrementally (verify() is the
        one that recomputes leaves from content)."""
        with self._read() as conn:
            tree = self._tree
            start = 0 if tree is None else len(tree)
            leaves = [
                row[0]
                for row in conn.execute(
                    "SELECT leaf FROM entries WHERE seq > ? ORDER BY seq", (start,)
                )
            ]
            if any(type(leaf) is not bytes or len(leaf) != merkle.HASH_SIZE for leaf in leaves):
                raise LedgerIntegrityError(
                    "a stored leaf hash is malformed: run `privacykit ledger verify`"
                )
            if tree is None:
                tree = merkle.MerkleTree.from_leaf_bytes(b"".join(leaves))
            else:
                for leaf in leaves:
                    tree.append(leaf)
            self._tree = tree
            return tree

    def _size_or_current(self, tree: merkle.MerkleTree, tree_size: int | None) -> int:
        size = len(tree) if tree_size is None else tree_size
        if not 0 <= size <= len(tree):
            raise UsageError(f"tree size {size} outside 0..{len(tree)}")
        return size

    def root(self, tree_size: int | None = None) -> bytes:
        """Merkle root of the first ``tree_size`` entries (default: all)."""
        with self._lock:
            tree = self._current_tree()
            return tree.root(self._size_or_current(tree, tree_size))

    def leaf_hash(self, seq: int) -> bytes:
        with self._lock:
            tree = self._current_tree()
            if not 1 <= seq <= len(tree):
                raise UsageError(f"no entry {seq} in the ledger")
            return tree.leaf(seq - 1)

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> list[bytes]:
        """Audit path proving entry ``seq`` (leaf index ``seq - 1``) is in the tree of the
        first ``tree_size`` entries (default: all); check with ``merkle.verify_inclusion``."""
        with self._lock:
            tree = self._current_tree()
            size = self._size_or_current(tree, tree_size)
            if not 1 <= seq <= size:
                raise UsageError(f"entry {seq} is not in a tree of size {size}")
            return tree.inclusion_proof(seq - 1, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the first ``old_size`` entries are a prefix of the first ``new_size``."""
        with self._lock:
            tree = self._current_tree()
            size = self._size_or_current(tree, new_size)
            if not 1 <= old_size <= size:
                raise UsageError(f"old size {old_size} outside 1..{size}")
            return tree.consistency_proof(old_size, size)
