"""Erasure end to end over real HTTP against the sandbox, with a real ledger."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from privacykit.config import ZendeskConfig
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import EraseOptions, EraseReport, ErasureBatch, erase
from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook, load_playbook_text
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import (
    DEMO_AGENT_EMAIL,
    DEMO_BLOCKED_EMAIL,
    DEMO_ERASE_EMAIL,
    DEMO_ERASE_PHONE,
)
from privacykit.zendesk import ZendeskClient

ERASURE = builtin_playbook_dir() / "erasure.yaml"
ERIN_SECRETS = ("erin", "example.com", "5555550100", "CB-1001", "WS-2001", "SMS-0001", "teal")


@pytest.fixture
def demo() -> Iterator[SandboxServer]:
    with SandboxServer(seed="demo", users=3, time_scale=600.0, rng_seed=1) as server:
        yield server


def run(
    sb: SandboxServer,
    home: Path,
    subjects: Sequence[str] = (),
    *,
    playbook: Any = None,
    **options: Any,
) -> EraseReport:
    book = playbook or load_playbook(ERASURE)
    opts = {"yes": True, "produce_reports": False, "concurrency": 4, **options}
    with (
        ZendeskClient(ZendeskConfig.from_env(sb.env())) as client,
        Ledger.open(home) as ledger,
    ):
        return erase(
            client,
            ledger,
            EraseOptions(subjects=[parse_subject(s) for s in subjects], playbook=book, **opts),
            home=home,
        )


def mutating(sb: SandboxServer, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in sb.request_log(since) if e["method"] != "GET"]


def last_seq(sb: SandboxServer) -> int:
    log = sb.request_log()
    return log[-1]["seq"] if log else 0


def entries(home: Path, request_id: str | None = None) -> list[Any]:
    with Ledger.open(home) as ledger:
        return ledger.entries(request_id)


def evidence(home: Path, request_id: str) -> dict[str, Any]:
    records = [e.data for e in entries(home, request_id) if e.step_key == "evidence"]
    assert records, "no evidence recorded"
    return records[-1]


def user_status(sb: SandboxServer, user_id: int) -> str:
    return sb.state.user_status(user_id)


def erin_ids(sb: SandboxServer) -> tuple[int, int]:
    erin = sb.state.user_by_email(DEMO_ERASE_EMAIL)
    assert erin is not None
    anon = sb.state.user_id_by_identity("phone_number", DEMO_ERASE_PHONE)
    assert anon is not None and anon != erin["id"]
    return erin["id"], anon


@pytest.mark.parametrize("form", ["email", "user", "ext", "identifier"])
def test_erase_one_person_by_each_subject_form(demo: SandboxServer, home: Path, form: str) -> None:
    erin, anon = erin_ids(demo)
    subject = {
        "email": DEMO_ERASE_EMAIL.upper(),
        "user": f"user:{erin}",
        "ext": "ext:cust-erin-0001",
        "identifier": "coolbikes:rider:coolbike_id:CB-1001",
    }[form]
    profiles_before = set(demo.state.profile_ids())
    report = run(demo, home, [subject])
    (job,) = report.jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert report.exit_code == 0
    # Erin and the anonymous user her phone number led to are both gone for good.
    assert user_status(demo, erin) == user_status(demo, anon) == "permanently_deleted"
    assert len(profiles_before - set(demo.state.profile_ids())) == 3
    record = evidence(home, job.request_id or "")
    assert record["schema"] == "privacykit.erasure-evidence/1"
    assert record["counts"] == {
        "users": 2,
        "identities": 2,
        "profiles": 3,
        "profiles_scrubbed": 0,
        "profiles_deleted": 3,
        "profiles_retained": 0,
        "users_soft_deleted": 2,
        "users_permanently_deleted": 2,
        # Her conversations (#15): two tickets of hers deleted, her comment on another's
        # ticket redacted.
        "tickets": 3,
        "tickets_closed": 0,
        "tickets_soft_deleted": 2,
        "tickets_permanently_deleted": 2,
        "tickets_redacted": 1,
        "tickets_kept": 0,
        "comments_redacted": 1,
        "attachments_redacted": 0,
        "attachments_retained": 0,
    }
    assert {u["user_id"] for u in record["users"]} == {erin, anon}
    assert all(not p["events_remain"] for p in record["profiles"])
    # Every destructive call has its intent before its outcome in the ledger.
    log = entries(home, job.request_id)
    keys = [(e.step_key, e.phase) for e in log if e.phase in ("intent", "outcome")]
    for uid in (erin, anon):
        for step in (f"soft_delete:user:{uid}", f"permanent_delete:user:{uid}"):
            assert keys.index((step, "intent")) < keys.index((step, "outcome"))
    # Nothing personal anywhere in the ledger.
    dump = json.dumps([e.to_dict() for e in entries(home)]).lower()
    for secret in ERIN_SECRETS:
        assert secret.lower() not in dump


def test_compliance_is_polled_on_resume_until_complete(home: Path) -> None:
    # A virtual clock 1,000 times slower than real time: compliance (whose first step
    # comes a virtual minute after the deletion, i.e. 17 real hours) cannot progress
    # between the runs however slow the machine; advance() moves it on. The ticket
    # deletion job takes 50 ms (not 2 s) so the first run does not wait on it.
    with SandboxServer(seed="demo", users=3, time_scale=0.001, rng_seed=1) as demo:
        demo.configure({"job_delay": 0.00005})
        _compliance_polled_on_resume(demo, home)


def _compliance_polled_on_resume(demo: SandboxServer, home: Path) -> None:
    first = run(demo, home, [DEMO_ERASE_EMAIL]).jobs[0]
    assert first.status == "pending_compliance"
    again = run(demo, home, resume=True).jobs
    assert [j.request_id for j in again] == [first.request_id]
    assert again[0].outcome == "pending_compliance"
    reports_before = [e for e in entries(home, first.request_id) if e.step_key == "evidence"]
    assert len(reports_before) == 1, "an unchanged pending request gets no new evidence"
    demo.advance(2 * 3600)  # compliance deletion finishes within an hour of virtual time
    done = run(demo, home, resume=True).jobs[0]
    assert done.outcome == "erased" and done.status == "completed"
    record = evidence(home, first.request_id or "")
    assert record["outcome"] == "erased" and record["completed_at"]
    assert {c["status"] for c in record["compliance"]} == {"complete"}
    assert {c["application"] for c in record["compliance"]} >= {"support", "chat"}
    assert run(demo, home, resume=True).jobs == []


def test_agent_is_refused_and_nothing_changes(demo: SandboxServer, home: Path) -> None:
    since = last_seq(demo)
    (job,) = run(demo, home, [DEMO_AGENT_EMAIL]).jobs
    assert job.status == "needs_review"
    assert job.reasons[0].startswith("agent or admin users are never erased by default: user ")
    assert mutating(demo, since) == []
    assert evidence(home, job.request_id or "")["outcome"] == "needs_review"


def test_dry_run_sends_no_mutating_request(demo: SandboxServer, home: Path) -> None:
    since = last_seq(demo)
    report = run(demo, home, [DEMO_ERASE_EMAIL, DEMO_AGENT_EMAIL, "user:424242"], dry_run=True)
    # The agent would stop for review: a dry run is a check, and it fails (#12).
    assert report.dry_run and report.exit_code == 1
    assert demo.request_log(since), "discovery did run"
    assert mutating(demo, since) == []
    views = report.as_dict()["requests"]
    assert [v["would"] for v in views] == ["erase", "stop for review", "nothing: no data found"]
    assert {tuple(u["actions"]) for u in views[0]["users"]} == {("soft_delete", "permanent_delete")}
    assert entries(home) == [], "a dry run records nothing"


def test_not_found_is_a_valid_outcome(demo: SandboxServer, home: Path) -> None:
    (job,) = run(demo, home, ["nobody.here@example.net"]).jobs
    assert (job.outcome, job.status) == ("no_data_found", "completed")
    record = evidence(home, job.request_id or "")
    assert record["searched"]["systems"] == [
        "Zendesk Support users",
        "Zendesk user identities",
        "Sunshine profiles",
    ]
    assert "GET /api/v2/users/search" in record["searched"]["endpoints"]
    assert record["counts"]["users"] == 0


def test_open_ticket_blocks_then_resume_after_closing(demo: SandboxServer, home: Path) -> None:
    since = last_seq(demo)
    (job,) = run(demo, home, [DEMO_BLOCKED_EMAIL]).jobs
    assert job.status == "needs_review"
    (user,) = job.users.values()
    assert user.blocking_tickets and not user.soft_deleted
    assert "ticket(s) that are not closed" in job.reasons[0]
    # Found in the read-only phase: no mutating request at all (her profile is intact).
    assert mutating(demo, since) == []
    assert job.evidence is not None
    tickets = ", ".join(f"#{t}" for t in user.blocking_tickets)
    (profile,) = job.profiles
    assert job.evidence["not_done"] == [
        {
            "item": f"user {user.user_id}",
            "why": f"requester of ticket(s) that are not closed: {tickets}",
        },
        {"item": f"profile {profile}", "why": job.reasons[0]},
        # Her tickets (#15) were found and, like everything else, not touched.
        *({"item": f"ticket {t}", "why": job.reasons[0]} for t in user.blocking_tickets),
    ]
    for ticket in user.blocking_tickets:
        demo.state.set_ticket_status(ticket, "closed")
    (again,) = run(demo, home, [DEMO_BLOCKED_EMAIL]).jobs
    assert again.request_id == job.request_id and again.resumed
    assert again.outcome == "pending_compliance", again.reasons
    assert user_status(demo, user.user_id) == "permanently_deleted"


def test_ambiguous_subject_needs_confirmation(demo: SandboxServer, home: Path) -> None:
    sam = demo.state.add_user("Sam Second", email="sam.primary@example.com")
    demo.state.add_identity(sam["id"], "email", "sam.other@example.com")
    since = last_seq(demo)
    (job,) = run(demo, home, ["sam.other@example.com"]).jobs
    assert job.status == "needs_review"
    assert "--confirm-ambiguous" in job.reasons[0]
    assert mutating(demo, since) == []
    (again,) = run(demo, home, ["sam.other@example.com"], confirm_ambiguous=True).jobs
    assert again.request_id == job.request_id
    assert again.outcome == "pending_compliance"
    assert user_status(demo, sam["id"]) == "permanently_deleted"


RETAINING = """\
schema: privacykit.playbook/1
name: scrub-only
kind: erasure
art19_recipients: {none_reason: none}
steps: [resolve_subject, discover, check_safety, replace_profiles, evidence]
policy:
  profile_sources: [coolbikes:rider, webshop:customer, smsclub:member]
  retain:
    identifiers:
      - {type: member_id, article: Art. 17(3)(b), why: invoices are kept for 10 years}
  profiles: keep_scrubbed
  keep_profiles: {article: Art. 17(3)(b), why: the order history backs kept invoices}
