"""Signed checkpoints: the tree size and root, signed with Ed25519 as a C2SP signed note.

A checkpoint (https://c2sp.org/tlog-checkpoint) is the note body::

    <origin>
    <tree size, decimal>
    <base64 root hash>

followed by a blank line and one signature line per signer (https://c2sp.org/signed-note)::

    — <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>

The key hash is the first four bytes of SHA-256(key name || 0x0A || 0x01 || public key),
0x01 being the Ed25519 signature type. The signature covers the body bytes including
its final newline. The public key is exported as a signed-note verifier key
``<name>+<hex key hash>+<base64(0x01 || public key)>``. :func:`verify_checkpoint_note`
checks a note offline with nothing but the public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privacykit.errors import LedgerError, LedgerIntegrityError
from privacykit.ledger.files import create_private_file, read_private_file

__all__ = [
    "ED25519_TYPE",
    "KEY_FILE",
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "CheckpointSigner",
    "format_checkpoint_body",
    "key_hash",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "sign_note",
    "verifier_key",
    "verify_checkpoint_note",
    "verify_signed_note",
]

KEY_FILE = "ledger-checkpoint.key"
PUBLIC_KEY_FILE = "ledger-checkpoint.pub"
ED25519_TYPE = b"\x01"
_SIG_PREFIX = "\u2014 "  # EM DASH, space


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the ledger had ``size`` entries with Merkle root ``root``.

    ``ts`` is the time of the last entry it covers (empty for an empty ledger): that time
    is itself signed, through the tree, which a separate "signed at" column would not be."""

    size: int
    root: bytes
    note: str
    origin: str = ""
    ts: str = ""

    @property
    def root_hex(self) -> str:
        return self.root.hex()

    def to_dict(self) -> dict[str, object]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "origin": self.origin,
            "ts": self.ts,
            "note": self.note,
        }


