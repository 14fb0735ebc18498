"""`privacykit request close`: a request that will not be carried out is closed with a
ground and a reason, its deadline stops, a signed closing report states the ground (real
ledger, the real CLI, exact output and exit codes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit import clock
from privacykit.audit.ledger_checks import check_deadlines
from privacykit.cli import cli
from privacykit.ledger import Ledger

T0 = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def run(*args: str) -> Any:
    with clock.frozen(T0):
        return CliRunner().invoke(cli, list(args))


@pytest.fixture
def requests(home: Path) -> dict[str, str]:
    """An overdue open erasure, an open access request and a completed erasure."""
    with clock.frozen(T0), Ledger.open(home) as led:
        ref = led.subject_ref("email:someone@example.com")
        erasure = led.create_request(
            "erasure", ref, received_at="2026-02-10", playbook_name="erasure"
        )
        led.set_status(erasure, "needs_review", "2 users found for one subject")
        access = led.create_request("access", ref, received_at="2026-03-01")
        done = led.create_request("erasure", ref, received_at="2026-03-01")
        led.set_status(done, "completed")
        led.checkpoint()
    return {"erasure": erasure, "access": access, "done": done}


def test_withdrawn_is_recorded_and_the_deadline_stops(home: Path, requests: dict[str, str]) -> None:
    rid = requests["erasure"]
    with Ledger.open(home, readonly=True) as led:
        before, _ = check_deadlines(led.list_requests(), today=T0.date(), due_within_days=7)
    assert [f.request_id for f in before if f.check == "deadline.overdue"] == [rid]
    result = run(
        "request",
        "close",
        rid,
        "--as",
        "withdrawn",
        "--reason",
        "withdrawn by reply on the DSAR ticket",
        "--no-report",
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"{rid}: closed as withdrawn; its deadline no longer runs\n",
        "",
    )
    with Ledger.open(home, readonly=True) as led:
        request = led.get_request(rid)
        after, _ = check_deadlines(led.list_requests(), today=T0.date(), due_within_days=7)
        evidence = [e.data for e in led.entries(rid) if e.step_key == "evidence"]
        led.verify()
    assert request.status == "closed" and request.closing_ground == "withdrawn"
    assert request.status_reason == "withdrawn by reply on the DSAR ticket"
    assert request.closed_at is not None and not request.is_open
    assert [f for f in after if f.request_id == rid] == []
    (record,) = evidence
    assert record["schema"] == "privacykit.closing-evidence/1"
    assert (record["ground"], record["article"], record["status"]) == ("withdrawn", None, "closed")
    shown = run("ledger", "show", rid).stdout.splitlines()
    assert "Status             closed as withdrawn (withdrawn by reply on the DSAR ticket)" in shown
    listed = run("ledger", "list", "--status", "closed", "--json")
    assert [r["request_id"] for r in json.loads(listed.stdout)["requests"]] == [rid]


def test_refused_states_its_article(home: Path, requests: dict[str, str]) -> None:
    rid = requests["erasure"]
    result = run(
        "request",
        "close",
        rid,
        "--as",
        "refused",
        "--article",
        "17(3)(b)",
        "--reason",
        "invoices must be kept for 10 years",
        "--no-report",
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == {
        "request_id": rid,
        "kind": "erasure",
        "status": "closed",
        "ground": "refused",
        "article": "Art. 17(3)(b)",
        "reason": "invoices must be kept for 10 years",
        "closed_at": "2026-03-20T09:00:00Z",
        "report": None,
        "report_sha256": None,
    }
    with Ledger.open(home, readonly=True) as led:
        request = led.get_request(rid)
    assert (request.closing_ground, request.closing_article) == ("refused", "Art. 17(3)(b)")
    excessive = run(
        "request",
        "close",
        requests["access"],
        "--as",
        "refused",
        "--article",
        "12(5)",
        "--reason",
        "fifth identical request this month",
        "--no-report",
    )
    assert excessive.stdout == (
        f"{requests['access']}: closed as refused (Art. 12(5)); its deadline no longer runs\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--as", "refused", "--reason", "excessive"],
            "--as refused needs --article: 12(5) (manifestly unfounded or excessive) or, "
            "for an erasure, 17(3)(a) to 17(3)(e)",
        ),
        (
            ["--as", "refused", "--article", "17(4)", "--reason", "x"],
            "--article must be 12(5) or one of 17(3)(a) to 17(3)(e)",
        ),
        (
            ["--as", "withdrawn", "--article", "12(5)", "--reason", "x"],
            "--article is only for --as refused",
        ),
        (
            ["--as", "withdrawn", "--reason", "   "],
            "--reason must say why the request is closed (it is recorded)",
        ),
        (
            ["--as", "mistake", "--reason", "meant jane.doe@example.com instead"],
            "--reason looks like it holds personal data (an email address, a phone number "
            "or a token); state the ground without it",
        ),
        (
            ["--as", "later", "--reason", "x"],
            "Invalid value for '--as': 'later' is not one of 'withdrawn', 'refused', "
            "'mistake'. (see 'cli request close --help')",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_recorded(
    home: Path, requests: dict[str, str], args: list[str], message: str
) -> None:
    with Ledger.open(home, readonly=True) as led:
        size = led.size
    result = run("request", "close", requests["erasure"], *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")
    assert "jane.doe" not in result.output
    with Ledger.open(home, readonly=True) as led:
        assert led.size == size


def test_refusals_that_do_not_fit_the_request(home: Path, requests: dict[str, str]) -> None:
    access = run(
        "request",
        "close",
        requests["access"],
        "--as",
        "refused",
        "--article",
        "17(3)(e)",
        "--reason",
        "legal claims",
    )
    assert (access.exit_code, access.stderr) == (
        2,
        "Error: Art. 17(3) exceptions apply to erasure requests, not access\n",
    )
    done = run("request", "close", requests["done"], "--as", "mistake", "--reason", "typo")
    assert (done.exit_code, done.stderr) == (
        2,
        f"Error: {requests['done']} is completed: only an open request can be closed "
        "(a finished one keeps its outcome)\n",
    )
    unknown = run("request", "close", "req-nope", "--as", "mistake", "--reason", "typo")
    assert (unknown.exit_code, unknown.stderr) == (
        2,
        "Error: no request 'req-nope' in the ledger\n",
    )
    closed = run(
        "request",
        "close",
        requests["access"],
        "--as",
        "mistake",
        "--reason",
        "typo",
        "--no-report",
    )
    assert closed.exit_code == 0
    again = run("request", "close", requests["access"], "--as", "withdrawn", "--reason", "x")
    assert (again.exit_code, again.stderr) == (
        2,
        f"Error: {requests['access']} is closed: only an open request can be closed "
        "(a finished one keeps its outcome)\n",
    )


def test_no_ledger_is_exit_2_and_creates_nothing(home: Path) -> None:
    result = run("request", "close", "req-x", "--as", "mistake", "--reason", "typo")
    assert (result.exit_code, result.stderr) == (2, f"Error: no ledger at {home}\n")
    assert not (home / "ledger.sqlite3").exists()


def test_ledger_refuses_closing_without_a_ground(home: Path, requests: dict[str, str]) -> None:
    from privacykit.errors import UsageError

    with Ledger.open(home) as led, pytest.raises(UsageError, match="close_request"):
        led.set_status(requests["erasure"], "closed", "no ground")


def test_signed_closing_report_states_the_ground(
    evidence_home: Path, requests: dict[str, str]
) -> None:
    from pypdf import PdfReader

    rid = requests["erasure"]
    result = run(
        "request",
        "close",
        rid,
        "--as",
        "refused",
        "--article",
        "12(5)",
        "--reason",
        "fifth identical request this month",
    )
    assert result.exit_code == 0, result.output
    first, report = result.stdout.splitlines()
    assert first == f"{rid}: closed as refused (Art. 12(5)); its deadline no longer runs"
    path = Path(report.removeprefix("    report: "))
    assert path.is_file() and path.suffix == ".pdf"
    text = " ".join(page.extract_text() for page in PdfReader(path).pages)
    text = " ".join(text.split())
    assert "refused" in text and "Art. 12(5)" in text
    assert "fifth identical request this month" in text
    assert "Art. 12(4)" in text  # a refusal must be explained to the subject
    with Ledger.open(evidence_home, readonly=True) as led:
        entries = led.entries(rid)
        led.verify()
    keys = [(e.step_key, e.phase) for e in entries][-5:]
    assert keys == [
        ("evidence", "info"),  # the closing record first,
        ("report", "intent"),  # the report owed,
        ("ledger:status", "info"),  # then the final status,
        ("ledger:artifact", "info"),  # then the signed PDF,
        ("report", "outcome"),
    ]
    assert not (evidence_home / "reports-owed" / rid).exists()


@pytest.mark.parametrize(
    ("outcome", "closable"),
    [(None, False), ({"result": "ok", "status": 200}, False), ({"result": "failed"}, True)],
)
def test_a_request_that_changed_zendesk_is_not_closed_as_not_carried_out(
    home: Path, requests: dict[str, str], outcome: dict[str, Any] | None, closable: bool
) -> None:
    """An erasure that deleted something (or may have: an intent without an outcome) was
    carried out at least in part: a closing report saying it was not would be false."""
    rid = requests["erasure"]
    with clock.frozen(T0), Ledger.open(home) as led:
        led.record(rid, "report", "intent", {"evidence_seq": 1})  # not a change in Zendesk
        led.record(rid, "profile:delete:01ABC", "intent", {"profile_id": "01ABC"})
        if outcome is not None:
            led.record(rid, "profile:delete:01ABC", "outcome", outcome)
        led.checkpoint()
        size = led.size
    result = run("request", "close", rid, "--as", "withdrawn", "--reason", "x", "--no-report")
    if closable:  # Zendesk refused the only change: nothing was done
        assert (result.exit_code, result.stderr) == (0, "")
        return
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"Error: {rid} has already changed Zendesk (1 step(s) done or started, e.g. "
        "profile:delete:01ABC): it cannot be closed as not carried out; finish it with "
        "`privacykit erase --resume`\n",
    )
    with Ledger.open(home, readonly=True) as led:
        assert led.size == size and led.get_request(rid).status == "needs_review"
