"""One checkpoint per run (#13) for ``audit`` and ``access``, as the erasure batch does it
(``test_erasure_bulk.py``): every final status of the run is written, then ONE checkpoint
is signed, every report of the run names it, and closing the run signs one more covering
the reports' own registrations -- two per run whatever its size. A run killed between the
final statuses and the reports leaves them owed (``report`` intent and the
``reports-owed`` marker); the next run signs them first. Real sandbox over loopback, a
real ledger, real signed PDFs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from privacykit.audit import AuditOptions, AuditResult, run_audit
from privacykit.cli import cli
from privacykit.config import ZendeskConfig
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer
from tests.conftest import erase_people


class Killed(BaseException):
    """The process dying at that point (not an error anything may catch and go on)."""


def die(*args: Any, **kwargs: Any) -> Any:
    raise Killed


def checkpoints(home: Path) -> list[Any]:
    with Ledger.open(home, readonly=True) as led:
        return list(led.checkpoints())


def pdf_text(path: str | Path) -> str:
    pages = PdfReader(str(path)).pages
    return " ".join(" ".join((page.extract_text() or "").split()) for page in pages)


def reports(home: Path, rid: str) -> list[Any]:
    with Ledger.open(home, readonly=True) as led:
        return [a for a in led.artifacts(rid) if a.kind == "report"]


def owed(home: Path) -> set[str]:
    folder = home / "reports-owed"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


# --------------------------------------------------------------------------- audit


def pending_erasures(sb: SandboxServer, home: Path, n: int) -> list[str]:
    """``n`` real erasures waiting for Zendesk's compliance deletion, which then finishes."""
    emails = [f"p{i}@example.com" for i in range(n)]
    for i, email in enumerate(emails):
        sb.state.add_user(f"P{i}", email=email)
    report = erase_people(sb, home, emails, concurrency=2)
    assert [job.status for job in report.jobs] == ["pending_compliance"] * n
    sb.advance(2 * 3600)  # Zendesk's compliance deletion finishes within the hour
    return [str(job.request_id) for job in report.jobs]


def audit(sb: SandboxServer, home: Path, **options: Any) -> AuditResult:
    config = ZendeskConfig.from_env(sb.env())
    options.setdefault("report", True)
    return run_audit(AuditOptions(**options), home=home, config=config)


def test_an_audit_that_completes_erasures_signs_two_checkpoints_not_one_per_report(
    sandbox: SandboxServer, evidence_home: Path
) -> None:
    # An acceptance review measured 25 checkpoints for one audit after a 51-subject
    # erasure: one per request whose status it moved. Now: one the reports name, one
    # closing the run.
    home = evidence_home
    rids = pending_erasures(sandbox, home, 4)
    before = len(checkpoints(home))
    result = audit(sandbox, home)
    assert result.checked["erasures_completed_by_audit"] == 4, result.to_document()
    assert result.report_path and not result.errors
    after = checkpoints(home)
    assert len(after) == before + 2
    run_checkpoint = after[before]
    named = f"Checkpoint root (SHA-256) {run_checkpoint.root_hex}"
    with Ledger.open(home, readonly=True) as led:
        assert {led.get_request(rid).status for rid in rids} == {"completed"}
        led.verify()
    for rid in rids:
        (stored,) = reports(home, rid)
        assert named in pdf_text(stored.path)
    text = pdf_text(result.report_path)
    # The audit's own report states its final status, and names the same checkpoint.
    assert "Status completed" in text and named in text
    assert owed(home) == set()
    assert result.checkpoint_size == after[-1].size


