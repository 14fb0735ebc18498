"""The access answer on disk: the output directory, per-subject folders, private files.

Owns where an answer goes and how it is written: :func:`prepare_output_dir` (checked
before anything is sent to Zendesk), :func:`subject_dir` (one folder per request in a
batch, named by case reference or request id, never by the person), and
:func:`write_private_file` (owner-only, atomic, never through a planted symlink).

Directory modes: privacykit changes the mode only of directories it creates itself
(0700). An existing directory given with ``--out`` keeps its mode: it may be a shared
folder whose permissions are someone else's decision; what privacykit writes inside it
is owner-only (folders 0700, files 0600) whatever the umask.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from privacykit.errors import LedgerError, UsageError

__all__ = [
    "DeliveredFile",
    "PrivateWriter",
    "check_case_refs",
    "check_output_dir",
    "folder_names",
    "make_private_dir",
    "output_dir",
    "prepare_output_dir",
    "subject_dir",
    "write_private_file",
]


@dataclass(frozen=True)
class DeliveredFile:
    """A file handed to the subject: its name in the output directory, size and sha256."""

    name: str
    sha256: str
    bytes: int
    records: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "sha256": self.sha256, "bytes": self.bytes}
        if self.records is not None:
            out["records"] = self.records
        return out


class _Hashing(io.RawIOBase):
    """A raw file that hashes and counts what is written through it."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])
        self.digest.update(view)
        self.size += len(view)
        return len(view)


class PrivateWriter:
    """``with PrivateWriter(directory, name) as handle: handle.write(...)`` writes
    ``directory/name`` owner-only (0600), streamed, atomically (temporary file, fsync,
    rename; removed on error) and without following a symlink planted at the temporary
    name. Afterwards :attr:`result` holds its size and sha256."""

    def __init__(self, directory: Path, name: str) -> None:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a plain file name: {name!r}")
        self.name = name
        self.target = directory / name
        self.temporary = directory / f".{name}.tmp"
        self.result: DeliveredFile | None = None
        self._fd: int | None = None
        self._raw: _Hashing | None = None
        self._buffer: io.BufferedWriter | None = None

    def __enter__(self) -> io.BufferedWriter:
        try:
            self.temporary.unlink()
        except FileNotFoundError:
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        self._fd = os.open(self.temporary, flags, 0o600)
        os.fchmod(self._fd, 0o600)
        self._raw = _Hashing(self._fd)
        self._buffer = io.BufferedWriter(self._raw, buffer_size=1 << 16)
        return self._buffer

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._fd is not None and self._raw is not None and self._buffer is not None
        try:
            if exc_type is None:
                self._buffer.flush()
                os.fsync(self._fd)
        finally:
            self._buffer.close()  # closes the raw hashing file, not the descriptor
            os.close(self._fd)
        if exc_type is not None:
            self.temporary.unlink(missing_ok=True)
            return
        os.replace(self.temporary, self.target)
        self.result = DeliveredFile(self.name, self._raw.digest.hexdigest(), self._raw.size)


def write_private_file(directory: Path, name: str, data: bytes) -> DeliveredFile:
    """Write ``directory/name`` owner-only (0600), atomically (temporary file, fsync,
    rename) and without following a symlink planted at the temporary name."""
    writer = PrivateWriter(directory, name)
    with writer as handle:
        handle.write(data)
    assert writer.result is not None
    return writer.result


def make_private_dir(path: Path) -> bool:
    """Create ``path`` and any missing parents owner-only (0700, whatever the umask).
    Returns whether ``path`` itself was created. Directories that already exist are left
    exactly as they are (never chmod'ed)."""
    return path in _make_private_dirs(path)


def _make_private_dirs(path: Path) -> list[Path]:
    """:func:`make_private_dir`, returning the directories this call created, outermost
    first (one created by someone else meanwhile is not among them)."""
    created: list[Path] = []
    missing: list[Path] = []
    probe = path
    while True:
        try:
            probe.lstat()
        except FileNotFoundError:
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
            continue
        break
    for directory in reversed(missing):
        try:
            # mode is masked by the umask: 0700 & ~umask is never wider than 0700; the chmod
            # makes it exactly 0700 on a directory this call just created.
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # created by someone else meanwhile: theirs, leave it
        os.chmod(directory, 0o700)
        created.append(directory)
    return created


