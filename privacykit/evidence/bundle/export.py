"""Writing an evidence bundle (:func:`export_bundle`); the layout is in the package
docstring. Refuses, like every signature this installation makes, over a ledger that
does not verify."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacykit import __version__, clock
from privacykit.errors import EvidenceError, LedgerIntegrityError, UsageError
from privacykit.evidence.bundle.common import (
    BUNDLE_FORMAT,
    CHECKPOINT_BODY,
    CHECKPOINT_KEY,
    CHECKPOINT_KEY_PEM,
    CHECKPOINT_NOTE,
    CHECKPOINT_SIG,
    MANIFEST,
    MANIFEST_SIG,
    SUMS,
    VERIFY_TXT,
    ExportResult,
    request_facts,
    sha256,
    sign_bytes,
)
from privacykit.evidence.bundle.instructions import verify_text
from privacykit.evidence.integrity import require_verified
from privacykit.evidence.keys import certificate_fingerprint, load_keys, retired_certificates

if TYPE_CHECKING:
    from privacykit.ledger import Ledger

__all__ = ["export_bundle"]

REPORT_ARTIFACT = "report"


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

    from privacykit.evidence.sign import quiet_pdf_library

    quiet_pdf_library()

    try:
        signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        if len(signatures) != 1:
            raise EvidenceError("a stored report does not carry exactly one signature")
        cert = x509.load_der_x509_certificate(signatures[0].signer_cert.dump())
    except EvidenceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line, not a traceback
        raise EvidenceError(
            f"a stored report is not a readable signed PDF ({type(exc).__name__})"
        ) from None
    return certificate_fingerprint(cert)


def _request_files(
    ledger: Ledger, rid: str, size: int, root: bytes, known: dict[str, x509.Certificate]
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files of one request and its manifest entry."""
    entries = list(ledger.iter_entries(rid, stop=size))
    base = f"requests/{rid}"
    files: dict[str, bytes] = {
        f"{base}/entries.jsonl": b"".join(e.canonical_bytes() + b"\n" for e in entries)
    }
    proofs = [
        {
            "seq": e.seq,
            "leaf_index": e.index,
            "leaf_hash": e.leaf_hash().hex(),
            "path": [h.hex() for h in ledger.inclusion_proof(e.seq, size)],
        }
        for e in entries
    ]
    document = {"request_id": rid, "tree_size": size, "root": root.hex(), "proofs": proofs}
    files[f"{base}/proofs.json"] = json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"
    try:
        facts = request_facts([e.to_dict() for e in entries])
    except ValueError as exc:
        raise LedgerIntegrityError(f"refusing to sign evidence: request {rid}: {exc}") from None
    reports = []
    for artifact in ledger.artifacts(rid):
        if artifact.kind != REPORT_ARTIFACT or artifact.seq > size:
            continue
        try:
            pdf = artifact.path.read_bytes()
        except OSError as exc:
            raise EvidenceError(
                f"report {artifact.sha256[:16]} of {rid} cannot be read: {exc.strerror}"
            ) from None
        if sha256(pdf) != artifact.sha256:
            raise EvidenceError(
                f"stored report {artifact.sha256[:16]} of {rid} no longer matches its hash"
            )
        signer = _pdf_signer_fingerprint(pdf)
        if signer not in known:
            raise EvidenceError(
                f"report {artifact.sha256[:16]} of {rid} was signed by a certificate this "
                "installation does not have"
            )
        name = f"{base}/report-{artifact.seq}.pdf"
        files[name] = pdf
        reports.append(
            {"file": name, "sha256": artifact.sha256, "seq": artifact.seq, "signer": signer}
        )
    manifest_entry = {
        "request_id": rid,
        **facts,
        "entries": len(entries),
        "first_seq": entries[0].seq if entries else None,
        "last_seq": entries[-1].seq if entries else None,
        "entries_file": f"{base}/entries.jsonl",
        "proofs_file": f"{base}/proofs.json",
        "reports": reports,
    }
    return files, manifest_entry


