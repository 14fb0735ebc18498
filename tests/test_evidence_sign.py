"""PAdES signing: pyHanko's validator and CLI accept our signatures, tampering is caught,
and an RFC 3161 timestamp authority given by URL is really used (a local TSA on loopback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from privacykit.errors import EvidenceError, EvidenceVerificationError, UsageError
from privacykit.evidence import SigningKeys, init_keys, load_keys, sign_pdf, validate_signed_pdf
from privacykit.evidence import sign as sign_module
from privacykit.evidence.render import markup_to_pdf

PYHANKO = Path(sys.executable).parent / "pyhanko"

MARKUP = (
    '<report title="Test report" footer="privacykit test">'
    "<title>Test report</title><p>Hello <b>signed</b> world.</p>"
    "<kv><row><k>Request id</k><v>req-1</v></row></kv></report>"
)


@pytest.fixture(scope="module")
def unsigned_pdf() -> bytes:
    return markup_to_pdf(MARKUP)


@pytest.fixture
def keys(evidence_home: Path) -> SigningKeys:
    return load_keys(evidence_home)


def test_signature_validates_with_pyhanko_api(keys: SigningKeys, unsigned_pdf: bytes) -> None:
    signed = sign_pdf(unsigned_pdf, keys)
    check = validate_signed_pdf(signed, [keys.certificate])
    assert check.ok, check
    assert check.intact and check.valid and check.trusted and check.covers_whole_file
    assert check.signer_fingerprint == keys.fingerprint
    assert check.timestamp is None
    # PAdES: the CAdES detached subfilter, and the signature field we name.
    assert b"/ETSI.CAdES.detached" in signed
    assert check.field == sign_module.SIGNATURE_FIELD


def test_pyhanko_cli_reports_intact_and_trusted(
    keys: SigningKeys, unsigned_pdf: bytes, tmp_path: Path
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(sign_pdf(unsigned_pdf, keys))
    result = subprocess.run(
        [
            str(PYHANKO),
            "sign",
            "validate",
            "--trust",
            str(keys.cert_path),
            "--trust-replace",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "INTACT:TRUSTED,UNTOUCHED" in result.stdout
    assert keys.fingerprint in result.stdout

    # And the same CLI rejects the file once one byte of the signed content changed.
    data = bytearray(report.read_bytes())
    index = data.index(b"/Producer (") + len(b"/Producer (")
    data[index] ^= 0x01  # a letter of the producer string, inside the signed byte range
    report.write_bytes(bytes(data))
    tampered = subprocess.run(
        [
            str(PYHANKO),
            "sign",
            "validate",
            "--trust",
            str(keys.cert_path),
            "--trust-replace",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tampered.returncode != 0
    assert "INTACT:TRUSTED,UNTOUCHED" not in tampered.stdout


def test_changed_byte_in_signed_content_is_detected(keys: SigningKeys, unsigned_pdf: bytes) -> None:
    signed = bytearray(sign_pdf(unsigned_pdf, keys))
    signed[signed.index(b"/Producer (") + 11] ^= 0x01  # inside the signed byte range
    check = validate_signed_pdf(bytes(signed), [keys.certificate])
    assert not check.ok
    assert check.problem() is not None


def test_appended_bytes_mean_signature_no_longer_covers_file(
    keys: SigningKeys, unsigned_pdf: bytes
) -> None:
    signed = sign_pdf(unsigned_pdf, keys) + b"\n% appended after signing\n"
    check = validate_signed_pdf(signed, [keys.certificate])
    assert not check.ok
    assert "whole file" in (check.problem() or "")


def test_other_certificate_is_not_trusted(
    keys: SigningKeys, unsigned_pdf: bytes, tmp_path: Path
) -> None:
    other = init_keys(tmp_path / "other-home", organisation="Someone Else")
    signed = sign_pdf(unsigned_pdf, keys)
    check = validate_signed_pdf(signed, [other.certificate])
    assert not check.trusted
    assert check.problem() == "the signer certificate is not the expected one"


def test_unsigned_or_garbage_pdf_is_a_verification_error(
    keys: SigningKeys, unsigned_pdf: bytes
) -> None:
    with pytest.raises(EvidenceVerificationError, match="exactly one signature"):
        validate_signed_pdf(unsigned_pdf, [keys.certificate])
    with pytest.raises(EvidenceVerificationError):
        validate_signed_pdf(b"not a pdf at all", [keys.certificate])


# --- RFC 3161 -----------------------------------------------------------------------------


def _tsa_material() -> tuple[asn1_x509.Certificate, asn1_keys.PrivateKeyInfo]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loopback Test TSA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        asn1_keys.PrivateKeyInfo.load(der_key),
    )


@pytest.fixture(scope="module")
def tsa_url() -> Iterator[str]:
    """A real RFC 3161 timestamp authority over HTTP on 127.0.0.1 (pyHanko's dummy TSA
    behind a tiny HTTP server), counting the requests it answers."""
    from pyhanko.sign.timestamps import DummyTimeStamper

    cert, key = _tsa_material()
    authority = DummyTimeStamper(tsa_cert=cert, tsa_key=key)
    answered: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = tsp.TimeStampReq.load(body)
            response = asyncio.run(authority.async_request_tsa_response(request)).dump()
            answered.append(len(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert answered, "the TSA was never asked"


def test_tsa_url_adds_a_signature_timestamp(
    keys: SigningKeys, unsigned_pdf: bytes, tsa_url: str
) -> None:
    signed = sign_pdf(unsigned_pdf, keys, tsa_url=tsa_url)
    check = validate_signed_pdf(signed, [keys.certificate])
    assert check.ok, check
    assert check.timestamp is not None
    assert check.timestamp_intact
    # The TSA's root is not among the trust anchors we give: trust is informational only.
    assert check.timestamp_trusted is False


def test_tsa_url_from_environment(
    keys: SigningKeys, unsigned_pdf: bytes, tsa_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sign_module.TSA_URL_ENV, tsa_url)
    check = validate_signed_pdf(sign_pdf(unsigned_pdf, keys), [keys.certificate])
    assert check.timestamp is not None


def test_tsa_url_is_passed_to_pyhankos_timestamper(
    keys: SigningKeys, unsigned_pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyhanko.sign import timestamps

    seen: list[tuple[str, int]] = []

    class Recording(timestamps.HTTPTimeStamper):  # type: ignore[misc]
        def __init__(self, url: str, timeout: int = 5, **kwargs: object) -> None:
            seen.append((url, timeout))
            super().__init__(url, timeout=timeout)

    monkeypatch.setattr(timestamps, "HTTPTimeStamper", Recording)
    stamper = sign_module.make_timestamper("https://tsa.example.test/rfc3161")
    assert isinstance(stamper, Recording)
    assert seen == [("https://tsa.example.test/rfc3161", 20)]


@pytest.mark.parametrize(
    "url", ["ftp://tsa.example/", "file:///etc/passwd", "not a url", "https://user:pw@tsa.example/"]
)
def test_bad_tsa_url_is_usage_error(url: str) -> None:
    with pytest.raises(UsageError):
        sign_module.make_timestamper(url)


def test_unreachable_tsa_is_one_clear_evidence_error(
    keys: SigningKeys, unsigned_pdf: bytes
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EvidenceError, match="timestamp authority"):
        sign_pdf(unsigned_pdf, keys, tsa_url=f"http://127.0.0.1:{port}/")
