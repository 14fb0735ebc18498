"""Audit checks end to end: real HTTP against the sandbox, a real ledger, the real CLI.

Ledger states are built two ways: by running a real erasure with the erasure engine, and
directly through the ledger API (evidence records shaped per docs/ARCHITECTURE.md) for
states an erasure would not leave behind on its own (a backdated soft deletion, a request
received weeks ago, a tampered database).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from privacykit.audit import (
    AUDIT_EVIDENCE_SCHEMA,
    CHECKS,
    AuditOptions,
    AuditResult,
    ReadOnlyTransport,
    run_audit,
)
from privacykit.cli import cli
from privacykit.config import ZendeskConfig
from privacykit.errors import ConfigError, PrivacykitError
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import EraseOptions, erase
from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import DEMO_ERASE_EMAIL
from privacykit.zendesk import ZendeskClient

ERASURE = builtin_playbook_dir() / "erasure.yaml"
PERSON = "pat.person@example.com"


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def demo() -> Iterator[SandboxServer]:
    with SandboxServer(seed="demo", users=3, time_scale=600.0, rng_seed=1) as server:
        yield server


def audit(sb: SandboxServer, home: Path, **options: Any) -> AuditResult:
    return run_audit(AuditOptions(**options), home=home, config=ZendeskConfig.from_env(sb.env()))


def cli_audit(sb: SandboxServer | None, home: Path, args: Sequence[str] = ()) -> Any:
    env = {"PRIVACYKIT_HOME": str(home), "ZENDESK_SUBDOMAIN": None, "ZENDESK_OAUTH_TOKEN": None}
    env.update(
        sb.env()
        if sb is not None
        else {"ZENDESK_URL": None, "ZENDESK_EMAIL": None, "ZENDESK_API_TOKEN": None}
    )
    return CliRunner().invoke(cli, ["audit", *args], env=env)


def erase_person(sb: SandboxServer, home: Path, subject: str = DEMO_ERASE_EMAIL) -> str:
    """A real erasure through the erasure engine; returns its request id."""
    options = EraseOptions(
        subjects=[parse_subject(subject)],
        playbook=load_playbook(ERASURE),
        yes=True,
        produce_reports=False,
        concurrency=2,
    )
    with ZendeskClient(ZendeskConfig.from_env(sb.env())) as client, Ledger.open(home) as led:
        (job,) = erase(client, led, options, home=home).jobs
    assert job.request_id is not None and job.status == "pending_compliance", job.reasons
    return job.request_id


def evidence_of(home: Path, request_id: str) -> dict[str, Any]:
    with Ledger.open(home) as led:
        records = [e.data for e in led.entries(request_id) if e.step_key == "evidence"]
    assert records
    return records[-1]


def status_of(home: Path, request_id: str) -> str:
    with Ledger.open(home) as led:
        return led.get_request(request_id).status


def mutating(sb: SandboxServer, since: int) -> list[dict[str, Any]]:
    return [e for e in sb.request_log(since) if e["method"] not in ("GET", "HEAD")]


def log_size(sb: SandboxServer) -> int:
    log = sb.request_log()
    return log[-1]["seq"] if log else 0


def checks(result: AuditResult) -> list[str]:
    return sorted(f.check for f in result.findings)


class Clock:
    """A ledger clock that can be set (to backdate entries)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def recorded_erasure(
    led: Ledger,
    *,
    users: Sequence[int],
    permanently: bool,
    profiles: Sequence[str] = (),
    status: str = "completed",
    received: date | None = None,
) -> str:
    """An erasure as the engine records it: per-user destructive steps and the evidence
    record (ids only), built directly through the ledger API."""
    ref = led.subject_ref(f"email:person-{users[0]}@example.com")
    rid = led.create_request("erasure", ref, received_at=received or date.today())
    for uid in users:
        led.record(rid, f"soft_delete:user:{uid}", "intent", {"user_id": uid})
        led.record(rid, f"soft_delete:user:{uid}", "outcome", {"user_id": uid, "status": 200})
        if permanently:
            led.record(rid, f"permanent_delete:user:{uid}", "intent", {"user_id": uid})
            led.record(rid, f"permanent_delete:user:{uid}", "outcome", {"user_id": uid})
    for pid in profiles:
        led.record(rid, f"profile:delete:{pid}", "intent", {"profile_id": pid})
        led.record(rid, f"profile:delete:{pid}", "outcome", {"profile_id": pid})
    record = {
        "schema": "privacykit.erasure-evidence/1",
        "request_id": rid,
        "subject_ref": ref,
        "outcome": "erased" if status == "completed" else status,
        "users": [
            {
                "user_id": uid,
                "role": "end-user",
                "soft_deleted": True,
                "permanently_deleted": permanently,
            }
            for uid in users
        ],
        "profiles": [
            {"profile_id": pid, "user_id": users[0], "action": "deleted", "done": True}
            for pid in profiles
        ],
        "compliance": [],
        "completed_at": None,
    }
    led.record(rid, "evidence", "info", record)
    led.set_status(rid, status)
    led.checkpoint()
    return rid


