"""PAdES signing and validation of evidence PDFs (pyHanko).

Owns :func:`sign_pdf` (PAdES baseline B-B, offline; B-T when an RFC 3161 timestamp
authority is given with ``tsa_url``) and :func:`validate_signed_pdf`, the offline check
used by bundle verification and the tests: one signature, cryptographically intact,
chaining to one of the given certificates, covering the entire file.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from privacykit.errors import EvidenceError, EvidenceVerificationError, UsageError
from privacykit.evidence.keys import SigningKeys, certificate_fingerprint

__all__ = [
    "SIGNATURE_FIELD",
    "TSA_URL_ENV",
    "SignatureCheck",
    "make_timestamper",
    "quiet_pdf_library",
    "sign_pdf",
    "validate_signed_pdf",
]

SIGNATURE_FIELD = "PrivacykitEvidence"
TSA_URL_ENV = "PRIVACYKIT_TSA_URL"
_TSA_TIMEOUT_SECONDS = 20


def quiet_pdf_library() -> None:
    """Keep pyHanko's own log lines (it warns about malformed structures, i.e. about
    whatever a hostile PDF holds) off stderr when the application configured no logging:
    an error is one line, ours. A configured root logger still receives them."""
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


quiet_pdf_library()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def make_timestamper(tsa_url: str) -> Any:
    """An RFC 3161 client for ``tsa_url`` (pyHanko's ``HTTPTimeStamper``)."""
    parts = urlsplit(tsa_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("--tsa-url must be an http(s) URL of an RFC 3161 timestamp authority")
    if parts.username or parts.password:
        raise UsageError("--tsa-url must not contain credentials")
    from pyhanko.sign.timestamps import HTTPTimeStamper

    # RFC 3161 over plain http is normal (the token is itself signed), so http is allowed.
    return HTTPTimeStamper(tsa_url, timeout=_TSA_TIMEOUT_SECONDS)


def sign_pdf(
    pdf: bytes,
    keys: SigningKeys,
    *,
    tsa_url: str | None = None,
    timestamper: Any = None,
    reason: str = "GDPR evidence report",
) -> bytes:
    """Sign ``pdf`` with an invisible PAdES signature. ``tsa_url`` (or
    ``$PRIVACYKIT_TSA_URL``) adds an RFC 3161 signature timestamp; ``timestamper`` lets a
    caller supply any pyHanko ``TimeStamper`` instead."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.timestamps import TimestampRequestError

    if timestamper is None:
        url = tsa_url if tsa_url is not None else os.environ.get(TSA_URL_ENV, "").strip()
        if url:
            timestamper = make_timestamper(url)
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,  # ETSI.CAdES.detached: PAdES baseline
        md_algorithm="sha256",
        reason=reason,
    )
    pdf_signer = signers.PdfSigner(meta, keys.signer(), timestamper=timestamper)  # type: ignore[arg-type]
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        output = pdf_signer.sign_pdf(writer)
    except TimestampRequestError as exc:
        raise EvidenceError(f"the timestamp authority could not be used: {exc}") from None
    except SigningError as exc:
        raise EvidenceError(f"signing the report failed: {exc}") from None
    except Exception as exc:
        # The TSA round trip (aiohttp) fails with its own exception types; make any of
        # them one clear line instead of a traceback.
        if timestamper is not None and (
            isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("aiohttp")
        ):
            raise EvidenceError("cannot reach the timestamp authority") from None
        raise
    data: bytes = output.getvalue()
    return data


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of validating one signed PDF (offline)."""

    field: str
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer_fingerprint: str
    signing_time: str | None
    timestamp: str | None
    timestamp_intact: bool | None
    timestamp_trusted: bool | None

    @property
    def ok(self) -> bool:
        ts_ok = self.timestamp is None or bool(self.timestamp_intact)
        return self.intact and self.valid and self.trusted and self.covers_whole_file and ts_ok

    def problem(self) -> str | None:
        """The first thing wrong, in words, or None."""
        if not self.intact:
            return "the signed content was modified (digest mismatch)"
        if not self.valid:
            return "the signature value is invalid"
        if not self.covers_whole_file:
            return "the signature does not cover the whole file (bytes were added or changed)"
        if not self.trusted:
            return "the signer certificate is not the expected one"
        if self.timestamp is not None and not self.timestamp_intact:
            return "the signature timestamp token is invalid"
        return None


def validate_signed_pdf(pdf: bytes, trusted: Sequence[x509.Certificate]) -> SignatureCheck:
    """Validate the single PAdES signature of ``pdf`` with ``trusted`` as the only trust
    anchors, offline (no fetching; self-signed evidence certificates have no revocation
    information). Raises :class:`EvidenceVerificationError` if the file is not a PDF with
    exactly one signature."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext

    if not trusted:
        raise EvidenceVerificationError("no certificate to validate the signature against")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise EvidenceVerificationError(f"not a readable PDF ({str(exc)[:200]})") from None
    except RecursionError:
        raise EvidenceVerificationError("not a readable PDF (nested too deeply)") from None
    if len(signatures) != 1:
        raise EvidenceVerificationError(f"expected exactly one signature, found {len(signatures)}")
    embedded = signatures[0]
    context = ValidationContext(
        trust_roots=[_asn1(c) for c in trusted],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    # The timestamp authority's root is not something the bundle can vouch for; the
    # token's integrity is still checked and reported, its trust is informational.
    ts_context = ValidationContext(
        trust_roots=[], allow_fetching=False, revocation_mode="soft-fail"
    )
    usage = KeyUsageConstraints(
        key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
    )
    try:
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=context,
            ts_validation_context=ts_context,
            key_usage_settings=usage,
        )
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        raise EvidenceVerificationError(
            f"signature cannot be validated ({str(exc)[:200]})"
        ) from None
    except RecursionError:
        raise EvidenceVerificationError(
            "signature cannot be validated (nested too deeply)"
        ) from None
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    signer = x509.load_der_x509_certificate(status.signing_cert.dump())
    ts = status.timestamp_validity
    return SignatureCheck(
        field=embedded.field_name,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer_fingerprint=certificate_fingerprint(signer),
        signing_time=status.signer_reported_dt.isoformat() if status.signer_reported_dt else None,
        timestamp=ts.timestamp.isoformat() if ts is not None else None,
        timestamp_intact=(bool(ts.intact and ts.valid) if ts is not None else None),
        timestamp_trusted=(bool(ts.trusted) if ts is not None else None),
    )
