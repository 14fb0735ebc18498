"""The bundle format's names, limits and result types, shared by export and verify.

Also the one definition of a request's *facts* as a bundle states them
(:func:`request_facts`): derived from the request's own ledger entries by the ledger's
replay, so the exporter writes and the verifier checks the same thing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from privacykit.errors import EvidenceError, EvidenceVerificationError
from privacykit.evidence.keys import SigningKeys

__all__ = [
    "ARTIFACT_STEP",
    "BUNDLE_FORMAT",
    "CHECKPOINT_BODY",
    "CHECKPOINT_KEY",
    "CHECKPOINT_KEY_PEM",
    "CHECKPOINT_NOTE",
    "CHECKPOINT_SIG",
    "MANIFEST",
    "MANIFEST_SIG",
    "REQUEST_FACTS",
    "REQUIRED_FACTS",
    "SUMS",
    "VERIFY_TXT",
    "BundleLimits",
    "BundleReport",
    "ExportResult",
    "fail",
    "request_facts",
    "sha256",
    "sign_bytes",
    "verify_bytes",
]

BUNDLE_FORMAT = "privacykit.evidence-bundle/1"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
SUMS = "SHA256SUMS"
VERIFY_TXT = "VERIFY.txt"
CHECKPOINT_NOTE = "checkpoint/checkpoint.txt"
CHECKPOINT_KEY = "checkpoint/checkpoint-key.txt"
CHECKPOINT_KEY_PEM = "checkpoint/checkpoint-key.pem"
CHECKPOINT_BODY = "checkpoint/checkpoint-body.txt"
CHECKPOINT_SIG = "checkpoint/checkpoint.sig"
ARTIFACT_STEP = "ledger:artifact"

#: What the manifest says about each request, every one checked against the replay of
#: the request's bundled entries. The first four are required; the others are checked
#: whenever present (bundles made before they were added lack them).
REQUIRED_FACTS = ("kind", "subject_ref", "received_at", "status")
REQUEST_FACTS = (
    *REQUIRED_FACTS,
    "due_date",
    "closed_at",
    "playbook_name",
    "playbook_sha256",
)


@dataclass(frozen=True)
class BundleLimits:
    """Bounds on what :func:`verify_bundle` will read: a hostile zip is refused, never
    allowed to exhaust memory or time."""

    max_members: int = 20_000
    max_member_bytes: int = 64 * 1024 * 1024  # one member, uncompressed
    max_total_bytes: int = 1024 * 1024 * 1024  # all members, uncompressed (streamed)
    max_held_bytes: int = 256 * 1024 * 1024  # structured members kept in memory at once
    max_seconds: float = 600.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fail(message: str) -> EvidenceVerificationError:
    return EvidenceVerificationError(f"bundle does not verify: {message}")


def sign_bytes(keys: SigningKeys, data: bytes) -> bytes:
    key = serialization.load_pem_private_key(keys.key_path.read_bytes(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise EvidenceError("the evidence signing key is neither ECDSA nor RSA")


def verify_bytes(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    public = cert.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def request_facts(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The request's facts (:data:`REQUEST_FACTS`) from its own entries, in order.
    ``ValueError`` when they do not add up to a request (no creation entry, a status
    entry that does not fit, ...)."""
    from privacykit.evidence.integrity import replay_request

    row = replay_request(list(entries))
    if row is None:
        raise ValueError("no entry creates the request")
    return {name: row.get(name) for name in REQUEST_FACTS}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_bundle` wrote."""

    path: Path
    sha256: str
    requests: list[str]
    entries: int
    reports: int
    checkpoint_size: int
    checkpoint_root: str
    certificates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "requests": list(self.requests),
            "entries": self.entries,
            "reports": self.reports,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": self.checkpoint_root,
            "certificates": list(self.certificates),
        }


@dataclass(frozen=True)
class BundleReport:
    """What :func:`verify_bundle` checked (it raises on the first problem instead).

    ``report_files`` names, for each report, the certificate that actually signed it
    (``signer``): after a key rotation that is the retired certificate, not the one that
    signed the manifest."""

    path: Path
    requests: list[str]
    entries: int
    reports: int
    checkpoint_size: int
    checkpoint_root: str
    checkpoint_origin: str
    manifest_signer: str
    report_signers: list[str] = field(default_factory=list)
    timestamps: int = 0
    report_files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "path": str(self.path),
            "requests": list(self.requests),
            "entries": self.entries,
            "reports": self.reports,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": self.checkpoint_root,
            "checkpoint_origin": self.checkpoint_origin,
            "manifest_signer": self.manifest_signer,
            "report_signers": list(self.report_signers),
            "report_files": [dict(r) for r in self.report_files],
            "timestamps": self.timestamps,
        }
