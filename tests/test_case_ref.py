"""``--case REF`` and ``--identity-verified DATE [--method TEXT]`` on ``erase``: stored in
the ledger, shown by ``ledger list``/``show``, searchable with ``ledger list --case``;
values that look personal are refused like the ledger's guard does (real sandbox over
loopback, real ledger, the real CLI)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit import clock
from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import DEMO_ERASE_EMAIL

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def demo(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="demo", users=3, time_scale=600.0, rng_seed=1)
    return server


def run(*args: str) -> Any:
    with clock.frozen(T0):
        return CliRunner().invoke(cli, list(args))


def test_case_and_identity_are_stored_shown_and_searchable(demo: SandboxServer, home: Path) -> None:
    result = run(
        "erase",
        DEMO_ERASE_EMAIL,
        "--case",
        "DSAR-0042",
        "--identity-verified",
        "2026-03-01",
        "--method",
        "video call",
        "--yes",
        "--no-report",
        "--json",
    )
    assert result.exit_code == 0, result.output
    (request,) = json.loads(result.stdout)["requests"]
    rid = request["request_id"]
    with Ledger.open(home, readonly=True) as led:
        record = led.get_request(rid)
    assert record.case_ref == "DSAR-0042"
    assert str(record.identity_verified_at) == "2026-03-01"
    assert record.identity_method == "video call"
    listed = run("ledger", "list", "--case", "DSAR-0042")
    assert listed.exit_code == 0
    head, row = listed.stdout.splitlines()
    assert head.split() == [
        "REQUEST",
        "CASE",
        "KIND",
        "STATUS",
        "RECEIVED",
        "DUE",
        "REMAINING",
        "SUBJECT",
    ]
    assert row.split()[:4] == [rid, "DSAR-0042", "erasure", "pending_compliance"]
    assert run("ledger", "list", "--case", "DSAR-0043").stdout == "No requests.\n"
    shown = run("ledger", "show", rid).stdout.splitlines()
    assert "Case               DSAR-0042" in shown
    assert "Identity verified  2026-03-01 (video call)" in shown
    # Given again on resume with another reference: the latest one is the request's.
    demo.advance(2 * 3600)
    again = run("erase", DEMO_ERASE_EMAIL, "--case", "ZD-981", "--yes", "--no-report")
    assert again.exit_code == 0, again.output
    assert run("ledger", "list", "--case", "DSAR-0042").stdout == "No requests.\n"
    assert rid in run("ledger", "list", "--case", "ZD-981").stdout
    with Ledger.open(home, readonly=True) as led:
        led.verify()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [DEMO_ERASE_EMAIL, "--case", "jane@example.com"],
            "--case must be the DPO's own reference: it looks like an email address; use "
            "your own reference, e.g. the DSAR ticket number",
        ),
        (
            [DEMO_ERASE_EMAIL, "--case", "+44 20 7946 0958"],
            "--case must be the DPO's own reference: it looks like a phone number; use "
            "your own reference, e.g. the DSAR ticket number",
        ),
        (
            [DEMO_ERASE_EMAIL, "--case", "07700900123"],
            "--case must be the DPO's own reference: it looks like a phone number; use "
            "your own reference, e.g. the DSAR ticket number",
        ),
        (
            [DEMO_ERASE_EMAIL, "--case", "DSAR 42/3"],
            "--case must be the DPO's own reference: use 1-100 letters, digits, '.', '_' "
            "or '-' (not starting with '.')",
        ),
        (
            [DEMO_ERASE_EMAIL, "user:5", "--case", "DSAR-1"],
            "--case describes one request: give exactly one SUBJECT",
        ),
        (
            [DEMO_ERASE_EMAIL, "--method", "passport"],
            "--method says how the identity was verified: give --identity-verified",
        ),
        (
            [DEMO_ERASE_EMAIL, "--identity-verified", "2026-03-03"],
            "--identity-verified cannot be in the future",
        ),
        (
            [DEMO_ERASE_EMAIL, "--identity-verified", "yesterday"],
            "--identity-verified must be a date like 2026-01-31",
        ),
    ],
)
def test_personal_or_malformed_values_exit_2_with_one_line(
    demo: SandboxServer, home: Path, args: list[str], message: str
) -> None:
    result = run("erase", *args, "--yes")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")
    assert "jane@" not in result.output and "7946" not in result.output
    assert [e for e in demo.request_log() if e["method"] != "GET"] == []
    assert not (home / "ledger.sqlite3").exists()


def test_access_takes_the_same_case_and_identity(
    demo: SandboxServer, home: Path, tmp_path: Path
) -> None:
    from privacykit.sandbox.seed import DEMO_ACCESS_EMAIL

    out = tmp_path / "answer"
    result = run(
        "access",
        DEMO_ACCESS_EMAIL,
        "--out",
        str(out),
        "--case",
        "DSAR-7",
        "--identity-verified",
        "2026-03-01",
        "--no-report",
        "--json",
    )
    assert result.exit_code == 0, result.output
    (request,) = json.loads(result.stdout)["requests"]
    with Ledger.open(home, readonly=True) as led:
        record = led.get_request(request["request_id"])
    assert (record.case_ref, str(record.identity_verified_at)) == ("DSAR-7", "2026-03-01")
    two = run("access", DEMO_ACCESS_EMAIL, "user:5", "--out", str(tmp_path / "b"), "--case", "X")
    assert (two.exit_code, two.stderr) == (
        2,
        "Error: --case describes one request: give exactly one SUBJECT\n",
    )


def test_the_report_shows_identity_verification_and_case(
    demo: SandboxServer, evidence_home: Path
) -> None:
    from pypdf import PdfReader

    result = run(
        "erase",
        "nobody@example.net",
        "--case",
        "DSAR-0099",
        "--identity-verified",
        "2026-03-01",
        "--method",
        "signed letter",
        "--yes",
    )
    assert result.exit_code == 0, result.output
    report = Path(result.stdout.splitlines()[1].removeprefix("    report: "))
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(report).pages).split())
    assert "2026-03-01 (signed letter)" in text
    assert "DSAR-0099" in text
