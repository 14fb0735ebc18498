"""The ledger: a tamper-evident, privacy-preserving, resumable record of every request.

Owns ``<home>/ledger.sqlite3`` (SQLite through sqlite-utils, WAL, owner-only) and the
files beside it: the subject-reference secret, the Ed25519 checkpoint key and its
verifier key, the latest signed checkpoint, and ``artifacts/``.

Source of truth is one append-only table, ``entries``: triggers refuse UPDATE and DELETE
and any INSERT that is not exactly the next ``seq``. Each entry is a leaf of an RFC 6962
Merkle tree (``merkle.leaf_hash(entry_canonical_bytes(entry))``). Request status,
extensions, identity verification and artifact registrations are entries too; the
``requests`` and ``artifacts`` tables are derived from them (see :mod:`.replay`) and
:meth:`Ledger.verify` checks that they match the replay. Checkpoints (tree size and root,
signed with Ed25519 as C2SP signed notes) are stored append-only and, for a second
witness, in ``ledger-checkpoint.latest``.

Threads: one SQLite connection opened with ``check_same_thread=False`` and every use of it
serialised by one re-entrant lock. SQLite admits one writer at a time anyway, each ledger
call is well under a millisecond next to a Zendesk round trip, and one connection means a
thread always reads what any thread has committed, with no SQLITE_BUSY between our own
threads. Other processes (a second ``privacykit`` run) are handled by WAL, ``BEGIN
IMMEDIATE`` and a busy timeout.

Durability: ``synchronous=FULL``, and every :meth:`Ledger.record` commits before it
returns, so an ``intent`` is on disk before the destructive call it announces.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from privacykit import __version__, clock
from privacykit.errors import (
    HTTPStatusError,
    LedgerError,
    LedgerIntegrityError,
    UsageError,
)
from privacykit.ledger import merkle
from privacykit.ledger.canonical import (
    canonical_json,
    fast_entry_canonical_bytes,
    normalise_data,
)
from privacykit.ledger.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    verify_checkpoint_note,
)
from privacykit.ledger.dates import MAX_EXTENSION_MONTHS, due_date, parse_date
from privacykit.ledger.files import create_private_file, ensure_private_dir
from privacykit.ledger.guard import PrivacyGuard, looks_personal
from privacykit.ledger.records import (
    KINDS,
    OPEN_STATUSES,
    PHASES,
    RESULTS,
    STATUSES,
    ArtifactRecord,
    Entry,
    RequestRecord,
    StepInfo,
    StepState,
    VerifyReport,
)
from privacykit.ledger.replay import (
    ARTIFACT_COLUMNS,
    ARTIFACT_KEY,
    EXTENSION_KEY,
    REQUEST_COLUMNS,
    REQUEST_KEY,
    RESERVED_PREFIX,
    STATUS_KEY,
    VERIFIED_KEY,
    apply_artifact,
    apply_request_entry,
    valid_artifact_kind,
    valid_suffix,
)
from privacykit.ledger.subject import (
    SECRET_FILE,
    compute_subject_ref,
    is_subject_ref,
    load_or_create_secret,
)

__all__ = ["DB_FILE", "LATEST_CHECKPOINT_FILE", "SCHEMA_VERSION", "Ledger", "Step"]

DB_FILE = "ledger.sqlite3"
LATEST_CHECKPOINT_FILE = "ledger-checkpoint.latest"
ARTIFACTS_DIR = "artifacts"
SCHEMA_VERSION = "1"
MAX_DATA_BYTES = 1 << 20
MAX_STEP_KEY = 200
_HASH_CHUNK = 1 << 20
_PAGE = 2000
_ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_SCHEMA_SQL = """
CREATE TRIGGER IF NOT EXISTS entries_append_only_insert BEFORE INSERT ON entries
WHEN NEW.seq IS NULL OR NEW.seq != (SELECT COALESCE(MAX(seq), 0) + 1 FROM entries)
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: seq must be the next number'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS meta_append_only_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is append-only'); END;
CREATE TRIGGER IF NOT EXISTS meta_append_only_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is append-only'); END;
"""
# A checkpoint's time is that of the last entry it covers: signed through the tree, unlike
# a time column would be.
_CHECKPOINT_QUERY = (
    "SELECT COALESCE(e.ts, ''), c.size, c.root, c.note FROM checkpoints c "
    "LEFT JOIN entries e ON e.seq = c.size"
)
_SCHEMA_QUERY = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
_TRIGGERS = (
    "entries_append_only_insert",
    "entries_append_only_update",
    "entries_append_only_delete",
    "checkpoints_append_only_update",
    "checkpoints_append_only_delete",
    "meta_append_only_update",
    "meta_append_only_delete",
)


def _utc_now() -> datetime:
    return clock.now()


def _format_ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise LedgerError("ledger clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _definitely_not_applied(exc: BaseException) -> bool:
    """Did the failed call certainly leave Zendesk unchanged? A 4xx answer (including 429)
    means Zendesk refused it. Anything else (5xx, a dropped connection, a bug after the
    call, an interrupt) may have happened after the change was made."""
    return isinstance(exc, HTTPStatusError) and 400 <= exc.status_code < 500


def _create_schema(db: sqlite_utils.Database) -> None:
    """Create the tables, indexes and append-only triggers (idempotent). Also used on an
    in-memory database to know exactly what the schema must be (see :func:`expected_schema`)."""
    conn = db.conn
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("entries").create(
        {
            "seq": int,
            "request_id": str,
            "ts": str,
            "step_key": str,
            "phase": str,
            "data": str,
            "leaf": bytes,
        },
        pk="seq",
        not_null={"request_id", "ts", "step_key", "phase", "data", "leaf"},
        if_not_exists=True,
    )
    db.table("entries").create_index(
        ["request_id", "step_key", "seq"], index_name="entries_by_step", if_not_exists=True
    )
    db.table("requests").create(
        {
            "request_id": str,
            "kind": str,
            "subject_ref": str,
            "received_at": str,
            "identity_verified_at": str,
            "extension_months": int,
            "extension_reason": str,
            "due_date": str,
            "status": str,
            "status_reason": str,
            "operator": str,
            "playbook_name": str,
            "playbook_sha256": str,
            "tool_version": str,
            "batch_id": str,
            "created_at": str,
            "updated_at": str,
            "closed_at": str,
        },
        pk="request_id",
        not_null={
            "kind",
            "subject_ref",
            "received_at",
            "extension_months",
            "due_date",
            "status",
            "tool_version",
            "created_at",
            "updated_at",
        },
        if_not_exists=True,
    )
    db.table("requests").create_index(
        ["kind", "subject_ref", "status"],
        index_name="requests_by_subject",
        if_not_exists=True,
    )
    db.table("artifacts").create(
        {
            "seq": int,
            "sha256": str,
            "request_id": str,
            "kind": str,
            "suffix": str,
            "size": int,
            "created_at": str,
        },
        pk="seq",
        not_null={"sha256", "request_id", "kind", "suffix", "size", "created_at"},
        if_not_exists=True,
    )
    db.table("artifacts").create_index(
        ["sha256"], index_name="artifacts_by_sha", if_not_exists=True
    )
    db.table("checkpoints").create(
        {"id": int, "size": int, "root": str, "note": str},
        pk="id",
        not_null={"size", "root", "note"},
        if_not_exists=True,
    )
    for statement in _SCHEMA_SQL.split(";\n"):
        if statement.strip():
            conn.execute(statement)


@functools.cache
def expected_schema() -> tuple[tuple[str, str, str, str], ...]:
    """Every schema object (type, name, table, SQL) a ledger database must have, exactly."""
    conn = sqlite3.connect(":memory:")
    try:
        _create_schema(sqlite_utils.Database(conn, execute_plugins=False))
        return tuple(sorted(conn.execute(_SCHEMA_QUERY).fetchall()))
    finally:
        conn.close()


class Step:
    """Handle for one step inside :meth:`Ledger.step`: call :meth:`done` with the outcome."""

    def __init__(self, ledger: Ledger, request_id: str, step_key: str, intent_seq: int) -> None:
        self.ledger = ledger
        self.request_id = request_id
        self.step_key = step_key
        self.intent_seq = intent_seq
        self.outcome_seq: int | None = None

    @property
    def finished(self) -> bool:
        return self.outcome_seq is not None

    def _outcome(self, result: str, data: dict[str, Any] | None) -> int:
        if self.finished:
            raise LedgerError(f"step {self.step_key} already has an outcome")
        payload = dict(data or {})
        payload["result"] = result
        self.outcome_seq = self.ledger.record(self.request_id, self.step_key, "outcome", payload)
        return self.outcome_seq

    def done(self, data: dict[str, Any] | None = None) -> int:
        """Record success (``result: ok``) with ids/statuses from Zendesk's answer."""
        return self._outcome("ok", data)

    def fail(self, data: dict[str, Any] | None = None, *, may_have_applied: bool = False) -> int:
        """Record failure: ``failed`` (certainly not applied, the step may be retried) or,
        with ``may_have_applied``, ``unknown`` (reconcile before repeating)."""
        return self._outcome("unknown" if may_have_applied else "failed", data)


