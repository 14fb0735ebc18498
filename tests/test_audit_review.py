"""``request.needs_review``: every request stopped for review is an audit finding from its
first day, with the recorded reason, how long it has waited and its age (real ledger, real
sandbox over loopback, the real CLI)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from privacykit import clock
from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _env(sb: SandboxServer, home: Path) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "PRIVACYKIT_HOME": str(home),
        "ZENDESK_SUBDOMAIN": None,
        "ZENDESK_OAUTH_TOKEN": None,
    }
    env.update(sb.env())
    return env


def _review_request(home: Path, received: date, reason: str) -> str:
    with Ledger.open(home) as led:
        ref = led.subject_ref("email:someone@example.com")
        rid = led.create_request("erasure", ref, received_at=received)
        led.set_status(rid, "in_progress")
        led.set_status(rid, "needs_review", reason)
        led.checkpoint()
    return rid


def test_needs_review_is_a_finding_from_day_one(sandbox: SandboxServer, home: Path) -> None:
    with clock.frozen(T0):
        rid = _review_request(home, date(2026, 3, 1), "2 users found for one subject: 7, 9")
        out = CliRunner().invoke(cli, ["audit"], env=_env(sandbox, home))
    assert out.exit_code == 1, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == "SEVERITY  CHECK                 REQUEST                FINDING"
    assert lines[1] == (
        f"high      request.needs_review  {rid}  erasure request needs review for 0 days "
        "(since 2026-03-02; received 1 day ago, due 2026-04-01): "
        "2 users found for one subject: 7, 9"
    )
    assert lines[2] == "audit: FINDINGS: 1 finding(s) (1 high)"


def test_age_counts_from_when_it_stopped_and_from_receipt(
    sandbox: SandboxServer, home: Path
) -> None:
    with clock.frozen(T0):
        rid = _review_request(home, date(2026, 2, 20), "Zendesk answered 422 to user 12")
    later = T0 + timedelta(days=9)
    with clock.frozen(later):
        out = CliRunner().invoke(cli, ["audit", "--json"], env=_env(sandbox, home))
    assert out.exit_code == 1, out.output

    document = json.loads(out.stdout)
    (finding,) = [f for f in document["findings"] if f["check"] == "request.needs_review"]
    assert finding == {
        "check": "request.needs_review",
        "severity": "high",
        "request_id": rid,
        "message": "erasure request needs review for 9 days (since 2026-03-02; received "
        "19 days ago, due 2026-03-20): Zendesk answered 422 to user 12",
        "details": {
            "request_id": rid,
            "kind": "erasure",
            "reason": "Zendesk answered 422 to user 12",
            "review_since": "2026-03-02",
            "days_in_review": 9,
            "received_at": "2026-02-20",
            "age_days": 19,
            "due_date": "2026-03-20",
        },
    }
    assert document["checked"]["requests_in_review"] == 1
    # Resolved requests are not findings any more.
    with clock.frozen(later), Ledger.open(home) as led:
        led.set_status(rid, "completed")
    with clock.frozen(later):
        out = CliRunner().invoke(cli, ["audit", "--json"], env=_env(sandbox, home))
    document = json.loads(out.stdout)
    assert [f for f in document["findings"] if f["check"] == "request.needs_review"] == []


def test_audits_are_listed_apart_from_requests(sandbox: SandboxServer, home: Path) -> None:
    with clock.frozen(T0):
        rid = _review_request(home, date(2026, 3, 1), "ambiguous")
        first = CliRunner().invoke(cli, ["audit", "--json"], env=_env(sandbox, home))
    audit_id = json.loads(first.stdout)["audit_request_id"]
    with clock.frozen(T0):
        listed = CliRunner().invoke(cli, ["ledger", "list", "--json"], env=_env(sandbox, home))
        history = CliRunner().invoke(cli, ["audit", "history"], env=_env(sandbox, home))
        document = CliRunner().invoke(cli, ["audit", "history", "--json"], env=_env(sandbox, home))
    assert [r["request_id"] for r in json.loads(listed.stdout)["requests"]] == [rid]
    assert history.exit_code == 0, history.output
    assert history.stdout.splitlines() == [
        f"AUDIT{' ' * (len(audit_id) - 3)}STARTED              STATUS     FINDINGS  "
        "INCOMPLETE  REPORT",
        f"{audit_id}  2026-03-02 09:00:00  completed  1         0           -",
    ]
    (run,) = json.loads(document.stdout)["audits"]
    assert (run["request_id"], run["findings"], run["status"]) == (audit_id, 1, "completed")


def test_audit_history_without_a_ledger_is_exit_2(home: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "history"], env={"PRIVACYKIT_HOME": str(home)})
    assert (result.exit_code, result.stderr) == (2, f"Error: no ledger at {home}\n")
