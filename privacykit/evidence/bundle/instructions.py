"""VERIFY.txt: how a person checks a bundle by hand, with standard tools.

Names every certificate that signed something in the bundle and what it signed: the
manifest is signed by the controller's current certificate, but a report signed before
``keys init --force`` names the retired certificate that really signed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privacykit import __version__
from privacykit.evidence.bundle.common import (
    BUNDLE_FORMAT,
    CHECKPOINT_BODY,
    CHECKPOINT_KEY_PEM,
    CHECKPOINT_SIG,
)

__all__ = ["CANONICAL_JSON", "verify_text"]

#: How an entry line is encoded; what a verifier in another language must reproduce
#: byte for byte before hashing (privacykit.ledger.canonical).
CANONICAL_JSON = (
    "   canonical form: RFC 8785 (JSON Canonicalization Scheme), so any JCS library",
    "   reproduces the bytes: the keys of every object sorted by Unicode code point (keys",
    "   hold no characters outside the Basic Multilingual Plane, so this is JCS's order),",
    "   no white space between tokens, UTF-8 with non-ASCII characters as themselves,",
    "   control characters escaped as \\b \\t \\n \\f \\r or \\u00xx, and no floating-point",
    "   numbers: every number is an integer within +/-(2^53 - 1).",
)


def verify_text(
    requests: Sequence[Mapping[str, Any]],
    manifest_signer: str,
    certificates: Mapping[str, Mapping[str, Any]],
    checkpoint: Mapping[str, Any],
) -> str:
    """The text of VERIFY.txt. ``certificates`` maps each bundled certificate's
    fingerprint to ``{"subject", "current"}``."""
    pdfs = [(r["request_id"], rep) for r in requests for rep in r["reports"]]
    signers = sorted({rep["signer"] for _, rep in pdfs} | {manifest_signer})
    lines = [
        "PRIVACYKIT EVIDENCE BUNDLE -- HOW TO VERIFY IT",
        "",
        f"Format {BUNDLE_FORMAT}, made by privacykit {__version__}.",
        f"Requests: {len(requests)}. Signed reports: {len(pdfs)}. "
        f"Ledger checkpoint: tree size {checkpoint['size']}.",
        "",
        "The bundle holds the signed PDF reports of the listed requests, the ledger entries",
        "of exactly those requests with Merkle inclusion proofs (RFC 6962) against a signed",
        "ledger checkpoint, every certificate that signed something in it, and a manifest",
        "with the SHA-256 of every file. No other person's entries are included.",
        "",
        "0. Check the signers out of band. Ask the controller to confirm each certificate",
        "   below (compare with `privacykit keys show` on their side, and with the retired",
        "   certificates they keep; `openssl x509 -in certificates/<fingerprint>.pem -noout",
        "   -fingerprint -sha256` prints a fingerprint with colons):",
    ]
    for fp in signers:
        info = certificates.get(fp, {})
        roles = []
        if fp == manifest_signer:
            roles.append("signed manifest.json (the controller's current certificate)")
        signed = [rep["file"] for _, rep in pdfs if rep["signer"] == fp]
        if signed:
            what = "report" if len(signed) == 1 else "reports"
            roles.append(f"signed {len(signed)} {what}")
            if fp != manifest_signer:
                roles.append("a certificate the controller has since retired")
        lines.append(f"       {fp}")
        lines.append(f"         {info.get('subject', '')}".rstrip())
        lines.append(f"         {'; '.join(roles)}")
    lines += [
        "",
        "1. Everything at once, offline (needs privacykit installed):",
        "       privacykit evidence verify BUNDLE.zip",
        "   It exits 0 when every check below passes and 1 naming the first problem, and",
        "   prints the certificate that signed each report.",
        "",
        "2. File hashes (unzip first):",
        "       sha256sum -c SHA256SUMS",
        "   manifest.json lists the same hashes; its signature covers them:",
        f"       openssl x509 -in certificates/{manifest_signer}.pem -pubkey -noout \\",
        "           > signer-pub.pem",
        "       openssl dgst -sha256 -verify signer-pub.pem -signature manifest.sig manifest.json",
        "",
        "3. Report signatures (PAdES), each against the certificate that signed it",
        "   (pyHanko: pip install pyhanko-cli):",
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
        "5. Ledger entries. Each line of requests/<id>/entries.jsonl is one entry (the six",
        "   fields data, phase, request_id, seq, step_key, ts) in its canonical form:",
        *CANONICAL_JSON,
        "   Its leaf hash is SHA-256(0x00 || line bytes without the newline);",
        "   requests/<id>/proofs.json gives, for each entry seq, the audit path of leaf",
        "   index seq-1 in the tree of the checkpoint's size (RFC 9162 section 2.1.3.2).",
        "   Folding the path (interior nodes SHA-256(0x01 || left || right)) must give the",
        "   checkpoint root.",
        "",
        "6. What manifest.json says about each request (kind, subject reference, received,",
        "   due, status, closed, playbook) must follow from that request's `ledger:request`,",
        "   `ledger:status`, `ledger:extension` and `ledger:identity_verified` entries, read",
        "   in order; `privacykit evidence verify` checks this too.",
        "",
        "A later checkpoint of the same ledger can be shown to extend this one with a",
        "consistency proof (`privacykit ledger` commands on the controller's side).",
        "",
    ]
    return "\n".join(lines)
