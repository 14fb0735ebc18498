"""Evidence bundles: export what was asked and nothing else, verify offline, detect any
changed byte in any file, refuse unsafe archives."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from privacykit.errors import EvidenceVerificationError, UsageError
from privacykit.evidence import (
    export_bundle,
    init_keys,
    load_keys,
    produce_report,
    verify_bundle,
)
from privacykit.evidence.bundle import BundleLimits
from privacykit.evidence.bundle.common import sha256


def _request(ledger: Any, home: Path, who: str, received: str = "2024-05-02") -> str:
    ref = ledger.subject_ref(f"email:{who}")
    rid = ledger.create_request("erasure", ref, received_at=received, operator="dpo-office")
    ledger.record(rid, "soft_delete:user:1", "intent", {"user_id": 1})
    ledger.record(rid, "soft_delete:user:1", "outcome", {"status": 204})
    ledger.record(rid, "evidence", "info", {"outcome": "erased"})
    record = {
        "schema": "privacykit.erasure-evidence/1",
        "outcome": "erased",
        "counts": {"users": 1},
    }
    produce_report(ledger, rid, "erasure", record, home=home)
    return rid


def _two_people(ledger: Any, home: Path) -> tuple[str, str]:
    """Jane's request (to export) and Bob's (must never appear in Jane's bundle)."""
    jane = _request(ledger, home, "jane@example.com", "2024-05-02")
    bob = _request(ledger, home, "bob@example.com", "2024-04-01")
    # Entries interleave: Jane's request gets another entry after Bob's.
    ledger.set_status(jane, "completed")
    return jane, bob


@dataclass
class Case:
    """One home with Jane's and Bob's signed reports and Jane's bundle, made once per
    module (signing is the slow part); tests that only read or copy it share it."""

    home: Path
    ledger: Any
    jane: str
    bob: str
    bundle: Path

    @property
    def key_path(self) -> Path:
        return self.home / "keys" / "evidence-signing-key.pem"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, evidence_keys_source: Path) -> Iterator[Case]:
    from privacykit.ledger import Ledger

    home = tmp_path_factory.mktemp("bundle-case")
    home.chmod(0o700)
    shutil.copytree(evidence_keys_source / "keys", home / "keys")
    with Ledger.open(home) as ledger:
        jane, bob = _two_people(ledger, home)
        out = home.parent / "jane.zip"
        export_bundle(ledger, out, request_ids=[jane], home=home)
        yield Case(home, ledger, jane, bob, out)


@pytest.fixture
def two_people(ledger: Any, evidence_home: Path) -> tuple[str, str]:
    return _two_people(ledger, evidence_home)


