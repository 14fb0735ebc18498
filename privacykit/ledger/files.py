"""Owner-only files beside the ledger: created atomically, never world-readable.

Secrets (the subject-reference key, the checkpoint signing key) and artifacts are written
to a private temporary file, fsync'd, then linked into place, so a crash never leaves a
half-written key and two processes opening a fresh home at once agree on one key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from privacykit.errors import LedgerError

__all__ = ["create_private_file", "ensure_private_dir", "read_private_file", "write_new_file"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents, each 0700 whatever the umask. A directory
    that already exists is left exactly as it is: privacykit never changes the mode of a
    directory it did not create (the files it keeps inside are 0600)."""
    from privacykit.config import make_private_dirs

    try:
        make_private_dirs(path)
    except OSError as exc:
        raise LedgerError(f"cannot create directory {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise LedgerError(f"{path} is not a directory")
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path, data: bytes, *, replace: bool = False) -> bool:
    """Write ``data`` to ``path`` with mode 0600. Without ``replace``, an existing file is
    left alone and ``False`` returned (the other writer won the race)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file exists: no clobbering a key
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True
    finally:
        if tmp.exists():
            tmp.unlink()


def read_private_file(path: Path, what: str) -> bytes:
    """Read an owner-only file; refuse one that others can read or write."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise LedgerError(f"{what} {path} must be owner-only (mode 0600), found {mode:04o}")
        return path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read {what} {path}: {exc.strerror}") from None


def write_new_file(path: Path, data: bytes) -> None:
    """Write a new owner-only file at a path the user chose; an existing file is refused
    (exit 2), a missing directory too."""
    from privacykit.errors import UsageError

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise UsageError(f"{path} exists: choose a new file") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise LedgerError(f"cannot write {path}: {exc.strerror or exc}") from None
