"""Where signed checkpoints are kept besides the ledger's own table, and reading them safely.

Owns ``<home>/ledger-checkpoint.latest`` (the latest note, a second copy in the home) and
the **witness**: a directory outside the home (``PRIVACYKIT_WITNESS_DIR``; a WORM bucket,
a network share, a git checkout the DPO mounts from another system) to which every
checkpoint is appended as one file, never replaced. The model is C2SP's tlog-witness and
Certificate Transparency's gossip: a log is only as honest as the checkpoints other
parties remember. Whoever holds the home can re-sign a rewritten history with the key
that sits there; they cannot take back the notes the witness already holds.

Layout: ``<witness>/<origin slug>/<size, 20 digits>-<first 16 hex of root>.checkpoint``
(the signed note, C2SP tlog-checkpoint format) and ``verifier.key`` (the signed-note
verifier key, so the witness can be checked with nothing else). Two different roots at
one size, a fork, are two files: both are kept and verification fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from privacykit.errors import ConfigError, LedgerError, LedgerIntegrityError
from privacykit.ledger.files import create_private_file, ensure_private_dir

__all__ = [
    "LATEST_CHECKPOINT_FILE",
    "MAX_NOTE_BYTES",
    "WITNESS_ENV",
    "Witness",
    "read_note_file",
    "witness_dir_from_env",
    "write_latest",
]

LATEST_CHECKPOINT_FILE = "ledger-checkpoint.latest"
WITNESS_ENV = "PRIVACYKIT_WITNESS_DIR"
#: A checkpoint note is a few hundred bytes; anything much bigger is not one.
MAX_NOTE_BYTES = 64 * 1024
_NAME = re.compile(r"^(\d{20})-([0-9a-f]{16})\.checkpoint$")
_SLUG = re.compile(r"[^A-Za-z0-9._-]")


def read_note_file(path: Path, what: str | None = None) -> str:
    """A checkpoint note from a file: UTF-8 text of at most :data:`MAX_NOTE_BYTES`.
    Anything else is a :class:`LedgerIntegrityError` naming ``what`` (one line)."""
    what = what or str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        raise LedgerError(f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > MAX_NOTE_BYTES:
        raise LedgerIntegrityError(f"{what} is too large to be a checkpoint note")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LedgerIntegrityError(f"{what} is not a checkpoint note (not UTF-8 text)") from None


def write_latest(home: Path, note: str) -> None:
    """Replace ``ledger-checkpoint.latest`` with ``note`` (atomically, fsync'd)."""
    create_private_file(home / LATEST_CHECKPOINT_FILE, note.encode("utf-8"), replace=True)


def witness_dir_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """``PRIVACYKIT_WITNESS_DIR`` as a path, or None when unset."""
    env = os.environ if env is None else env
    raw = env.get(WITNESS_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


@dataclass(frozen=True)
class WitnessedNote:
    """One note found in the witness: its file name, size (from the name) and text."""

    name: str
    size: int
    note: str


class Witness:
    """The witness directory of one ledger (one ``origin``)."""

    def __init__(self, directory: Path, origin: str) -> None:
        self.directory = Path(directory)
        self.origin = origin
        self.path = self.directory / _SLUG.sub("_", origin)

    def __repr__(self) -> str:
        return f"Witness({str(self.directory)!r})"

    def _require_root(self) -> None:
        # The DPO mounts it: a missing directory is a configuration problem (an unmounted
        # share), never something to create silently in its place.
        if not self.directory.is_dir():
            raise ConfigError(
                f"{WITNESS_ENV} {self.directory} is not a directory (is the witness mounted?)"
            )

    def _names(self) -> list[tuple[int, str]]:
        self._require_root()
        if not self.path.is_dir():
            return []
        found = []
        try:
            for name in os.listdir(self.path):
                match = _NAME.match(name)
                if match:
                    found.append((int(match.group(1)), name))
        except OSError as exc:
            raise LedgerError(f"cannot read the witness {self.path}: {exc.strerror}") from None
        found.sort()
        return found

    def notes(self) -> list[WitnessedNote]:
        """Every note the witness holds for this ledger, smallest size first."""
        return [
            WitnessedNote(name, size, read_note_file(self.path / name, f"witness note {name}"))
            for size, name in self._names()
        ]

    def largest(self) -> list[WitnessedNote]:
        """The note(s) with the largest size (more than one only after a fork)."""
        names = self._names()
        if not names:
            return []
        top = names[-1][0]
        return [
            WitnessedNote(name, size, read_note_file(self.path / name, f"witness note {name}"))
            for size, name in names
            if size == top
        ]

    def append(self, size: int, root: bytes, note: str, verifier_key: str) -> bool:
        """Add a note (never replacing one). False when it was already there."""
        self._require_root()
        try:
            ensure_private_dir(self.path)
            create_private_file(self.path / "verifier.key", (verifier_key + "\n").encode())
            return create_private_file(
                self.path / f"{size:020d}-{root.hex()[:16]}.checkpoint", note.encode("utf-8")
            )
        except OSError as exc:
            raise LedgerError(
                f"the witness {self.path} could not record checkpoint {size}: {exc.strerror or exc}"
            ) from None