@pytest.fixture
def bundle(case: Case) -> Path:
    return case.bundle


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rewrite(path: Path, members: dict[str, bytes], target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return target


def test_export_then_verify(case: Case) -> None:
    ledger, jane, bundle = case.ledger, case.jane, case.bundle
    report = verify_bundle(bundle)
    assert report.requests == [jane]
    assert report.entries == len(ledger.entries(jane))  # checkpoint written at export
    assert report.reports == 1
    checkpoint = ledger.latest_checkpoint()
    assert (report.checkpoint_size, report.checkpoint_root) == (
        checkpoint.size,
        checkpoint.root_hex,
    )
    assert report.manifest_signer == load_keys(ledger.home).fingerprint
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600

    names = set(_members(bundle))
    assert {
        "manifest.json",
        "manifest.sig",
        "SHA256SUMS",
        "VERIFY.txt",
        "checkpoint/checkpoint.txt",
        "checkpoint/checkpoint-key.txt",
        f"requests/{jane}/entries.jsonl",
        f"requests/{jane}/proofs.json",
    } <= names
    assert any(n.startswith(f"requests/{jane}/report-") and n.endswith(".pdf") for n in names)
    verify_txt = _members(bundle)["VERIFY.txt"].decode()
    for tool in (
        "sha256sum -c SHA256SUMS",
        "pyhanko sign validate",
        "openssl",
        "privacykit evidence verify",
    ):
        assert tool in verify_txt


def test_bundle_never_holds_another_persons_entries(case: Case) -> None:
    ledger, jane, bob, bundle = case.ledger, case.jane, case.bob, case.bundle
    bob_ref = ledger.get_request(bob).subject_ref
    members = _members(bundle)
    for name, data in members.items():
        assert bob.encode() not in data, name
        assert bob_ref.encode() not in data, name
    lines = members[f"requests/{jane}/entries.jsonl"].splitlines()
    assert lines and all(json.loads(line)["request_id"] == jane for line in lines)
    # Bob's entries lie between Jane's: the proofs still verify without them.
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs != list(range(seqs[0], seqs[0] + len(seqs)))


def test_pdfs_and_entries_are_the_ledgers(case: Case) -> None:
    ledger, jane, bundle = case.ledger, case.jane, case.bundle
    members = _members(bundle)
    stored = ledger.artifacts(jane)[0]
    assert members[f"requests/{jane}/report-{stored.seq}.pdf"] == stored.path.read_bytes()
    expected = b"".join(e.canonical_bytes() + b"\n" for e in ledger.entries(jane))
    assert members[f"requests/{jane}/entries.jsonl"] == expected


def test_every_changed_byte_in_every_file_is_detected(bundle: Path, tmp_path: Path) -> None:
    members = _members(bundle)
    assert len(members) >= 12
    for name, data in members.items():
        for position in {0, len(data) // 2, len(data) - 1}:
            changed = dict(members)
            flipped = bytearray(data)
            flipped[position] ^= 0x01
            changed[name] = bytes(flipped)
            target = _rewrite(bundle, changed, tmp_path / "tampered.zip")
            with pytest.raises(EvidenceVerificationError):
                verify_bundle(target)


def test_raw_bytes_of_the_zip_flipped_never_verify(bundle: Path, tmp_path: Path) -> None:
    data = bundle.read_bytes()
    # Member contents sit between the headers; corrupting them must fail (CRC or hashes).
    with zipfile.ZipFile(bundle) as zf:
        infos = zf.infolist()
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        position = start + info.compress_size // 2
        broken = bytearray(data)
        broken[position] ^= 0xFF
        target = tmp_path / "raw.zip"
        target.write_bytes(bytes(broken))
        with pytest.raises((EvidenceVerificationError, UsageError)):
            verify_bundle(target)


def _resign(members: dict[str, bytes], key_path: Path) -> dict[str, bytes]:
    """What an insider holding the signing key could do: fix up every hash and re-sign the
    manifest after changing something. The proofs must still catch it."""
    manifest = json.loads(members["manifest.json"])
    for name in manifest["files"]:
        if name != "SHA256SUMS":
            manifest["files"][name] = sha256(members[name])
    members["SHA256SUMS"] = "".join(
        f"{digest}  {name}\n"
        for name, digest in sorted(manifest["files"].items())
        if name != "SHA256SUMS"
    ).encode()
    manifest["files"]["SHA256SUMS"] = sha256(members["SHA256SUMS"])
    raw = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    members["manifest.json"] = raw
    members["manifest.sig"] = key.sign(raw, ec.ECDSA(hashes.SHA256()))
    return members


def test_edited_entry_fails_its_inclusion_proof_even_with_a_resigned_manifest(
    case: Case, tmp_path: Path
) -> None:
    jane, bundle = case.jane, case.bundle
    members = _members(bundle)
    name = f"requests/{jane}/entries.jsonl"
    members[name] = members[name].replace(b'"status":204', b'"status":500', 1)
    assert b'"status":500' in members[name]
    target = _rewrite(
        bundle,
        _resign(members, case.key_path),
        tmp_path / "t.zip",
    )
    with pytest.raises(EvidenceVerificationError, match="proof"):
        verify_bundle(target)


def test_edited_proof_fails_even_with_a_resigned_manifest(case: Case, tmp_path: Path) -> None:
    jane, bundle = case.jane, case.bundle
    members = _members(bundle)
    name = f"requests/{jane}/proofs.json"
    doc = json.loads(members[name])
    first_hash = doc["proofs"][0]["path"][0]
    doc["proofs"][0]["path"][0] = ("0" if first_hash[0] != "0" else "1") + first_hash[1:]
    members[name] = json.dumps(doc).encode()
    target = _rewrite(
        bundle,
        _resign(members, case.key_path),
        tmp_path / "t.zip",
    )
    with pytest.raises(EvidenceVerificationError, match="inclusion proof"):
        verify_bundle(target)


def test_swapped_in_report_of_another_request_is_caught(case: Case, tmp_path: Path) -> None:
    ledger, bob, bundle = case.ledger, case.bob, case.bundle
    members = _members(bundle)
    jane_pdf = next(n for n in members if n.endswith(".pdf"))
    members[jane_pdf] = ledger.artifacts(bob)[0].path.read_bytes()  # validly signed, wrong request
    manifest = json.loads(members["manifest.json"])
    manifest["requests"][0]["reports"][0]["sha256"] = sha256(members[jane_pdf])
    members["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    target = _rewrite(
        bundle,
        _resign(members, case.key_path),
        tmp_path / "t.zip",
    )
    with pytest.raises(EvidenceVerificationError, match="not recorded by any ledger entry"):
        verify_bundle(target)


def test_extra_or_missing_files_are_caught(bundle: Path, tmp_path: Path) -> None:
    members = _members(bundle)
    extra = dict(members, **{"notes.txt": b"hello"})
    with pytest.raises(EvidenceVerificationError, match="notes.txt"):
        verify_bundle(_rewrite(bundle, extra, tmp_path / "extra.zip"))
    missing = {k: v for k, v in members.items() if k != "VERIFY.txt"}
    with pytest.raises(EvidenceVerificationError, match="VERIFY.txt"):
        verify_bundle(_rewrite(bundle, missing, tmp_path / "missing.zip"))


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "/etc/cron.d/x", "requests/../../x", "C:/windows/x", "a\\b", "dir/"],
)
def test_unsafe_member_names_are_refused(bundle: Path, tmp_path: Path, name: str) -> None:
    members = _members(bundle)
    members[name] = b"x"
    with pytest.raises(EvidenceVerificationError, match="unsafe member name"):
        verify_bundle(_rewrite(bundle, members, tmp_path / "unsafe.zip"))