def export_bundle(
    ledger: Ledger,
    out: Path | str,
    *,
    request_ids: Sequence[str] | None = None,
    since: dt.date | None = None,
    home: Path | None = None,
) -> ExportResult:
    """Write an evidence bundle for the chosen requests to ``out`` (a new zip, 0600).

    Refuses (:class:`LedgerIntegrityError`, exit 1) when the ledger does not verify. A
    fresh checkpoint is written first so every proof is against it. The bundle carries
    every certificate that signed something in it: the current one (manifest) and, for
    reports signed before a ``keys init --force``, the retired ones."""
    out = Path(out)
    home = Path(home) if home is not None else Path(ledger.home)
    chosen = _select(ledger, request_ids, since)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out is a directory: {out}")
    if not out.parent.is_dir():
        raise UsageError(f"the directory of --out does not exist: {out.parent}")
    keys = load_keys(home)
    known = {keys.fingerprint: keys.certificate}
    for cert in retired_certificates(home):
        known.setdefault(certificate_fingerprint(cert), cert)
    require_verified(ledger)
    for rid in chosen:
        require_verified(ledger, rid)

    checkpoint = ledger.checkpoint()
    size, root = checkpoint.size, checkpoint.root
    files: dict[str, bytes] = {}
    manifest_requests: list[dict[str, Any]] = []
    for rid in chosen:
        request_files, entry = _request_files(ledger, rid, size, root, known)
        files.update(request_files)
        manifest_requests.append(entry)
    used = {keys.fingerprint} | {rep["signer"] for r in manifest_requests for rep in r["reports"]}
    for fp in sorted(used):
        files[f"certificates/{fp}.pem"] = known[fp].public_bytes(serialization.Encoding.PEM)

    note = checkpoint.note
    split = note.rfind("\n\n")
    blob = base64.b64decode(note[split + 2 :].strip().rpartition(" ")[2])
    files[CHECKPOINT_NOTE] = note.encode("utf-8")
    files[CHECKPOINT_KEY] = (ledger.checkpoint_verifier_key + "\n").encode("ascii")
    files[CHECKPOINT_KEY_PEM] = Ed25519PublicKey.from_public_bytes(
        ledger.checkpoint_public_key
    ).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    files[CHECKPOINT_BODY] = note[: split + 1].encode("utf-8")
    files[CHECKPOINT_SIG] = blob[4:]
    checkpoint_info = {
        "size": size,
        "root": root.hex(),
        "origin": checkpoint.origin,
        "ts": checkpoint.ts,
        "note_file": CHECKPOINT_NOTE,
        "key_file": CHECKPOINT_KEY,
    }
    described = {
        fp: {"subject": known[fp].subject.rfc4514_string(), "current": fp == keys.fingerprint}
        for fp in used
    }
    files[VERIFY_TXT] = verify_text(
        manifest_requests, keys.fingerprint, described, checkpoint_info
    ).encode("utf-8")
    files[SUMS] = "".join(f"{sha256(files[n])}  {n}\n" for n in sorted(files)).encode()
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at": clock.now_iso(),
        "tool_version": __version__,
        "manifest_signer": keys.fingerprint,
        "certificates": sorted(f"certificates/{fp}.pem" for fp in used),
        "checkpoint": checkpoint_info,
        "requests": manifest_requests,
        "files": {name: sha256(files[name]) for name in sorted(files)},
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    _write_zip(out, manifest_bytes, sign_bytes(keys, manifest_bytes), files)
    return ExportResult(
        path=out,
        sha256=_file_sha256(out),
        requests=chosen,
        entries=sum(r["entries"] for r in manifest_requests),
        reports=sum(len(r["reports"]) for r in manifest_requests),
        checkpoint_size=size,
        checkpoint_root=root.hex(),
        certificates=sorted(used),
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _write_zip(out: Path, manifest: bytes, signature: bytes, files: dict[str, bytes]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, manifest)
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
