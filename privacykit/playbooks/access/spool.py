"""The spool: where one subject's conversations wait on disk until their answer is written.

Owns :class:`Spool`. A person with thousands of tickets must not be held in memory: each
ticket (with all its comments) is appended to a JSON-lines file as soon as it is fetched,
and only its offset is kept. The export then reads the tickets back one at a time, in
ticket-id order, as often as it needs (data.json, the CSVs, index.html). Downloaded
attachments wait in the spool too, and move into the answer only when it is written.

The spool is a hidden, owner-only directory next to the answer (``.privacykit-<request
id>.partial``: folder 0700, files 0600). It is removed when the answer is written or
abandoned (needs review, failure); one left behind by a crash is removed when the request
is resumed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from privacykit.errors import UsageError

__all__ = ["Spool", "spool_dir"]


def spool_dir(out: Path, request_id: str) -> Path:
    """Where request ``request_id`` spools (``request_id`` is a checked, safe name)."""
    return out / f".privacykit-{request_id}.partial"


def _remove_tree(path: Path) -> None:
    if path.is_symlink():
        # Never follow a planted link into someone else's files.
        raise UsageError(f"{path.name} is a symbolic link, not privacykit's work folder")
    shutil.rmtree(path, ignore_errors=False)


class Spool:
    """One subject's tickets on disk, by id. Not thread-safe: a job is worked on by one
    thread at a time (a collection worker, then the delivering thread)."""

    FILE = "conversations.jsonl"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: dict[int, tuple[int, int]] = {}
        self._handle: IO[bytes] | None = None
        self._size = 0

    @classmethod
    def create(cls, directory: Path) -> Spool:
        """A fresh spool at ``directory`` (a stale one from an interrupted run is removed)."""
        if directory.exists() or directory.is_symlink():
            _remove_tree(directory)
        os.mkdir(directory, 0o700)
        os.chmod(directory, 0o700)
        spool = cls(directory)
        fd = os.open(
            directory / cls.FILE, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
        )
        spool._handle = os.fdopen(fd, "w+b")
        return spool

    @property
    def attachments(self) -> Path:
        """Where downloaded attachments wait (created on first use, 0700)."""
        path = self.directory / "attachments"
        if not path.exists():
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)
        return path

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def _file(self) -> IO[bytes]:
        if self._handle is None:
            raise RuntimeError("the spool is closed")
        return self._handle

    def put(self, key: int, record: dict[str, Any]) -> None:
        """Append ``record`` under ``key`` (a later put for the same key replaces it)."""
        handle = self._file()
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        handle.seek(0, os.SEEK_END)
        handle.write(data + b"\n")
        self._index[key] = (self._size, len(data))
        self._size += len(data) + 1

    def get(self, key: int) -> dict[str, Any]:
        offset, length = self._index[key]
        handle = self._file()
        handle.flush()
        handle.seek(offset)
        record: dict[str, Any] = json.loads(handle.read(length))
        return record

    def keys(self) -> list[int]:
        """Every key, ascending."""
        return sorted(self._index)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(key, record)`` in ascending key order, one record in memory at a time."""
        for key in self.keys():
            yield key, self.get(key)

    @property
    def bytes(self) -> int:
        return self._size

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        """Close and delete the spool and whatever is still in it."""
        self.close()
        if self.directory.exists():
            _remove_tree(self.directory)
