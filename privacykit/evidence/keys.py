"""The installation's evidence signing key and certificate.

Owns the files under ``$PRIVACYKIT_HOME/keys/``:

* ``evidence-signing-key.pem``   PKCS#8 private key (owner-only, 0600, unencrypted so that
  unattended runs can sign; the directory is 0700 like the ledger's own keys);
* ``evidence-signing-cert.pem``  the X.509 certificate reports are signed with;
* ``evidence-signing-chain.pem`` intermediate/root certificates of an imported certificate;
* ``retired/<sha256>.pem``       certificates replaced by ``keys init --force``, kept so that
  bundles of older reports still carry the certificate that signed them.

``init_keys`` either creates a self-signed ECDSA P-256 certificate (key usage
digitalSignature + nonRepudiation, as PAdES signers are expected to have) or imports an
organisation's own certificate from a PKCS#12 file. Fingerprints are the lowercase hex
SHA-256 of the certificate's DER, the form ``pyhanko sign validate --pretty-print`` prints.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from privacykit import clock
from privacykit.config import Secret
from privacykit.errors import EvidenceError, UsageError

__all__ = [
    "CERT_FILE",
    "CHAIN_FILE",
    "KEY_FILE",
    "SigningKeys",
    "certificate_fingerprint",
    "ensure_keys",
    "init_keys",
    "keys_dir",
    "load_keys",
    "retired_certificates",
]

KEY_FILE = "evidence-signing-key.pem"
CERT_FILE = "evidence-signing-cert.pem"
CHAIN_FILE = "evidence-signing-chain.pem"
RETIRED_DIR = "retired"
DEFAULT_ORGANISATION = "privacykit installation"
DEFAULT_VALIDITY_DAYS = 3650
_MIN_RSA_BITS = 2048


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def keys_dir(home: Path) -> Path:
    """``$PRIVACYKIT_HOME/keys`` (not created)."""
    return Path(home) / "keys"


@dataclass(frozen=True)
class SigningKeys:
    """The loaded signing material. The private key stays on disk: :meth:`signer` reads it
    only when a report is actually signed, so this object is safe to pass around."""

    key_path: Path
    cert_path: Path
    chain_path: Path | None
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.certificate)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def key_algorithm(self) -> str:
        public = self.certificate.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            return f"ECDSA {public.curve.name}"
        if isinstance(public, rsa.RSAPublicKey):
            return f"RSA-{public.key_size}"
        return type(public).__name__

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def signer(self) -> object:
        """A pyHanko ``SimpleSigner`` over the key and certificate (and chain)."""
        from pyhanko.sign import signers

        chain_files = [str(self.chain_path)] if self.chain_path is not None else None
        signer = signers.SimpleSigner.load(
            str(self.key_path), str(self.cert_path), ca_chain_files=chain_files
        )
        if signer is None:  # pyHanko logs and returns None on unreadable key material
            raise EvidenceError(
                "cannot load the evidence signing key; re-run `privacykit keys init`"
            )
        return signer

    def describe(self) -> dict[str, str]:
        """Plain data for `keys show --json` and reports."""
        return {
            "fingerprint_sha256": self.fingerprint,
            "subject": self.subject,
            "algorithm": self.key_algorithm,
            "not_before": self.certificate.not_valid_before_utc.isoformat(),
            "not_after": self.not_after.isoformat(),
            "certificate": str(self.cert_path),
        }


# --- files -------------------------------------------------------------------------------


def _ensure_private_dir(path: Path) -> None:
    from privacykit.config import make_private_dirs

    try:
        # Missing parents (a home not created yet) are 0700 too, whatever the umask.
        make_private_dirs(path)
        path.chmod(0o700)
    except OSError as exc:
        raise EvidenceError(f"cannot create key directory {path}: {exc.strerror}") from None


def _write_owner_only(path: Path, data: bytes) -> None:
    """Write ``data`` atomically with mode 0600 from the first byte (no window in which
    the file exists with looser permissions)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise key creation between processes (two engines starting at once)."""
    _ensure_private_dir(directory)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_certs(path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"cannot read certificate file {path.name}: {exc}") from None


def load_keys(home: Path) -> SigningKeys:
    """The signing keys in ``home``. Raises :class:`EvidenceError` with the remedy when
    there are none."""
    directory = keys_dir(home)
    key_path, cert_path, chain_path = (
        directory / KEY_FILE,
        directory / CERT_FILE,
        directory / CHAIN_FILE,
    )
    if not key_path.exists() or not cert_path.exists():
        raise EvidenceError("no evidence signing key: run `privacykit keys init`")
    certs = _read_certs(cert_path)
    if len(certs) != 1:
        raise EvidenceError(f"{CERT_FILE} must hold exactly one certificate")
    chain: tuple[x509.Certificate, ...] = ()
    if chain_path.exists():
        chain = tuple(_read_certs(chain_path))
    return SigningKeys(
        key_path=key_path,
        cert_path=cert_path,
        chain_path=chain_path if chain else None,
        certificate=certs[0],
        chain=chain,
    )


def retired_certificates(home: Path) -> list[x509.Certificate]:
    """Certificates replaced by ``keys init --force``, oldest file name first."""
    directory = keys_dir(home) / RETIRED_DIR
    if not directory.is_dir():
        return []
    found: list[x509.Certificate] = []
    for path in sorted(directory.glob("*.pem")):
        found.extend(_read_certs(path))
    return found


# --- creation / import -------------------------------------------------------------------


def _self_signed(organisation: str, days: int) -> tuple[bytes, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} evidence signing"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "privacykit"),
        ]
    )
    now = clock.now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        # Back-dated a little so a report signed right away validates on a machine whose
        # clock is slightly behind.
        .not_valid_before(now - dt.timedelta(minutes=10))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # a.k.a. nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert


def _from_pkcs12(
    data: bytes, passphrase: Secret | None
) -> tuple[bytes, x509.Certificate, list[x509.Certificate]]:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, passphrase.reveal().encode() if passphrase is not None else None
        )
    except (ValueError, TypeError):
        # Never echo the passphrase or the library's message (it may quote input).
        raise UsageError(
            "cannot read the PKCS#12 file: wrong passphrase or not a PKCS#12 archive"
        ) from None
    if key is None or cert is None:
        raise UsageError("the PKCS#12 file must contain a private key and its certificate")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        pass
    elif isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise UsageError(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
    else:
        raise UsageError("the PKCS#12 key must be ECDSA or RSA")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise UsageError("the PKCS#12 certificate does not belong to its private key")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise UsageError(
            "the certificate's key usage allows neither digitalSignature nor nonRepudiation"
        )
    now = clock.now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise UsageError("the PKCS#12 certificate is not valid today")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert, list(extra)


def init_keys(
    home: Path,
    *,
    organisation: str = DEFAULT_ORGANISATION,
    force: bool = False,
    pkcs12_file: Path | None = None,
    passphrase: Secret | None = None,
    days: int = DEFAULT_VALIDITY_DAYS,
) -> SigningKeys:
    """Create (or, with ``pkcs12_file``, import) the signing key and certificate.

    Refuses to replace existing keys unless ``force``; a replaced certificate is kept in
    ``keys/retired/`` (its private key is deleted)."""
    organisation = organisation.strip()
    if not organisation or any(ord(ch) < 32 for ch in organisation):
        raise UsageError("--organisation must be a non-empty single line")
    if not 1 <= days <= 36500:
        raise UsageError("certificate validity must be between 1 and 36500 days")
    imported: tuple[bytes, x509.Certificate, list[x509.Certificate]] | None = None
    if pkcs12_file is not None:
        try:
            pkcs12_data = Path(pkcs12_file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {Path(pkcs12_file).name}: {exc.strerror}") from None
        # Parsed before anything is created: a bad file or passphrase changes nothing.
        imported = _from_pkcs12(pkcs12_data, passphrase)
    directory = keys_dir(home)
    with _locked(directory):
        key_path, cert_path, chain_path = (
            directory / KEY_FILE,
            directory / CERT_FILE,
            directory / CHAIN_FILE,
        )
        if key_path.exists() or cert_path.exists():
            if not force:
                try:
                    existing = load_keys(home).fingerprint
                except EvidenceError:
                    existing = "unreadable"
                raise UsageError(
                    f"signing keys already exist (certificate {existing}); "
                    "use --force to replace them"
                )
        if imported is not None:
            key_pem, cert, chain = imported
        else:
            key_pem, cert = _self_signed(organisation, days)
            chain = []
        if cert_path.exists():
            retired = directory / RETIRED_DIR
            _ensure_private_dir(retired)
            for old in _read_certs(cert_path):
                _write_owner_only(
                    retired / f"{certificate_fingerprint(old)}.pem",
                    old.public_bytes(serialization.Encoding.PEM),
                )
        _write_owner_only(key_path, key_pem)
        _write_owner_only(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        if chain:
            _write_owner_only(
                chain_path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
            )
        elif chain_path.exists():
            chain_path.unlink()
    return load_keys(home)


def ensure_keys(home: Path, *, organisation: str = DEFAULT_ORGANISATION) -> SigningKeys:
    """The signing keys, creating a self-signed set on first use.

    The engine and the demo call this so that the first report of a fresh installation
    just works; ``privacykit keys init`` remains the way to choose the organisation name
    or import a real certificate beforehand."""
    try:
        return load_keys(home)
    except EvidenceError:
        pass
    directory = keys_dir(home)
    with _locked(directory):
        # Again under the creators' lock: the reports of a batch are produced in parallel,
        # and another thread or process may have been between writing the key and the
        # certificate (half a key set is not a broken one until its creator is done).
        try:
            return load_keys(home)
        except EvidenceError:
            if (directory / KEY_FILE).exists() or (directory / CERT_FILE).exists():
                raise  # present but broken: never silently replace someone's key
    try:
        return init_keys(home, organisation=organisation)
    except UsageError:
        return load_keys(home)  # another process created them first
