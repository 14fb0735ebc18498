"""The ledger: a tamper-evident, privacy-preserving, resumable record of every request.

Owns ``<home>/ledger.sqlite3`` (SQLite, WAL, owner-only) and the files beside it: the
subject-reference secret, the Ed25519 checkpoint key and its verifier key, the latest
signed checkpoint, and ``artifacts/``. :class:`Ledger` is assembled from its parts: the
core (:mod:`.base`), requests (:mod:`.requests`), steps (:mod:`.steps`) and signing
checkpoints (:mod:`.signing`); this module opens and closes it, registers artifacts and
runs verification (:mod:`.verify`, which needs nothing from here).

Opening never repairs. A new home gets a new database with the hand-written schema
(:mod:`.schema`) and new keys; an existing database must have exactly that schema and its
``meta`` rows, or it is refused with :class:`LedgerIntegrityError` (exit 1) naming what
differs, until ``privacykit ledger verify`` (which opens read-only and checks without
refusing) has been run and the ledger restored. A writable ledger holds the home's
writer lock (:mod:`.lock`) until it is closed; a read-only one takes no lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from privacykit import clock
from privacykit.errors import ConfigError, LedgerError, LedgerIntegrityError, UsageError
from privacykit.ledger.artifacts import sha256_file, store_file
from privacykit.ledger.base import DB_FILE, database_error
from privacykit.ledger.checkpoint import KEY_FILE, CheckpointSigner
from privacykit.ledger.checkpoints import (
    LATEST_CHECKPOINT_FILE,
    Witness,
    read_note_file,
    witness_dir_from_env,
)
from privacykit.ledger.files import ensure_private_dir
from privacykit.ledger.lock import HomeLock, home_writer, lock_home
from privacykit.ledger.records import ArtifactRecord, VerifyReport
from privacykit.ledger.replay import ARTIFACT_COLUMNS, ARTIFACT_KEY
from privacykit.ledger.requests import RequestsMixin
from privacykit.ledger.schema import (
    SCHEMA_VERSION,
    create_schema,
    meta_problems,
    schema_problems,
)
from privacykit.ledger.signing import CheckpointsMixin
from privacykit.ledger.steps import Step, StepsMixin
from privacykit.ledger.subject import SECRET_FILE, load_or_create_secret
from privacykit.ledger.verify import verify_database

__all__ = [
    "DB_FILE",
    "LATEST_CHECKPOINT_FILE",
    "SCHEMA_VERSION",
    "Ledger",
    "Step",
    "sha256_file",
]

log = logging.getLogger("privacykit.ledger")
_UNSET: Any = object()


def _utc_now() -> datetime:
    return clock.now()


def _inside(path: Path, home: Path) -> bool:
    resolved, base = path.expanduser().resolve(), home.expanduser().resolve()
    return resolved == base or base in resolved.parents


def _describe(home: Path) -> str:
    from privacykit.config import describe_home, home_path

    return describe_home(home) if home == home_path() else str(home)


class Ledger(RequestsMixin, StepsMixin, CheckpointsMixin):
    """The privacykit ledger. Open with :meth:`open`, close with :meth:`close` (or ``with``)."""

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        home: Path | str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        readonly: bool = False,
        command: str | None = None,
        wait: bool = False,
        witness: Path | str | None = _UNSET,
        check: bool = True,
        require_witness: bool = True,
    ) -> Ledger:
        """Open the ledger in ``home`` (default: ``PRIVACYKIT_HOME``).

        Writable (the default): takes the home's writer lock (``command`` names this
        writer to a second one; ``wait`` waits for the holder instead of raising
        :class:`HomeBusyError`), and on first use creates the database (0600), the
        subject-reference secret and the Ed25519 checkpoint key. ``readonly``: no lock,
        nothing created; a home without a ledger is a :class:`ConfigError` ("no ledger
        at …", exit 2). ``witness`` is the witness directory (default
        ``PRIVACYKIT_WITNESS_DIR``; None for none): a writer refuses to start
        (:class:`ConfigError`, exit 2, before anything is written) when it is not a
        directory, unless ``require_witness=False`` (the audit, which reports it).
        ``check=False`` (read-only only) skips the structure check so :meth:`verify` can
        say what is wrong."""
        if home is None:
            from privacykit.config import privacykit_home

            home = privacykit_home(create=not readonly)
        home = Path(home)
        witness_dir = witness_dir_from_env() if witness is _UNSET else witness
        if witness_dir and _inside(Path(witness_dir), home):
            # Whoever can rewrite the home could rewrite such a witness too.
            raise ConfigError("PRIVACYKIT_WITNESS_DIR must be outside PRIVACYKIT_HOME")
        if readonly:
            return cls._open_readonly(home, clock, witness_dir, check)
        if not check:
            raise UsageError("only a read-only ledger can be opened without its checks")
        if witness_dir and require_witness and not Path(witness_dir).is_dir():
            # Found now, not at the run's final checkpoint after all its work.
            raise ConfigError(
                f"PRIVACYKIT_WITNESS_DIR {witness_dir} is not a directory (is the witness mounted?)"
            )
        ensure_private_dir(home)
        home_lock = lock_home(home, command, wait=wait)
        try:
            return cls._open_writable(home, clock, witness_dir, home_lock)
        except BaseException:
            home_lock.release()
            raise

    @classmethod
    def _open_writable(
        cls,
        home: Path,
        clock: Callable[[], datetime] | None,
        witness_dir: Path | str | None,
        home_lock: HomeLock,
    ) -> Ledger:
        db_path = home / DB_FILE
        # An empty file is a ledger whose creation was interrupted: still fresh.
        fresh = not db_path.exists() or db_path.stat().st_size == 0
        if fresh and (home / LATEST_CHECKPOINT_FILE).exists():
            # Not a new home: the ledger that signed this checkpoint is gone. Starting an
            # empty one in its place would hide that.
            raise cls._ledger_gone(home)
        if fresh:
            # A new ledger gets new keys (before its database, so a crash in between leaves
            # no database without keys); an existing one must find the keys it was made with.
            secret = load_or_create_secret(home / SECRET_FILE)
            signer = CheckpointSigner.load_or_create(home)
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        else:
            cls._require_keys(home)
            secret = load_or_create_secret(home / SECRET_FILE)
            signer = CheckpointSigner.load_or_create(home)
        os.chmod(db_path, 0o600)
        conn = cls._connect(db_path, readonly=False)
        witness = Witness(Path(witness_dir), signer.origin) if witness_dir else None
        ledger = cls(
            home, conn, secret, signer, clock or _utc_now, home_lock=home_lock, witness=witness
        )
        try:
            ledger._setup(fresh)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError):
                # (A damaged schema can make even SQLite's error message invalid UTF-8.)
                raise database_error(exc) from None
            raise
        return ledger

    @classmethod
    def _open_readonly(
        cls,
        home: Path,
        clock: Callable[[], datetime] | None,
        witness_dir: Path | str | None,
        check: bool,
    ) -> Ledger:
        db_path = home / DB_FILE
        if not db_path.is_file() or db_path.stat().st_size == 0:
            if (home / LATEST_CHECKPOINT_FILE).exists():
                # A deleted or emptied ledger is a verification failure (exit 1) that
                # ``ledger verify`` names, not "no ledger here" (exit 2).
                raise cls._ledger_gone(home)
            raise ConfigError(f"no ledger at {_describe(home)}")
        cls._require_keys(home)
        secret = load_or_create_secret(home / SECRET_FILE)
        signer = CheckpointSigner.load(home)
        conn = cls._connect(db_path, readonly=True)
        witness = Witness(Path(witness_dir), signer.origin) if witness_dir else None
        ledger = cls(home, conn, secret, signer, clock or _utc_now, witness=witness, readonly=True)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            if check:
                ledger._check_structure()
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError):
                raise database_error(exc) from None
            raise
        return ledger

    @staticmethod
    def _ledger_gone(home: Path) -> LedgerIntegrityError:
        return LedgerIntegrityError(
            f"{home / DB_FILE} is missing or empty but {LATEST_CHECKPOINT_FILE} shows a "
            "ledger was kept here: restore the ledger from backup"
        )

    @staticmethod
    def _require_keys(home: Path) -> None:
        for name in (SECRET_FILE, KEY_FILE):
            if not (home / name).exists():
                raise LedgerError(
                    f"{home / name} is missing: restore it from backup (without it the "
                    "ledger's subject references or checkpoints cannot be checked)"
                )

    @staticmethod
    def _connect(db_path: Path, *, readonly: bool) -> sqlite3.Connection:
        try:
            if readonly:
                uri = "file:" + os.path.abspath(db_path).replace("?", "%3F") + "?mode=ro"
                return sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None, timeout=30.0
                )
            return sqlite3.connect(
                str(db_path), check_same_thread=False, isolation_level=None, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger database: {exc}") from None

    def _check_structure(self) -> None:
        """Refuse a ledger whose schema or metadata is not exactly what it must be."""
        conn = self._connection()
        problems = schema_problems(conn)
        if not problems:
            expected = self._expected_meta()
            stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            for key in ("origin", "subject_key_id"):
                # Not damage but the wrong key files next to a good ledger.
                if key in stored and stored[key] != expected[key]:
                    raise LedgerError(
                        f"this ledger was created with a different {key.replace('_', ' ')}: "
                        "restore the original key files from backup"
                    )
            problems = meta_problems(conn, expected)
        if problems:
            raise LedgerIntegrityError(
                f"the ledger at {self.home} is damaged ({'; '.join(problems)}): it is not used "
                "until `privacykit ledger verify` passes"
            )

    def _setup(self, fresh: bool) -> None:
        conn = self._connection()
        conn.execute("PRAGMA busy_timeout = 30000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # FULL: each commit (and so each intent) is fsync'd before record() returns.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA foreign_keys = ON")
        if fresh or not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            with self._write():
                create_schema(conn)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", self._expected_meta().items()
                )
        else:
            self._check_structure()
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.chmod(0o600)
        size = self.size
        if self._home_lock is not None:
            # Everything written since this run took the home is its own, whichever ledger
            # object (the CLI's, the library's) wrote it.
            start = self._home_lock.shared.setdefault("ledger_size_at_start", size)
            size = start if isinstance(start, int) else size
        self._size_at_open = size

    def close(self, *, checkpoint: bool = True) -> None:
        """Close the database and give back the home's writer lock.

        A writable ledger that wrote entries not yet covered by a checkpoint signs one
        first, so no writer leaves an unsigned tail behind (``checkpoint=False`` skips it,
        for tests that tamper). If that fails while an exception is already propagating
        (the run failed), the failure is added to it as a note and logged instead of
        hiding it; otherwise it is raised, after closing."""
        pending = sys.exc_info()[1]
        failure: BaseException | None = None
        with self._lock:
            if self._conn is not None and checkpoint and not self.readonly:
                try:
                    latest = self.latest_checkpoint()
                    size = self.size
                    if size > self._size_at_open and (latest is None or latest.size < size):
                        self.checkpoint()
                except LedgerIntegrityError as exc:
                    # Nothing is signed over a ledger that does not verify; verification
                    # (ledger verify, audit) names the problem, so closing stays quiet.
                    log.error("no checkpoint signed on close: %s", exc)
                    if pending is not None:
                        pending.add_note(f"no checkpoint was signed: {exc}")
                except Exception as exc:  # noqa: BLE001 - reported below, after closing
                    failure = exc
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._home_lock is not None:
                self._home_lock.release()
                self._home_lock = None
        if failure is not None:
            message = " ".join(str(failure).split()) or type(failure).__name__
            if pending is not None:
                pending.add_note(f"the final checkpoint could not be signed either: {message}")
                log.error("final checkpoint not signed: %s", message)
            elif isinstance(failure, LedgerError):
                raise failure
            else:
                raise LedgerError(f"the final checkpoint could not be signed: {message}")

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ artifacts

    def add_artifact(self, request_id: str, path: Path | str, kind: str) -> str:
        """Copy the file at ``path`` to ``<home>/artifacts/<sha256><suffix>`` (0600), record
        it for the request and return its sha256. The original file name is not kept (it
        could name the subject); only its suffix (``.pdf``)."""
        if self.readonly:
            raise LedgerError("the ledger was opened read-only")
        stored = store_file(self.artifacts_dir, path, kind)
        self._ledger_entry(
            request_id,
            ARTIFACT_KEY,
            {"sha256": stored.sha256, "kind": kind, "suffix": stored.suffix, "size": stored.size},
        )
        return stored.sha256

    def artifacts(self, request_id: str | None = None) -> list[ArtifactRecord]:
        sql = "SELECT * FROM artifacts"
        params: list[Any] = []
        if request_id is not None:
            sql += " WHERE request_id = ?"
            params.append(request_id)
        return [
            ArtifactRecord(
                path=self.artifacts_dir / f"{row['sha256']}{row['suffix']}",
                **{k: row[k] for k in ARTIFACT_COLUMNS},
            )
            for row in self._rows(sql + " ORDER BY seq", params)
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

    # ------------------------------------------------------------------ export

    def export_requests(self, kinds: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """The ``requests`` table, one row per request as the ledger derived it (dates,
        statuses, deadlines, playbooks; not even the keyed subject reference), oldest first;
        for the DPO's record of processing (``ledger export``)."""
        import sqlite_utils

        from privacykit.ledger.requests import EXPORT_COLUMNS

        chosen = [kinds] if isinstance(kinds, str) else list(kinds or ())
        where = f"kind IN ({', '.join('?' for _ in chosen)})" if chosen else None
        with self._read() as conn:
            table = sqlite_utils.Database(conn, execute_plugins=False).table("requests")
            rows = list(
                table.rows_where(
                    where,
                    chosen,
                    select=", ".join(EXPORT_COLUMNS),
                    order_by="created_at, request_id",
                )
            )
        yield from rows

    # ------------------------------------------------------------------ verification

    def verify(
        self, *, saved_checkpoints: Iterable[str | tuple[str, str]] = (), artifacts: bool = True
    ) -> VerifyReport:
        """Recompute everything; raise :class:`LedgerIntegrityError` at the first problem
        (see :mod:`privacykit.ledger.verify` for the list and order of checks).

        ``saved_checkpoints`` are notes kept elsewhere (text, or ``(label, text)``); the
        latest-checkpoint file and the witness are always checked. Entries after the latest
        checkpoint pass only while a run is writing them: for a read-only ledger, a live
        writer holding the home; a writable ledger is that run, and signs them at its next
        checkpoint (``VerifyReport.stale_unsigned_to`` names the end of a tail that was
        already there when it was opened: an interrupted run's)."""
        saved = [
            item if isinstance(item, tuple) else (f"saved checkpoint {index}", item)
            for index, item in enumerate(saved_checkpoints, 1)
        ]
        with self._lock:
            conn = self._connection()
            assert self._signer is not None
            started = time.perf_counter()
            if self.readonly:
                writer = home_writer(self.home)
                # Which part of an unsigned tail the live writer wrote cannot be told: all of
                # it passes while it runs (and must be signed when it ends).
                writing_after = 0 if writer is not None else None
                who = writer.describe() if writer is not None else None
            else:
                # A writer signs whatever is unsigned when it checkpoints (a tail an
                # interrupted run left included: resuming is how it gets signed), so the
                # tail is allowed here; `stale_unsigned_to` tells what predates this run.
                writing_after, who = 0, "this run"
            try:
                report, state = verify_database(
                    conn,
                    home=self.home,
                    trust=self._trust(),
                    saved=saved,
                    witness=self.witness,
                    check_artifacts=artifacts,
                    writing_after=writing_after,
                    writer=who,
                )
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                raise LedgerIntegrityError(f"the ledger database is damaged: {exc}") from None
            if not self.readonly and artifacts:
                # Verified from content: reuse for proofs and the next checkpoint.
                self._verified = state
                self._tree = state.tree.copy()
            elapsed = time.perf_counter() - started
        from dataclasses import replace

        stale = None
        if not self.readonly and report.unsigned_from is not None:
            if report.unsigned_from <= self._size_at_open:
                stale = self._size_at_open
        return replace(report, seconds=elapsed, stale_unsigned_to=stale)

    @staticmethod
    def read_checkpoint_file(path: Path | str) -> str:
        """A saved checkpoint note (``--checkpoint FILE``): UTF-8 text, one line of error
        otherwise."""
        return read_note_file(Path(path), str(path))