def test_duplicate_and_link_members_are_refused(bundle: Path, tmp_path: Path) -> None:
    members = _members(bundle)
    target = tmp_path / "dup.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("VERIFY.txt", b"a second VERIFY.txt")
    with pytest.raises(EvidenceVerificationError, match="duplicate member"):
        verify_bundle(target)

    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("requests/evil-link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(EvidenceVerificationError, match="not a regular file"):
        verify_bundle(link)


def test_oversized_members_are_refused_before_reading(bundle: Path) -> None:
    with pytest.raises(EvidenceVerificationError, match="too large"):
        verify_bundle(bundle, limits=BundleLimits(max_member_bytes=1024))


def test_absent_or_non_zip_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such bundle"):
        verify_bundle(tmp_path / "absent.zip")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(UsageError, match="not a readable zip"):
        verify_bundle(junk)


def test_selection_by_date_and_errors(
    ledger: Any, evidence_home: Path, two_people: tuple[str, str], tmp_path: Path
) -> None:
    jane, bob = two_people
    result = export_bundle(
        ledger, tmp_path / "since.zip", since=dt.date(2024, 5, 1), home=evidence_home
    )
    assert result.requests == [jane]
    result = export_bundle(
        ledger, tmp_path / "all.zip", since=dt.date(2024, 1, 1), home=evidence_home
    )
    assert sorted(result.requests) == sorted([jane, bob])
    assert sorted(verify_bundle(tmp_path / "all.zip").requests) == sorted([jane, bob])
    with pytest.raises(UsageError, match="--request ID or --since"):
        export_bundle(ledger, tmp_path / "x.zip", home=evidence_home)
    with pytest.raises(UsageError, match="not both"):
        export_bundle(
            ledger,
            tmp_path / "x.zip",
            request_ids=[jane],
            since=dt.date(2024, 1, 1),
            home=evidence_home,
        )
    with pytest.raises(UsageError, match="no request"):
        export_bundle(ledger, tmp_path / "x.zip", since=dt.date(2030, 1, 1), home=evidence_home)
    with pytest.raises(UsageError):
        export_bundle(
            ledger, tmp_path / "x.zip", request_ids=["req-20240101-00000000"], home=evidence_home
        )
    assert not (tmp_path / "x.zip").exists()


def test_reports_signed_before_key_rotation_still_verify(
    ledger: Any, evidence_home: Path, two_people: tuple[str, str], tmp_path: Path
) -> None:
    jane, _ = two_people
    old = load_keys(evidence_home).fingerprint
    new = init_keys(evidence_home, force=True).fingerprint
    _request(ledger, evidence_home, "carol@example.com")  # a report under the new key
    out = tmp_path / "rotated.zip"
    export_bundle(ledger, out, since=dt.date(2024, 1, 1), home=evidence_home)
    report = verify_bundle(out)
    assert set(report.report_signers) == {old, new}
    assert report.manifest_signer == new
    names = set(_members(out))
    assert {f"certificates/{old}.pem", f"certificates/{new}.pem"} <= names


def test_export_requires_a_signing_key(ledger: Any, home: Path, tmp_path: Path) -> None:
    rid = ledger.create_request(
        "access", ledger.subject_ref("email:x@example.com"), received_at="2024-05-02"
    )
    from privacykit.errors import EvidenceError

    with pytest.raises(EvidenceError, match="keys init"):
        export_bundle(ledger, tmp_path / "b.zip", request_ids=[rid], home=home)


def test_request_without_report_exports_and_verifies(
    ledger: Any, evidence_home: Path, tmp_path: Path
) -> None:
    rid = ledger.create_request(
        "access", ledger.subject_ref("email:x@example.com"), received_at="2024-05-02"
    )
    out = tmp_path / "noreport.zip"
    result = export_bundle(ledger, out, request_ids=[rid], home=evidence_home)
    assert result.reports == 0
    assert verify_bundle(out).entries == 1


def test_verify_reads_nothing_but_the_zip(
    bundle: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A regulator has no PRIVACYKIT_HOME: verification must not need one."""
    monkeypatch.setenv("PRIVACYKIT_HOME", str(tmp_path / "does-not-exist"))
    copy = tmp_path / "copy.zip"
    copy.write_bytes(bundle.read_bytes())
    assert verify_bundle(copy).reports == 1
    assert not (tmp_path / "does-not-exist").exists()


def test_manifest_is_signed_with_the_bundled_certificate(bundle: Path) -> None:
    from cryptography import x509

    members = _members(bundle)
    manifest = json.loads(members["manifest.json"])
    cert = x509.load_pem_x509_certificate(
        members[f"certificates/{manifest['manifest_signer']}.pem"]
    )
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(members["manifest.sig"], members["manifest.json"], ec.ECDSA(hashes.SHA256()))
    sums = members["SHA256SUMS"].decode().splitlines()
    assert len(sums) == len(manifest["files"]) - 1
    with zipfile.ZipFile(io.BytesIO(bundle.read_bytes())) as zf:
        assert zf.testzip() is None


@pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("sha256sum")), reason="openssl/sha256sum absent"
)
def test_standard_tools_from_verify_txt_accept_the_bundle(bundle: Path, tmp_path: Path) -> None:
    """The commands VERIFY.txt tells a regulator to run really work (and really fail)."""
    out = tmp_path / "unzipped"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(out)
    manifest = json.loads((out / "manifest.json").read_text())
    cert = f"certificates/{manifest['manifest_signer']}.pem"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=out, capture_output=True, text=True, timeout=60, check=False
        )

    assert run("sha256sum", "-c", "SHA256SUMS").returncode == 0
    pub = run("openssl", "x509", "-in", cert, "-pubkey", "-noout")
    (out / "signer-pub.pem").write_text(pub.stdout)
    manifest_check = (
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        "signer-pub.pem",
        "-signature",
        "manifest.sig",
        "manifest.json",
    )
    assert run(*manifest_check).returncode == 0
    checkpoint_check = (
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "checkpoint/checkpoint-key.pem",
        "-rawin",
        "-in",
        "checkpoint/checkpoint-body.txt",
        "-sigfile",
        "checkpoint/checkpoint.sig",
    )
    assert run(*checkpoint_check).returncode == 0
    assert manifest["manifest_signer"] in (out / "VERIFY.txt").read_text()

    (out / "manifest.json").write_bytes((out / "manifest.json").read_bytes().replace(b"1", b"2", 1))
    assert run(*manifest_check).returncode != 0
    body = out / "checkpoint" / "checkpoint-body.txt"
    body.write_bytes(body.read_bytes()[:-2] + b"A\n")
    assert run(*checkpoint_check).returncode != 0


# --- the manifest states only what the entries say ------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "needs_review"),
        ("kind", "access"),
        ("subject_ref", "sr1:" + "0" * 64),
        ("received_at", "2024-05-01"),
        ("due_date", "2024-07-02"),
        ("closed_at", "2024-05-03T10:00:00Z"),
        ("playbook_sha256", "ab" * 32),
        ("first_seq", 2),
    ],
)
def test_a_manifest_fact_the_entries_contradict_is_caught(
    case: Case, tmp_path: Path, field: str, value: Any
) -> None:
    members = _members(case.bundle)
    manifest = json.loads(members["manifest.json"])
    assert manifest["requests"][0]["status"] == "completed"  # what Jane's entries say
    manifest["requests"][0][field] = value
    members["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    target = _rewrite(case.bundle, _resign(members, case.key_path), tmp_path / "t.zip")
    with pytest.raises(EvidenceVerificationError, match=f"request {case.jane}: the manifest"):
        verify_bundle(target)


def test_a_manifest_without_the_required_facts_is_refused(case: Case, tmp_path: Path) -> None:
    members = _members(case.bundle)
    manifest = json.loads(members["manifest.json"])
    del manifest["requests"][0]["status"]
    members["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    target = _rewrite(case.bundle, _resign(members, case.key_path), tmp_path / "t.zip")
    with pytest.raises(EvidenceVerificationError, match="does not state its status"):
        verify_bundle(target)


# --- every report names the certificate that really signed it ---------------------------------


@pytest.fixture
def rotated(
    ledger: Any, evidence_home: Path, two_people: tuple[str, str], tmp_path: Path
) -> tuple[Path, str, str, str]:
    """Jane's report signed by the old key, then `keys init --force`, then Carol's report
    under the new key; both exported. Returns (bundle, old, new, carol)."""
    old = load_keys(evidence_home).fingerprint
    new = init_keys(evidence_home, force=True).fingerprint
    carol = _request(ledger, evidence_home, "carol@example.com")
    out = tmp_path / "rotated.zip"
    export_bundle(ledger, out, request_ids=[two_people[0], carol], home=evidence_home)
    return out, old, new, carol


def test_after_key_rotation_each_report_names_its_own_signer(
    rotated: tuple[Path, str, str, str], two_people: tuple[str, str]
) -> None:
    out, old, new, carol = rotated
    jane = two_people[0]
    report = verify_bundle(out)
    assert report.manifest_signer == new
    signers = {r["request_id"]: r["signer"] for r in report.report_files}
    assert signers == {jane: old, carol: new}
    members = _members(out)
    manifest = json.loads(members["manifest.json"])
    named = {r["request_id"]: r["reports"][0]["signer"] for r in manifest["requests"]}
    assert named == {jane: old, carol: new}
    text = members["VERIFY.txt"].decode()
    jane_pdf = manifest["requests"][0]["reports"][0]["file"]
    assert f"--trust certificates/{old}.pem --trust-replace {jane_pdf}" in text
    assert f"--trust certificates/{new}.pem --trust-replace {jane_pdf}" not in text
    old_block = text[text.index(old) :].split("\n")[2]
    assert "signed 1 report" in old_block and "retired" in old_block
    assert "manifest" not in old_block


def test_a_manifest_naming_the_wrong_signer_is_caught(
    rotated: tuple[Path, str, str, str], evidence_home: Path, tmp_path: Path
) -> None:
    out, old, new, _ = rotated
    members = _members(out)
    manifest = json.loads(members["manifest.json"])
    report = manifest["requests"][0]["reports"][0]
    assert report["signer"] == old
    report["signer"] = new  # the claim a careless exporter would make after rotation
    members["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    target = _rewrite(
        out, _resign(members, evidence_home / "keys" / "evidence-signing-key.pem"), tmp_path / "w"
    )
    with pytest.raises(
        EvidenceVerificationError, match="not signed by the certificate the manifest names"
    ):
        verify_bundle(target)


# --- hostile bundles: bounded, one line -----------------------------------------------------


def deep_pdf(depth: int = 100_000) -> bytes:
    """A PDF whose catalog holds an array nested ``depth`` levels deep."""
    nested = b"[" * depth + b"]" * depth
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields " + nested + b" >> >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_a_deeply_nested_pdf_is_one_clear_error(case: Case) -> None:
    from privacykit.evidence import validate_signed_pdf

    cert = load_keys(case.home).certificate
    with pytest.raises(EvidenceVerificationError, match="nested too deeply"):
        validate_signed_pdf(deep_pdf(), [cert])


def test_deeply_nested_json_is_one_clear_error(case: Case, tmp_path: Path) -> None:
    members = _members(case.bundle)
    members["manifest.json"] = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(EvidenceVerificationError, match="manifest.json is nested too deeply"):
        verify_bundle(_rewrite(case.bundle, members, tmp_path / "deep.zip"))


def test_members_are_streamed_not_held(case: Case, tmp_path: Path) -> None:
    """A 48 MiB member (well within the limits) costs chunks, not its size, in memory."""
    import tracemalloc

    members = _members(case.bundle)
    members[f"requests/{case.jane}/report-999.pdf"] = b"\0" * (48 * 1024 * 1024)
    target = _rewrite(case.bundle, members, tmp_path / "big.zip")
    del members
    tracemalloc.start()
    try:
        with pytest.raises(EvidenceVerificationError, match="not in the manifest"):
            verify_bundle(target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024, peak


def test_verification_is_bounded_in_time_and_held_memory(case: Case) -> None:
    with pytest.raises(EvidenceVerificationError, match="took longer than 0 s"):
        verify_bundle(case.bundle, limits=BundleLimits(max_seconds=0))
    with pytest.raises(EvidenceVerificationError, match="too large"):
        verify_bundle(case.bundle, limits=BundleLimits(max_held_bytes=100))
    with pytest.raises(EvidenceVerificationError, match="too many members"):
        verify_bundle(case.bundle, limits=BundleLimits(max_members=3))


def test_verify_txt_states_the_canonical_json_rule(case: Case) -> None:
    text = " ".join(_members(case.bundle)["VERIFY.txt"].decode().split())
    assert "keys of every object sorted by Unicode code point" in text
    assert "no floating-point numbers" in text