"""


def test_retaining_policy_scrubs_profiles_and_says_events_remain(
    demo: SandboxServer, home: Path
) -> None:
    book = load_playbook_text(RETAINING, file="scrub-only.yaml")
    (job,) = run(demo, home, [DEMO_ERASE_EMAIL], playbook=book).jobs
    assert job.outcome == "erased", job.reasons
    record = evidence(home, job.request_id or "")
    by_source = {p["source_type"]: p for p in record["profiles"]}
    shop = by_source["webshop:customer"]
    assert (shop["action"], shop["events_remain"], shop["identifiers_kept"]) == (
        "scrubbed",
        True,
        1,
    )
    assert shop["why"] == "Art. 17(3)(b): the order history backs kept invoices"
    assert by_source["coolbikes:rider"]["action"] == "deleted"
    assert by_source["coolbikes:rider"]["events_remain"] is False
    kept = demo.state.profile(shop["profile_id"])
    assert kept is not None
    assert kept["identifiers"] == [{"type": "member_id", "value": "WS-2001"}]
    assert (kept["name"], kept["attributes"]) == ("Erased person", {})
    assert {
        "article": "Art. 17(3)(b)",
        "kept": "identifier type 'member_id' on profiles",
        "why": "invoices are kept for 10 years",
    } in record["gdpr"]["exceptions"]


def test_default_policy_with_retention_replaces_then_deletes(
    demo: SandboxServer, home: Path
) -> None:
    text = (ERASURE.read_text()).replace(
        "    identifiers: []\n",
        "    identifiers:\n      - {type: member_id, article: Art. 17(3)(b), why: invoices}\n",
    )
    book = load_playbook_text(text, file="retain.yaml")
    since = last_seq(demo)
    (job,) = run(demo, home, [DEMO_ERASE_EMAIL], playbook=book).jobs
    assert job.outcome == "pending_compliance"
    shop = next(p for p in job.profiles.values() if p.source_type == "webshop:customer")
    calls = [
        (e["method"], e["path"]) for e in mutating(demo, since) if shop.profile_id in e["path"]
    ]
    assert calls == [
        ("PUT", f"/api/v2/user_profiles/{shop.profile_id}"),
        ("DELETE", f"/api/v2/user_profiles/{shop.profile_id}"),
    ]
    assert evidence(home, job.request_id or "")["counts"]["profiles_deleted"] == 3


def test_playbook_free_text_that_looks_personal_is_hashed_in_the_ledger(
    demo: SandboxServer, home: Path
) -> None:
    text = ERASURE.read_text().replace(
        "  recipients: []\n", "  recipients: [privacy@processor.example.org, Acme Analytics]\n"
    )
    book = load_playbook_text(text, file="art19.yaml")
    (job,) = run(demo, home, ["nobody@example.net"], playbook=book).jobs
    assert job.outcome == "no_data_found"
    assert job.evidence is not None
    assert job.evidence["art19_recipients"]["recipients"][0] == "privacy@processor.example.org"
    recorded = evidence(home, job.request_id or "")["art19_recipients"]["recipients"]
    digest = hashlib.sha256(b"privacy@processor.example.org").hexdigest()
    assert recorded == [f"[not kept in the ledger; sha256 {digest}]", "Acme Analytics"]


def test_failed_planning_is_shown_and_retried_when_erasing(demo: SandboxServer, home: Path) -> None:
    demo.set_faults(1.0)  # Zendesk answers nothing while the plan is made
    with (
        ZendeskClient(
            ZendeskConfig.from_env(demo.env()), backoff_initial=0.001, backoff_max=0.002
        ) as client,
        Ledger.open(home) as ledger,
    ):
        options = EraseOptions(
            subjects=[parse_subject(DEMO_ERASE_EMAIL)],
            playbook=load_playbook(ERASURE),
            produce_reports=False,
        )
        # The library plans; whoever asks the operator (the CLI) then runs the batch.
        batch = ErasureBatch(client, ledger, options, home=home)
        seen = batch.plan().as_dict()["requests"]
        demo.set_faults(0.0)
        report = batch.run()
    assert [(r["would"], bool(r["error"])) for r in seen] == [("retry discovery", True)]
    assert [j.outcome for j in report.jobs] == ["pending_compliance"]


def test_progress_counts_every_stage(demo: SandboxServer, home: Path) -> None:
    snapshots: list[tuple[int, int, int, int]] = []
    with (
        ZendeskClient(ZendeskConfig.from_env(demo.env())) as client,
        Ledger.open(home) as ledger,
    ):
        options = EraseOptions(
            subjects=[parse_subject(s) for s in (DEMO_ERASE_EMAIL, DEMO_AGENT_EMAIL)],
            playbook=load_playbook(ERASURE),
            yes=True,
            produce_reports=False,
        )
        erase(
            client,
            ledger,
            options,
            home=home,
            on_progress=lambda p: snapshots.append(
                (p.discovered, p.permanently_deleted, p.finished, p.needs_review)
            ),
        )
    assert snapshots[-1] == (2, 2, 2, 1)
