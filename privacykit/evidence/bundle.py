"""Evidence bundles: a zip a regulator can verify offline, with standard tools or ours.

Owns :func:`export_bundle` and :func:`verify_bundle`. Layout (format
``privacykit.evidence-bundle/1``)::

    manifest.json                     what is inside, with the sha256 of every other file
    manifest.sig                      signature of manifest.json by the evidence signing key
    SHA256SUMS                        the same hashes for `sha256sum -c`
    VERIFY.txt                        how to check all of it by hand
    certificates/<sha256>.pem         certificate(s) that signed the reports and manifest
    checkpoint/checkpoint.txt         latest signed ledger checkpoint (C2SP signed note)
    checkpoint/checkpoint-key.txt     its Ed25519 verifier key (signed-note format)
    checkpoint/checkpoint-key.pem     the same public key as PEM, for openssl
    checkpoint/checkpoint-body.txt    the signed part of the note, for openssl
    checkpoint/checkpoint.sig         the raw Ed25519 signature of that body, for openssl
    requests/<id>/entries.jsonl       the request's ledger entries, one canonical JSON per line
    requests/<id>/proofs.json         an RFC 6962 inclusion proof of each against the checkpoint
    requests/<id>/report-<seq>.pdf    the signed reports (<seq>: the ledger entry recording it)

Only the selected requests' own entries are exported: an inclusion proof reveals sibling
hashes, never another person's entries. Data exports (access) are never included.

Verification needs no ledger: manifest hashes and signature, the checkpoint signature,
every entry's inclusion proof against the checkpoint root, every PDF's PAdES signature
against the bundled certificate, and that every PDF is recorded by an entry of its
request. Reading the zip is defensive: absolute or ``..`` names, duplicates, links,
encryption and oversized members are refused before anything is read.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacykit import __version__, clock
from privacykit.errors import (
    EvidenceError,
    EvidenceVerificationError,
    LedgerIntegrityError,
    UsageError,
)
from privacykit.evidence.keys import (
    SigningKeys,
    certificate_fingerprint,
    load_keys,
    retired_certificates,
)
from privacykit.evidence.reports import ARTIFACT_KIND
from privacykit.evidence.sign import validate_signed_pdf

if TYPE_CHECKING:
    from privacykit.ledger import Ledger

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_MEMBER_BYTES",
    "MAX_MEMBERS",
    "BundleReport",
    "ExportResult",
    "export_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "privacykit.evidence-bundle/1"
MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
SUMS = "SHA256SUMS"
VERIFY_TXT = "VERIFY.txt"
CHECKPOINT_NOTE = "checkpoint/checkpoint.txt"
CHECKPOINT_KEY = "checkpoint/checkpoint-key.txt"
CHECKPOINT_KEY_PEM = "checkpoint/checkpoint-key.pem"
CHECKPOINT_BODY = "checkpoint/checkpoint-body.txt"
CHECKPOINT_SIG = "checkpoint/checkpoint.sig"
_ARTIFACT_STEP = "ledger:artifact"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- signing the manifest ----------------------------------------------------------------


def _sign_bytes(keys: SigningKeys, data: bytes) -> bytes:
    key = serialization.load_pem_private_key(keys.key_path.read_bytes(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise EvidenceError("the evidence signing key is neither ECDSA nor RSA")


def _verify_bytes(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
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


# --- export ------------------------------------------------------------------------------


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "requests": list(self.requests),
            "entries": self.entries,
            "reports": self.reports,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": self.checkpoint_root,
        }


def _select(ledger: Ledger, request_ids: Sequence[str] | None, since: dt.date | None) -> list[str]:
    if request_ids and since is not None:
        raise UsageError("give --request or --since, not both")
    if request_ids:
        chosen: list[str] = []
        for rid in request_ids:
            ledger.get_request(rid)  # UsageError (exit 2) for an unknown id
            if rid not in chosen:
                chosen.append(rid)
        return chosen
    if since is None:
        raise UsageError("say which requests to export: --request ID or --since DATE")
    chosen = [r.request_id for r in ledger.list_requests() if r.received_at >= since]
    if not chosen:
        raise UsageError(f"no request was received on or after {since.isoformat()}")
    return sorted(chosen)


def _pdf_signer_fingerprint(pdf: bytes) -> str:
    from pyhanko.pdf_utils.reader import PdfFileReader

    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    if len(signatures) != 1:
        raise EvidenceError("a stored report does not carry exactly one signature")
    cert = x509.load_der_x509_certificate(signatures[0].signer_cert.dump())
    return certificate_fingerprint(cert)


def _verify_text(
    requests: list[dict[str, Any]], manifest_signer: str, checkpoint: Mapping[str, Any]
) -> str:
    signer_pem = f"certificates/{manifest_signer}.pem"
    pdfs = [(r["request_id"], rep) for r in requests for rep in r["reports"]]
    lines = [
        "PRIVACYKIT EVIDENCE BUNDLE -- HOW TO VERIFY IT",
        "",
        f"Format {BUNDLE_FORMAT}, made by privacykit {__version__}.",
        f"Requests: {len(requests)}. Signed reports: {len(pdfs)}. "
        f"Ledger checkpoint: tree size {checkpoint['size']}.",
        "",
        "The bundle holds the signed PDF reports of the listed requests, the ledger entries",
        "of exactly those requests with Merkle inclusion proofs (RFC 6962) against a signed",
        "ledger checkpoint, the certificate(s) that signed the reports, and a manifest with",
        "the SHA-256 of every file. No other person's entries are included.",
        "",
        "0. Check the signer out of band. The reports and this manifest are signed by the",
        "   certificate whose SHA-256 fingerprint is:",
        f"       {manifest_signer}",
        "   Ask the controller to confirm it (compare with `privacykit keys show` on their side;",
        f"   `openssl x509 -in {signer_pem} -noout -fingerprint -sha256` prints it with colons).",
        "",
        "1. Everything at once, offline (needs privacykit installed):",
        "       privacykit evidence verify BUNDLE.zip",
        "   It exits 0 when every check below passes and 1 naming the first problem.",
        "",
        "2. File hashes (unzip first):",
        "       sha256sum -c SHA256SUMS",
        "   manifest.json lists the same hashes; its signature covers them:",
        f"       openssl x509 -in {signer_pem} -pubkey -noout > signer-pub.pem",
        "       openssl dgst -sha256 -verify signer-pub.pem -signature manifest.sig manifest.json",
        "",
        "3. Report signatures (PAdES). For each PDF (pyHanko: pip install pyhanko-cli):",
    ]
    for _rid, rep in pdfs:
        cert = f"certificates/{rep['signer']}.pem"
        lines.append(f"       pyhanko sign validate --trust {cert} --trust-replace {rep['file']}")
    if not pdfs:
        lines.append("       (this bundle holds no reports)")
    lines += [
        "   Each must say INTACT:TRUSTED,UNTOUCHED (the signature covers the whole file).",
        "   Each report's SHA-256 also appears in a `ledger:artifact` entry of its request.",
        "",
        "4. The ledger checkpoint (Ed25519, C2SP signed note). checkpoint.txt is the note;",
        "   checkpoint-body.txt is its signed part and checkpoint.sig the raw signature:",
        f"       openssl pkeyutl -verify -pubin -inkey {CHECKPOINT_KEY_PEM} -rawin \\",
        f"           -in {CHECKPOINT_BODY} -sigfile {CHECKPOINT_SIG}",
        "   The body's lines are: the log's origin, the tree size, the base64 Merkle root.",
        f"   Root (hex): {checkpoint['root']}",
        "",
        "5. Ledger entries. Each line of requests/<id>/entries.jsonl is one entry in its",
        "   canonical form (JSON, sorted keys, no spaces, UTF-8). Its leaf hash is",
        "   SHA-256(0x00 || line bytes without the newline); requests/<id>/proofs.json gives,",
        "   for each entry seq, the audit path of leaf index seq-1 in the tree of the",
        "   checkpoint's size (RFC 9162 section 2.1.3.2). Folding the path (interior nodes",
        "   SHA-256(0x01 || left || right)) must give the checkpoint root.",
        "",
        "A later checkpoint of the same ledger can be shown to extend this one with a",
        "consistency proof (`privacykit ledger` commands on the controller's side).",
        "",
    ]
    return "\n".join(lines)


def export_bundle(
    ledger: Ledger,
    out: Path | str,
    *,
    request_ids: Sequence[str] | None = None,
    since: dt.date | None = None,
    home: Path | None = None,
) -> ExportResult:
    """Write an evidence bundle for the chosen requests to ``out`` (a new zip, 0600).

    A fresh checkpoint is written first so every proof is against it."""
    out = Path(out)
    home = Path(home) if home is not None else Path(ledger.home)
    chosen = _select(ledger, request_ids, since)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out is a directory: {out}")
    if not out.parent.is_dir():
        raise UsageError(f"the directory of --out does not exist: {out.parent}")
    keys = load_keys(home)
    known_certs = {c.fingerprint: c.certificate for c in [keys]}
    for cert in retired_certificates(home):
        known_certs.setdefault(certificate_fingerprint(cert), cert)

    checkpoint = ledger.checkpoint()
    size, root = checkpoint.size, checkpoint.root
    files: dict[str, bytes] = {}
    manifest_requests: list[dict[str, Any]] = []
    used_certs = {keys.fingerprint}
    total_entries = total_reports = 0
    for rid in chosen:
        req = ledger.get_request(rid)
        entries = [e for e in ledger.iter_entries(rid, stop=size)]
        lines = [e.canonical_bytes() for e in entries]
        proofs = [
            {
                "seq": e.seq,
                "leaf_index": e.index,
                "leaf_hash": e.leaf_hash().hex(),
                "path": [h.hex() for h in ledger.inclusion_proof(e.seq, size)],
            }
            for e in entries
        ]
        base = f"requests/{rid}"
        files[f"{base}/entries.jsonl"] = b"".join(line + b"\n" for line in lines)
        files[f"{base}/proofs.json"] = (
            json.dumps(
                {"request_id": rid, "tree_size": size, "root": root.hex(), "proofs": proofs},
                indent=1,
                sort_keys=True,
            ).encode()
            + b"\n"
        )
        reports = []
        for artifact in ledger.artifacts(rid):
            if artifact.kind != ARTIFACT_KIND or artifact.seq > size:
                continue
            try:
                pdf = artifact.path.read_bytes()
            except OSError as exc:
                raise EvidenceError(
                    f"report {artifact.sha256[:16]} of {rid} cannot be read: {exc.strerror}"
                ) from None
            if _sha256(pdf) != artifact.sha256:
                raise EvidenceError(
                    f"stored report {artifact.sha256[:16]} of {rid} no longer matches its hash"
                )
            signer = _pdf_signer_fingerprint(pdf)
            if signer not in known_certs:
                raise EvidenceError(
                    f"report {artifact.sha256[:16]} of {rid} was signed by a certificate this "
                    "installation does not have"
                )
            used_certs.add(signer)
            name = f"{base}/report-{artifact.seq}.pdf"
            files[name] = pdf
            reports.append(
                {"file": name, "sha256": artifact.sha256, "seq": artifact.seq, "signer": signer}
            )
        total_entries += len(entries)
        total_reports += len(reports)
        manifest_requests.append(
            {
                "request_id": rid,
                "kind": req.kind,
                "subject_ref": req.subject_ref,
                "received_at": req.received_at.isoformat(),
                "status": req.status,
                "entries": len(entries),
                "first_seq": entries[0].seq if entries else None,
                "last_seq": entries[-1].seq if entries else None,
                "entries_file": f"{base}/entries.jsonl",
                "proofs_file": f"{base}/proofs.json",
                "reports": reports,
            }
        )
    for fp in sorted(used_certs):
        files[f"certificates/{fp}.pem"] = known_certs[fp].public_bytes(serialization.Encoding.PEM)

    note = checkpoint.note
    vkey = ledger.checkpoint_verifier_key
    split = note.rfind("\n\n")
    body = note[: split + 1]
    blob = base64.b64decode(note[split + 2 :].strip().rpartition(" ")[2])
    files[CHECKPOINT_NOTE] = note.encode("utf-8")
    files[CHECKPOINT_KEY] = (vkey + "\n").encode("ascii")
    files[CHECKPOINT_KEY_PEM] = Ed25519PublicKey.from_public_bytes(
        ledger.checkpoint_public_key
    ).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    files[CHECKPOINT_BODY] = body.encode("utf-8")
    files[CHECKPOINT_SIG] = blob[4:]
    checkpoint_info = {
        "size": size,
        "root": root.hex(),
        "origin": checkpoint.origin,
        "ts": checkpoint.ts,
        "note_file": CHECKPOINT_NOTE,
        "key_file": CHECKPOINT_KEY,
    }
    files[VERIFY_TXT] = _verify_text(manifest_requests, keys.fingerprint, checkpoint_info).encode(
        "utf-8"
    )
    files[SUMS] = "".join(f"{_sha256(files[n])}  {n}\n" for n in sorted(files)).encode()
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at": clock.now_iso(),
        "tool_version": __version__,
        "manifest_signer": keys.fingerprint,
        "certificates": sorted(f"certificates/{fp}.pem" for fp in used_certs),
        "checkpoint": checkpoint_info,
        "requests": manifest_requests,
        "files": {name: _sha256(files[name]) for name in sorted(files)},
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    signature = _sign_bytes(keys, manifest_bytes)

    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, manifest_bytes)
                zf.writestr(MANIFEST_SIG, signature)
                for name in sorted(files):
                    zf.writestr(name, files[name])
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(
        path=out,
        sha256=_sha256(out.read_bytes()),
        requests=chosen,
        entries=total_entries,
        reports=total_reports,
        checkpoint_size=size,
        checkpoint_root=root.hex(),
    )


# --- verify ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleReport:
    """What :func:`verify_bundle` checked (it raises on the first problem instead)."""

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
            "timestamps": self.timestamps,
        }


def _fail(message: str) -> EvidenceVerificationError:
    return EvidenceVerificationError(f"bundle does not verify: {message}")


def _safe_name(name: str) -> bool:
    if not name or len(name) > 300 or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    if name.endswith("/"):
        return False
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") or ":" in p for p in parts):
        return False
    return name.isprintable()


def _read_members(path: Path) -> dict[str, bytes]:
    """Every member of the zip, after refusing anything unsafe. Raises UsageError when the
    file is absent or not a zip at all (exit 2), EvidenceVerificationError otherwise."""
    if not path.is_file():
        raise UsageError(f"no such bundle file: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UsageError(f"not a readable zip archive: {path}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _fail(f"too many members ({len(infos)})")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if not _safe_name(name):
                raise _fail(f"unsafe member name {json.dumps(name)[:120]}")
            if name in seen:
                raise _fail(f"duplicate member {name}")
            seen.add(name)
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise _fail(f"member {name} is not a regular file")
            if info.flag_bits & 0x1:
                raise _fail(f"member {name} is encrypted")
            if info.file_size > MAX_MEMBER_BYTES:
                raise _fail(f"member {name} is too large ({info.file_size} bytes)")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise _fail("the bundle is too large when unpacked")
        members: dict[str, bytes] = {}
        for info in infos:
            try:
                with zf.open(info) as handle:
                    # Never trust the declared size: read at most one byte more than allowed.
                    data = handle.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
                raise _fail(f"member {info.filename} is corrupt") from None
            if len(data) != info.file_size or len(data) > MAX_MEMBER_BYTES:
                raise _fail(f"member {info.filename} is not the size it declares")
            members[info.filename] = data
    return members


def _json(members: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(members[name].decode("utf-8"))
    except KeyError:
        raise _fail(f"{name} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(f"{name} is not valid JSON") from None


def _cert(members: Mapping[str, bytes], name: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(members[name])
    except KeyError:
        raise _fail(f"{name} is missing") from None
    except ValueError:
        raise _fail(f"{name} is not a PEM certificate") from None


def _check_manifest(members: Mapping[str, bytes]) -> dict[str, Any]:
    manifest = _json(members, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise _fail(f"manifest.json is not a {BUNDLE_FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in listed.items()
    ):
        raise _fail("manifest.json has no valid file list")
    if MANIFEST_SIG not in members:
        raise _fail(f"{MANIFEST_SIG} is missing")
    for name in sorted(set(members) - set(listed) - {MANIFEST, MANIFEST_SIG}):
        raise _fail(f"{name} is in the zip but not in the manifest")
    for name in sorted(listed):
        if name not in members:
            raise _fail(f"{name} is listed in the manifest but missing")
        if _sha256(members[name]) != listed[name]:
            raise _fail(f"{name}: sha256 does not match the manifest")
    signer = manifest.get("manifest_signer")
    cert_name = f"certificates/{signer}.pem"
    if not isinstance(signer, str) or cert_name not in listed:
        raise _fail("manifest.json does not name a bundled signing certificate")
    cert = _cert(members, cert_name)
    if certificate_fingerprint(cert) != signer:
        raise _fail(f"{cert_name} is not the certificate its name says")
    if not _verify_bytes(cert, members[MANIFEST_SIG], members[MANIFEST]):
        raise _fail("manifest.sig: the manifest signature does not verify")
    expected_sums = "".join(
        f"{digest}  {name}\n" for name, digest in sorted(listed.items()) if name != SUMS
    ).encode()
    if members.get(SUMS) != expected_sums:
        raise _fail(f"{SUMS} does not agree with the manifest")
    return manifest


def _verifier_public_key(vkey: str) -> bytes:
    """The raw Ed25519 key of a signed-note verifier key (the ledger's own parser)."""
    from privacykit.ledger.checkpoint import parse_verifier_key

    return parse_verifier_key(vkey)[1]


def _check_checkpoint(
    members: Mapping[str, bytes], manifest: Mapping[str, Any]
) -> tuple[str, int, bytes]:
    from privacykit.ledger import verify_checkpoint_note

    info = manifest.get("checkpoint")
    if not isinstance(info, dict):
        raise _fail("manifest.json has no checkpoint")
    try:
        note = members[CHECKPOINT_NOTE].decode("utf-8")
        vkey = members[CHECKPOINT_KEY].decode("ascii").strip()
    except KeyError as exc:
        raise _fail(f"{exc.args[0]} is missing") from None
    except UnicodeDecodeError:
        raise _fail("the checkpoint files are not text") from None
    try:
        raw_key = _verifier_public_key(vkey)
        origin, size, root = verify_checkpoint_note(note, raw_key)
    except (LedgerIntegrityError, ValueError) as exc:
        raise _fail(f"{CHECKPOINT_NOTE}: {exc}") from None
    if info.get("size") != size or info.get("root") != root.hex():
        raise _fail("the manifest's checkpoint differs from the signed checkpoint")
    # The openssl convenience files must say exactly what the note says.
    split = note.rfind("\n\n")
    try:
        blob = base64.b64decode(note[split + 2 :].strip().rpartition(" ")[2])
        pem_key = serialization.load_pem_public_key(members[CHECKPOINT_KEY_PEM])
    except (KeyError, ValueError):
        raise _fail(f"{CHECKPOINT_KEY_PEM} is missing or not a public key") from None
    if members.get(CHECKPOINT_BODY) != note[: split + 1].encode("utf-8"):
        raise _fail(f"{CHECKPOINT_BODY} is not the signed part of the checkpoint")
    if members.get(CHECKPOINT_SIG) != blob[4:]:
        raise _fail(f"{CHECKPOINT_SIG} is not the checkpoint's signature")
    if (
        not isinstance(pem_key, Ed25519PublicKey)
        or pem_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        != raw_key
    ):
        raise _fail(f"{CHECKPOINT_KEY_PEM} is not the checkpoint key")
    return origin, size, root


def _check_request(
    members: Mapping[str, bytes], request: Mapping[str, Any], size: int, root: bytes
) -> tuple[int, set[str]]:
    """Check one request's entries and proofs; return (entries, sha256 of its artifacts)."""
    from privacykit.ledger import entry_canonical_bytes, merkle

    rid = request.get("request_id")
    if not isinstance(rid, str):
        raise _fail("a manifest request has no id")
    base = f"requests/{rid}"
    entries_file, proofs_file = f"{base}/entries.jsonl", f"{base}/proofs.json"
    if request.get("entries_file") != entries_file or request.get("proofs_file") != proofs_file:
        raise _fail(f"request {rid}: unexpected entry or proof file names")
    if entries_file not in members:
        raise _fail(f"{entries_file} is missing")
    proofs_doc = _json(members, proofs_file)
    if (
        not isinstance(proofs_doc, dict)
        or proofs_doc.get("tree_size") != size
        or proofs_doc.get("root") != root.hex()
        or proofs_doc.get("request_id") != rid
        or not isinstance(proofs_doc.get("proofs"), list)
    ):
        raise _fail(f"{proofs_file} is not a proof set for {rid} against the checkpoint")
    proofs: dict[int, Any] = {}
    for proof in proofs_doc["proofs"]:
        if not isinstance(proof, dict) or not isinstance(proof.get("seq"), int):
            raise _fail(f"{proofs_file}: malformed proof")
        proofs[proof["seq"]] = proof
    raw = members[entries_file]
    if raw and not raw.endswith(b"\n"):
        raise _fail(f"{entries_file} does not end with a newline")
    lines = raw.split(b"\n")[:-1] if raw else []
    artifacts: set[str] = set()
    previous = 0
    for number, line in enumerate(lines, start=1):
        where = f"{entries_file} line {number}"
        try:
            entry = json.loads(line.decode("utf-8"))
            canonical = entry_canonical_bytes(entry)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError):
            raise _fail(f"{where} is not a ledger entry") from None
        if canonical != line:
            raise _fail(f"{where} is not in canonical form")
        if entry["request_id"] != rid:
            raise _fail(f"{where} belongs to another request")
        seq = entry["seq"]
        if not isinstance(seq, int) or not previous < seq <= size:
            raise _fail(f"{where}: entry number out of order or beyond the checkpoint")
        previous = seq
        proof = proofs.pop(seq, None)
        if proof is None:
            raise _fail(f"{where}: no inclusion proof for entry {seq}")
        try:
            path = [bytes.fromhex(h) for h in proof["path"]]
        except (KeyError, TypeError, ValueError):
            raise _fail(f"{proofs_file}: malformed proof for entry {seq}") from None
        leaf = merkle.leaf_hash(line)
        if proof.get("leaf_hash") != leaf.hex() or proof.get("leaf_index") != seq - 1:
            raise _fail(f"{proofs_file}: proof for entry {seq} is for another leaf")
        if not merkle.verify_inclusion(seq - 1, size, leaf, path, root):
            raise _fail(
                f"entry {seq} of {rid}: inclusion proof does not lead to the checkpoint root"
            )
        data = entry.get("data")
        if entry["step_key"] == _ARTIFACT_STEP and isinstance(data, dict):
            if data.get("kind") == ARTIFACT_KIND and isinstance(data.get("sha256"), str):
                artifacts.add(data["sha256"])
    if proofs:
        raise _fail(f"{proofs_file} has proofs for entries not in the bundle")
    if request.get("entries") != len(lines):
        raise _fail(f"request {rid}: the manifest's entry count is wrong")
    return len(lines), artifacts