def key_hash(name: str, public_key: bytes) -> bytes:
    """The signed-note key hash: SHA-256(name || "\\n" || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise ValueError("a key name must be non-empty, without spaces or '+'")


def verifier_key(name: str, public_key: bytes) -> str:
    """The signed-note verifier key text for ``public_key`` (raw 32 bytes)."""
    _check_name(name)
    encoded = base64.b64encode(ED25519_TYPE + public_key).decode("ascii")
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """``(name, raw public key)`` from a verifier key; ValueError if malformed."""
    parts = vkey.strip().split("+", 2)  # the base64 key may itself contain '+'
    if len(parts) != 3:
        raise ValueError("a verifier key is name+hash+key")
    name, hash_hex, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        expected = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise ValueError("verifier key is not valid hex/base64") from None
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise ValueError("verifier key is not an Ed25519 key")
    if key_hash(name, raw[1:]) != expected:
        raise ValueError("verifier key hash does not match its name and key")
    return name, raw[1:]


def format_checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The checkpoint note body (three lines, each ending in a newline)."""
    _check_name(origin)
    if size < 0 or len(root) != 32:
        raise ValueError("a checkpoint has a non-negative size and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def parse_checkpoint_body(body: str) -> tuple[str, int, bytes]:
    """``(origin, size, root)`` from a checkpoint body; ValueError if malformed."""
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise ValueError("checkpoint body must have origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise ValueError("checkpoint has an empty origin")
    if (
        not size_text.isascii()
        or not size_text.isdigit()
        or (size_text != "0" and size_text[0] == "0")
    ):
        raise ValueError("checkpoint size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise ValueError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise ValueError("checkpoint root is not 32 bytes")
    return origin, int(size_text), root


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """A signed note: ``body``, a blank line, and the signature line of ``name``."""
    if not body.endswith("\n") or "\n\n" in body:
        raise ValueError("a note body ends with a newline and has no blank lines")
    public = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signature = private_key.sign(body.encode("utf-8"))
    blob = base64.b64encode(key_hash(name, public) + signature).decode("ascii")
    return f"{body}\n{_SIG_PREFIX}{name} {blob}\n"


def verify_signed_note(note: str, public_key: bytes | str) -> str:
    """Check a signed note (any text, per https://c2sp.org/signed-note) and return its body.

    ``public_key`` is the raw 32-byte Ed25519 key or a signed-note verifier key string.
    A signature line counts when its key hash matches its key name and ``public_key``
    (other signers' lines are ignored, per the spec). Raises
    :class:`LedgerIntegrityError` when no matching signature verifies or the note is
    malformed."""
    expected_name: str | None = None
    if isinstance(public_key, str):
        try:
            expected_name, raw = parse_verifier_key(public_key)
        except ValueError as exc:
            raise LedgerIntegrityError(f"bad checkpoint verifier key: {exc}") from None
    else:
        raw = bytes(public_key)
    if len(raw) != 32:
        raise LedgerIntegrityError("an Ed25519 public key is 32 bytes")
    verifier = Ed25519PublicKey.from_public_bytes(raw)
    if not note.endswith("\n"):
        raise LedgerIntegrityError("checkpoint note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise LedgerIntegrityError("checkpoint note has no signature block")
    body, signature_block = note[: split + 1], note[split + 2 :]
    verified = False
    for line in signature_block[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise LedgerIntegrityError("malformed signature line in checkpoint note")
        name, _, blob = line[len(_SIG_PREFIX) :].rpartition(" ")
        if expected_name is not None and name != expected_name:
            continue
        try:
            decoded = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise LedgerIntegrityError("malformed signature in checkpoint note") from None
        if len(decoded) < 4 or decoded[:4] != key_hash(name, raw):
            continue  # another signer's line
        try:
            verifier.verify(decoded[4:], body.encode("utf-8"))
        except InvalidSignature:
            raise LedgerIntegrityError("checkpoint signature does not verify") from None
        verified = True
    if not verified:
        raise LedgerIntegrityError("checkpoint note carries no signature by this key")
    return body


def verify_checkpoint_note(note: str, public_key: bytes | str) -> tuple[str, int, bytes]:
    """Check a checkpoint note's signature offline; return ``(origin, size, root)``.

    ``public_key`` is the raw 32-byte Ed25519 key or a signed-note verifier key string
    (the content of ``ledger-checkpoint.pub``). Raises :class:`LedgerIntegrityError` when
    the signature does not verify or the checkpoint is malformed."""
    body = verify_signed_note(note, public_key)
    try:
        return parse_checkpoint_body(body)
    except ValueError as exc:
        raise LedgerIntegrityError(f"malformed checkpoint: {exc}") from None


class CheckpointSigner:
    """The installation's Ed25519 checkpoint key (``ledger-checkpoint.key``, 0600) and its
    exported verifier key (``ledger-checkpoint.pub``)."""

    def __init__(self, private_key: Ed25519PrivateKey, origin: str) -> None:
        _check_name(origin)
        self._private_key = private_key
        self.origin = origin
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def load_or_create(cls, home: Path) -> CheckpointSigner:
        key_path = home / KEY_FILE
        if not key_path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            create_private_file(key_path, pem)
        signer = cls.load(home)
        vkey = (signer.verifier_key + "\n").encode("ascii")
        pub_path = home / PUBLIC_KEY_FILE
        if not pub_path.exists() or pub_path.read_bytes() != vkey:
            create_private_file(pub_path, vkey, replace=True)
        return signer

    @classmethod
    def load(cls, home: Path) -> CheckpointSigner:
        """The existing key (writes nothing)."""
        key_path = home / KEY_FILE
        try:
            key = serialization.load_pem_private_key(
                read_private_file(key_path, "checkpoint key"), password=None
            )
        except ValueError:
            raise LedgerError(f"checkpoint key {key_path} is damaged") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise LedgerError(f"checkpoint key {key_path} is not an Ed25519 key")
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        # The origin names this log; deriving it from the key keeps it stable and unique.
        return cls(key, f"privacykit.local/ledger/{hashlib.sha256(public).hexdigest()[:16]}")

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.origin, self.public_key)

    def sign(self, size: int, root: bytes) -> str:
        return sign_note(
            format_checkpoint_body(self.origin, size, root), self.origin, self._private_key
        )
