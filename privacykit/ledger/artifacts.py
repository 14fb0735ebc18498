"""Artifact files: content-addressed copies kept beside the ledger.

Owns ``<home>/artifacts/<sha256><suffix>``: a file registered with a request is copied
there (0600, fsync'd, renamed into place) under the hash of its content, so the same
report stored twice is one file and a changed file no longer matches its name. Only the
suffix of the original name is kept (a name could identify the subject). The registration
itself is a ledger entry (see :mod:`.replay`); this module only moves bytes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from privacykit.errors import LedgerError, UsageError
from privacykit.ledger.files import ensure_private_dir
from privacykit.ledger.replay import valid_artifact_kind, valid_suffix

__all__ = ["ARTIFACTS_DIR", "StoredFile", "sha256_file", "store_file"]

ARTIFACTS_DIR = "artifacts"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    suffix: str
    size: int
    path: Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _suffix(source: Path) -> str:
    suffix = "".join(source.suffixes[-2:]).lower()
    if valid_suffix(suffix):
        return suffix
    single = source.suffix.lower()
    return single if valid_suffix(single) else ""


def store_file(directory: Path, source: Path | str, kind: str) -> StoredFile:
    """Copy ``source`` into ``directory`` under its sha256 (checking ``kind``'s shape
    first); the copy is durable before this returns."""
    source = Path(source)
    if not valid_artifact_kind(kind):
        raise UsageError("an artifact kind is a short lower-case word like 'report'")
    suffix = _suffix(source)
    ensure_private_dir(directory)
    tmp = directory / f".incoming-{secrets.token_hex(8)}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as src:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        sha = digest.hexdigest()
        target = directory / f"{sha}{suffix}"
        if target.exists() and sha256_file(target) == sha:
            tmp.unlink()
        else:
            os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LedgerError(f"cannot store artifact: {exc.strerror or exc}") from None
    return StoredFile(sha, suffix, size, target)