def check_output_dir(path: Path, *, force: bool = False) -> None:
    """Refuse (:class:`UsageError`, exit 2) an output directory that cannot be used, before
    anything is sent to Zendesk or created on disk: a file, or an existing non-empty
    directory without ``force`` (an export must never be mixed with someone else's files
    by accident)."""
    shown = click.format_filename(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {shown} exists and is not a directory")
    try:
        if path.is_dir() and any(path.iterdir()) and not force:
            raise UsageError(f"--out {shown} is not empty (use --force to write into it anyway)")
    except OSError as exc:
        raise UsageError(f"--out {shown}: cannot read directory: {exc.strerror}") from None


def prepare_output_dir(path: Path, *, force: bool = False) -> Path:
    """Check (:func:`check_output_dir`) and create (or accept) the output directory.

    A directory privacykit creates is owner-only (0700), and so are missing parents. An
    existing directory keeps its mode."""
    _prepare(path, force=force)
    return path


def _prepare(path: Path, *, force: bool) -> list[Path]:
    check_output_dir(path, force=force)
    try:
        return _make_private_dirs(path)
    except OSError as exc:
        raise UsageError(
            f"--out {click.format_filename(path)}: cannot create directory: {exc.strerror}"
        ) from None


@contextmanager
def output_dir(path: Path, *, force: bool = False) -> Iterator[Path]:
    """:func:`prepare_output_dir` for one run. When the run ends with nothing delivered
    (it stopped, e.g. Zendesk asked to wait past ``--max-wait``, or every subject needs
    review), the directories this call created are removed again, innermost first, as
    long as they are empty: an operator must not find an empty answer folder that looks
    like a result.
    A directory privacykit did not create, or one with anything in it, is never removed
    (``rmdir`` refuses a non-empty directory, so nothing written meanwhile is lost)."""
    created = _prepare(path, force=force)
    try:
        yield path
    finally:
        # Also after a run that ended normally with nothing delivered (every subject
        # needs review): an empty folder is not an answer either.
        for directory in reversed(created):
            try:
                os.rmdir(directory)
            except OSError:
                break  # not empty (or not ours to judge): it and its parents stay


# A folder name: letters, digits and . _ - (no leading dot, so it is never hidden and never
# "." or ".."). Request ids always match; a case reference must, or it is not used.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


def check_case_refs(case_refs: Iterable[str | None]) -> None:
    """Refuse (:class:`UsageError`, exit 2) a case reference that cannot name a folder."""
    for case_ref in case_refs:
        if case_ref is not None and not _SAFE_NAME.match(case_ref):
            raise UsageError(
                "a case reference must be 1-100 letters, digits, '.', '_' or '-' "
                "(not starting with '.') to name a folder"
            )


def folder_names(entries: Iterable[tuple[str, str | None]]) -> list[str]:
    """The folder name of each ``(request_id, case_ref)`` of a batch: the case reference
    when one is given (the DPO's own reference, which tells them whose answer it is), else
    the request id. The person's identifiers never name a folder: a listing of the output
    directory must not become a list of people. A case reference shared by several
    requests of the batch gets ``-<request id>`` appended to each."""
    pairs = list(entries)
    check_case_refs(case_ref for _rid, case_ref in pairs)
    for request_id, _case_ref in pairs:
        if not _SAFE_NAME.match(request_id):
            raise LedgerError("the ledger returned a request id that is not a safe directory name")
    seen: dict[str, int] = {}
    for _rid, case_ref in pairs:
        if case_ref is not None:
            seen[case_ref] = seen.get(case_ref, 0) + 1
    names = []
    for request_id, case_ref in pairs:
        if case_ref is None:
            names.append(request_id)
        elif seen[case_ref] > 1:
            names.append(f"{case_ref}-{request_id}")
        else:
            names.append(case_ref)
    return names


def subject_dir(out: Path, name: str) -> Path:
    """``out/name``, created owner-only if it does not exist yet (a re-run with ``--force``
    writes into the folder an earlier run created). Never a symlink."""
    target = out / name
    try:
        os.mkdir(target, 0o700)
    except FileExistsError:
        if target.is_symlink() or not target.is_dir():
            raise UsageError(
                f"{click.format_filename(target)} exists and is not a plain directory"
            ) from None
    else:
        os.chmod(target, 0o700)
    return target
