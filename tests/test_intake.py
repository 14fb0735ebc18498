"""Intake from Zendesk: ``erase --from-ticket ID`` takes the DSAR ticket's requester as the
subject, its creation date as received and its id as the case reference; the ticket gets
an internal note and, for an erasure, is closed before the requester is deleted (real
sandbox over loopback with faithful tickets, real ledger, the real CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer

EMAIL = "dana.dsar@example.com"


@pytest.fixture
def sb(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="none", time_scale=600.0, rng_seed=1)
    return server


def erase(*args: str) -> Any:
    return CliRunner().invoke(cli, ["erase", *args])


def dsar(sb: SandboxServer, role: str = "end-user") -> tuple[int, dict[str, Any]]:
    user = sb.state.add_user("Dana Dsar", email=EMAIL, role=role)
    ticket = sb.state.add_ticket(
        int(user["id"]), "open", "Please delete my data", description="Delete everything."
    )
    return int(user["id"]), ticket


def test_erasure_from_a_dsar_ticket(sb: SandboxServer, home: Path) -> None:
    uid, ticket = dsar(sb)
    tid = int(ticket["id"])
    result = erase("--from-ticket", str(tid), "--yes", "--no-report", "--json")
    assert result.exit_code == 0, result.output
    (request,) = json.loads(result.stdout)["requests"]
    assert request["outcome"] == "pending_compliance"
    assert sb.state.user_status(uid) == "permanently_deleted"
    rid = request["request_id"]
    # One update closed the DSAR ticket with an internal note, before the person's tickets
    # were handled per the playbook (requested: delete) and before the user was deleted.
    writes = [e for e in sb.request_log() if e["method"] != "GET"]
    first = writes[0]
    assert (first["method"], first["path"]) == ("PUT", f"/api/v2/tickets/{tid}")
    change = first["body"]["ticket"]
    assert change["status"] == "closed" and change["comment"]["public"] is False
    note = change["comment"]["body"]
    assert note.startswith(
        f"privacykit: erasure request {rid} for this ticket: the requester's data is being erased."
    )
    assert "This ticket is closed now because Zendesk does not delete the requester" in note
    assert EMAIL not in note and "Dana" not in note
    paths = [(e["method"], e["path"]) for e in writes]
    assert paths.index(("DELETE", f"/api/v2/users/{uid}")) > 0
    with Ledger.open(home, readonly=True) as led:
        record = led.get_request(rid)
        steps = [(e.step_key, e.phase) for e in led.entries(rid)]
    assert record.case_ref == str(tid)
    assert record.received_at.isoformat() == ticket["created_at"][:10]
    close = [s for s in steps if s[0] == f"intake:close_ticket:{tid}"]
    assert close == [
        (f"intake:close_ticket:{tid}", "intent"),
        (f"intake:close_ticket:{tid}", "outcome"),
    ]
    assert steps.index(close[1]) < steps.index((f"soft_delete:user:{uid}", "intent"))


def test_a_request_needing_review_notes_the_ticket_and_leaves_it_open(
    sb: SandboxServer, home: Path
) -> None:
    _uid, ticket = dsar(sb, role="agent")
    tid = int(ticket["id"])
    result = erase("--from-ticket", str(tid), "--yes", "--no-report", "--json")
    assert result.exit_code == 1, result.output
    (request,) = json.loads(result.stdout)["requests"]
    assert request["outcome"] == "needs_review"
    now = sb.state.ticket(tid)
    assert now is not None and now["status"] == "open"
    (note,) = [c for c in sb.state.ticket_comments(tid) if not c["public"]]
    assert note["body"].startswith(
        f"privacykit: erasure request {request['request_id']} for this ticket: the request "
        "needs review by the DPO."
    )


def test_a_review_note_whose_answer_was_lost_is_not_sent_twice(
    sb: SandboxServer, home: Path
) -> None:
    _uid, ticket = dsar(sb, role="agent")
    tid = int(ticket["id"])
    sb.configure({"malformed": {"PUT /api/v2/tickets/{id}": "html"}})
    first = erase("--from-ticket", str(tid), "--yes", "--no-report", "--json")
    assert first.exit_code == 1, first.output
    sb.configure({"malformed": {}})
    again = erase("--from-ticket", str(tid), "--yes", "--no-report", "--json")
    assert again.exit_code == 1, again.output
    (request,) = json.loads(again.stdout)["requests"]
    # The same request, resumed: its note arrived the first time (the ticket says so).
    assert request["request_id"] == json.loads(first.stdout)["requests"][0]["request_id"]
    assert len([c for c in sb.state.ticket_comments(tid) if not c["public"]]) == 1
    with Ledger.open(home, readonly=True) as led:
        steps = [
            (e.phase, e.data.get("reconciled"))
            for e in led.entries(request["request_id"])
            if e.step_key == f"intake:note_ticket:{tid}"
        ]
    assert steps == [("intent", None), ("outcome", True)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-ticket", "abc"], "--from-ticket must be a Zendesk ticket id (a positive number)"),
        (
            ["--from-ticket", "5", "user:7"],
            "--from-ticket takes the subject from the ticket: give no SUBJECT",
        ),
        (
            ["--from-ticket", "5", "--case", "X-1"],
            "--from-ticket takes --case and --received from the ticket",
        ),
        (["--from-ticket", "99999"], "ticket 99999 was not found in Zendesk"),
    ],
)
def test_bad_ticket_input_exits_2_with_one_line(
    sb: SandboxServer, home: Path, args: list[str], message: str
) -> None:
    result = erase(*args, "--yes")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")
    assert [e for e in sb.request_log() if e["method"] != "GET"] == []
    assert not (home / "ledger.sqlite3").exists()  # bad input changes nothing


def test_access_from_a_ticket_that_does_not_exist_changes_nothing(
    sb: SandboxServer, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answer"
    result = CliRunner().invoke(cli, ["access", "--from-ticket", "99999", "--out", str(out)])
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "Error: ticket 99999 was not found in Zendesk\n",
    )
    assert [e["method"] for e in sb.request_log()] == ["GET", "GET"]  # users/me, the ticket
    assert not (home / "ledger.sqlite3").exists() and not out.exists()


def test_access_from_a_dsar_ticket(sb: SandboxServer, home: Path, tmp_path: Path) -> None:
    uid, ticket = dsar(sb)
    tid = int(ticket["id"])
    out = tmp_path / "answer"
    result = CliRunner().invoke(
        cli,
        [
            "access",
            "--from-ticket",
            str(tid),
            "--out",
            str(out),
            "--no-report",
            "--json",
            "--identity-verified",
            ticket["created_at"][:10],
            "--method",
            "reply from the address",
        ],
    )
    assert result.exit_code == 0, result.output
    (request,) = json.loads(result.stdout)["requests"]
    rid = request["request_id"]
    assert request["outcome"] == "data_found"
    now = sb.state.ticket(tid)
    assert now is not None and now["status"] == "open"  # access leaves the ticket to the DPO
    (note,) = [c for c in sb.state.ticket_comments(tid) if not c["public"]]
    assert note["body"].startswith(
        f"privacykit: access request {rid} for this ticket: the data was collected and "
        "delivered to the DPO."
    )
    assert EMAIL not in note["body"]
    writes = [e for e in sb.request_log() if e["method"] != "GET"]
    assert [(e["method"], e["path"]) for e in writes] == [("PUT", f"/api/v2/tickets/{tid}")]
    with Ledger.open(home, readonly=True) as led:
        record = led.get_request(rid)
        keys = [e.step_key for e in led.entries(rid)]
    assert record.case_ref == str(tid) and record.identity_method == "reply from the address"
    assert keys[-1] == f"intake:note_ticket:{tid}"
    assert sb.state.user_status(uid) == "active"


def test_the_access_note_is_an_intent_first_and_reconciled_by_the_next_run(
    sb: SandboxServer, home: Path, tmp_path: Path
) -> None:
    """The note is a write like any other: intent before, outcome after. Its answer lost
    (here: a 200 whose body cannot be trusted, after Zendesk added the note), the request
    keeps the bare intent; the next answer to the same ticket reads the ticket's comments
    and records that the note did arrive -- it is not sent twice."""
    _uid, ticket = dsar(sb)
    tid = int(ticket["id"])
    step = f"intake:note_ticket:{tid}"

    def answer(out: str) -> Any:
        args = ["access", "--from-ticket", str(tid), "--out", str(tmp_path / out)]
        return CliRunner().invoke(cli, [*args, "--no-report", "--json"])

    sb.configure({"malformed": {"PUT /api/v2/tickets/{id}": "html"}})
    first = answer("first")
    assert first.exit_code == 0, first.output  # the answer stands; the reason says it
    (request,) = json.loads(first.stdout)["requests"]
    assert f"the DSAR ticket {tid} got no note" in request["reasons"]
    with Ledger.open(home, readonly=True) as led:
        phases = [e.phase for e in led.entries(request["request_id"]) if e.step_key == step]
    assert phases == ["intent"]

    sb.configure({"malformed": {}})
    second = answer("second")
    assert second.exit_code == 0, second.output
    (again,) = json.loads(second.stdout)["requests"]
    notes = [c["body"] for c in sb.state.ticket_comments(tid) if not c["public"]]
    assert [n.split(" for this ticket")[0] for n in notes] == [
        f"privacykit: access request {request['request_id']}",
        f"privacykit: access request {again['request_id']}",
    ]
    with Ledger.open(home, readonly=True) as led:
        first_steps = [(e.phase, e.data) for e in led.entries(request["request_id"])]
        second_steps = [e.phase for e in led.entries(again["request_id"]) if e.step_key == step]
    assert first_steps[-1][0] == "outcome" and first_steps[-1][1]["reconciled"] is True
    assert first_steps[-1][1]["result"] == "ok"  # found: done, not failed
    assert second_steps == ["intent", "outcome"]