def person_with_profile(sb: SandboxServer, email: str) -> tuple[int, str]:
    user = sb.state.add_user("Pat Person", email=email)
    profile = sb.state.put_profile("shop", "customer", [("email", email)], user_id=user["id"])
    return int(user["id"]), str(profile["id"])


def erase_in_sandbox(sb: SandboxServer, user_id: int) -> None:
    """What a finished erasure leaves in Zendesk (done through the sandbox's own state)."""
    sb.state.soft_delete_user(user_id)
    sb.state.permanently_delete_user(user_id)


# --------------------------------------------------------------------------- catalogue


def test_check_ids_are_stable_and_documented() -> None:
    assert set(CHECKS) == {
        "erasure.gone",
        "erasure.compliance_stuck",
        "erasure.lingering_soft_delete",
        "deadline.due_soon",
        "deadline.overdue",
        "request.needs_review",
        "ledger.integrity",
        "ledger.witness",
    }
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for check_id in CHECKS:
        assert f"`{check_id}`" in readme, f"README does not explain {check_id}"


# --------------------------------------------------------------------------- real erasure


def test_real_erasure_then_clean_audit_completes_it_read_only(
    demo: SandboxServer, home: Path
) -> None:
    rid = erase_person(demo, home)
    demo.advance(2 * 3600)  # Zendesk's compliance deletion finishes within the hour
    since = log_size(demo)
    result = cli_audit(demo, home, ["--json"])
    assert result.exit_code == 0, result.output + result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "clear" and document["findings"] == []
    # The audit continued the pending erasure with the engine: polled, recorded, completed.
    assert status_of(home, rid) == "completed"
    assert evidence_of(home, rid)["outcome"] == "erased"
    assert document["checked"]["erasures_completed_by_audit"] == 1
    assert document["checked"]["users_rechecked"] == 2
    # Read-only: the sandbox saw GETs only, and the audit says so too.
    assert mutating(demo, since) == []
    assert set(document["zendesk"]["methods"]) == {"GET"}
    # The run is in the ledger, with its evidence record, and checkpointed.
    with Ledger.open(home) as led:
        (run,) = led.list_requests(kind="audit")
        assert run.status == "completed"
        record = [e.data for e in led.entries(run.request_id) if e.step_key == "evidence"][-1]
        assert record["schema"] == AUDIT_EVIDENCE_SCHEMA and record["status"] == "clear"
        latest = led.latest_checkpoint()
        assert latest is not None and latest.size == led.size
        led.verify()
    # The next night re-checks the (now completed) erasure in rotation, still clear.
    second = cli_audit(demo, home, ["--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["checked"]["completed_erasures"] == 1
    assert mutating(demo, since) == []


def test_user_recreated_with_an_erased_profile_id_is_found(demo: SandboxServer, home: Path) -> None:
    rid = erase_person(demo, home)
    demo.advance(2 * 3600)
    assert audit(demo, home).exit_code == 0
    deleted = [p["profile_id"] for p in evidence_of(home, rid)["profiles"]]
    recorded_pid = deleted[0]
    # Someone re-creates the person, and a sync restores the profile under its old id.
    uid, new_pid = person_with_profile(demo, "someone.new@example.org")
    demo.state.change_profile_id(new_pid, recorded_pid)
    result = audit(demo, home)
    assert result.exit_code == 1
    (finding,) = result.findings
    assert finding.check == "erasure.gone" and finding.request_id == rid
    assert recorded_pid in finding.message and f"user {uid}" in finding.message
    text = json.dumps(result.to_document())
    assert "someone.new" not in text and DEMO_ERASE_EMAIL not in text


def test_stuck_compliance_is_reported_then_completed_when_it_finishes(
    demo: SandboxServer, home: Path
) -> None:
    demo.set_stuck_applications(["chat"])
    rid = erase_person(demo, home)
    demo.advance(2 * 3600)
    # Within the allowed time: progress is polled and recorded, no finding yet.
    result = audit(demo, home)
    assert result.exit_code == 0, result.findings
    assert status_of(home, rid) == "pending_compliance"
    with Ledger.open(home) as led:
        progress = {
            e.step_key: e.data for e in led.entries(rid) if e.step_key.startswith("compliance:")
        }
    assert len(progress) == 2  # latest recorded state of each of the two users
    assert all(p["applications"]["chat"]["status"] != "complete" for p in progress.values())
    assert all(p["applications"]["support"]["status"] == "complete" for p in progress.values())
    # 31 days later it is stuck (the audit's clock; Zendesk's has not moved).
    later = datetime.now(UTC) + timedelta(days=31)
    stuck = audit(demo, home, now=later)
    assert stuck.exit_code == 1
    # ... and, not being confirmed complete, the request is past its deadline too.
    assert set(checks(stuck)) == {"erasure.compliance_stuck", "deadline.overdue"}
    stuck_findings = [f for f in stuck.findings if f.check == "erasure.compliance_stuck"]
    assert len(stuck_findings) == 2  # Erin and the anonymous user her phone led to
    assert all("pending: chat" in f.message for f in stuck_findings)
    # Through the CLI with --stuck-after 0: the same finding, exit 1.
    cli = cli_audit(demo, home, ["--stuck-after", "0"])
    assert cli.exit_code == 1 and "erasure.compliance_stuck" in cli.stdout
    # Zendesk finishes: the audit completes the erasure request with the engine.
    demo.set_stuck_applications([])
    done = audit(demo, home)
    assert done.exit_code == 0 and status_of(home, rid) == "completed"
    assert evidence_of(home, rid)["outcome"] == "erased"


# --------------------------------------------------------------------------- ledger-built


def test_lingering_soft_deletion_after_the_grace_period(sandbox: SandboxServer, home: Path) -> None:
    old_uid, _ = person_with_profile(sandbox, PERSON)
    new_uid, _ = person_with_profile(sandbox, "pat.second@example.com")
    sandbox.state.soft_delete_user(old_uid)
    sandbox.state.soft_delete_user(new_uid)
    clock = Clock(datetime.now(UTC) - timedelta(days=3))
    with Ledger.open(home, clock=clock) as led:
        old_rid = recorded_erasure(led, users=[old_uid], permanently=False, status="needs_review")
        clock.moment = datetime.now(UTC) - timedelta(hours=1)
        new_rid = recorded_erasure(led, users=[new_uid], permanently=False, status="needs_review")
    since = log_size(sandbox)
    result = audit(sandbox, home)
    assert result.exit_code == 1
    # Both requests wait for review (a finding of their own); one lingers past the grace.
    assert checks(result).count("request.needs_review") == 2
    (finding,) = [f for f in result.findings if f.check != "request.needs_review"]
    assert finding.check == "erasure.lingering_soft_delete"
    assert finding.request_id == old_rid and f"user {old_uid}" in finding.message
    assert "3 day(s) ago" in finding.message
    assert result.checked["soft_deleted_users_within_grace"] == 1
    # No grace: the recent one is reported too. Nothing personal in the output.
    out = cli_audit(sandbox, home, ["--soft-delete-grace", "0", "--json"])
    assert out.exit_code == 1
    document = json.loads(out.stdout)
    assert {f["request_id"] for f in document["findings"]} == {old_rid, new_rid}
    assert PERSON not in out.output and "pat.second" not in out.output
    assert mutating(sandbox, since) == []
    # Once privacykit (or anyone) permanently deletes them, the finding is gone.
    sandbox.state.permanently_delete_user(old_uid)
    sandbox.state.permanently_delete_user(new_uid)
    out = cli_audit(sandbox, home, ["--soft-delete-grace", "0", "--json"])
    assert {f["check"] for f in json.loads(out.stdout)["findings"]} == {"request.needs_review"}


def test_user_recorded_permanently_deleted_but_only_soft_deleted(
    sandbox: SandboxServer, home: Path
) -> None:
    uid, pid = person_with_profile(sandbox, PERSON)
    sandbox.state.delete_profile(pid)
    sandbox.state.soft_delete_user(uid)  # ... and the permanent deletion never happened
    with Ledger.open(home) as led:
        rid = recorded_erasure(led, users=[uid], permanently=True, profiles=[pid])
    result = audit(sandbox, home)
    assert result.exit_code == 1
    (finding,) = result.findings
    assert finding.check == "erasure.gone" and finding.request_id == rid
    assert "still holds it as soft-deleted" in finding.message
    assert str(finding.severity) == "critical"


def test_active_user_with_a_recorded_permanent_deletion(sandbox: SandboxServer, home: Path) -> None:
    uid, _ = person_with_profile(sandbox, PERSON)  # never deleted at all
    with Ledger.open(home) as led:
        recorded_erasure(led, users=[uid], permanently=True)
    result = audit(sandbox, home)
    assert checks(result) == ["erasure.gone"]
    assert "active user" in result.findings[0].message


def test_overdue_and_due_soon_requests_with_extension_status(
    sandbox: SandboxServer, home: Path
) -> None:
    today = date.today()
    with Ledger.open(home) as led:
        ref = led.subject_ref("email:someone@example.com")
        overdue = led.create_request("access", ref, received_at=today - timedelta(days=40))
        soon = led.create_request("erasure", ref, received_at=today - timedelta(days=26))
        extended = led.create_request("access", ref, received_at=today - timedelta(days=40))
        led.extend(
            extended,
            1,
            "complex request: many systems",
            notified_at=today - timedelta(days=35),
        )
        done = led.create_request("access", ref, received_at=today - timedelta(days=90))
        led.set_status(done, "completed")
        led.checkpoint()
    result = audit(sandbox, home)
    assert result.exit_code == 1
    by_request = {f.request_id: f for f in result.findings}
    assert set(by_request) == {overdue, soon}
    assert by_request[overdue].check == "deadline.overdue"
    assert "not extended" in by_request[overdue].message
    assert by_request[soon].check == "deadline.due_soon"
    assert by_request[soon].details["days_to_deadline"] <= 7
    rows = {r["request_id"]: r for r in result.open_requests}
    assert set(rows) == {overdue, soon, extended}  # completed requests are not open
    assert rows[extended]["extended"] and rows[extended]["days_to_deadline"] > 7
    # --due-within 0 leaves only the overdue one; the table names it.
    out = cli_audit(sandbox, home, ["--due-within", "0"])
    assert out.exit_code == 1
    assert "deadline.overdue" in out.stdout and "deadline.due_soon" not in out.stdout
    assert overdue in out.stdout


def _tamper(home: Path, seq: int) -> None:
    conn = sqlite3.connect(home / "ledger.sqlite3")
    try:
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'entries_append_only_update'"
        ).fetchone()
        conn.execute("DROP TRIGGER entries_append_only_update")
        conn.execute("UPDATE entries SET data = '{\"user_id\":1}' WHERE seq = ?", (seq,))
        conn.execute(sql)  # put the guard back, as an attacker covering tracks would
        conn.commit()
    finally:
        conn.close()


def test_tampered_ledger_is_a_finding_and_no_checkpoint_is_signed(
    sandbox: SandboxServer, home: Path
) -> None:
    uid, _ = person_with_profile(sandbox, PERSON)
    erase_in_sandbox(sandbox, uid)
    with Ledger.open(home) as led:
        recorded_erasure(led, users=[uid], permanently=True)
        checkpoints_before = len(led.checkpoints())
    assert audit(sandbox, home).exit_code == 0
    _tamper(home, seq=3)
    result = audit(sandbox, home)
    assert result.exit_code == 1
    assert "ledger.integrity" in checks(result)
    integrity = [f for f in result.findings if f.check == "ledger.integrity"][0]
    assert "first bad entry: 3" in integrity.message
    assert result.checkpoint_size is None and result.checkpoint_skipped_reason
    with Ledger.open(home) as led:
        # Only the clean run signed one; the run over the tampered ledger did not.
        assert len(led.checkpoints()) == checkpoints_before + 1
    out = cli_audit(sandbox, home, ["--report"])
    assert out.exit_code == 1 and "ledger.integrity" in out.stdout
    assert "no checkpoint signed" in out.stdout
    assert "report: not written (the ledger failed verification)" in out.stdout
    with Ledger.open(home) as led:
        assert len(led.checkpoints()) == checkpoints_before + 1
        assert led.artifacts() == []


def test_checkpoint_signed_by_another_key_is_a_finding(
    sandbox: SandboxServer, home: Path, tmp_path: Path
) -> None:
    from privacykit.ledger.checkpoint import CheckpointSigner

    with Ledger.open(home) as led:
        led.record(
            led.create_request("access", led.subject_ref("x:1"), received_at=date.today()),
            "note",
            "info",
            {"n": 1},
        )
        led.checkpoint()
        size, root = led.size, led.root()
    # A checkpoint appended with someone else's key (same tree, so only the key differs).
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    note = CheckpointSigner.load_or_create(other).sign(size, root)
    conn = sqlite3.connect(home / "ledger.sqlite3")
    try:
        conn.execute(
            "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)",
            (size, root.hex(), note),
        )
        conn.commit()
    finally:
        conn.close()
    result = audit(sandbox, home)
    assert "ledger.integrity" in checks(result)
    assert "signature" in result.findings[0].message


# --------------------------------------------------------------------------- incremental


def test_rotation_is_bounded_and_resumes_where_it_stopped(
    sandbox: SandboxServer, home: Path
) -> None:
    rids = []
    with Ledger.open(home) as led:
        for n in range(5):
            uid, pid = person_with_profile(sandbox, f"person{n}@example.com")
            erase_in_sandbox(sandbox, uid)  # also deletes the profile
            rids.append(recorded_erasure(led, users=[uid], permanently=True, profiles=[pid]))
    seen: list[int] = []
    for _night in range(3):
        before = log_size(sandbox)
        # The /users/me reachability check costs 1; each erasure costs 2 (user + profile).
        result = audit(sandbox, home, max_requests=5)
        assert result.exit_code == 0, result.findings
        assert result.zendesk_requests <= 5
        assert log_size(sandbox) - before == result.zendesk_requests
        seen.append(result.checked["completed_erasures"])
        assert result.checked["completed_erasures_total"] == 5
    assert seen == [2, 2, 2]  # nights 1-2: the first four; night 3: the fifth, then wrap
    # A new erasure is re-checked before the rotation continues.
    with Ledger.open(home) as led:
        uid, pid = person_with_profile(sandbox, "late@example.com")
        erase_in_sandbox(sandbox, uid)
        late = recorded_erasure(led, users=[uid], permanently=True, profiles=[pid])
    result = audit(sandbox, home, max_requests=3)
    assert result.checked["completed_erasures"] == 1
    assert result.cursor["high_water"][1] == late
    # With enough budget one run covers everything once, never twice.
    full = audit(sandbox, home, max_requests=1000)
    assert full.checked["completed_erasures"] == 6
    assert full.checked["completed_erasures_deferred"] == 0


# --------------------------------------------------------------------------- cannot run


def test_no_zendesk_configuration_exits_2_with_one_line(home: Path) -> None:
    result = cli_audit(None, home)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not run" in lines[0] and "ZENDESK" in lines[0]
    assert not (home / "ledger.sqlite3").exists(), "nothing may be touched"
    with pytest.raises(ConfigError):
        run_audit(home=home, env={})


def test_refused_credentials_stop_the_audit_before_anything_is_recorded(
    sandbox: SandboxServer, home: Path
) -> None:
    Ledger.open(home).close()
    env = {**sandbox.env(), "ZENDESK_API_TOKEN": "wrong-token-value"}
    # A configuration error (#12): exit 2 before the audit opens its request.
    with pytest.raises(ConfigError, match="ZENDESK_API_TOKEN"):
        run_audit(home=home, config=ZendeskConfig.from_env(env))
    with Ledger.open(home) as led:
        assert led.list_requests(kind="audit") == [] and led.size == 0
    out = CliRunner().invoke(
        cli, ["audit"], env={"PRIVACYKIT_HOME": str(home), **env, "ZENDESK_SUBDOMAIN": None}
    )
    assert (out.exit_code, out.stdout, out.stderr) == (
        2,
        "",
        "Error: audit could not run: Zendesk refused the credentials (401): check "
        "ZENDESK_EMAIL/ZENDESK_API_TOKEN or ZENDESK_OAUTH_TOKEN\n",
    )
    assert [e["path"] for e in sandbox.request_log()] == ["/api/v2/users/me"] * 2


def test_missing_ledger_exits_2_and_creates_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    wrong = tmp_path / "not-the-home"
    out = cli_audit(sandbox, wrong)
    assert out.exit_code == 2 and "no ledger" in out.stderr
    assert not wrong.exists()


def test_unreadable_ledger_exits_2(sandbox: SandboxServer, home: Path) -> None:
    with Ledger.open(home):
        pass
    (home / "ledger-subject.key").unlink()
    out = cli_audit(sandbox, home)
    assert out.exit_code == 2
    assert out.stderr.count("\n") == 1 and "could not run" in out.stderr


def test_read_only_transport_refuses_anything_but_get() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return httpx.Response(200, json={})

    transport = ReadOnlyTransport(httpx.MockTransport(answer))
    with httpx.Client(transport=transport, base_url="http://127.0.0.1") as client:
        assert client.get("/api/v2/users/1").status_code == 200
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            with pytest.raises(PrivacykitError, match="read-only"):
                client.request(method, "/api/v2/users/1")
    assert sent == ["GET"] and transport.methods == {"GET": 1}


# --------------------------------------------------------------------------- report


def test_report_writes_a_signed_audit_pdf(sandbox: SandboxServer, evidence_home: Path) -> None:
    from pypdf import PdfReader

    from privacykit.evidence import load_keys, validate_signed_pdf

    home = evidence_home
    with Ledger.open(home) as led:
        ref = led.subject_ref("email:someone@example.com")
        overdue = led.create_request("access", ref, received_at=date.today() - timedelta(days=45))
        led.checkpoint()
    out = cli_audit(sandbox, home, ["--report", "--json"])
    assert out.exit_code == 1, out.output
    document = json.loads(out.stdout)
    path = Path(document["report"]["path"])
    assert path.exists() and path.suffix == ".pdf"
    text = "".join(page.extract_text() or "" for page in PdfReader(path).pages)
    assert "audit" in text.lower() and overdue in text and "deadline.overdue" in text
    # The status the ledger holds when the report is signed: the run's final one (#12).
    assert "Status completed" in " ".join(text.split()) and "in_progress" not in text
    check = validate_signed_pdf(path.read_bytes(), [load_keys(home).certificate])
    assert check.ok and check.covers_whole_file
    with Ledger.open(home) as led:
        (run,) = led.list_requests(kind="audit")
        assert [a.sha256 for a in led.artifacts(run.request_id)] == [document["report"]["sha256"]]
        led.verify()


def test_an_audit_whose_report_cannot_be_signed_ends_failed(
    sandbox: SandboxServer, evidence_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import privacykit.evidence
    from privacykit.errors import EvidenceError

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise EvidenceError("the report template is broken")

    Ledger.open(evidence_home).close()
    monkeypatch.setattr(privacykit.evidence, "produce_report", refuse)
    result = audit(sandbox, evidence_home, report=True)
    assert result.exit_code == 2 and result.report_path is None
    with Ledger.open(evidence_home) as led:
        (run,) = led.list_requests(kind="audit")
        assert (run.status, run.status_reason) == ("failed", "0 finding(s), 1 check(s) incomplete")
        led.verify()


def test_audit_report_is_signed_after_the_final_status_as_the_ledger_records(
    sandbox: SandboxServer, evidence_home: Path
) -> None:
    """Issue 12, as erasure and access do it (RequestSession): a report intent, the final
    status, then the PDF (stating that status and the audit's result) and its outcome."""
    from pypdf import PdfReader

    home = evidence_home
    with Ledger.open(home) as led:
        ref = led.subject_ref("email:someone@example.com")
        led.create_request("access", ref, received_at=date.today() - timedelta(days=45))
    result = audit(sandbox, home, report=True)
    assert result.exit_code == 1 and result.report_path, result.to_document()
    text = " ".join(
        " ".join((page.extract_text() or "").split())
        for page in PdfReader(result.report_path).pages
    )
    assert "Status completed" in text and "in_progress" not in text, text[:1500]
    assert "Result findings" in text
    with Ledger.open(home) as led:
        rid = result.audit_request_id or ""
        assert led.get_request(rid).status == "completed"
        steps = [(e.step_key, e.phase, e.data.get("status")) for e in led.entries(rid)]
        final = steps.index(("ledger:status", "info", "completed"))
        assert (
            steps.index(("report", "intent", None))
            < final
            < steps.index(("report", "outcome", None))
        )
        assert [a.sha256 for a in led.artifacts(rid) if a.kind == "report"] == [
            result.report_sha256
        ]
        led.verify()


class FailAfter(httpx.BaseTransport):
    """Forwards the first ``n`` requests to the sandbox, then answers 401 (not retried)."""

    def __init__(self, n: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.left = n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.left <= 0:
            return httpx.Response(401, json={"error": "Couldn't authenticate you"})
        self.left -= 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_zendesk_failing_mid_run_keeps_what_was_checked(sandbox: SandboxServer, home: Path) -> None:
    rids = []
    with Ledger.open(home) as led:
        for n in range(4):
            uid, pid = person_with_profile(sandbox, f"person{n}@example.com")
            erase_in_sandbox(sandbox, uid)
            rids.append(recorded_erasure(led, users=[uid], permanently=True, profiles=[pid]))
    config = ZendeskConfig.from_env(sandbox.env())
    # /users/me + two erasures (2 requests each) succeed, then Zendesk refuses.
    result = run_audit(AuditOptions(workers=1), home=home, config=config, transport=FailAfter(5))
    assert result.exit_code == 2 and result.errors
    assert result.checked["completed_erasures"] == 2
    assert result.cursor["high_water"][1] == rids[1]
    # The next run starts after what was checked (room for two erasures only).
    again = audit(sandbox, home, max_requests=5)
    assert again.exit_code == 0 and again.checked["completed_erasures"] == 2
    assert again.cursor["high_water"][1] == rids[3]


def test_table_output_and_nothing_personal_in_the_ledger(
    sandbox: SandboxServer, home: Path
) -> None:
    uid, _ = person_with_profile(sandbox, PERSON)
    sandbox.state.soft_delete_user(uid)
    with Ledger.open(home) as led:
        rid = recorded_erasure(led, users=[uid], permanently=False, status="failed")
    out = cli_audit(sandbox, home, ["--soft-delete-grace", "0"])
    assert out.exit_code == 1
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["SEVERITY", "CHECK", "REQUEST", "FINDING"]
    assert lines[1].split()[:3] == ["high", "erasure.lingering_soft_delete", rid]
    assert any(line.startswith("audit: FINDINGS: 1 finding(s) (1 high)") for line in lines)
    assert any(line.startswith("zendesk: ") and "read-only (GET " in line for line in lines)
    raw = b"".join(p.read_bytes() for p in home.glob("ledger.sqlite3*"))
    assert PERSON.encode() not in raw and b"Pat Person" not in raw