def verify_bundle(path: Path | str) -> BundleReport:
    """Verify an evidence bundle offline. Raises :class:`EvidenceVerificationError`
    naming the first problem (exit 1), :class:`UsageError` when the file is absent or
    not a zip (exit 2)."""
    path = Path(path)
    members = _read_members(path)
    manifest = _check_manifest(members)
    origin, size, root = _check_checkpoint(members, manifest)

    cert_names = manifest.get("certificates")
    if not isinstance(cert_names, list) or not cert_names:
        raise _fail("manifest.json lists no certificates")
    certs: dict[str, x509.Certificate] = {}
    for name in cert_names:
        if not isinstance(name, str) or not name.startswith("certificates/"):
            raise _fail("manifest.json lists a certificate outside certificates/")
        cert = _cert(members, name)
        fingerprint = certificate_fingerprint(cert)
        if name != f"certificates/{fingerprint}.pem":
            raise _fail(f"{name} is not the certificate its name says")
        certs[fingerprint] = cert

    requests = manifest.get("requests")
    if not isinstance(requests, list):
        raise _fail("manifest.json has no request list")
    expected_files = {
        MANIFEST,
        MANIFEST_SIG,
        SUMS,
        VERIFY_TXT,
        CHECKPOINT_NOTE,
        CHECKPOINT_KEY,
        CHECKPOINT_KEY_PEM,
        CHECKPOINT_BODY,
        CHECKPOINT_SIG,
        *cert_names,
    }
    rids: list[str] = []
    total_entries = total_reports = timestamps = 0
    signers: set[str] = set()
    for request in requests:
        if not isinstance(request, dict):
            raise _fail("manifest.json has a malformed request")
        entries, artifacts = _check_request(members, request, size, root)
        rid = str(request["request_id"])
        if rid in rids:
            raise _fail(f"request {rid} is listed twice")
        rids.append(rid)
        total_entries += entries
        expected_files.update({request["entries_file"], request["proofs_file"]})
        reports = request.get("reports")
        if not isinstance(reports, list):
            raise _fail(f"request {rid}: malformed report list")
        for report in reports:
            if not isinstance(report, dict) or not isinstance(report.get("file"), str):
                raise _fail(f"request {rid}: malformed report entry")
            name = report["file"]
            if not name.startswith(f"requests/{rid}/") or name not in members:
                raise _fail(f"{name} is missing or outside its request's folder")
            expected_files.add(name)
            pdf = members[name]
            sha = _sha256(pdf)
            if sha != report.get("sha256"):
                raise _fail(f"{name}: sha256 does not match the manifest")
            if sha not in artifacts:
                raise _fail(f"{name} is not recorded by any ledger entry of {rid}")
            try:
                check = validate_signed_pdf(pdf, list(certs.values()))
            except EvidenceVerificationError as exc:
                raise _fail(f"{name}: {exc}") from None
            problem = check.problem()
            if problem is not None:
                raise _fail(f"{name}: {problem}")
            if check.signer_fingerprint not in certs:
                raise _fail(f"{name} is signed by a certificate not in the bundle")
            signers.add(check.signer_fingerprint)
            timestamps += check.timestamp is not None
            total_reports += 1
    for name in sorted(set(members) - expected_files):
        raise _fail(f"{name} is not part of any listed request")
    return BundleReport(
        path=path,
        requests=rids,
        entries=total_entries,
        reports=total_reports,
        checkpoint_size=size,
        checkpoint_root=root.hex(),
        checkpoint_origin=origin,
        manifest_signer=str(manifest["manifest_signer"]),
        report_signers=sorted(signers),
        timestamps=timestamps,
    )