class Ledger:
    """The privacykit ledger. Open with :meth:`open`, close with :meth:`close` (or ``with``)."""

    def __init__(
        self,
        home: Path,
        conn: sqlite3.Connection,
        secret: bytes,
        signer: CheckpointSigner,
        clock: Callable[[], datetime],
    ) -> None:
        self.home = home
        self.path = home / DB_FILE
        self.artifacts_dir = home / ARTIFACTS_DIR
        self._conn = conn
        self._db = sqlite_utils.Database(conn, execute_plugins=False)
        self._secret = secret
        self._signer = signer
        self._clock = clock
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._tree: merkle.MerkleTree | None = None
        self.guard = PrivacyGuard()
        # The process's own Zendesk credentials must never be written, whatever their form.
        self.guard.forbid(
            os.environ.get("ZENDESK_API_TOKEN"), os.environ.get("ZENDESK_OAUTH_TOKEN")
        )

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls, home: Path | str | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> Ledger:
        """Open (creating on first use) the ledger in ``home`` (default: ``PRIVACYKIT_HOME``).

        Creates the database (0600), the subject-reference secret and the Ed25519
        checkpoint key (0600, public key exported to ``ledger-checkpoint.pub``)."""
        if home is None:
            from privacykit.config import privacykit_home

            home = privacykit_home()
        home = ensure_private_dir(Path(home))
        db_path = home / DB_FILE
        # An empty file is a ledger whose creation was interrupted: still fresh.
        fresh = not db_path.exists() or db_path.stat().st_size == 0
        if fresh:
            # A new ledger gets new keys (before its database, so a crash in between leaves
            # no database without keys); an existing one must find the keys it was made with.
            secret = load_or_create_secret(home / SECRET_FILE)
            signer = CheckpointSigner.load_or_create(home)
            fd = os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        else:
            for name in (SECRET_FILE, "ledger-checkpoint.key"):
                if not (home / name).exists():
                    raise LedgerError(
                        f"{home / name} is missing: restore it from backup (without it the "
                        "ledger's subject references or checkpoints cannot be checked)"
                    )
            secret = load_or_create_secret(home / SECRET_FILE)
            signer = CheckpointSigner.load_or_create(home)
        os.chmod(db_path, 0o600)
        try:
            conn = sqlite3.connect(
                str(db_path), check_same_thread=False, isolation_level=None, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger database: {exc}") from None
        ledger = cls(home, conn, secret, signer, clock or _utc_now)
        try:
            ledger._setup()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            # (A damaged schema can make even SQLite's error message invalid UTF-8.)
            conn.close()
            raise _database_error(exc) from None
        except BaseException:
            conn.close()
            raise
        return ledger

    def _setup(self) -> None:
        conn, db = self._conn, self._db
        conn.execute("PRAGMA busy_timeout = 30000")
        db.enable_wal()
        # FULL: each commit (and so each intent) is fsync'd before record() returns.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._write():
            _create_schema(db)
            expected = {
                "schema_version": SCHEMA_VERSION,
                "origin": self._signer.origin,
                "checkpoint_public_key": self._signer.public_key.hex(),
                "subject_key_id": self._subject_key_id(),
            }
            stored = {row[0]: row[1] for row in conn.execute("SELECT key, value FROM meta")}
            for key, value in expected.items():
                if key not in stored:
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
                elif stored[key] != value:
                    raise LedgerError(
                        f"this ledger was created with a different {key.replace('_', ' ')}: "
                        "restore the original key files from backup"
                    )
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.chmod(0o600)

    def _subject_key_id(self) -> str:
        # Identifies the secret without revealing it, so a swapped key file is noticed
        # (it would silently break resume by changing every subject reference).
        return hmac.new(self._secret, b"privacykit subject key id", hashlib.sha256).hexdigest()[:16]

    def close(self) -> None:
        """Close the database (checkpointing the WAL into the main file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger(home={str(self.home)!r})"

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and an IMMEDIATE transaction; commit on success. Nested uses (a
        batch, a helper inside a public call) join the outer transaction."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise LedgerError("the ledger is closed")
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
                if isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError):
                    raise _database_error(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise _database_error(exc) from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise LedgerError("the ledger is closed")
            try:
                yield self._conn
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                raise _database_error(exc) from None

    @contextmanager
    def batch(self) -> Iterator[Ledger]:
        """Group many entries into one transaction (bulk imports, benchmarks). Intents
        are still committed before :meth:`record` returns: the batch is committed there and
        a new one begun. Other threads wait while a batch is open."""
        with self._lock, self._write():
            self._batch_depth += 1
            try:
                yield self
            finally:
                self._batch_depth -= 1

    # ------------------------------------------------------------------ appending

    def _now(self) -> str:
        return _format_ts(self._clock())

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
            shown = repr(request_id) if _ID_SHAPE.match(request_id) else "with that id"
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
                self._db.table("artifacts").insert(row)
                return seq, row
            try:
                row = apply_request_entry(current, request_id, ts, step_key, value)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            self._db.table("requests").upsert(row, pk="request_id")
            return seq, row

    def record(
        self, request_id: str, step_key: str, phase: str, data: dict[str, Any] | None = None
    ) -> int:
        """Append one entry and commit it; returns its ``seq``.

        ``phase`` is ``intent`` (about to do something destructive), ``outcome`` (what
        happened; ``data["result"]`` is ``ok`` unless given as ``failed`` or ``unknown``)
        or ``info``. ``data`` holds ids, counts, statuses, hashes and keyed references
        only: the privacy guard refuses anything that looks like an email, phone number or
        token. An intent is durable (fsync'd) before this returns, even inside
        :meth:`batch`."""
        if phase not in PHASES:
            raise LedgerError(f"phase must be one of {', '.join(PHASES)}")
        if not isinstance(step_key, str) or not step_key or len(step_key) > MAX_STEP_KEY:
            raise LedgerError(
                f"a step key is a non-empty string of at most {MAX_STEP_KEY} characters"
            )
        if step_key.startswith(RESERVED_PREFIX):
            raise LedgerError(f"step keys starting with {RESERVED_PREFIX!r} are the ledger's own")
        self.guard.check(step_key, "step_key")
        value, _ = self._encode(data)
        if phase == "outcome":
            result = value.setdefault("result", "ok")
            if result not in RESULTS:
                raise LedgerError(f"an outcome's result is one of {', '.join(RESULTS)}")
        text = canonical_json(value)
        with self._write() as conn:
            self._require_request(conn, request_id)
            seq, _ = self._append(conn, request_id, step_key, phase, text)
            if phase == "intent" and self._batch_depth:
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
        return seq

    # ------------------------------------------------------------------ requests

    def subject_ref(self, normalised_identifier: str) -> str:
        """The keyed reference (``sr1:<hex>``) for a normalised identifier such as
        ``email:jane@example.com``. The identifier itself is never stored."""
        return compute_subject_ref(self._secret, normalised_identifier)

    def create_request(
        self,
        kind: str,
        subject_ref: str,
        *,
        received_at: date | str,
        identity_verified_at: date | str | None = None,
        playbook_name: str | None = None,
        playbook_sha256: str | None = None,
        operator: str | None = None,
        batch_id: str | None = None,
        tool_version: str | None = None,
        status: str = "open",
    ) -> str:
        """Record a new request and return its id (``req-YYYYMMDD-<8 hex>``)."""
        if kind not in KINDS:
            raise UsageError(f"request kind must be one of {', '.join(KINDS)}")
        if not is_subject_ref(subject_ref):
            raise UsageError("subject_ref must be a keyed reference from ledger.subject_ref()")
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        received = parse_date(received_at, "received_at")
        data: dict[str, Any] = {
            "kind": kind,
            "subject_ref": subject_ref,
            "received_at": received.isoformat(),
            "identity_verified_at": (
                None
                if identity_verified_at is None
                else parse_date(identity_verified_at, "identity_verified_at").isoformat()
            ),
            "due_date": due_date(received).isoformat(),
            "status": status,
            "operator": operator if operator is not None else _default_operator(),
            "playbook_name": playbook_name,
            "playbook_sha256": playbook_sha256,
            "tool_version": tool_version or __version__,
            "batch_id": batch_id,
        }
        with self._write() as conn:
            while True:
                request_id = f"req-{received:%Y%m%d}-{secrets.token_hex(4)}"
                exists = conn.execute(
                    "SELECT 1 FROM requests WHERE request_id = ?", (request_id,)
                ).fetchone()
                if not exists:
                    break
            self._ledger_entry(request_id, REQUEST_KEY, data)
        return request_id

    def get_request(self, request_id: str) -> RequestRecord:
        """The request (``UsageError`` if the id is unknown)."""
        with self._read() as conn:
            return _request_record(self._require_request(conn, request_id))

    def list_requests(
        self,
        status: str | Iterable[str] | None = None,
        kind: str | None = None,
        overdue: bool = False,
        *,
        today: date | None = None,
    ) -> list[RequestRecord]:
        """Requests, oldest due first, filtered by status(es), kind, and overdue (open and
        past the due date)."""
        statuses = [status] if isinstance(status, str) else list(status or [])
        for value in statuses:
            if value not in STATUSES:
                raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        if kind is not None and kind not in KINDS:
            raise UsageError(f"kind must be one of {', '.join(KINDS)}")
        where, params = [], []
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if overdue:
            where.append(f"status IN ({', '.join('?' for _ in OPEN_STATUSES)}) AND due_date < ?")
            params.extend(OPEN_STATUSES)
            params.append((today or date.today()).isoformat())
        sql = "SELECT * FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due_date, created_at, request_id"
        with self._read():
            return [_request_record(row) for row in self._db.query(sql, params)]

    def find_open_request(self, kind: str, subject_ref: str) -> RequestRecord | None:
        """The most recent unfinished request of ``kind`` about ``subject_ref`` (so a batch
        given the same input again resumes it), or None."""
        with self._read():
            rows = list(
                self._db.query(
                    "SELECT * FROM requests WHERE kind = ? AND subject_ref = ? AND status IN "
                    f"({', '.join('?' for _ in OPEN_STATUSES)}) "
                    "ORDER BY created_at DESC, request_id DESC LIMIT 1",
                    [kind, subject_ref, *OPEN_STATUSES],
                )
            )
        return _request_record(rows[0]) if rows else None

    def set_status(self, request_id: str, status: str, reason: str | None = None) -> None:
        """Record a status change (``open``, ``in_progress``, ``needs_review``,
        ``pending_compliance``, ``completed``, ``failed``)."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        self._ledger_entry(request_id, STATUS_KEY, {"status": status, "reason": reason})

    def set_identity_verified(self, request_id: str, verified_at: date | str) -> None:
        """Record the date the subject's identity was verified."""
        when = parse_date(verified_at, "identity_verified_at").isoformat()
        self._ledger_entry(request_id, VERIFIED_KEY, {"identity_verified_at": when})

    def extend(self, request_id: str, months: int, reason: str) -> RequestRecord:
        """Extend the deadline by ``months`` (Art. 12(3): at most two in total, with a reason
        that must also be given to the subject). Returns the updated request."""
        if not isinstance(months, int) or isinstance(months, bool) or months < 1:
            raise UsageError("an extension is a whole number of months, at least 1")
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("an extension needs a reason (Art. 12(3))")
        with self._write() as conn:
            row = self._require_request(conn, request_id)
            if row["status"] not in OPEN_STATUSES:
                raise UsageError(f"request {request_id} is {row['status']}; it cannot be extended")
            total = row["extension_months"] + months
            if total > MAX_EXTENSION_MONTHS:
                raise UsageError(
                    f"Art. 12(3) allows at most {MAX_EXTENSION_MONTHS} extra months; "
                    f"request {request_id} already has {row['extension_months']}"
                )
            received = parse_date(row["received_at"])
            data = {
                "months": months,
                "extension_months": total,
                "reason": reason.strip(),
                "due_date": due_date(received, total).isoformat(),
            }
            _, new_row = self._ledger_entry(request_id, EXTENSION_KEY, data)
        return _request_record(new_row)

    # ------------------------------------------------------------------ steps

    def step_info(self, request_id: str, step_key: str) -> StepInfo:
        """Everything about one step: state, attempts, last intent and outcome data."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, phase, data FROM entries WHERE request_id = ? AND step_key = ? "
                "AND phase IN ('intent', 'outcome') ORDER BY seq",
                (request_id, step_key),
            ).fetchall()
        state: StepState = "none"
        attempts, intent, outcome, last_result = 0, None, None, None
        intent_seq = outcome_seq = None
        for seq, phase, text in rows:
            data = json.loads(text)
            if phase == "intent":
                attempts += 1
                intent, intent_seq, state = data, seq, "intent"
                outcome, outcome_seq, last_result = None, None, None
            else:
                outcome, outcome_seq = data, seq
                last_result = data.get("result", "ok")
                state = {"ok": "done", "failed": "none"}.get(last_result, "intent")  # type: ignore[assignment]
        return StepInfo(
            state=state,
            attempts=attempts,
            intent=intent,
            outcome=outcome,
            last_result=last_result,
            intent_seq=intent_seq,
            outcome_seq=outcome_seq,
        )

    def step_state(self, request_id: str, step_key: str) -> StepState:
        """``none`` (run it), ``intent`` (outcome unknown: reconcile with Zendesk before
        repeating anything destructive) or ``done`` (skip it)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT phase, data FROM entries WHERE request_id = ? AND step_key = ? "
                "AND phase IN ('intent', 'outcome') ORDER BY seq DESC LIMIT 1",
                (request_id, step_key),
            ).fetchone()
        if row is None:
            return "none"
        if row[0] == "intent":
            return "intent"
        result = json.loads(row[1]).get("result", "ok")
        return "done" if result == "ok" else "none" if result == "failed" else "intent"

    def step_outcome(self, request_id: str, step_key: str) -> dict[str, Any] | None:
        """The data of the step's successful outcome, or None unless it is ``done``."""
        info = self.step_info(request_id, step_key)
        return info.outcome if info.state == "done" else None

    @contextmanager
    def step(
        self,
        request_id: str,
        step_key: str,
        intent: dict[str, Any] | None = None,
        *,
        allow_repeat: bool = False,
    ) -> Iterator[Step]:
        """Record an intent (durably) before the block and an outcome after it::

            with ledger.step(rid, "soft_delete:user:12", {"user_id": 12}) as step:
                response = client.soft_delete_user(12)
                step.done({"status": 200})

        Leaving the block normally without an outcome records ``done`` with no data. If an
        exception escapes, the outcome is ``failed`` when Zendesk certainly did nothing
        (a 4xx answer: the step may be retried, ``step_state`` reads ``none``) and
        ``unknown`` otherwise (``step_state`` stays ``intent``: reconcile first). If even
        that cannot be written, the bare intent says the same thing.

        A step that is already ``done`` or in ``intent`` is refused unless
        ``allow_repeat`` (use it for idempotent steps, or after reconciling)."""
        state = self.step_state(request_id, step_key)
        if state != "none" and not allow_repeat:
            raise LedgerError(
                f"step {step_key} of {request_id} is already {state}; "
                + ("skip it" if state == "done" else "reconcile it with Zendesk first")
            )
        handle = Step(
            self, request_id, step_key, self.record(request_id, step_key, "intent", intent)
        )
        try:
            yield handle
        except BaseException as exc:
            if not handle.finished and self._conn is not None:
                result = "failed" if _definitely_not_applied(exc) else "unknown"
                data: dict[str, Any] = {"error": type(exc).__name__}
                if isinstance(exc, HTTPStatusError):
                    data["status"] = exc.status_code
                try:
                    handle._outcome(result, data)
                except Exception:  # noqa: BLE001 - never mask the step's own error
                    pass
            raise
        if not handle.finished:
            handle.done()

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
            tree = self._tree or merkle.MerkleTree()
            for (leaf,) in conn.execute(
                "SELECT leaf FROM entries WHERE seq > ? ORDER BY seq", (len(tree),)
            ):
                tree.append(bytes(leaf))
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

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_public_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key that signs this ledger's checkpoints."""
        return self._signer.public_key

    @property
    def checkpoint_verifier_key(self) -> str:
        """The same key as a signed-note verifier key (the content of ``ledger-checkpoint.pub``)."""
        return self._signer.verifier_key

    @property
    def origin(self) -> str:
        """The origin line of this ledger's checkpoints."""
        return self._signer.origin

    def checkpoints(self) -> list[Checkpoint]:
        """All stored checkpoints, oldest first."""
        with self._read() as conn:
            rows = conn.execute(_CHECKPOINT_QUERY + " ORDER BY c.id").fetchall()
        return [
            Checkpoint(size, bytes.fromhex(root), note, self._signer.origin, ts)
            for ts, size, root, note in rows
        ]

    def latest_checkpoint(self) -> Checkpoint | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree size and root (call at the end of every run).

        Before signing, the entries added since the previous checkpoint are rehashed from
        their content and the previous checkpoint is checked to be a prefix of this tree,
        so a checkpoint never launders tampering. If nothing was added since the last
        checkpoint, that one is returned."""
        with self._write() as conn:
            previous = conn.execute(_CHECKPOINT_QUERY + " ORDER BY c.id DESC LIMIT 1").fetchone()
            start = previous[1] if previous else 0
            for seq, rid, ts, step_key, phase, data, leaf in conn.execute(
                "SELECT seq, request_id, ts, step_key, phase, data, leaf FROM entries "
                "WHERE seq > ? ORDER BY seq",
                (start,),
            ):
                computed = merkle.leaf_hash(
                    fast_entry_canonical_bytes(seq, rid, ts, step_key, phase, data)
                )
                if computed != bytes(leaf):
                    raise LedgerIntegrityError(
                        f"entry {seq} does not match its leaf hash; refusing to sign a checkpoint",
                        entry=seq,
                    )
            tree = self._current_tree()
            self._check_latest_file(tree)
            if previous is not None:
                _, old_size, old_root, _ = previous
                if old_size > len(tree) or tree.root(old_size).hex() != old_root:
                    raise LedgerIntegrityError(
                        "the ledger no longer extends its last checkpoint; run `privacykit "
                        "ledger verify`",
                        entry=min(old_size, len(tree)) or None,
                    )
                if old_size == len(tree):
                    ts, size, root, note = previous
                    return Checkpoint(size, bytes.fromhex(root), note, self._signer.origin, ts)
            size = len(tree)
            root = tree.root(size)
            note = self._signer.sign(size, root)
            last = conn.execute("SELECT ts FROM entries WHERE seq = ?", (size,)).fetchone()
            ts = last[0] if last else ""
            conn.execute(
                "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)",
                (size, root.hex(), note),
            )
            if self._batch_depth:
                # Inside a batch: commit now, so the file below never runs ahead of the table.
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
        # A second witness outside the database: truncating both is needed to hide a tail.
        create_private_file(self.home / LATEST_CHECKPOINT_FILE, note.encode("utf-8"), replace=True)
        return Checkpoint(size, root, note, self._signer.origin, ts)

    def _check_latest_file(self, tree: merkle.MerkleTree) -> None:
        """Refuse to sign over a ledger that lost entries the latest-checkpoint file covers."""
        path = self.home / LATEST_CHECKPOINT_FILE
        if not path.exists():
            return
        _, size, root = self._verify_note(path.read_text(encoding="utf-8"))
        if size > len(tree) or tree.root(size) != root:
            raise LedgerIntegrityError(
                f"the ledger does not extend {LATEST_CHECKPOINT_FILE} (size {size}); run "
                "`privacykit ledger verify`",
                entry=min(size, len(tree)) + 1 if size > len(tree) else None,
            )

    # ------------------------------------------------------------------ artifacts

    def add_artifact(self, request_id: str, path: Path | str, kind: str) -> str:
        """Copy the file at ``path`` to ``<home>/artifacts/<sha256><suffix>`` (0600), record
        it for the request and return its sha256. The original file name is not kept (it
        could name the subject); only its suffix (``.pdf``)."""
        source = Path(path)
        if not valid_artifact_kind(kind):
            raise UsageError("an artifact kind is a short lower-case word like 'report'")
        suffix = "".join(source.suffixes[-2:]).lower()
        if not valid_suffix(suffix):
            suffix = source.suffix.lower() if valid_suffix(source.suffix.lower()) else ""
        ensure_private_dir(self.artifacts_dir)
        tmp = self.artifacts_dir / f".incoming-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(source, "rb") as src:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as dst:
                    while chunk := src.read(_HASH_CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                        size += len(chunk)
                    dst.flush()
                    os.fsync(dst.fileno())
            sha = digest.hexdigest()
            target = self.artifacts_dir / f"{sha}{suffix}"
            if target.exists() and _sha256_file(target) == sha:
                tmp.unlink()
            else:
                os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise LedgerError(f"cannot store artifact: {exc.strerror}") from None
        self._ledger_entry(
            request_id, ARTIFACT_KEY, {"sha256": sha, "kind": kind, "suffix": suffix, "size": size}
        )
        return sha

    def artifacts(self, request_id: str | None = None) -> list[ArtifactRecord]:
        sql = "SELECT * FROM artifacts"
        params: list[Any] = []
        if request_id is not None:
            sql += " WHERE request_id = ?"
            params.append(request_id)
        with self._read():
            rows = list(self._db.query(sql + " ORDER BY seq", params))
        return [
            ArtifactRecord(
                path=self.artifacts_dir / f"{row['sha256']}{row['suffix']}",
                **{k: row[k] for k in ARTIFACT_COLUMNS},
            )
            for row in rows
        ]

    def artifact_path(self, sha256: str) -> Path:
        """Where the artifact with this sha256 is stored (``UsageError`` if unknown)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT suffix FROM artifacts WHERE sha256 = ? ORDER BY seq LIMIT 1", (sha256,)
            ).fetchone()
        if row is None:
            raise UsageError(f"no artifact {sha256} in the ledger")
        return self.artifacts_dir / f"{sha256}{row[0]}"

    # ------------------------------------------------------------------ verification

    def verify(
        self, *, saved_checkpoints: Iterable[str] = (), artifacts: bool = True
    ) -> VerifyReport:
        """Recompute everything; raise :class:`LedgerIntegrityError` at the first problem.

        Checks: the SQLite file's own integrity; every entry's seq is the next number,
        its data is canonical JSON and its leaf hash matches its content; every stored
        checkpoint's signature, that its root is the root of that many entries, and that
        each later checkpoint extends the earlier ones (RFC 6962 consistency proofs);
        ``saved_checkpoints`` (notes kept elsewhere) and ``ledger-checkpoint.latest``
        likewise, which detects a truncated tail; that the ``requests`` and ``artifacts``
        tables equal the replay of the entries; that artifacts re-hash to their names; and
        that the append-only triggers are in place. ``LedgerIntegrityError.entry`` names the
        first bad entry when one can be named."""
        from privacykit.ledger.verify import verify_ledger

        with self._lock:
            if self._conn is None:
                raise LedgerError("the ledger is closed")
            started = time.perf_counter()
            try:
                report = verify_ledger(self, self._conn, saved_checkpoints, artifacts)
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                raise LedgerIntegrityError(f"the ledger database is damaged: {exc}") from None
            return VerifyReport(
                entries=report.entries,
                requests=report.requests,
                checkpoints=report.checkpoints,
                artifacts=report.artifacts,
                root=report.root,
                latest_checkpoint=report.latest_checkpoint,
                saved_checkpoints=report.saved_checkpoints,
                seconds=time.perf_counter() - started,
                checks=report.checks,
            )

    def _verify_note(self, note: str) -> tuple[str, int, bytes]:
        origin, size, root = verify_checkpoint_note(note, self._signer.public_key)
        if origin != self._signer.origin:
            raise LedgerIntegrityError("checkpoint belongs to another ledger (origin differs)")
        return origin, size, root

    @staticmethod
    def _triggers() -> tuple[str, ...]:
        return _TRIGGERS


def _database_error(exc: BaseException) -> LedgerError:
    """One of our errors for an SQLite failure: damage is an integrity error."""
    if isinstance(exc, sqlite3.IntegrityError):
        return LedgerError(f"the ledger refused the change: {exc}")
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError) or any(
        marker in text for marker in ("malformed", "not a database", "corrupt")
    ):
        return LedgerIntegrityError(f"the ledger database is damaged: {type(exc).__name__}")
    return LedgerError(f"ledger database error: {text}")


def _default_operator() -> str:
    """The local user name (who ran it), unless it looks like something personal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
    return user if _ID_SHAPE.match(user) and looks_personal(user) is None else "unknown"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _request_record(row: dict[str, Any]) -> RequestRecord:
    values = {key: row[key] for key in REQUEST_COLUMNS}
    values["received_at"] = parse_date(row["received_at"])
    values["due_date"] = parse_date(row["due_date"])
    values["identity_verified_at"] = (
        parse_date(row["identity_verified_at"]) if row["identity_verified_at"] else None
    )
    return RequestRecord(**values)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    return _sha256_file(path)
