"""Erasure reaches the person's conversations (#15): tickets and comments, end to end over
real HTTP against the sandbox, with a real ledger. One test per policy value and per
hard case: 150 tickets (pagination, two bulk jobs), a job status that expires before it
is polled, a crash between a job's submission and its completion, an attachment Zendesk
refuses to redact on a closed ticket, the open-ticket ``close`` path."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from privacykit.config import ZendeskConfig
from privacykit.errors import PlaybookError
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import EraseOptions, EraseReport, ErasureBatch, erase
from privacykit.playbooks.loader import Playbook, builtin_playbook_dir, load_playbook_text
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import ZendeskClient

ERASURE = builtin_playbook_dir() / "erasure.yaml"
DEFAULT_TICKETS = "  tickets:\n    requested: delete\n    open: review\n    elsewhere: redact\n"
_DESTROY_MANY = "/api/v2/deleted_tickets/destroy_many"


def playbook(tickets: str | None = None) -> Playbook:
    """The shipped playbook, with another ``tickets:`` block (YAML, indented)."""
    text = ERASURE.read_text()
    assert DEFAULT_TICKETS in text
    if tickets is not None:
        text = text.replace(DEFAULT_TICKETS, tickets)
    return load_playbook_text(text, file="tickets.yaml")


KEEP = "    keep:\n      article: Art. 17(3)(e)\n      why: a warranty claim is disputed\n"


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=5) as server:
        yield server


class Person:
    """A customer with conversations: requested tickets (closed), one of them with an
    attachment and an agent's reply; another customer's open ticket they are CC'd on and
    wrote in (with an attachment); a ticket they follow without writing."""

    def __init__(self, sb: SandboxServer, email: str = "pat@example.com", *, closed: int = 2):
        state = sb.state
        self.email = email
        self.user = state.add_user("Pat Person", email=email)["id"]
        self.agent = state.add_user("Agent Ann", email="ann@agents.test", role="agent")["id"]
        self.other = state.add_user("Olga Other", email="olga@example.net")["id"]
        self.words = ["my bike frame FR-4411 cracked", "Pat again: order PO-9090 missing"]
        self.requested = []
        for i in range(closed):
            ticket = state.add_ticket(
                self.user, "open", f"Frame problem {i}", description=f"{self.words[0]} ({i})"
            )
            self.requested.append(ticket["id"])
        state.add_comment(self.requested[0], self.agent, "Please send a photo.")
        reply = state.add_comment(
            self.requested[0], self.user, "Photo attached.", attachments=[("frame.jpg", b"jpg")]
        )
        self.reply = reply["id"]
        for tid in self.requested:
            state.set_ticket_status(tid, "closed")
        other = state.add_ticket(
            self.other, "open", "Olga's order", description="Olga: parcel late", ccs=[self.user]
        )
        self.elsewhere = other["id"]
        mine = state.add_comment(
            self.elsewhere, self.user, self.words[1], attachments=[("receipt.pdf", b"%PDF-")]
        )
        self.comment_elsewhere = mine["id"]
        self.attachment_elsewhere = mine["attachments"][0]["id"]
        self.olga_words = "Olga: parcel late"
        followed = state.add_ticket(self.other, "open", "Another", followers=[self.user])
        self.followed = followed["id"]


def run(
    sb: SandboxServer,
    home: Path,
    subjects: Sequence[str],
    *,
    book: Playbook | None = None,
    client: ZendeskClient | None = None,
    **options: Any,
) -> EraseReport:
    opts = {"yes": True, "produce_reports": False, "concurrency": 4, **options}
    own = client is None
    client = client or ZendeskClient(ZendeskConfig.from_env(sb.env()))
    try:
        with Ledger.open(home) as ledger:
            return erase(
                client,
                ledger,
                EraseOptions(
                    subjects=[parse_subject(s) for s in subjects],
                    playbook=book or playbook(),
                    **opts,
                ),
                home=home,
            )
    finally:
        if own:
            client.close()


def mutating(sb: SandboxServer, since: int = 0) -> list[tuple[str, str]]:
    return [(e["method"], e["path"]) for e in sb.request_log(since) if e["method"] != "GET"]


def entries(home: Path, request_id: str | None) -> list[Any]:
    with Ledger.open(home) as ledger:
        return ledger.entries(request_id)


def evidence(home: Path, request_id: str | None) -> dict[str, Any]:
    records = [e.data for e in entries(home, request_id) if e.step_key == "evidence"]
    assert records
    return records[-1]


def rows(record: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {row["ticket_id"]: row for row in record["tickets"]}


def assert_nothing_personal(home: Path, texts: Sequence[str]) -> None:
    dump = json.dumps([e.to_dict() for e in entries(home, None)]).lower()
    for text in texts:
        assert text.lower() not in dump


def assert_intent_before_outcome(home: Path, request_id: str | None, prefix: str) -> int:
    log = [(e.step_key, e.phase) for e in entries(home, request_id) if e.phase != "info"]
    keys = {k for k, _ in log if k.startswith(prefix)}
    for key in keys:
        assert log.index((key, "intent")) < log.index((key, "outcome")), key
    return len(keys)


# -- policy -----------------------------------------------------------------------------------


def test_policy_defaults_and_validation() -> None:
    from privacykit.playbooks.policy import ErasurePolicy

    tickets = ErasurePolicy.from_playbook(playbook()).tickets
    assert (tickets.requested, tickets.open, tickets.elsewhere) == ("delete", "review", "redact")
    with pytest.raises(PlaybookError, match="keep needs policy.tickets.keep"):
        playbook("  tickets:\n    requested: keep\n")
    with pytest.raises(PlaybookError, match="keep needs policy.tickets.keep"):
        playbook("  tickets:\n    elsewhere: keep\n")
    with pytest.raises(PlaybookError, match="expected one of"):
        playbook("  tickets:\n    requested: archive\n")
    with pytest.raises(PlaybookError, match="unknown key"):
        playbook("  tickets:\n    requested: delete\n    cc: redact\n")
    with pytest.raises(PlaybookError, match="GDPR article"):
        playbook(
            "  tickets:\n    requested: keep\n    keep:\n      article: because\n      why: x\n"
        )
    kept = ErasurePolicy.from_playbook(playbook("  tickets:\n    requested: keep\n" + KEEP))
    assert kept.tickets.keep_reason == "Art. 17(3)(e): a warranty claim is disputed"
    # open: close without the step that closes would silently block instead.
    text = ERASURE.read_text().replace(DEFAULT_TICKETS, "  tickets:\n    open: close\n")
    text = text.replace("  - erase_tickets ", "  # - erase_tickets ")
    text = text.replace("  - permanently_delete_tickets ", "  # - permanently_delete_tickets ")
    with pytest.raises(PlaybookError, match="open: close needs the erase_tickets step"):
        load_playbook_text(text, file="x.yaml")
    # The ticket steps keep their order: tickets before the users' soft deletion.
    swapped = (
        ERASURE.read_text()
        .replace("  - erase_tickets ", "  - TEMP ")
        .replace("  - soft_delete_users ", "  - erase_tickets ")
        .replace("  - TEMP ", "  - soft_delete_users ")
    )
    with pytest.raises(PlaybookError, match="must come after 'erase_tickets'"):
        load_playbook_text(swapped, file="x.yaml")


# -- requested: delete (the default) ------------------------------------------------------------


def test_default_deletes_their_tickets_and_redacts_their_comments_elsewhere(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    (job,) = run(sb, home, [pat.email]).jobs
    assert job.outcome == "pending_compliance", job.reasons
    # Their tickets are gone for good, with every comment and attachment on them.
    for tid in pat.requested:
        assert sb.state.ticket_lifecycle(tid) == "permanently_deleted"
    assert sb.state.comment(pat.reply) is None
    # Olga's ticket stays, with her words; Pat's comment and file on it are redacted.
    assert sb.state.ticket_lifecycle(pat.elsewhere) == "live"
    assert sb.state.find_text(pat.olga_words)
    for words in pat.words:
        assert sb.state.find_text(words) == []
    comment = sb.state.comment(pat.comment_elsewhere)
    assert comment is not None and set(comment["body"].replace(" ", "")) == {"\u2587"}
    (attachment,) = comment["attachments"]
    assert (attachment["file_name"], attachment["size"]) == ("redacted.txt", 0)
    # The followed ticket Pat never wrote in is untouched.
    assert sb.state.ticket_lifecycle(pat.followed) == "live"
    # The person is erased too, after their tickets.
    assert sb.state.user_status(pat.user) == "permanently_deleted"
    log = mutating(sb)
    first_user_delete = log.index(("DELETE", f"/api/v2/users/{pat.user}"))
    assert all(
        log.index(("DELETE", f"/api/v2/tickets/{t}")) < first_user_delete for t in pat.requested
    )
    assert log.count(("DELETE", _DESTROY_MANY)) == 1
    # Evidence: ids and what was done to each, never a subject or a body.
    record = evidence(home, job.request_id)
    tickets = rows(record)
    for tid in pat.requested:
        assert tickets[tid]["action"] == "deleted"
        assert tickets[tid]["soft_deleted"] and tickets[tid]["permanently_deleted"]
    assert tickets[pat.elsewhere]["action"] == "redacted"
    assert tickets[pat.elsewhere]["comments_redacted"] == [pat.comment_elsewhere]
    assert tickets[pat.elsewhere]["attachments_redacted"] == [pat.attachment_elsewhere]
    assert tickets[pat.followed]["action"] == "none"
    assert record["counts"]["tickets_permanently_deleted"] == 2
    assert record["counts"]["comments_redacted"] == 1
    assert "Zendesk Support tickets and comments" in record["searched"]["systems"]
    assert "GET /api/v2/users/{id}/tickets/ccd" in record["searched"]["endpoints"]
    # Only the comment metadata Zendesk keeps is reported as not erased.
    assert [n["item"] for n in record["not_done"]] == [
        f"comment metadata on ticket(s) #{pat.elsewhere}"
    ]
    assert assert_intent_before_outcome(home, job.request_id, "ticket:soft_delete:") == 2
    assert assert_intent_before_outcome(home, job.request_id, "comment:redact:") == 1
    assert assert_intent_before_outcome(home, job.request_id, "ticket:purge:") == 1
    assert_nothing_personal(home, [*pat.words, pat.olga_words, "Frame problem", "frame.jpg"])


def test_dry_run_plans_tickets_with_get_requests_only(sb: SandboxServer, home: Path) -> None:
    pat = Person(sb)
    report = run(sb, home, [pat.email], dry_run=True)
    assert mutating(sb) == []
    view = report.as_dict()["requests"][0]["tickets"]
    assert view["to_delete"] == pat.requested
    assert view["to_redact"] == [pat.elsewhere]
    assert view["untouched"] == [pat.followed]
    assert view["comments_to_redact"] == 1 and view["attachments_to_redact"] == 1
    assert view["blocking"] == []
    assert view["summary"].startswith("4 ticket(s): delete #")
    # Every ticket list is read to the end; only the tickets to redact have comments read.
    gets = [e["path"] for e in sb.request_log() if "/tickets" in e["path"]]
    assert f"/api/v2/tickets/{pat.elsewhere}/comments" in gets
    assert f"/api/v2/tickets/{pat.requested[0]}/comments" not in gets


# -- requested: redact -----------------------------------------------------------------------


def test_redact_keeps_their_tickets_but_not_their_words(sb: SandboxServer, home: Path) -> None:
    pat = Person(sb)
    book = playbook("  tickets:\n    requested: redact\n    open: review\n    elsewhere: redact\n")
    (job,) = run(sb, home, [pat.email], book=book).jobs
    assert job.outcome == "pending_compliance", job.reasons
    for tid in pat.requested:
        assert sb.state.ticket_lifecycle(tid) == "live"
    for words in pat.words:
        assert sb.state.find_text(words) == []
    # The agent's words on Pat's ticket stay: only the person's comments are redacted.
    assert sb.state.find_text("Please send a photo.")
    # The file Pat attached on a closed ticket cannot be redacted: retained, not tried.
    reply = sb.state.comment(pat.reply)
    assert reply is not None and reply["attachments"][0]["file_name"] == "frame.jpg"
    assert not any("/attachments/" in path for _, path in mutating(sb) if "/tickets/1" in path)
    record = evidence(home, job.request_id)
    tickets = rows(record)
    attachment = reply["attachments"][0]["id"]
    assert tickets[pat.requested[0]]["action"] == "redacted"
    assert tickets[pat.requested[0]]["attachments_retained"] == [attachment]
    assert pat.reply in tickets[pat.requested[0]]["comments_redacted"]
    notes = {n["item"]: n["why"] for n in record["not_done"]}
    retained = f"attachment {attachment} (comment {pat.reply}, ticket {pat.requested[0]})"
    assert "cannot redact attachments on a closed ticket" in notes[retained]
    assert any("subject line" in why for why in notes.values())
    assert record["counts"]["tickets_redacted"] == 3
    assert record["counts"]["attachments_retained"] == 1
    assert mutating(sb).count(("DELETE", _DESTROY_MANY)) == 0


# -- keep --------------------------------------------------------------------------------------


def test_keep_leaves_their_tickets_and_says_why(sb: SandboxServer, home: Path) -> None:
    pat = Person(sb)
    book = playbook("  tickets:\n    requested: keep\n    elsewhere: keep\n" + KEEP)
    (job,) = run(sb, home, [pat.email], book=book).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert all(sb.state.find_text(w) for w in pat.words)
    assert not [m for m in mutating(sb) if "ticket" in m[1] or "comment" in m[1]]
    record = evidence(home, job.request_id)
    # Comments are not even listed when they are kept: the followed ticket counts as kept.
    assert {r["action"] for r in record["tickets"]} == {"kept"}
    assert [e["article"] for e in record["gdpr"]["exceptions"]] == ["Art. 17(3)(e)"] * 2
    why = {n["item"]: n["why"] for n in record["not_done"]}
    assert why[f"ticket(s) #{pat.requested[0]}, #{pat.requested[1]}"].endswith(
        "(Art. 17(3)(e): a warranty claim is disputed)"
    )
    assert f"the person's comments on ticket(s) #{pat.elsewhere}, #{pat.followed}" in why
    # The plan shows them as kept (nothing to redact, no comment listed).
    assert not any("/comments" in e["path"] for e in sb.request_log())


def test_elsewhere_keep_still_deletes_their_own_tickets(sb: SandboxServer, home: Path) -> None:
    pat = Person(sb)
    book = playbook("  tickets:\n    elsewhere: keep\n" + KEEP)
    (job,) = run(sb, home, [pat.email], book=book).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert sb.state.find_text(pat.words[0]) == []
    assert sb.state.find_text(pat.words[1])
    record = evidence(home, job.request_id)
    assert [e["kept"] for e in record["gdpr"]["exceptions"]] == [
        "the person's comments on tickets other people requested"
    ]


# -- open tickets ------------------------------------------------------------------------------


def test_open_review_blocks_before_any_mutating_request(sb: SandboxServer, home: Path) -> None:
    pat = Person(sb)
    still_open = sb.state.add_ticket(pat.user, "open", "Still open", description="help")
    plan = run(sb, home, [pat.email], dry_run=True)
    assert plan.exit_code == 1
    view = plan.as_dict()["requests"][0]
    assert view["would"] == "stop for review"
    assert view["tickets"]["blocking"] == [still_open["id"]]
    assert "blocked by open ticket(s)" in view["tickets"]["summary"]
    # The ticket discovery's list is the blocker check: read once per user, not twice.
    requested = f"/api/v2/users/{pat.user}/tickets/requested"
    assert [e["path"] for e in sb.request_log()].count(requested) == 1
    (job,) = run(sb, home, [pat.email]).jobs
    assert job.status == "needs_review"
    assert mutating(sb) == []
    record = evidence(home, job.request_id)
    items = [n["item"] for n in record["not_done"]]
    assert f"ticket {still_open['id']}" in items and f"ticket {pat.requested[0]}" in items
    assert not any(r["soft_deleted"] or r["comments_redacted"] for r in record["tickets"])


def test_open_close_closes_their_open_tickets_first_then_deletes(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    still_open = sb.state.add_ticket(pat.user, "pending", "Still waiting", description="where?")
    book = playbook("  tickets:\n    open: close\n")
    plan = run(sb, home, [pat.email], book=book, dry_run=True).as_dict()["requests"][0]
    assert plan["would"] == "erase"
    assert plan["tickets"]["to_close"] == [still_open["id"]]
    (job,) = run(sb, home, [pat.email], book=book).jobs
    assert job.outcome == "pending_compliance", job.reasons
    log = mutating(sb)
    closing = log.index(("PUT", f"/api/v2/tickets/{still_open['id']}"))
    assert closing < log.index(("DELETE", f"/api/v2/tickets/{still_open['id']}"))
    assert closing < log.index(("DELETE", f"/api/v2/users/{pat.user}"))
    assert sb.state.ticket_lifecycle(still_open["id"]) == "permanently_deleted"
    record = evidence(home, job.request_id)
    row = rows(record)[still_open["id"]]
    assert row["closed_by_erasure"] and row["permanently_deleted"]
    assert record["counts"]["tickets_closed"] == 1
    assert assert_intent_before_outcome(home, job.request_id, "ticket:close:") == 1


def test_open_close_with_redact_takes_the_attachments_before_closing(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    still_open = sb.state.add_ticket(pat.user, "open", "Broken bell", description="bell broke")
    mine = sb.state.add_comment(
        still_open["id"], pat.user, "Photo of the bell", attachments=[("bell.jpg", b"jpg")]
    )
    (attachment,) = mine["attachments"]
    book = playbook("  tickets:\n    requested: redact\n    open: close\n")
    (job,) = run(sb, home, [pat.email], book=book).jobs
    assert job.outcome == "pending_compliance", job.reasons
    log = mutating(sb)
    redact_file = (
        "PUT",
        f"/api/v2/tickets/{still_open['id']}/comments/{mine['id']}/attachments/"
        f"{attachment['id']}/redact",
    )
    close = ("PUT", f"/api/v2/tickets/{still_open['id']}")
    # Zendesk cannot redact a file once the ticket is closed: the file goes first.
    assert log.index(redact_file) < log.index(close)
    assert log.index(close) < log.index(("PUT", f"/api/v2/comment_redactions/{mine['id']}"))
    assert sb.state.ticket(still_open["id"])["status"] == "closed"
    assert sb.state.find_text("Photo of the bell") == []
    row = rows(evidence(home, job.request_id))[still_open["id"]]
    assert row["closed_by_erasure"] and row["action"] == "redacted" and row["done"]
    assert row["attachments_redacted"] == [attachment["id"]]


def test_open_close_refused_stops_before_the_user_is_touched(sb: SandboxServer, home: Path) -> None:
    pat = Person(sb)
    still_open = sb.state.add_ticket(pat.user, "open", "Needs a field", custom_fields={7: None})
    sb.state.require_ticket_field(7)
    (job,) = run(sb, home, [pat.email], book=playbook("  tickets:\n    open: close\n")).jobs
    assert job.status == "needs_review"
    assert any(f"ticket {still_open['id']} could not be closed" in r for r in job.reasons)
    assert sb.state.user_status(pat.user) == "active"
    assert not any(p.startswith("/api/v2/users/") for _, p in mutating(sb))
    record = evidence(home, job.request_id)
    assert any(n["item"] == f"ticket {still_open['id']}" for n in record["not_done"])


# -- scale, jobs, crashes ----------------------------------------------------------------------


def test_a_person_with_150_tickets_pages_and_two_bulk_jobs(sb: SandboxServer, home: Path) -> None:
    user = sb.state.add_user("Many Tickets", email="many@example.com")["id"]
    ids = [sb.state.add_ticket(user, "closed", f"T{i}")["id"] for i in range(150)]
    (job,) = run(sb, home, ["many@example.com"]).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}
    pages = [e for e in sb.request_log() if e["path"] == f"/api/v2/users/{user}/tickets/requested"]
    assert len(pages) >= 2  # 100 a page: the list was read to its end
    jobs = [e for e in sb.request_log() if e["path"] == _DESTROY_MANY]
    assert sorted(len(e["query"].split("%2C")) for e in jobs) == [50, 100]
    record = evidence(home, job.request_id)
    assert record["counts"]["tickets_permanently_deleted"] == 150
    purges = [e for e in entries(home, job.request_id) if e.step_key.startswith("ticket:purge:")]
    submitted = {e.data["job_id"] for e in purges if e.phase == "info"}
    assert len(submitted) == 2


def test_a_job_that_expires_before_it_is_polled_is_settled_from_the_tickets(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    # Job statuses vanish a virtual millisecond after the job ends: the first poll finds
    # nothing, so only the tickets' state can tell what happened.
    sb.configure({"job_ttl": 0.001})
    (job,) = run(sb, home, [pat.email]).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert {sb.state.ticket_lifecycle(t) for t in pat.requested} == {"permanently_deleted"}
    assert any(e["path"] == "/api/v2/deleted_tickets" for e in sb.request_log())
    (outcome,) = [
        e.data
        for e in entries(home, job.request_id)
        if e.step_key.startswith("ticket:purge:") and e.phase == "outcome"
    ]
    assert outcome["reconciled"] and outcome["purged"] == pat.requested
    assert rows(evidence(home, job.request_id))[pat.requested[0]]["permanently_deleted"]


class Crash(BaseException):
    """Stands in for the process dying (nothing may swallow it)."""


class CrashAfterSubmit(ZendeskClient):
    """Dies right after Zendesk queued the permanent deletion job, before anything else."""

    def permanently_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        super().permanently_delete_tickets(ticket_ids)
        raise Crash()


class CrashWhilePolling(ZendeskClient):
    """Dies at the first poll of a job (its id already recorded)."""

    def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        raise Crash()


@pytest.mark.parametrize("crash", [CrashAfterSubmit, CrashWhilePolling])
def test_crash_between_job_submission_and_completion_then_resume(
    sb: SandboxServer, home: Path, crash: type[ZendeskClient]
) -> None:
    pat = Person(sb)
    with crash(ZendeskConfig.from_env(sb.env())) as client, pytest.raises(Crash):
        run(sb, home, [pat.email], client=client)
    with Ledger.open(home) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        hanging = [
            e.step_key
            for e in ledger.entries(request.request_id)
            if e.step_key.startswith("ticket:purge:")
            and ledger.step_state(request.request_id, e.step_key) == "intent"
        ]
    assert hanging, "the crash left the purge intent without an outcome"
    sb.advance(60)  # the queued job runs to its end meanwhile
    (job,) = run(sb, home, [pat.email]).jobs
    assert job.request_id == request.request_id
    assert job.outcome == "pending_compliance", job.reasons
    assert {sb.state.ticket_lifecycle(t) for t in pat.requested} == {"permanently_deleted"}
    # Nothing was sent twice: one job, each ticket soft-deleted once.
    assert mutating(sb).count(("DELETE", _DESTROY_MANY)) == 1
    for tid in pat.requested:
        assert mutating(sb).count(("DELETE", f"/api/v2/tickets/{tid}")) == 1
    (outcome,) = [
        e.data
        for e in entries(home, job.request_id)
        if e.step_key == hanging[0] and e.phase == "outcome"
    ]
    assert outcome["purged"] == pat.requested and outcome["reconciled"]
    if crash is CrashWhilePolling:
        # The job id was recorded: the resumed run followed that job instead of reading
        # the deleted tickets list.
        assert not any(e["path"] == "/api/v2/deleted_tickets" for e in sb.request_log())


class CrashAtFirstTicketDelete(ZendeskClient):
    """Dies before the first ticket is soft-deleted (the plan is in the ledger)."""

    def soft_delete_ticket(self, ticket_id: int | str) -> None:
        raise Crash()


def test_a_resumed_plan_never_deletes_a_ticket_that_changed_hands(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    with (
        CrashAtFirstTicketDelete(ZendeskConfig.from_env(sb.env())) as client,
        pytest.raises(Crash),
    ):
        run(sb, home, [pat.email], client=client)
    # Before the request is resumed an agent makes Olga the requester of one of Pat's tickets:
    # it is Olga's conversation now, and the plan read back from the ledger is stale.
    theirs, olgas = pat.requested
    with sb.state.lock:
        sb.state.tickets[olgas].requester_id = pat.other
    since = len(sb.request_log())
    (job,) = run(sb, home, [pat.email]).jobs
    assert sb.state.ticket_lifecycle(olgas) == "live"
    assert ("DELETE", f"/api/v2/tickets/{olgas}") not in mutating(sb, since)
    assert sb.state.ticket_lifecycle(theirs) != "live"
    # Fail closed: the subject needs review, the person is not deleted yet.
    assert job.status == "needs_review"
    assert f"ticket {olgas} has another requester since the plan: left alone" in job.reasons
    assert sb.state.user_status(pat.user) == "active"


class CrashAfterTicketWrite(ZendeskClient):
    """Dies right after Zendesk applied the first ticket close, ticket soft deletion or
    comment redaction (whichever ``method`` names), before its outcome was recorded."""

    method = ""

    def _then_die(self, answer: Any) -> Any:
        raise Crash()

    def update_ticket(self, ticket_id: int | str, fields: Any) -> Any:
        answer = super().update_ticket(ticket_id, fields)
        return self._then_die(answer) if self.method == "update_ticket" else answer

    def soft_delete_ticket(self, ticket_id: int | str) -> None:
        super().soft_delete_ticket(ticket_id)
        if self.method == "soft_delete_ticket":
            self._then_die(None)

    def redact_comment(self, ticket_id: int | str, comment_id: int | str, html: str) -> Any:
        answer = super().redact_comment(ticket_id, comment_id, html)
        return self._then_die(answer) if self.method == "redact_comment" else answer


@pytest.mark.parametrize(
    ("method", "prefix", "sent"),
    [
        ("update_ticket", "ticket:close:", "PUT /api/v2/tickets/{open}"),
        ("soft_delete_ticket", "ticket:soft_delete:", "DELETE /api/v2/tickets/{first}"),
        ("redact_comment", "comment:redact:", "PUT /api/v2/comment_redactions/{comment}"),
    ],
)
def test_crash_after_a_ticket_change_then_resume_reconciles_it(
    sb: SandboxServer, home: Path, method: str, prefix: str, sent: str
) -> None:
    # Intent before, outcome after: a change Zendesk applied whose outcome the crash lost is
    # read back from Zendesk on resume, never sent a second time.
    pat = Person(sb)
    still_open = sb.state.add_ticket(pat.user, "pending", "Still waiting", description="where?")
    book = playbook("  tickets:\n    open: close\n")
    crashing = type("Crashing", (CrashAfterTicketWrite,), {"method": method})
    with crashing(ZendeskConfig.from_env(sb.env())) as client, pytest.raises(Crash):
        run(sb, home, [pat.email], book=book, client=client)
    with Ledger.open(home) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        hanging = [
            e.step_key
            for e in ledger.entries(request.request_id)
            if e.step_key.startswith(prefix)
            and ledger.step_state(request.request_id, e.step_key) == "intent"
        ]
    assert len(hanging) == 1, "the crash left the change's intent without an outcome"
    (job,) = run(sb, home, [pat.email], book=book).jobs
    assert job.request_id == request.request_id
    assert job.outcome == "pending_compliance", job.reasons
    method_path = sent.format(
        open=still_open["id"], first=pat.requested[0], comment=pat.comment_elsewhere
    ).split(" ", 1)
    assert mutating(sb).count((method_path[0], method_path[1])) == 1
    (outcome,) = [
        e.data
        for e in entries(home, job.request_id)
        if e.step_key == hanging[0] and e.phase == "outcome"
    ]
    assert outcome["state"] in {"closed", "soft_deleted", "redacted"}, outcome
    for words in pat.words:
        assert sb.state.find_text(words) == []
    assert {sb.state.ticket_lifecycle(t) for t in [*pat.requested, still_open["id"]]} == {
        "permanently_deleted"
    }


def test_attachment_refused_on_a_ticket_closed_since_the_plan_is_retained(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    with (
        ZendeskClient(ZendeskConfig.from_env(sb.env())) as client,
        Ledger.open(home) as ledger,
    ):
        batch = ErasureBatch(
            client,
            ledger,
            EraseOptions(
                subjects=[parse_subject(pat.email)],
                playbook=playbook(),
                yes=True,
                produce_reports=False,
            ),
            home=home,
        )
        batch.plan()
        # Olga's ticket is closed between the plan and the run.
        sb.state.set_ticket_status(pat.elsewhere, "closed")
        (job,) = batch.run().jobs
    assert job.outcome == "pending_compliance", job.reasons
    refused = [
        e
        for e in sb.request_log()
        if e["path"].endswith(f"/attachments/{pat.attachment_elsewhere}/redact")
    ]
    assert [e["status"] for e in refused] == [422]
    # The words still went: comment_redactions works on closed tickets.
    assert sb.state.find_text(pat.words[1]) == []
    record = evidence(home, job.request_id)
    row = rows(record)[pat.elsewhere]
    assert row["attachments_retained"] == [pat.attachment_elsewhere]
    assert row["comments_redacted"] == [pat.comment_elsewhere]
    (note,) = [n for n in record["not_done"] if n["item"].startswith("attachment ")]
    assert "closed ticket" in note["why"] and "422" in note["why"]


def test_bulk_jobs_are_shared_across_the_subjects_of_a_batch(sb: SandboxServer) -> None:
    from privacykit.playbooks.erasure.purge import PURGE, TicketJobs

    owners = []
    for n in range(3):
        user = sb.state.add_user(f"P{n}", email=f"p{n}@example.com")["id"]
        owners.append([sb.state.add_ticket(user, "closed", f"S{n}.{i}")["id"] for i in range(3)])
    with ZendeskClient(ZendeskConfig.from_env(sb.env())) as client:
        for ids in owners:
            for tid in ids:
                client.soft_delete_ticket(tid)
        purger = TicketJobs(client)
        seen: list[tuple[str, list[int]]] = []
        lock = threading.Lock()

        def recorder() -> Any:
            def record(job: str, owned: list[int]) -> None:
                with lock:
                    seen.append((job, owned))

            return record

        for ids in owners:
            purger.add(ids, on_submitted=recorder())
        outcome = purger.wait(owners[0])
        assert outcome.done == owners[0] and len(outcome.job_ids) == 1
        # One job held every subject's tickets; each owner was told its own part.
        assert purger.submitted[PURGE] == 1
        assert sorted(owned for _, owned in seen) == sorted(owners)
        for ids in owners[1:]:
            assert purger.wait(ids).done == ids
    assert {sb.state.ticket_lifecycle(t) for ids in owners for t in ids} == {"permanently_deleted"}


def test_purger_keeps_its_jobs_under_the_cap(sb: SandboxServer) -> None:
    from privacykit.playbooks.erasure.purge import PURGE, TicketJobs

    user = sb.state.add_user("Cap", email="cap@example.com")["id"]
    ids = [sb.state.add_ticket(user, "closed", f"C{i}")["id"] for i in range(25)]
    sb.configure({"job_delay": 30.0})

    class Counting(ZendeskClient):
        running: set[str] = set()
        most = 0

        def permanently_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
            job = super().permanently_delete_tickets(ticket_ids)
            Counting.running.add(job["id"])
            Counting.most = max(Counting.most, len(Counting.running))
            return job

        def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
            found = super().show_many_job_statuses(job_ids)
            for job in found:
                if job["status"] == "completed":
                    Counting.running.discard(job["id"])
            return found

    with Counting(ZendeskConfig.from_env(sb.env())) as client:
        for tid in ids:
            client.soft_delete_ticket(tid)
        purger = TicketJobs(client, max_ids=5, max_jobs=2, poll_first=0.01)
        purger.add(ids)
        assert purger.wait(ids).done == ids
    assert purger.submitted[PURGE] == 5
    assert Counting.most == 2


def test_report_lists_the_tickets(sb: SandboxServer, evidence_home: Path) -> None:
    from pypdf import PdfReader

    pat = Person(sb)
    (job,) = run(sb, evidence_home, [pat.email], produce_reports=True).jobs
    assert job.report_path is not None
    text = "\n".join(page.extract_text() for page in PdfReader(job.report_path).pages)
    assert re.search(r"Tickets", text)
    for tid in (*pat.requested, pat.elsewhere):
        assert re.search(rf"\b{tid}\b", text)
    assert str(pat.comment_elsewhere) in text
    for words in (*pat.words, "Frame problem"):
        assert words not in text


# -- audit: "erased really gone" covers the recorded tickets and comments --------------------


def test_audit_rechecks_purged_tickets_and_redacted_comments(sb: SandboxServer, home: Path) -> None:
    from privacykit.audit import AuditOptions, run_audit

    pat = Person(sb)
    (job,) = run(sb, home, [pat.email]).jobs
    assert job.outcome == "pending_compliance", job.reasons
    sb.advance(2 * 3600)
    clean = run_audit(AuditOptions(), home=home, config=ZendeskConfig.from_env(sb.env()))
    assert not [f for f in clean.findings if f.check == "erasure.gone"], clean.findings
    assert clean.checked["tickets_rechecked"] == 2
    assert clean.checked["comments_rechecked"] == 1
    assert [e["method"] for e in sb.request_log() if "deleted_tickets" in e["path"]][-1] == "GET"
    # The same account restored from an old backup: the same ids, everything back.
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=5) as restored:
        again = Person(restored)
        assert again.requested == pat.requested and again.comment_elsewhere == pat.comment_elsewhere
        restored.state.soft_delete_ticket(pat.requested[1], again.agent)
        result = run_audit(AuditOptions(), home=home, config=ZendeskConfig.from_env(restored.env()))
        assert {e["method"] for e in restored.request_log()} == {"GET"}
    gone = [f for f in result.findings if f.check == "erasure.gone"]
    messages = [f.message for f in gone]
    assert (
        f"ticket {pat.requested[0]} is recorded as permanently deleted but Zendesk holds it "
        "as live" in messages
    )
    assert (
        f"ticket {pat.requested[1]} is recorded as permanently deleted but Zendesk holds it "
        "as soft-deleted" in messages
    )
    assert (
        f"comment {pat.comment_elsewhere} on ticket {pat.elsewhere} is recorded as redacted "
        "but shows text" in messages
    )
    assert all(f.request_id == job.request_id for f in gone)


def test_malformed_ticket_answer_stops_the_subject_before_anything_changes(
    sb: SandboxServer, home: Path
) -> None:
    pat = Person(sb)
    sb.configure({"malformed": {"GET /api/v2/users/{id}/tickets/ccd": "null_collection"}})
    (job,) = run(sb, home, [pat.email]).jobs
    assert job.status == "needs_review"
    assert any("GET /api/v2/users/{id}/tickets/ccd" in r for r in job.reasons), job.reasons
    assert mutating(sb) == []


def test_redaction_markup_wraps_every_piece_of_text() -> None:
    from privacykit.playbooks.erasure.ticket_actions import links_left, mark_everything, text_left

    html = '<div class="zd-comment"><p>Hi &amp; bye<br>call <a href="tel:+4512">me</a></p></div>'
    marked = mark_everything(html)
    assert marked == (
        '<div class="zd-comment"><p><redact>Hi &amp; bye</redact><br><redact>call </redact>'
        '<a href="tel:+4512"><redact>me</redact></a></p></div>'
    )
    assert marked.replace("<redact>", "").replace("</redact>", "") == html
    done = {"body": "\u2587\u2587 \u2587", "html_body": "<p>\u2587&nbsp;\u2587</p>"}
    assert not text_left(done) and mark_everything(done["html_body"]) is None
    assert text_left({"body": "\u2587 x"})
    assert links_left({"html_body": html}) == 1 and links_left(done) == 0


def test_the_command_line_shows_the_tickets_in_the_plan_and_the_result(
    sb: SandboxServer, home: Path, point_zendesk_at: Any
) -> None:
    from click.testing import CliRunner

    from privacykit.cli import cli

    pat = Person(sb)
    point_zendesk_at(sb)
    plan = CliRunner().invoke(cli, ["erase", "--dry-run", pat.email])
    assert plan.exit_code == 0, plan.output
    first, second = pat.requested
    assert (
        f"    tickets: 4 ticket(s): delete #{first}, #{second}; redact #{pat.elsewhere}; "
        "1 comment(s) of theirs to redact\n" in plan.stdout
    )
    done = CliRunner().invoke(cli, ["erase", "--yes", "--no-report", pat.email])
    assert done.exit_code == 0, done.output
    assert "tickets 2 deleted / 1 redacted / 0 kept / 4)" in done.stdout
    assert pat.email not in plan.output + done.output
