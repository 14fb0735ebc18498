"""`privacykit ledger ...`: exact output and exit codes (0 ok, 1 verification failed,
2 bad input including an unknown request id)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.ledger.schema import SCHEMA_SQL
from privacykit.ledger.schema import TRIGGERS as _TRIGGERS


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["ledger", *args])


TRIGGER_SQL = [s for s in SCHEMA_SQL.split(";\n") if s.strip().startswith("CREATE TRIGGER")]


def tamper(home: Path, *statements: str) -> None:
    """Edit the database the way an attacker would: drop the triggers, edit, restore them."""
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    try:
        for name in _TRIGGERS:
            conn.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            conn.execute(statement)
        for statement in TRIGGER_SQL:
            conn.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def populated(home: Path) -> dict[str, str]:
    """Three requests received relative to today: one overdue, one due in 10 days, one done."""
    today = date.today()
    with Ledger.open(home, clock=Clock()) as ledger:
        ref = ledger.subject_ref("email:cli.subject@example.com")
        # Received 40 days ago: due ~10 days ago (one month later).
        late = ledger.create_request(
            "erasure", ref, received_at=today - timedelta(days=40), operator="dpo"
        )
        soon = ledger.create_request(
            "access",
            ref,
            received_at=today - timedelta(days=5),
            operator="dpo",
            playbook_name="access",
            playbook_sha256="cd" * 32,
        )
        done = ledger.create_request("erasure", ref, received_at=today - timedelta(days=3))
        with ledger.step(soon, "export:user:42", {"user_id": 42}) as step:
            step.done({"status": 200, "tickets": 3})
        ledger.set_status(done, "completed")
        ledger.checkpoint()
        return {"late": late, "soon": soon, "done": done, "ref": ref}


def _due(request_id: str, home: Path) -> tuple[str, int]:
    with Ledger.open(home) as ledger:
        request = ledger.get_request(request_id)
        return request.due_date.isoformat(), request.days_remaining()


def test_list_empty(home: Path) -> None:
    result = run("list")
    assert (result.exit_code, result.output) == (2, f"Error: no ledger at {home}\n")
    assert not (home / "ledger.sqlite3").exists()  # reading never creates one
    Ledger.open(home).close()
    result = run("list")
    assert (result.exit_code, result.output) == (0, "No requests.\n")
    result = run("list", "--json")
    assert json.loads(result.output) == {"requests": []}


def test_list_table(home: Path, populated: dict[str, str]) -> None:
    today = date.today()
    late_due, late_days = _due(populated["late"], home)
    soon_due, soon_days = _due(populated["soon"], home)
    done_due, _ = _due(populated["done"], home)
    short = populated["ref"][:16] + "…"
    rows = sorted(
        [
            (
                late_due,
                populated["late"],
                "erasure",
                "open",
                today - timedelta(days=40),
                f"overdue by {-late_days} days",
            ),
            (
                soon_due,
                populated["soon"],
                "access",
                "open",
                today - timedelta(days=5),
                f"{soon_days} days remaining",
            ),
            (
                done_due,
                populated["done"],
                "erasure",
                "completed",
                today - timedelta(days=3),
                "closed",
            ),
        ]
    )
    table = [["REQUEST", "CASE", "KIND", "STATUS", "RECEIVED", "DUE", "REMAINING", "SUBJECT"]]
    for due, rid, kind, status, received, remaining in rows:
        table.append([rid, "-", kind, status, received.isoformat(), due, remaining, short])
    widths = [max(len(r[i]) for r in table) for i in range(8)]
    expected = "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n"
        for r in table
    )
    result = run("list")
    assert result.exit_code == 0
    assert result.output == expected


def test_list_filters_and_json(home: Path, populated: dict[str, str]) -> None:
    result = run("list", "--overdue", "--json")
    assert result.exit_code == 0
    [only] = json.loads(result.output)["requests"]
    assert only["request_id"] == populated["late"] and only["overdue"] is True
    assert only["days_remaining"] < 0
    result = run("list", "--status", "completed", "--status", "open", "--kind", "erasure", "--json")
    ids = {r["request_id"] for r in json.loads(result.output)["requests"]}
    assert ids == {populated["late"], populated["done"]}
    result = run("list", "--status", "withdrawn")
    assert result.exit_code == 2 and "Invalid value for '--status'" in result.output


def test_show(home: Path, populated: dict[str, str]) -> None:
    rid = populated["soon"]
    due, days = _due(rid, home)
    received = (date.today() - timedelta(days=5)).isoformat()
    result = run("show", rid)
    assert result.exit_code == 0, result.output
    with Ledger.open(home) as ledger:
        entries = ledger.entries(rid)
    created = json.dumps(entries[0].data, sort_keys=True, separators=(", ", ": "))
    assert len(created) > 100
    summary = f"{created[:99]}… ({len(created)} characters; --full or --json for all)"
    lines = [
        f"Request            {rid}",
        "Case               -",
        "Kind               access",
        f"Subject            {populated['ref']}",
        "Status             open",
        f"Received           {received}",
        "Identity verified  -",
        f"Due                {due} ({days} days remaining)",
        "Extension          none",
        "Operator           dpo",
        "Playbook           access (sha256 cdcdcdcdcdcd…)",
        "Tool version       0.1.0",
        "Batch              -",
        "",
        "Steps (3 entries)",
        "SEQ  TIME                         STEP            PHASE    DATA",
        f"2    {entries[0].ts}  ledger:request  info     {summary}",
        f'4    {entries[1].ts}  export:user:42  intent   {{"user_id": 42}}',
        f"5    {entries[2].ts}  export:user:42  outcome  "
        '{"result": "ok", "status": 200, "tickets": 3}',
    ]
    assert result.output == "\n".join(lines) + "\n"
    full = run("show", rid, "--full")
    lines[16] = f"2    {entries[0].ts}  ledger:request  info     {created}"
    assert full.output == "\n".join(lines) + "\n"
    assert entries[1].ts == "2026-03-01T10:00:04.000000Z"
    assert "cli.subject" not in result.output


def test_show_json(home: Path, populated: dict[str, str]) -> None:
    result = run("show", populated["done"], "--json")
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["request"]["status"] == "completed"
    assert [e["step_key"] for e in document["entries"]] == ["ledger:request", "ledger:status"]
    assert document["artifacts"] == []


def test_unknown_request_is_exit_2(home: Path, populated: dict[str, str]) -> None:
    extend = ("extend", "req-nope", "--months", "1", "--reason", "x", "--notified", "2026-01-02")
    for args in (("show", "req-nope"), extend):
        result = run(*args)
        assert result.exit_code == 2
        assert result.output == "Error: no request 'req-nope' in the ledger\n"


def test_extend(home: Path, populated: dict[str, str]) -> None:
    rid = populated["soon"]
    received = date.today() - timedelta(days=5)
    told = received + timedelta(days=2)
    result = run(
        "extend", rid, "--months", "2", "--reason", "complex request", "--notified", str(told)
    )
    from privacykit.ledger.dates import due_date

    due = due_date(received, 2)
    days = (due - date.today()).days
    assert result.exit_code == 0
    assert (
        result.output
        == f"{rid}: extended by 2 months, due {due.isoformat()} ({days} days remaining); "
        f"subject told on {told.isoformat()}\n"
    )
    result = run("extend", rid, "--months", "1", "--reason", "more", "--notified", str(told))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: Art. 12(3) allows at most 2 extra months; request {rid} already has 2\n"
    )
    result = run(
        "extend", populated["done"], "--months", "1", "--reason", "x", "--notified", str(told)
    )
    assert (result.exit_code, result.output) == (
        2,
        f"Error: request {populated['done']} is completed; it cannot be extended\n",
    )
    result = run(
        "extend", populated["late"], "--months", "3", "--reason", "x", "--notified", str(told)
    )
    assert result.exit_code == 2 and "3 is not in the range 1<=x<=2" in result.output
    result = run("extend", populated["late"], "--months", "1")
    assert result.exit_code == 2 and "Missing option '--reason'" in result.output
    result = run("extend", rid, "--months", "1", "--reason", "backlog")
    assert result.exit_code == 2 and "Missing option '--notified'" in result.output
    result = run(
        "extend",
        populated["late"],
        "--months",
        "1",
        "--reason",
        "asked by x@example.com",
        "--notified",
        str(told),
    )
    assert result.exit_code == 1 and "looks like an email address" in result.output
    assert "x@example.com" not in result.output
    # Art. 12(3): an extension the subject was not told of within one month is refused.
    late_received = date.today() - timedelta(days=40)
    result = run(
        "extend",
        populated["late"],
        "--months",
        "1",
        "--reason",
        "backlog",
        "--notified",
        str(date.today()),
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "Error: Art. 12(3): the subject must be told of an extension within one month of "
        f"receipt, by {due_date(late_received).isoformat()}; request {populated['late']} was "
        f"received on {late_received.isoformat()}, so it can no longer be extended\n"
    )
    result = run(
        "extend",
        populated["late"],
        "--months",
        "1",
        "--reason",
        "backlog",
        "--notified",
        str(late_received + timedelta(days=3)),
        "--json",
    )
    document = json.loads(result.output)["request"]
    assert document["extension_months"] == 1
    assert document["extension_notified_at"] == str(late_received + timedelta(days=3))
    result = run("extend", rid, "--months", "1", "--reason", "x", "--notified", "soon")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --notified must be a date like 2026-01-31\n",
    )


def test_verify_ok(home: Path, populated: dict[str, str]) -> None:
    with Ledger.open(home) as ledger:
        root = ledger.root().hex()
        latest = ledger.latest_checkpoint()
    assert latest is not None
    result = run("verify")
    assert result.exit_code == 0
    assert result.output == (
        f"ledger {home}\n"
        "ok: 6 entries, 3 requests, 1 checkpoint, 0 artifacts verified\n"
        f"root {root} at size 6\n"
        f"latest checkpoint: size 6, entries up to {latest.ts}\n"
        f"witness: 1 checkpoint(s) in {home.parent / 'pk-witness'}, latest size 6\n"
    )
    document = json.loads(run("verify", "--json").output)
    assert document["ok"] is True and document["entries"] == 6 and document["root"] == root


def test_verify_names_the_first_bad_entry(home: Path, populated: dict[str, str]) -> None:
    tamper(home, "UPDATE entries SET data = '{\"user_id\":43}' WHERE seq = 4")
    result = run("verify")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: ledger verification failed in {home}: entry 4: content does not match its "
        "leaf hash (changed, moved or inserted)\n"
    )
    result = run("verify", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["entry"] == 4
    assert result.stderr.startswith(f"Error: ledger verification failed in {home}: entry 4:")


def test_checkpoint_and_verify_against_a_saved_copy(
    home: Path, populated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("checkpoint")
    assert result.exit_code == 0
    saved = tmp_path / "saved.note"
    saved.write_text(result.output)
    lines = result.output.split("\n")
    assert lines[1] == "6" and lines[4].startswith("\u2014 privacykit.local/ledger/")
    assert run("verify", "--checkpoint", str(saved)).exit_code == 0
    # Truncate the tail and every checkpoint in the home: only the saved copy remembers.
    tamper(
        home,
        "DELETE FROM entries WHERE seq = 6",
        "DELETE FROM checkpoints",
        # ...and rewrite the derived row the removed status entry had changed.
        "UPDATE requests SET status = 'open', closed_at = NULL, updated_at = created_at "
        f"WHERE request_id = '{populated['done']}'",
    )
    (home / "ledger-checkpoint.latest").unlink()
    result = run("verify", "--checkpoint", str(saved))
    assert result.exit_code == 1
    assert "entry 6: the ledger has 5 entries but --checkpoint saved.note was signed at 6" in (
        result.output
    )
    # The witness outside the home remembers too: nothing is signed over the truncation.
    result = run("checkpoint")
    assert result.exit_code == 1
    assert "refusing to sign a checkpoint" in result.output and "witness note" in result.output
    # Without a witness, with every local trace gone, a new checkpoint can be signed, but
    # the saved copy still shows the truncation: keep checkpoints outside PRIVACYKIT_HOME.
    monkeypatch.delenv("PRIVACYKIT_WITNESS_DIR")
    result = run("checkpoint", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["size"] == 5
    assert run("verify", "--checkpoint", str(saved)).exit_code == 1


def test_verify_checkpoint_file_that_is_not_text(
    home: Path, populated: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.note"
    bad.write_bytes(b"\xff\xfe\x00 not a note")
    result = run("verify", "--checkpoint", str(bad))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: --checkpoint {bad} is not a checkpoint note (not UTF-8 text)\n"
    )


def test_verify_without_privacykit_home_names_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRIVACYKIT_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    default = tmp_path / "config" / "privacykit"
    result = run("verify")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: no ledger at {default} (the default home: PRIVACYKIT_HOME is not set)\n"
    )
    assert not default.exists()  # verifying never creates a home
    Ledger.open(default).close()
    result = run("verify")
    assert result.exit_code == 0
    assert result.output.startswith(
        f"ledger {default} (the default home: PRIVACYKIT_HOME is not set)\nok: 0 entries"
    )


def test_list_keeps_to_data_subject_requests(home: Path, populated: dict[str, str]) -> None:
    with Ledger.open(home) as ledger:
        audit = ledger.create_request(
            "audit", ledger.subject_ref("audit:run"), received_at=date.today()
        )
        ledger.record(audit, "evidence", "info", {"findings": [{"check": "x"}], "errors": []})
        ledger.set_status(audit, "completed", reason="1 finding(s)")
        [run_record] = ledger.audit_runs()
    listed = {r["request_id"] for r in json.loads(run("list", "--json").output)["requests"]}
    assert listed == {populated["late"], populated["soon"], populated["done"]}
    assert run("list", "--kind", "audit").exit_code == 2
    assert (run_record.request_id, run_record.findings, run_record.incomplete_checks) == (
        audit,
        1,
        0,
    )
    assert run_record.status == "completed" and run_record.report_sha256 is None


def test_export_csv_and_json(home: Path, populated: dict[str, str], tmp_path: Path) -> None:
    with Ledger.open(home) as ledger:
        ledger.set_status(populated["late"], "needs_review", reason="=HYPERLINK(1)")
    result = run("export")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == (
        "request_id,kind,received_at,identity_verified_at,extension_months,extension_reason,"
        "due_date,status,status_reason,operator,playbook_name,playbook_sha256,tool_version,"
        "batch_id,created_at,updated_at,closed_at"
    )
    assert len(lines) == 4 and populated["ref"] not in result.output
    assert [line.split(",")[0] for line in lines[1:]] == [
        populated["late"],
        populated["soon"],
        populated["done"],
    ]
    assert ",'=HYPERLINK(1)," in lines[1]  # never a formula in a spreadsheet
    document = json.loads(run("export", "--format", "json", "--kind", "access").output)
    assert document["schema"] == "privacykit.requests-export/1"
    [only] = document["requests"]
    assert only["request_id"] == populated["soon"] and "subject_ref" not in only
    out = tmp_path / "requests.csv"
    result = run("export", "--out", str(out))
    assert result.exit_code == 0 and out.read_text().splitlines() == lines
    assert (out.stat().st_mode & 0o777) == 0o600
    again = run("export", "--out", str(out))
    assert (again.exit_code, again.output) == (2, f"Error: {out} exists: choose a new file\n")


def test_checkpoint_refuses_a_ledger_that_does_not_verify(
    home: Path, populated: dict[str, str]
) -> None:
    """Never sign over a tampered ledger (#12): a status edited behind the entries' back
    (triggers restored, as a careful attacker would) is refused, exit 1, one line."""
    with Ledger.open(home) as ledger:
        checkpoints = len(ledger.checkpoints())
    tamper(
        home, f"UPDATE requests SET status = 'completed' WHERE request_id = '{populated['late']}'"
    )
    result = run("checkpoint")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: refusing to sign a checkpoint over a ledger that does not verify: entry 1: "
        f"requests row {populated['late']} does not match its entries (status)\n"
    )
    with sqlite3.connect(home / "ledger.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == checkpoints
