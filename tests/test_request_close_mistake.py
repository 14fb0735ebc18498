"""A typo'd identifier (#17): a request that finished at once as "no data found" and
changed nothing is closed ``--as mistake`` -- and only that one finished request. Real
erasure and access runs over loopback to the sandbox, the real ledger and CLI, a signed
closing report; exact output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.errors import LedgerIntegrityError, UsageError
from privacykit.ledger import Ledger

TYPO = "jane.doe@exmaple.com"  # no one in the sandbox: "no data found"
REASON = "mistyped address; no such request"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def finished_no_data_erasure(home: Path, *extra: str) -> str:
    result = run("erase", TYPO, "--yes", *extra)
    assert result.exit_code == 0, result.output
    assert ": no data found (" in result.stdout.splitlines()[0]
    with Ledger.open(home, readonly=True) as led:
        (request,) = led.list_requests(kind="erasure")
    assert request.status == "completed"
    return request.request_id


def text_of(pdf: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(pdf).pages).split())


def test_a_no_data_erasure_is_closed_as_a_mistake(
    sandbox: Any, zendesk_env: dict[str, str], evidence_home: Path, tmp_path: Path
) -> None:
    rid = finished_no_data_erasure(evidence_home)
    with Ledger.open(evidence_home, readonly=True) as led:
        size = led.size
    withdrawn = run("request", "close", rid, "--as", "withdrawn", "--reason", "typo")
    assert (withdrawn.exit_code, withdrawn.stdout, withdrawn.stderr) == (
        2,
        "",
        f"Error: {rid} finished with no data found: only --as mistake applies to a "
        "finished no-data request\n",
    )
    refused = run("request", "close", rid, "--as", "refused", "--article", "12(5)", "--reason", "x")
    assert (refused.exit_code, refused.stderr) == (2, withdrawn.stderr)
    with Ledger.open(evidence_home, readonly=True) as led:
        assert led.size == size  # nothing recorded

    result = run("request", "close", rid, "--as", "mistake", "--reason", REASON)
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    first, report = result.stdout.splitlines()
    assert first == f"{rid}: closed as mistake; its deadline no longer runs"
    path = Path(report.removeprefix("    report: "))
    text = text_of(path)
    assert "closed as opened by mistake" in text and REASON in text
    assert 'answer "no data found". That answer relates to an identifier entered by mistake' in (
        text
    )
    assert TYPO not in text and "exmaple" not in text

    with Ledger.open(evidence_home, readonly=True) as led:
        request = led.get_request(rid)
        entries = led.entries(rid)
    assert (request.status, request.closing_ground, request.status_reason) == (
        "closed",
        "mistake",
        REASON,
    )
    closing = [e.data for e in entries if e.step_key == "evidence"][-1]
    assert (closing["ground"], closing["earlier_outcome"]) == ("mistake", "no_data_found")
    statuses = [e.data["status"] for e in entries if e.step_key == "ledger:status"]
    assert statuses == ["in_progress", "completed", "closed"]

    verify = run("ledger", "verify", "--json")
    assert verify.exit_code == 0, verify.output
    assert json.loads(verify.stdout)["ok"] is True
    bundle = tmp_path / "bundle.zip"  # a regulator's offline check replays it too
    assert run("evidence", "export", "--request", rid, "--out", str(bundle)).exit_code == 0
    checked = run("evidence", "verify", str(bundle))
    assert (checked.exit_code, checked.stdout.splitlines()[0]) == (0, f"OK {bundle}")
    again = run("request", "close", rid, "--as", "mistake", "--reason", REASON)
    assert (again.exit_code, again.stderr) == (
        2,
        f"Error: {rid} is closed: only an open request can be closed "
        "(a finished one keeps its outcome)\n",
    )


def test_the_audit_does_not_flag_a_no_data_request_closed_as_a_mistake(
    sandbox: Any, zendesk_env: dict[str, str], home: Path
) -> None:
    rid = finished_no_data_erasure(home, "--no-report")
    closed = run("request", "close", rid, "--as", "mistake", "--reason", REASON, "--no-report")
    assert closed.exit_code == 0, closed.output
    audit = run("audit", "--json")
    assert audit.exit_code == 0, audit.output
    document = json.loads(audit.stdout)
    assert [f for f in document["findings"] if rid in json.dumps(f)] == []


def test_a_no_data_access_request_is_closed_as_a_mistake(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    answered = run("access", TYPO, "--out", str(tmp_path / "out"), "--no-report")
    assert answered.exit_code == 0, answered.output
    with Ledger.open(home, readonly=True) as led:
        (request,) = led.list_requests(kind="access")
    rid = request.request_id
    result = run("request", "close", rid, "--as", "mistake", "--reason", REASON, "--no-report")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"{rid}: closed as mistake; its deadline no longer runs\n",
        "",
    )
    assert run("ledger", "verify").exit_code == 0


@pytest.fixture
def deleted(home: Path) -> str:
    """A completed erasure that deleted a profile (its evidence says ``erased``)."""
    with Ledger.open(home) as led:
        rid = led.create_request(
            "erasure", led.subject_ref("email:someone@example.com"), received_at="2026-11-01"
        )
        led.set_status(rid, "in_progress")
        led.record(rid, "profile:delete:01ABC", "intent", {"profile_id": "01ABC"})
        led.record(rid, "profile:delete:01ABC", "outcome", {"status": 204})
        led.record(rid, "evidence", "info", {"outcome": "erased", "status": "completed"})
        led.set_status(rid, "completed")
        led.checkpoint()
    return rid


def test_a_completed_erasure_that_deleted_things_is_not_closed(home: Path, deleted: str) -> None:
    with Ledger.open(home, readonly=True) as led:
        size = led.size
    for ground in ("mistake", "withdrawn"):
        result = run("request", "close", deleted, "--as", ground, "--reason", "typo")
        assert (result.exit_code, result.stdout, result.stderr) == (
            2,
            "",
            f"Error: {deleted} is completed: only an open request can be closed "
            "(a finished one keeps its outcome)\n",
        )
    with Ledger.open(home, readonly=True) as led:
        assert led.size == size and led.get_request(deleted).status == "completed"


def test_no_data_evidence_does_not_cover_a_destructive_step(home: Path) -> None:
    """An evidence record saying no_data_found is not enough: any destructive intent in
    the request's entries (even one that failed) keeps it from being closed."""
    with Ledger.open(home) as led:
        rid = led.create_request(
            "erasure", led.subject_ref("email:someone@example.com"), received_at="2026-11-01"
        )
        led.record(rid, "user:soft_delete:7", "intent", {"user_id": 7})
        led.record(rid, "user:soft_delete:7", "outcome", {"result": "failed"})
        led.record(rid, "evidence", "info", {"outcome": "no_data_found"})
        led.set_status(rid, "completed")
        with pytest.raises(UsageError, match="only as a mistake"):
            led.close_request(rid, "mistake", "typo")  # the ledger's own rule
    result = run("request", "close", rid, "--as", "mistake", "--reason", "typo")
    assert (result.exit_code, result.stderr) == (
        2,
        f"Error: {rid} is completed: only an open request can be closed "
        "(a finished one keeps its outcome)\n",
    )


def test_a_forged_closing_of_a_completed_erasure_fails_verification(
    home: Path, deleted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that skipped the rule (here: the write path's check replaced) leaves a
    ``completed -> closed`` transition the replay refuses."""
    import privacykit.ledger.base as base

    with Ledger.open(home) as led:
        with pytest.raises(UsageError, match="only as a mistake"):
            led.close_request(deleted, "mistake", "typo")
        assert led.verify().ok
        monkeypatch.setattr(base, "_no_data_unchanged", lambda conn, rid: True)
        led.close_request(deleted, "mistake", "typo")
        assert led.get_request(deleted).status == "closed"
        with pytest.raises(LedgerIntegrityError, match="ledger:status does not replay"):
            led.verify()
    verify = run("ledger", "verify")
    assert verify.exit_code == 1
    assert "a completed request can be closed only as a mistake" in verify.output
