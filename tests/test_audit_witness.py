"""`audit` names the home it checked and reports a missing, unmounted or stale witness as
a `ledger.witness` finding (#13)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacykit.audit import AuditOptions, AuditResult, run_audit
from privacykit.cli import cli
from privacykit.config import ZendeskConfig
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer


def audit(sb: SandboxServer, home: Path) -> AuditResult:
    return run_audit(AuditOptions(), home=home, config=ZendeskConfig.from_env(sb.env()))


def witness_findings(result: AuditResult) -> list[str]:
    return [f.message for f in result.findings if f.check == "ledger.witness"]


@pytest.fixture
def ledger_home(home: Path) -> Path:
    with Ledger.open(home) as ledger:
        rid = ledger.create_request("access", ledger.subject_ref("x:1"), received_at=date.today())
        ledger.set_status(rid, "completed")
    return home


def test_clear_with_a_witness_and_the_home_named(sandbox: SandboxServer, ledger_home: Path) -> None:
    result = audit(sandbox, ledger_home)
    assert result.exit_code == 0, [f.message for f in result.findings]
    assert result.home == str(ledger_home)
    assert result.to_document()["home"] == str(ledger_home)


def test_no_witness_is_a_finding(
    sandbox: SandboxServer, ledger_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRIVACYKIT_WITNESS_DIR")
    result = audit(sandbox, ledger_home)
    assert result.exit_code == 1
    assert witness_findings(result) == [
        "no witness: PRIVACYKIT_WITNESS_DIR is not set, so a ledger rewritten or rolled back "
        "and re-signed with the key in PRIVACYKIT_HOME would not be detected (README: threat "
        "model)"
    ]
    assert result.checkpoint_size is not None  # the ledger itself verified: still signed


def test_stale_witness_is_a_finding_then_caught_up(
    sandbox: SandboxServer, ledger_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = Path(os.environ["PRIVACYKIT_WITNESS_DIR"])
    # Two more runs signed while the witness was not set (a cron job missing the variable).
    monkeypatch.delenv("PRIVACYKIT_WITNESS_DIR")
    with Ledger.open(ledger_home) as ledger:
        rid = ledger.create_request("erasure", ledger.subject_ref("x:2"), received_at=date.today())
        ledger.set_status(rid, "completed")
        latest = ledger.checkpoint().size
    monkeypatch.setenv("PRIVACYKIT_WITNESS_DIR", str(directory))
    result = audit(sandbox, ledger_home)
    [message] = witness_findings(result)
    assert message.startswith("the witness is stale: it holds checkpoints up to size 2 ")
    assert f"but the latest is size {latest}" in message
    # The audit's own checkpoint was witnessed: the next audit is clear.
    assert audit(sandbox, ledger_home).exit_code == 0


def test_unmounted_witness_is_a_finding_not_a_crash(
    sandbox: SandboxServer, ledger_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRIVACYKIT_WITNESS_DIR", str(tmp_path / "unmounted"))
    result = audit(sandbox, ledger_home)
    [message] = witness_findings(result)
    assert message == (
        f"the witness directory {tmp_path / 'unmounted'} (PRIVACYKIT_WITNESS_DIR) is not "
        "there: is it mounted? The ledger was checked without it"
    )
    assert "ledger.integrity" not in {f.check for f in result.findings}


def test_cli_names_the_home(sandbox: SandboxServer, ledger_home: Path) -> None:
    result = CliRunner().invoke(cli, ["audit"], env=sandbox.env())
    assert result.exit_code == 0, result.output
    assert f"ledger: {ledger_home}\n" in result.output


def test_no_ledger_names_the_default_home(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRIVACYKIT_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    result = CliRunner().invoke(cli, ["audit"], env=sandbox.env())
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: audit could not run: no ledger at {tmp_path / 'config' / 'privacykit'} "
        "(the default home: PRIVACYKIT_HOME is not set): set PRIVACYKIT_HOME to this "
        "installation's home\n"
    )


def test_an_interrupted_runs_unsigned_entries_are_reported_then_signed(
    sandbox: SandboxServer, ledger_home: Path
) -> None:
    with Ledger.open(ledger_home) as ledger:
        rid = ledger.list_requests()[0].request_id
        ledger.record(rid, "note", "info", {"n": 1})
        size = ledger.size
        ledger.close(checkpoint=False)  # as if killed before its final checkpoint
    result = audit(sandbox, ledger_home)
    [message] = [f.message for f in result.findings if f.check == "ledger.integrity"]
    assert message == (
        f"entries {size}..{size} were not covered by any signed checkpoint when the audit "
        "started (an interrupted run, or entries added outside privacykit); they verify, and "
        "this audit's checkpoint signs them"
    )
    assert result.checkpoint_size is not None and result.checkpoint_size > size
    assert audit(sandbox, ledger_home).exit_code == 0  # signed now
