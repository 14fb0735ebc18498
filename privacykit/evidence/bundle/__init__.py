"""Evidence bundles: a zip a regulator can verify offline, with standard tools or ours.

:func:`export_bundle` (:mod:`.export`) writes one, :func:`verify_bundle` (:mod:`.verify`)
checks one; the format's names and shared pieces live in :mod:`.common`, the human
instructions in :mod:`.instructions`. Layout (format ``privacykit.evidence-bundle/1``)::

    manifest.json                     what is inside, with the sha256 of every other file
    manifest.sig                      signature of manifest.json by the evidence signing key
    SHA256SUMS                        the same hashes for `sha256sum -c`
    VERIFY.txt                        how to check all of it by hand
    certificates/<sha256>.pem         every certificate that signed something in the bundle
                                      (the manifest's, and each report's -- a report signed
                                      before `keys init --force` names the retired one)
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
every entry's inclusion proof against the checkpoint root, every manifest fact about a
request (id, kind, subject reference, status, dates, playbook) against the replay of its
bundled entries, every PDF's PAdES signature against the certificate the manifest names
for it, and that every PDF is recorded by an entry of its request. Reading the zip is
defensive and bounded: absolute or ``..`` names, duplicates, links, encryption, too many
or oversized members are refused before anything is read; members are streamed (hashed
in chunks, one PDF in memory at a time) and the whole check has a time limit.
"""

from privacykit.evidence.bundle.common import (
    BUNDLE_FORMAT,
    BundleLimits,
    BundleReport,
    ExportResult,
)
from privacykit.evidence.bundle.export import export_bundle
from privacykit.evidence.bundle.verify import verify_bundle

__all__ = [
    "BUNDLE_FORMAT",
    "BundleLimits",
    "BundleReport",
    "ExportResult",
    "export_bundle",
    "verify_bundle",
]
