"""Evidence signing keys: creation, permissions, certificate contents, rotation, PKCS#12 import."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from privacykit.config import Secret
from privacykit.errors import EvidenceError, UsageError
from privacykit.evidence import ensure_keys, init_keys, load_keys
from privacykit.evidence.keys import CERT_FILE, KEY_FILE, certificate_fingerprint


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_owner_only_p256_certificate(home: Path) -> None:
    keys = init_keys(home, organisation="Acme Data GmbH")
    directory = home / "keys"
    assert _mode(directory) == 0o700
    assert _mode(directory / KEY_FILE) == 0o600
    assert _mode(directory / CERT_FILE) == 0o600

    cert = keys.certificate
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    assert cert.subject == cert.issuer  # self-signed
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Acme Data GmbH"
    )
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    cert.verify_directly_issued_by(cert)  # the self-signature is valid
    assert keys.fingerprint == certificate_fingerprint(cert)
    assert len(keys.fingerprint) == 64
    # The private key on disk belongs to the certificate.
    key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, spki) == public.public_bytes(der, spki)


def test_init_refuses_to_replace_without_force_and_keeps_retired_cert(home: Path) -> None:
    first = init_keys(home)
    with pytest.raises(UsageError, match="--force"):
        init_keys(home)
    assert load_keys(home).fingerprint == first.fingerprint
    second = init_keys(home, force=True)
    assert second.fingerprint != first.fingerprint
    retired = home / "keys" / "retired" / f"{first.fingerprint}.pem"
    assert retired.exists() and _mode(retired) == 0o600


def test_load_without_keys_says_what_to_run(home: Path) -> None:
    with pytest.raises(EvidenceError, match="privacykit keys init"):
        load_keys(home)


def test_ensure_keys_waits_for_a_creator_between_its_key_and_certificate(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two reports of one batch, produced in parallel on a fresh home: one thread creates
    # the keys while the other reads them and finds the key written but not yet the
    # certificate. That reader must wait for the creator (its lock), not call it broken.
    from privacykit.evidence import keys as keys_module

    created = init_keys(home)
    real_load = keys_module.load_keys
    calls = {"n": 0}

    def half_written(at: Path) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise EvidenceError("no evidence signing key: run `privacykit keys init`")
        return real_load(at)

    monkeypatch.setattr(keys_module, "load_keys", half_written)
    assert ensure_keys(home).fingerprint == created.fingerprint
    assert calls["n"] == 2


def test_ensure_keys_creates_once_and_never_replaces_broken_keys(home: Path) -> None:
    first = ensure_keys(home)
    assert ensure_keys(home).fingerprint == first.fingerprint
    (home / "keys" / CERT_FILE).write_text("not a certificate")
    with pytest.raises(EvidenceError):
        ensure_keys(home)
    assert (home / "keys" / KEY_FILE).exists()


def test_bad_organisation_is_usage_error(home: Path) -> None:
    with pytest.raises(UsageError):
        init_keys(home, organisation="two\nlines")
    with pytest.raises(UsageError):
        init_keys(home, organisation="  ")


def _ca_and_leaf(
    *, leaf_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, usage_ok: bool = True
) -> tuple[x509.Certificate, x509.Certificate]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Acme Root CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Acme DPO office"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.KeyUsage(
                digital_signature=usage_ok,
                content_commitment=usage_ok,
                key_encipherment=not usage_ok,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca, leaf


def _p12(
    path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, usage_ok: bool = True
) -> Path:
    ca, leaf = _ca_and_leaf(leaf_key=key, usage_ok=usage_ok)
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"acme",
            key,
            leaf,
            [ca],
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    return path


def test_pkcs12_import_keeps_certificate_and_chain(home: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    p12 = _p12(tmp_path / "acme.p12", key)
    keys = init_keys(home, pkcs12_file=p12, passphrase=Secret("correct horse"))
    assert keys.subject == "O=Acme,CN=Acme DPO office"
    assert len(keys.chain) == 1 and keys.chain[0].subject.rfc4514_string() == "CN=Acme Root CA"
    assert _mode(home / "keys" / KEY_FILE) == 0o600
    assert load_keys(home).fingerprint == keys.fingerprint


def test_pkcs12_wrong_passphrase_is_usage_error_without_echo(home: Path, tmp_path: Path) -> None:
    p12 = _p12(tmp_path / "acme.p12", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(UsageError) as caught:
        init_keys(home, pkcs12_file=p12, passphrase=Secret("hunter2-wrong"))
    assert "hunter2" not in str(caught.value)
    assert not (home / "keys" / KEY_FILE).exists()


def test_pkcs12_with_encipherment_only_key_usage_is_refused(home: Path, tmp_path: Path) -> None:
    p12 = _p12(tmp_path / "acme.p12", ec.generate_private_key(ec.SECP256R1()), usage_ok=False)
    with pytest.raises(UsageError, match="key usage"):
        init_keys(home, pkcs12_file=p12, passphrase=Secret("correct horse"))


def test_pkcs12_small_rsa_key_is_refused(home: Path, tmp_path: Path) -> None:
    p12 = _p12(tmp_path / "weak.p12", rsa.generate_private_key(65537, 1024))
    with pytest.raises(UsageError, match="2048"):
        init_keys(home, pkcs12_file=p12, passphrase=Secret("correct horse"))


def test_not_a_pkcs12_file(home: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match="PKCS#12"):
        init_keys(home, pkcs12_file=junk)


def test_imported_ca_issued_certificate_signs_reports_that_validate(
    home: Path, tmp_path: Path
) -> None:
    from privacykit.evidence import sign_pdf, validate_signed_pdf
    from privacykit.evidence.render import markup_to_pdf

    p12 = _p12(tmp_path / "acme.p12", rsa.generate_private_key(65537, 2048))
    keys = init_keys(home, pkcs12_file=p12, passphrase=Secret("correct horse"))
    assert keys.key_algorithm == "RSA-2048"
    signed = sign_pdf(markup_to_pdf('<report title="t"><p>x</p></report>'), keys)
    check = validate_signed_pdf(signed, [keys.certificate])  # the leaf itself as anchor
    assert check.ok, check
    assert check.signer_fingerprint == keys.fingerprint
    # The CA root works as the anchor too (the chain travels in the signature).
    assert validate_signed_pdf(signed, [keys.chain[0]]).ok
