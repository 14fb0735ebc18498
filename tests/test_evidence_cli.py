"""`privacykit keys` and `privacykit evidence` from the command line: output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.evidence import load_keys, produce_report


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def _one_line_error(result: Any) -> None:
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_keys_init_show_and_refuse_overwrite(home: Path) -> None:
    result = _run("keys", "init", "--organisation", "Acme Data GmbH")
    assert result.exit_code == 0, result.output
    fingerprint = load_keys(home).fingerprint
    assert fingerprint in result.output

    shown = _run("keys", "show", "--json")
    assert shown.exit_code == 0
    document = json.loads(shown.output)
    assert document["fingerprint_sha256"] == fingerprint
    assert "O=Acme Data GmbH" in document["subject"]
    assert document["algorithm"] == "ECDSA secp256r1"

    again = _run("keys", "init")
    assert again.exit_code == 2
    assert "--force" in again.stderr
    _one_line_error(again)
    assert _run("keys", "init", "--force").exit_code == 0
    assert load_keys(home).fingerprint != fingerprint


def test_keys_show_without_keys_exits_1_with_the_remedy(home: Path) -> None:
    result = _run("keys", "show")
    assert result.exit_code == 1
    assert "privacykit keys init" in result.stderr
    _one_line_error(result)


def test_keys_passphrase_comes_from_the_environment(home: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from test_evidence_keys import _p12  # the CA-issued PKCS#12 builder

    p12 = _p12(tmp_path / "acme.p12", ec.generate_private_key(ec.SECP256R1()))
    unset = _run("keys", "init", "--pkcs12", str(p12), "--passphrase-env", "PK_TEST_PASS")
    assert unset.exit_code == 2 and "PK_TEST_PASS is not set" in unset.stderr
    wrong = _run(
        "keys",
        "init",
        "--pkcs12",
        str(p12),
        "--passphrase-env",
        "PK_TEST_PASS",
        env={"PK_TEST_PASS": "wrong-secret"},
    )
    assert wrong.exit_code == 2 and "wrong-secret" not in wrong.output
    ok = _run(
        "keys",
        "init",
        "--pkcs12",
        str(p12),
        "--passphrase-env",
        "PK_TEST_PASS",
        "--json",
        env={"PK_TEST_PASS": "correct horse"},
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["subject"] == "O=Acme,CN=Acme DPO office"
    alone = _run("keys", "init", "--force", "--passphrase-env", "PK_TEST_PASS")
    assert alone.exit_code == 2


@pytest.fixture
def request_with_report(ledger: Any, evidence_home: Path) -> str:
    ref = ledger.subject_ref("email:jane@example.com")
    rid = ledger.create_request("erasure", ref, received_at="2024-05-02", operator="dpo-office")
    ledger.record(rid, "evidence", "info", {"outcome": "erased"})
    produce_report(ledger, rid, "erasure", {"outcome": "erased"}, home=evidence_home)
    return rid


def test_export_verify_show_round_trip(request_with_report: str, tmp_path: Path) -> None:
    rid = request_with_report
    out = tmp_path / "bundle.zip"
    exported = _run("evidence", "export", "--out", str(out), "--request", rid)
    assert exported.exit_code == 0, exported.output
    assert "1 request(s)" in exported.output and "1 signed report(s)" in exported.output

    verified = _run("evidence", "verify", str(out))
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("OK ")
    as_json = json.loads(_run("evidence", "verify", str(out), "--json").output)
    assert as_json["ok"] is True and as_json["requests"] == [rid] and as_json["reports"] == 1

    shown = _run("evidence", "show", rid, "--json")
    assert shown.exit_code == 0
    reports = json.loads(shown.output)["reports"]
    assert len(reports) == 1 and Path(reports[0]["path"]).exists()
    assert reports[0]["sha256"] in _run("evidence", "show", rid).output


def test_verify_exit_codes(request_with_report: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    assert (
        _run("evidence", "export", "--out", str(out), "--request", request_with_report).exit_code
        == 0
    )
    with zipfile.ZipFile(out) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["VERIFY.txt"] = members["VERIFY.txt"].replace(b"HOW TO", b"how to")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    failed = _run("evidence", "verify", str(tampered))
    assert failed.exit_code == 1
    assert "VERIFY.txt" in failed.stderr
    _one_line_error(failed)

    absent = _run("evidence", "verify", str(tmp_path / "absent.zip"))
    assert absent.exit_code == 2
    _one_line_error(absent)
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    assert _run("evidence", "verify", str(junk)).exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["evidence", "export", "--out", "{tmp}/b.zip"],
        ["evidence", "export", "--out", "{tmp}/b.zip", "--request", "req-20240101-00000000"],
        ["evidence", "export", "--out", "{tmp}/b.zip", "--since", "31/05/2024"],
        ["evidence", "show", "req-20240101-00000000"],
        ["evidence", "report", "req-20240101-00000000"],
        ["evidence", "report", "{rid}", "--tsa-url", "ftp://tsa.example/"],
    ],
)
def test_bad_input_exits_2(args: list[str], request_with_report: str, tmp_path: Path) -> None:
    filled = [a.replace("{tmp}", str(tmp_path)).replace("{rid}", request_with_report) for a in args]
    result = _run(*filled)
    assert result.exit_code == 2, result.output
    _one_line_error(result)
    assert not (tmp_path / "b.zip").exists()


def test_show_reads_while_another_command_writes(request_with_report: str) -> None:
    # The fixture's ledger, open in this thread, holds the home's writer lock (as a running
    # erasure would). From another thread (the lock is re-entrant only within one),
    # `evidence show` only reads and answers; `evidence report` writes and is refused.
    import threading

    results: dict[str, Any] = {}

    def other_command() -> None:
        results["show"] = _run("evidence", "show", request_with_report, "--json")
        results["report"] = _run("evidence", "report", request_with_report)

    thread = threading.Thread(target=other_command)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    busy = results["report"]
    assert busy.exit_code == 2 and "is in use by" in busy.stderr
    shown = results["show"]
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.output)["reports"]) == 1


def test_report_command_signs_again_from_the_ledger(request_with_report: str) -> None:
    result = _run("evidence", "report", request_with_report, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert Path(document["path"]).exists()
    shown = json.loads(_run("evidence", "show", request_with_report, "--json").output)
    assert len(shown["reports"]) == 2


def test_verify_names_the_signer_of_each_report(request_with_report: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    assert (
        _run("evidence", "export", "--out", str(out), "--request", request_with_report).exit_code
        == 0
    )
    verified = _run("evidence", "verify", str(out))
    assert verified.exit_code == 0, verified.output
    fingerprint = load_keys(Path(os.environ["PRIVACYKIT_HOME"])).fingerprint
    assert f"manifest signed by certificate SHA-256 {fingerprint}" in verified.output
    report_line = next(line for line in verified.output.splitlines() if ".pdf signed by" in line)
    assert report_line.endswith(fingerprint)


def _break_ledger(home: Path, rid: str) -> None:
    import sqlite3

    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    try:
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='trigger'"
        ).fetchall()
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE requests SET status = 'completed' WHERE request_id = ?", (rid,))
        # Put the triggers back, as a careful attacker would (else opening refuses it).
        for _, sql in triggers:
            conn.execute(sql)
    finally:
        conn.close()


def test_export_and_report_refuse_a_ledger_that_does_not_verify(
    request_with_report: str, evidence_home: Path, tmp_path: Path
) -> None:
    _break_ledger(evidence_home, request_with_report)
    out = tmp_path / "bundle.zip"
    for args in (
        ["evidence", "export", "--out", str(out), "--request", request_with_report],
        ["evidence", "report", request_with_report],
    ):
        result = _run(*args)
        assert result.exit_code == 1, result.output
        assert "refusing to sign evidence: the ledger does not verify" in result.stderr
        _one_line_error(result)
    assert not out.exists()


def test_verify_of_a_hostile_bundle_is_one_line(request_with_report: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    assert (
        _run("evidence", "export", "--out", str(out), "--request", request_with_report).exit_code
        == 0
    )
    with zipfile.ZipFile(out) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    from test_evidence_bundle import deep_pdf

    for name, data in (
        ("manifest.json", b"[" * 100_000 + b"]" * 100_000),
        (next(n for n in members if n.endswith(".pdf")), deep_pdf()),
    ):
        hostile = tmp_path / "hostile.zip"
        with zipfile.ZipFile(hostile, "w") as zf:
            for member, content in {**members, name: data}.items():
                zf.writestr(member, content)
        result = _run("evidence", "verify", str(hostile))
        assert result.exit_code == 1, result.output
        _one_line_error(result)


@pytest.mark.parametrize(
    ("depth", "message"),
    [(100_000, "not a readable PDF (nested too deeply)"), (200, "expected exactly one signature")],
)
def test_verify_of_a_forged_bundle_around_a_hostile_pdf_is_one_line(
    depth: int,
    message: str,
    ledger: Any,
    evidence_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An insider holding every key can make a bundle whose hashes, proofs and signatures
    all hold around a hostile PDF, so the PDF reader itself is reached: a deeply nested PDF
    is one line, and the PDF library's own complaints (200 levels make pyHanko warn) do
    not add lines of their own (#14)."""
    from test_evidence_bundle import deep_pdf

    from privacykit.evidence import export_bundle
    from privacykit.evidence.bundle import export

    pdf = tmp_path / "hostile.pdf"
    pdf.write_bytes(deep_pdf(depth))
    ref = ledger.subject_ref("email:jane@example.com")
    rid = ledger.create_request("erasure", ref, received_at="2024-05-02", operator="insider")
    ledger.add_artifact(rid, pdf, "report")
    fingerprint = load_keys(evidence_home).fingerprint
    with monkeypatch.context() as patch:  # the forger names the signer the reader would find
        patch.setattr(export, "_pdf_signer_fingerprint", lambda _pdf: fingerprint)
        bundle = export_bundle(ledger, tmp_path / "forged.zip", request_ids=[rid]).path
    # A real process: under pytest, log records go to pytest's handler, not to stderr.
    done = subprocess.run(
        [sys.executable, "-m", "privacykit", "evidence", "verify", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: "), done.stderr
    assert message in done.stderr


def test_keys_command_default_organisation_is_the_librarys() -> None:
    from privacykit.cli import keys_cmd
    from privacykit.evidence import keys

    assert keys_cmd.DEFAULT_ORGANISATION == keys.DEFAULT_ORGANISATION
