"""Reading an untrusted bundle zip: refuse anything unsafe, stream everything, bound it.

:class:`Archive` opens the zip, checks every member's header before reading a byte
(names, duplicates, links, encryption, declared sizes and count), then streams each
member once in chunks to hash it, never trusting the declared size. Only the small
structured members (manifest, signatures, checkpoint files, certificates, entries and
proofs) are kept in memory, within :attr:`BundleLimits.max_held_bytes`; everything else
(the PDFs, VERIFY.txt) is only hashed and read again, one at a time, when it is checked.
A deadline bounds the whole verification.
"""

from __future__ import annotations

import hashlib
import json
import stat
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from privacykit.errors import UsageError
from privacykit.evidence.bundle.common import BundleLimits, fail

__all__ = ["Archive"]

_CHUNK = 1024 * 1024
_KEPT_PREFIXES = ("certificates/", "checkpoint/")
_KEPT_NAMES = ("manifest.json", "manifest.sig", "SHA256SUMS")
_KEPT_SUFFIXES = ("/entries.jsonl", "/proofs.json")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError)


def _safe_name(name: str) -> bool:
    if not name or len(name) > 300 or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    if name.endswith("/"):
        return False
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") or ":" in p for p in parts):
        return False
    return name.isprintable()


def _kept(name: str) -> bool:
    return (
        name in _KEPT_NAMES
        or name.startswith(_KEPT_PREFIXES)
        or (name.startswith("requests/") and name.endswith(_KEPT_SUFFIXES))
    )


class Archive:
    """An opened, header-checked bundle. Use as a context manager."""

    def __init__(self, path: Path, limits: BundleLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        if not path.is_file():
            raise UsageError(f"no such bundle file: {path}")
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError):
            raise UsageError(f"not a readable zip archive: {path}") from None
        try:
            self._infos = self._check_headers()
        except BaseException:
            self._zip.close()
            raise
        self.digests: dict[str, str] = {}
        self.held: dict[str, bytes] = {}

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._zip.close()

    @property
    def names(self) -> set[str]:
        return set(self._infos)

    def tick(self) -> None:
        """Stop once the time limit is spent (hostile input must not run forever)."""
        if time.monotonic() > self.deadline:
            raise fail(f"verification took longer than {self.limits.max_seconds:g} s; stopped")

    def _check_headers(self) -> dict[str, zipfile.ZipInfo]:
        limits = self.limits
        infos = self._zip.infolist()
        if len(infos) > limits.max_members:
            raise fail(f"too many members ({len(infos)})")
        seen: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            if not _safe_name(name):
                raise fail(f"unsafe member name {json.dumps(name)[:120]}")
            if name in seen:
                raise fail(f"duplicate member {name}")
            seen[name] = info
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise fail(f"member {name} is not a regular file")
            if info.flag_bits & 0x1:
                raise fail(f"member {name} is encrypted")
            if info.file_size > limits.max_member_bytes:
                raise fail(f"member {name} is too large ({info.file_size} bytes)")
            total += info.file_size
            if total > limits.max_total_bytes:
                raise fail("the bundle is too large when unpacked")
        return seen

    def _stream(self, name: str, keep: bool) -> tuple[str, bytes | None]:
        """Read one member in chunks: its sha256, and its bytes when ``keep``. The size
        is counted as read, so a member lying about its size is caught."""
        info = self._infos[name]
        digest = hashlib.sha256()
        parts: list[bytes] = []
        size = 0
        try:
            with self._zip.open(info) as handle:
                while chunk := handle.read(_CHUNK):
                    size += len(chunk)
                    if size > info.file_size or size > self.limits.max_member_bytes:
                        raise fail(f"member {name} is not the size it declares")
                    digest.update(chunk)
                    if keep:
                        parts.append(chunk)
                    self.tick()
        except _READ_ERRORS:
            raise fail(f"member {name} is corrupt") from None
        if size != info.file_size:
            raise fail(f"member {name} is not the size it declares")
        return digest.hexdigest(), b"".join(parts) if keep else None

    def scan(self) -> None:
        """Hash every member once; keep the structured ones (see the module docstring)."""
        held = 0
        for name in self._infos:
            keep = _kept(name)
            digest, data = self._stream(name, keep)
            self.digests[name] = digest
            if data is not None:
                held += len(data)
                if held > self.limits.max_held_bytes:
                    raise fail("the bundle's manifest, entries and proofs are too large")
                self.held[name] = data

    def read(self, name: str) -> bytes:
        """A member's bytes, read again (e.g. a PDF to validate); must still hash to what
        :meth:`scan` saw."""
        if name in self.held:
            return self.held[name]
        digest, data = self._stream(name, True)
        if data is None or digest != self.digests.get(name):
            raise fail(f"member {name} changed while it was being verified")
        return data

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.held[name].decode("utf-8"))
        except KeyError:
            raise fail(f"{name} is missing") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise fail(f"{name} is not valid JSON") from None
        except RecursionError:
            raise fail(f"{name} is nested too deeply") from None
