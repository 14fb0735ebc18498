"""Keyed subject references: who a request is about, without saying who.

A reference is ``sr1:`` followed by the hex HMAC-SHA256 of the normalised identifier
(e.g. ``email:jane@example.com``, normalised by the caller) under a 32-byte secret that
is created once per installation in ``ledger-subject.key`` beside the ledger (0600). The
same person gives the same reference on this installation, so a batch given the same
input again finds its open requests; without the secret a reference cannot be reversed
or confirmed by guessing emails, and it means nothing to another installation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from privacykit.errors import LedgerError, UsageError
from privacykit.ledger.files import create_private_file, read_private_file

__all__ = [
    "SECRET_FILE",
    "SECRET_SIZE",
    "SUBJECT_REF_PATTERN",
    "compute_subject_ref",
    "is_subject_ref",
    "load_or_create_secret",
]

SECRET_FILE = "ledger-subject.key"
SECRET_SIZE = 32
SUBJECT_REF_PATTERN = re.compile(r"^sr1:[0-9a-f]{64}$")


def load_or_create_secret(path: Path) -> bytes:
    """The installation's secret, created (0600) on first use."""
    if not path.exists():
        create_private_file(path, secrets.token_bytes(SECRET_SIZE))
    secret = read_private_file(path, "subject-reference secret")
    if len(secret) != SECRET_SIZE:
        raise LedgerError(f"subject-reference secret {path} is damaged (expected 32 bytes)")
    return secret


def compute_subject_ref(secret: bytes, normalised_identifier: str) -> str:
    """``sr1:<hex HMAC-SHA256(secret, identifier)>``."""
    if not isinstance(normalised_identifier, str) or not normalised_identifier.strip():
        raise UsageError("a subject identifier must be a non-empty string")
    digest = hmac.new(secret, normalised_identifier.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"sr1:{digest}"


def is_subject_ref(value: object) -> bool:
    return isinstance(value, str) and SUBJECT_REF_PATTERN.match(value) is not None
