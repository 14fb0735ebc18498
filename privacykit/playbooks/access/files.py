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
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from privacykit.errors import LedgerError, UsageError

__all__ = [
    "DeliveredFile",
    "check_case_refs",
    "folder_names",
    "make_private_dir",
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


def write_private_file(directory: Path, name: str, data: bytes) -> DeliveredFile:
    """Write ``directory/name`` owner-only (0600), atomically (temporary file, fsync,
    rename) and without following a symlink planted at the temporary name."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    target = directory / name
    temporary = directory / f".{name}.tmp"
    try:
        temporary.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        os.close(fd)
    os.replace(temporary, target)
    return DeliveredFile(name, hashlib.sha256(data).hexdigest(), len(data))


def make_private_dir(path: Path) -> bool:
    """Create ``path`` and any missing parents owner-only (0700, whatever the umask).
    Returns whether ``path`` itself was created. Directories that already exist are left
    exactly as they are (never chmod'ed)."""
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
    return path in missing


def prepare_output_dir(path: Path, *, force: bool = False) -> Path:
    """Create (or accept) the output directory.

    A directory privacykit creates is owner-only (0700), and so are missing parents. An
    existing directory keeps its mode; an existing non-empty one is refused unless
    ``force``: an export must never be mixed with someone else's files by accident.
    Raises :class:`UsageError` (exit 2) before anything is sent to Zendesk."""
    shown = click.format_filename(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {shown} exists and is not a directory")
    try:
        if path.is_dir() and any(path.iterdir()) and not force:
            raise UsageError(f"--out {shown} is not empty (use --force to write into it anyway)")
        make_private_dir(path)
    except OSError as exc:
        raise UsageError(f"--out {shown}: cannot create directory: {exc.strerror}") from None
    return path


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
