"""Verifying an evidence bundle offline (:func:`verify_bundle`); what is checked is in the
package docstring, how the zip is read in :mod:`.archive`. Needs no ledger and no home:
it is what a regulator runs. The first problem raises, named in one line."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacykit.errors import EvidenceVerificationError, LedgerIntegrityError
from privacykit.evidence.bundle.archive import Archive
from privacykit.evidence.bundle.common import (
    ARTIFACT_STEP,
    BUNDLE_FORMAT,
    CHECKPOINT_BODY,
    CHECKPOINT_KEY,
    CHECKPOINT_KEY_PEM,
    CHECKPOINT_NOTE,
    CHECKPOINT_SIG,
    MANIFEST,
    MANIFEST_SIG,
    REQUEST_FACTS,
    REQUIRED_FACTS,
    SUMS,
    VERIFY_TXT,
    BundleLimits,
    BundleReport,
    fail,
    request_facts,
    verify_bytes,
)
from privacykit.evidence.keys import certificate_fingerprint

__all__ = ["verify_bundle"]

REPORT_ARTIFACT = "report"


def _cert(archive: Archive, name: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(archive.held[name])
    except KeyError:
        raise fail(f"{name} is missing") from None
    except ValueError:
        raise fail(f"{name} is not a PEM certificate") from None


def _check_manifest(archive: Archive) -> dict[str, Any]:
    manifest = archive.json(MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise fail(f"manifest.json is not a {BUNDLE_FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in listed.items()
    ):
        raise fail("manifest.json has no valid file list")
    names = archive.names
    if MANIFEST_SIG not in names:
        raise fail(f"{MANIFEST_SIG} is missing")
    for name in sorted(names - set(listed) - {MANIFEST, MANIFEST_SIG}):
        raise fail(f"{name} is in the zip but not in the manifest")
    for name in sorted(listed):
        if name not in names:
            raise fail(f"{name} is listed in the manifest but missing")
        if archive.digests[name] != listed[name]:
            raise fail(f"{name}: sha256 does not match the manifest")
    signer = manifest.get("manifest_signer")
    cert_name = f"certificates/{signer}.pem"
    if not isinstance(signer, str) or cert_name not in listed:
        raise fail("manifest.json does not name a bundled signing certificate")
    cert = _cert(archive, cert_name)
    if certificate_fingerprint(cert) != signer:
        raise fail(f"{cert_name} is not the certificate its name says")
    if not verify_bytes(cert, archive.held[MANIFEST_SIG], archive.held[MANIFEST]):
        raise fail("manifest.sig: the manifest signature does not verify")
    expected_sums = "".join(
        f"{digest}  {name}\n" for name, digest in sorted(listed.items()) if name != SUMS
    ).encode()
    if archive.held.get(SUMS) != expected_sums:
        raise fail(f"{SUMS} does not agree with the manifest")
    return manifest


def _check_checkpoint(archive: Archive, manifest: Mapping[str, Any]) -> tuple[str, int, bytes]:
    from privacykit.ledger import verify_checkpoint_note
    from privacykit.ledger.checkpoint import parse_verifier_key

    info = manifest.get("checkpoint")
    if not isinstance(info, dict):
        raise fail("manifest.json has no checkpoint")
    held = archive.held
    try:
        note = held[CHECKPOINT_NOTE].decode("utf-8")
        vkey = held[CHECKPOINT_KEY].decode("ascii").strip()
    except KeyError as exc:
        raise fail(f"{exc.args[0]} is missing") from None
    except UnicodeDecodeError:
        raise fail("the checkpoint files are not text") from None
    try:
        raw_key = parse_verifier_key(vkey)[1]
        origin, size, root = verify_checkpoint_note(note, raw_key)
    except (LedgerIntegrityError, ValueError) as exc:
        raise fail(f"{CHECKPOINT_NOTE}: {exc}") from None
    if info.get("size") != size or info.get("root") != root.hex():
        raise fail("the manifest's checkpoint differs from the signed checkpoint")
    # The openssl convenience files must say exactly what the note says.
    split = note.rfind("\n\n")
    try:
        blob = base64.b64decode(note[split + 2 :].strip().rpartition(" ")[2])
        pem_key = serialization.load_pem_public_key(held[CHECKPOINT_KEY_PEM])
    except (KeyError, ValueError):
        raise fail(f"{CHECKPOINT_KEY_PEM} is missing or not a public key") from None
    if held.get(CHECKPOINT_BODY) != note[: split + 1].encode("utf-8"):
        raise fail(f"{CHECKPOINT_BODY} is not the signed part of the checkpoint")
    if held.get(CHECKPOINT_SIG) != blob[4:]:
        raise fail(f"{CHECKPOINT_SIG} is not the checkpoint's signature")
    if (
        not isinstance(pem_key, Ed25519PublicKey)
        or pem_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        != raw_key
    ):
        raise fail(f"{CHECKPOINT_KEY_PEM} is not the checkpoint key")
    return origin, size, root


def _proofs(archive: Archive, rid: str, size: int, root: bytes) -> dict[int, Any]:
    name = f"requests/{rid}/proofs.json"
    document = archive.json(name)
    if (
        not isinstance(document, dict)
        or document.get("tree_size") != size
        or document.get("root") != root.hex()
        or document.get("request_id") != rid
        or not isinstance(document.get("proofs"), list)
    ):
        raise fail(f"{name} is not a proof set for {rid} against the checkpoint")
    proofs: dict[int, Any] = {}
    for proof in document["proofs"]:
        if not isinstance(proof, dict) or not isinstance(proof.get("seq"), int):
            raise fail(f"{name}: malformed proof")
        proofs[proof["seq"]] = proof
    return proofs


def _check_request(
    archive: Archive, request: Mapping[str, Any], size: int, root: bytes
) -> tuple[int, set[str]]:
    """Check one request's entries, proofs and manifest facts; return (entries, sha256 of
    its report artifacts)."""
    from privacykit.ledger import entry_canonical_bytes, merkle

    rid = request.get("request_id")
    if not isinstance(rid, str):
        raise fail("a manifest request has no id")
    base = f"requests/{rid}"
    entries_file, proofs_file = f"{base}/entries.jsonl", f"{base}/proofs.json"
    if request.get("entries_file") != entries_file or request.get("proofs_file") != proofs_file:
        raise fail(f"request {rid}: unexpected entry or proof file names")
    if entries_file not in archive.held:
        raise fail(f"{entries_file} is missing")
    proofs = _proofs(archive, rid, size, root)
    raw = archive.held[entries_file]
    if raw and not raw.endswith(b"\n"):
        raise fail(f"{entries_file} does not end with a newline")
    lines = raw.split(b"\n")[:-1] if raw else []
    artifacts: set[str] = set()
    bookkeeping: list[dict[str, Any]] = []  # the ledger:* entries the facts follow from
    seqs: list[int] = []
    for number, line in enumerate(lines, start=1):
        archive.tick()
        where = f"{entries_file} line {number}"
        try:
            entry = json.loads(line.decode("utf-8"))
            canonical = entry_canonical_bytes(entry)
        except (UnicodeDecodeError, ValueError, TypeError, RecursionError):
            raise fail(f"{where} is not a ledger entry") from None
        if canonical != line:
            raise fail(f"{where} is not in canonical form")
        if entry["request_id"] != rid:
            raise fail(f"{where} belongs to another request")
        seq = entry["seq"]
        if not isinstance(seq, int) or not (seqs[-1] if seqs else 0) < seq <= size:
            raise fail(f"{where}: entry number out of order or beyond the checkpoint")
        seqs.append(seq)
        proof = proofs.pop(seq, None)
        if proof is None:
            raise fail(f"{where}: no inclusion proof for entry {seq}")
        try:
            path = [bytes.fromhex(h) for h in proof["path"]]
        except (KeyError, TypeError, ValueError):
            raise fail(f"{proofs_file}: malformed proof for entry {seq}") from None
        leaf = merkle.leaf_hash(line)
        if proof.get("leaf_hash") != leaf.hex() or proof.get("leaf_index") != seq - 1:
            raise fail(f"{proofs_file}: proof for entry {seq} is for another leaf")
        if not merkle.verify_inclusion(seq - 1, size, leaf, path, root):
            raise fail(
                f"entry {seq} of {rid}: inclusion proof does not lead to the checkpoint root"
            )
        key, data = entry["step_key"], entry.get("data")
        if isinstance(key, str) and key.startswith("ledger:"):
            bookkeeping.append(entry)
        elif entry.get("phase") == "intent" or key == "evidence":
            # What a mistake closing of a finished request depends on (replay.note_entry):
            # kept slim, in order -- an intent's key and an evidence record's outcome.
            outcome = data.get("outcome") if isinstance(data, dict) else None
            bookkeeping.append({**entry, "data": {"outcome": outcome} if outcome else {}})
        if key == ARTIFACT_STEP and isinstance(data, dict):
            if data.get("kind") == REPORT_ARTIFACT and isinstance(data.get("sha256"), str):
                artifacts.add(data["sha256"])
    if proofs:
        raise fail(f"{proofs_file} has proofs for entries not in the bundle")
    if request.get("entries") != len(lines):
        raise fail(f"request {rid}: the manifest's entry count is wrong")
    for name, value in (
        ("first_seq", seqs[0] if seqs else None),
        ("last_seq", seqs[-1] if seqs else None),
    ):
        if name in request and request[name] != value:
            raise fail(f"request {rid}: the manifest's {name} is not its entries'")
    _check_facts(rid, request, bookkeeping)
    return len(lines), artifacts


def _check_facts(rid: str, request: Mapping[str, Any], entries: list[dict[str, Any]]) -> None:
    """Every fact the manifest states about the request must follow from its entries."""
    try:
        facts = request_facts(entries)
    except ValueError as exc:
        raise fail(f"request {rid}: its entries do not add up to a request ({exc})") from None
    for name in REQUEST_FACTS:
        if name not in request:
            if name in REQUIRED_FACTS:
                raise fail(f"request {rid}: the manifest does not state its {name}")
            continue
        if request[name] != facts[name]:
            raise fail(
                f"request {rid}: the manifest says {name} {json.dumps(request[name])[:80]} "
                f"but its entries say {json.dumps(facts[name])[:80]}"
            )


def _check_report(
    archive: Archive,
    rid: str,
    report: Any,
    artifacts: set[str],
    certs: Mapping[str, x509.Certificate],
) -> dict[str, Any]:
    """Validate one report PDF against the certificate the manifest names for it."""
    from privacykit.evidence.sign import validate_signed_pdf

    if not isinstance(report, dict) or not isinstance(report.get("file"), str):
        raise fail(f"request {rid}: malformed report entry")
    name = report["file"]
    if not name.startswith(f"requests/{rid}/") or name not in archive.names:
        raise fail(f"{name} is missing or outside its request's folder")
    sha = archive.digests[name]
    if sha != report.get("sha256"):
        raise fail(f"{name}: sha256 does not match the manifest")
    if sha not in artifacts:
        raise fail(f"{name} is not recorded by any ledger entry of {rid}")
    named = report.get("signer")
    if named is not None and named not in certs:
        raise fail(f"{name}: the manifest names a signer certificate that is not in the bundle")
    trusted = [certs[named]] if named is not None else list(certs.values())
    pdf = archive.read(name)
    try:
        check = validate_signed_pdf(pdf, trusted)
    except EvidenceVerificationError as exc:
        raise fail(f"{name}: {exc}") from None
    except RecursionError:
        raise fail(f"{name}: not a readable PDF (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - a hostile PDF must end in one line, not a traceback
        raise fail(f"{name}: not a readable signed PDF ({type(exc).__name__})") from None
    problem = check.problem()
    if problem is not None:
        if not check.trusted and named is not None:
            problem = f"not signed by the certificate the manifest names ({named[:16]}…)"
        raise fail(f"{name}: {problem}")
    if check.signer_fingerprint not in certs:
        raise fail(f"{name} is signed by a certificate not in the bundle")
    if named is not None and check.signer_fingerprint != named:
        raise fail(f"{name} is signed by {check.signer_fingerprint[:16]}…, not the named signer")
    return {
        "file": name,
        "request_id": rid,
        "signer": check.signer_fingerprint,
        "timestamp": check.timestamp,
    }


def _certificates(archive: Archive, manifest: Mapping[str, Any]) -> dict[str, x509.Certificate]:
    names = manifest.get("certificates")
    if not isinstance(names, list) or not names:
        raise fail("manifest.json lists no certificates")
    certs: dict[str, x509.Certificate] = {}
    for name in names:
        if not isinstance(name, str) or not name.startswith("certificates/"):
            raise fail("manifest.json lists a certificate outside certificates/")
        cert = _cert(archive, name)
        fingerprint = certificate_fingerprint(cert)
        if name != f"certificates/{fingerprint}.pem":
            raise fail(f"{name} is not the certificate its name says")
        certs[fingerprint] = cert
    return certs


def verify_bundle(path: Path | str, *, limits: BundleLimits | None = None) -> BundleReport:
    """Verify an evidence bundle offline. Raises :class:`EvidenceVerificationError`
    naming the first problem (exit 1), :class:`UsageError` when the file is absent or
    not a zip (exit 2). ``limits`` bounds members, sizes, memory and time."""
    path = Path(path)
    with Archive(path, limits or BundleLimits()) as archive:
        archive.scan()
        manifest = _check_manifest(archive)
        origin, size, root = _check_checkpoint(archive, manifest)
        certs = _certificates(archive, manifest)
        requests = manifest.get("requests")
        if not isinstance(requests, list):
            raise fail("manifest.json has no request list")
        expected = {
            MANIFEST,
            MANIFEST_SIG,
            SUMS,
            VERIFY_TXT,
            CHECKPOINT_NOTE,
            CHECKPOINT_KEY,
            CHECKPOINT_KEY_PEM,
            CHECKPOINT_BODY,
            CHECKPOINT_SIG,
            *(f"certificates/{fp}.pem" for fp in certs),
        }
        rids: list[str] = []
        total_entries = 0
        checked: list[dict[str, Any]] = []
        for request in requests:
            if not isinstance(request, dict):
                raise fail("manifest.json has a malformed request")
            entries, artifacts = _check_request(archive, request, size, root)
            rid = str(request["request_id"])
            if rid in rids:
                raise fail(f"request {rid} is listed twice")
            rids.append(rid)
            total_entries += entries
            expected.update({request["entries_file"], request["proofs_file"]})
            reports = request.get("reports")
            if not isinstance(reports, list):
                raise fail(f"request {rid}: malformed report list")
            for report in reports:
                archive.tick()
                checked.append(_check_report(archive, rid, report, artifacts, certs))
                expected.add(checked[-1]["file"])
        for name in sorted(archive.names - expected):
            raise fail(f"{name} is not part of any listed request")
    return BundleReport(
        path=path,
        requests=rids,
        entries=total_entries,
        reports=len(checked),
        checkpoint_size=size,
        checkpoint_root=root.hex(),
        checkpoint_origin=origin,
        manifest_signer=str(manifest["manifest_signer"]),
        report_signers=sorted({r["signer"] for r in checked}),
        timestamps=sum(r["timestamp"] is not None for r in checked),
        report_files=checked,
    )