def test_an_audit_killed_before_its_reports_leaves_them_owed_and_the_next_run_signs_them(
    sandbox: SandboxServer, evidence_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import privacykit.playbooks.request as request

    home = evidence_home
    rids = pending_erasures(sandbox, home, 3)
    real = request.sign_deferred_reports
    monkeypatch.setattr(request, "sign_deferred_reports", die)
    with pytest.raises(Killed):
        audit(sandbox, home)
    with Ledger.open(home, readonly=True) as led:
        (run,) = led.list_requests(kind="audit")
        # Every final status is written (the audit's own too); no report is signed.
        assert {led.get_request(rid).status for rid in rids} == {"completed"}
        assert run.status == "completed"
        led.verify()
    assert owed(home) == {*rids, run.request_id}
    assert all(reports(home, rid) == [] for rid in [*rids, run.request_id])

    monkeypatch.setattr(request, "sign_deferred_reports", real)
    again = audit(sandbox, home)
    assert again.checked["reports_settled"] == 4, again.to_document()
    assert owed(home) == set()
    for rid in [*rids, run.request_id]:
        assert len(reports(home, rid)) == 1
    (stored,) = reports(home, run.request_id)
    assert "Status completed" in pdf_text(stored.path)
    with Ledger.open(home, readonly=True) as led:
        led.verify()


def test_an_audit_without_reports_to_sign_adds_one_checkpoint(
    sandbox: SandboxServer, evidence_home: Path
) -> None:
    Ledger.open(evidence_home).close()
    before = len(checkpoints(evidence_home))
    result = audit(sandbox, evidence_home, report=False)
    assert result.report_path is None and result.checkpoint_size is not None
    assert len(checkpoints(evidence_home)) == before + 1


# --------------------------------------------------------------------------- access


def access(*args: str) -> Any:
    return CliRunner().invoke(cli, ["access", *args], catch_exceptions=False)


@pytest.mark.parametrize("subjects", [1, 3])
def test_an_access_run_signs_two_checkpoints_whatever_its_size(
    sandbox: SandboxServer,
    zendesk_env: dict[str, str],
    evidence_home: Path,
    tmp_path: Path,
    subjects: int,
) -> None:
    home = evidence_home
    emails = [f"a{i}@example.com" for i in range(subjects)]
    for i, email in enumerate(emails):
        sandbox.state.add_user(f"A{i}", email=email)
    Ledger.open(home).close()
    before = len(checkpoints(home))
    result = access(*emails, "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    requests = json.loads(result.stdout)["requests"]
    assert len(requests) == subjects
    after = checkpoints(home)
    assert len(after) == before + 2  # was N + 1 (one per report, one closing)
    named = f"Checkpoint root (SHA-256) {after[before].root_hex}"
    for request in requests:
        text = pdf_text(request["report"])
        assert named in text and "Status completed" in text
    assert owed(home) == set()
    with Ledger.open(home, readonly=True) as led:
        assert led.latest_checkpoint().size == led.size  # type: ignore[union-attr]
        led.verify()


def test_access_from_a_dsar_ticket_signs_two_checkpoints(
    sandbox: SandboxServer, zendesk_env: dict[str, str], evidence_home: Path, tmp_path: Path
) -> None:
    # The ticket's note is recorded before the run's closing checkpoint (it was a third).
    user = sandbox.state.add_user("Dana Dsar", email="dana@example.com")
    ticket = sandbox.state.add_ticket(int(user["id"]), "open", "My data", description="All.")
    Ledger.open(evidence_home).close()
    before = len(checkpoints(evidence_home))
    result = access("--from-ticket", str(ticket["id"]), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert len(checkpoints(evidence_home)) == before + 2
    with Ledger.open(evidence_home, readonly=True) as led:
        assert led.latest_checkpoint().size == led.size  # type: ignore[union-attr]


def test_an_access_run_killed_before_its_reports_leaves_them_owed_for_the_next_run(
    sandbox: SandboxServer,
    zendesk_env: dict[str, str],
    evidence_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import privacykit.playbooks.access.runner as runner

    home = evidence_home
    for i in range(3):
        sandbox.state.add_user(f"K{i}", email=f"k{i}@example.com")
    real = runner.sign_deferred_reports
    monkeypatch.setattr(runner, "sign_deferred_reports", die)
    with pytest.raises(Killed):
        access("k0@example.com", "k1@example.com", "--out", str(tmp_path / "first"))
    with Ledger.open(home, readonly=True) as led:
        killed = [r.request_id for r in led.list_requests(kind="access")]
        assert len(killed) == 2
        assert {led.get_request(rid).status for rid in killed} == {"completed"}
    assert owed(home) == set(killed)
    assert all(reports(home, rid) == [] for rid in killed)

    monkeypatch.setattr(runner, "sign_deferred_reports", real)
    before = len(checkpoints(home))
    again = access("k2@example.com", "--out", str(tmp_path / "second"))
    assert again.exit_code == 0, again.output
    assert owed(home) == set()
    for rid in killed:
        (stored,) = reports(home, rid)
        assert "Status completed" in pdf_text(stored.path)
    # The settled reports name the checkpoint that covered them; the run still adds two.
    assert len(checkpoints(home)) == before + 2
    with Ledger.open(home, readonly=True) as led:
        led.verify()
