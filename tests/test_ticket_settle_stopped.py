"""A subject stopped before the step that settles its ticket groups (#15): a run dies after
a shared ``destroy_many`` job holding the person's tickets was sent; the resumed run stops
the person for review before ``permanently_delete_tickets`` (here: a ticket changed hands
-- an agent made the person the requester of an open ticket, so Zendesk would refuse to
delete them). The group must still get an outcome the evidence can rely on, settled read
only: the job followed if its status is readable, else the tickets' state read; nothing
sent again. When even the reads fail, the evidence says the outcome is unknown, and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_erasure_tickets import entries, evidence, mutating, rows, run

from privacykit.config import ZendeskConfig
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import purge, ticket_steps
from privacykit.playbooks.erasure.ticket_history import TicketHistory
from privacykit.playbooks.erasure.ticket_steps import SINGLE_DELETES
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import ZendeskClient

PURGE_MANY = "/api/v2/deleted_tickets/destroy_many"
SOFT_MANY = "/api/v2/tickets/destroy_many"


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=11) as server:
        yield server


class Crash(BaseException):
    """Stands in for the process dying (nothing may swallow it)."""


class SharedAtOnce(purge.TicketJobs):
    """The batch's next waiter sends the shared permanent-deletion job as soon as a subject
    hands its tickets over -- before that subject's users are deleted (in a batch another
    subject's ``permanently_delete_tickets`` does this; made deterministic here)."""

    def add(
        self, ticket_ids: Iterable[int], on_submitted: Any = None, *, kind: str = purge.PURGE
    ) -> None:
        ids = list(ticket_ids)
        super().add(ids, on_submitted, kind=kind)
        if kind == purge.PURGE:
            self.wait(ids, kind=kind, key="another subject")


class CrashAtPoll(ZendeskClient):
    """Dies at the first job poll: the job was queued and its id recorded."""

    def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        raise Crash()


class CrashAfterPurgeJob(ZendeskClient):
    """Dies right after Zendesk queued the permanent-deletion job (its id not recorded)."""

    def permanently_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        super().permanently_delete_tickets(ticket_ids)
        raise Crash()


class CrashAfterSoftJob(ZendeskClient):
    """Dies right after Zendesk queued the soft-delete job (its id not recorded)."""

    def soft_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        super().soft_delete_tickets(ticket_ids)
        raise Crash()


#: Both reads that could tell what became of the tickets answer a maintenance page.
READS_FAIL = {
    "GET /api/v2/job_statuses/show_many": "html_maintenance",
    "GET /api/v2/tickets/show_many": "html_maintenance",
}


def person(sb: SandboxServer, tickets: int) -> tuple[str, int, list[int], int]:
    """A person with closed requested tickets, and an open ticket of Olga's."""
    email = "pat@example.com"
    user = sb.state.add_user("Pat Person", email=email)["id"]
    ids = [sb.state.add_ticket(user, "closed", f"Order {i}")["id"] for i in range(tickets)]
    olga = sb.state.add_user("Olga Other", email="olga@example.net")["id"]
    olgas = sb.state.add_ticket(olga, "open", "Olga's question")["id"]
    return email, user, ids, olgas


def crash_then_hand_over(
    sb: SandboxServer, home: Path, email: str, olgas: int, user: int, crash: type[ZendeskClient]
) -> str:
    with crash(ZendeskConfig.from_env(sb.env())) as client, pytest.raises(Crash):
        run(sb, home, [email], client=client, concurrency=1)
    assert sb.state.user_status(user) == "active"
    # The ticket changes hands: an agent makes the person the requester of Olga's open one.
    with sb.state.lock:
        sb.state.tickets[olgas].requester_id = user
    with Ledger.open(home) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        return request.request_id


def group_log(home: Path, rid: str | None, prefix: str) -> list[Any]:
    return [e for e in entries(home, rid) if e.step_key.startswith(prefix)]


def report_text(path: str | None) -> str:
    from pypdf import PdfReader

    assert path is not None
    return " ".join((p.extract_text() or "") for p in PdfReader(path).pages).replace("\n", " ")


@pytest.mark.parametrize("how", ["followed", "expired", "unrecorded"])
def test_a_held_subject_settles_its_sent_purge_job_read_only(
    sb: SandboxServer, evidence_home: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    home = evidence_home
    monkeypatch.setattr(ticket_steps, "TicketJobs", SharedAtOnce)
    email, user, ids, olgas = person(sb, SINGLE_DELETES)
    if how == "expired":
        sb.configure({"job_ttl": 0.001})  # the job's status is gone by the time we look
    crash = CrashAfterPurgeJob if how == "unrecorded" else CrashAtPoll
    rid = crash_then_hand_over(sb, home, email, olgas, user, crash)
    (intent,) = group_log(home, rid, "ticket:purge:")[:1]
    assert intent.phase == "intent" and intent.data == {"ticket_ids": ids}
    sb.advance(60)  # the job runs to its end: the tickets are deleted for good
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}
    since = len(sb.request_log())
    monkeypatch.setattr(ticket_steps, "TicketJobs", purge.TicketJobs)
    (job,) = run(sb, home, [email], concurrency=1, produce_reports=True).jobs
    assert job.request_id == rid
    assert job.status == "needs_review"
    assert any(str(olgas) in r for r in job.reasons), job.reasons
    # Read only: nothing that changes Zendesk (no job sent again, the person untouched).
    assert mutating(sb, since) == []
    assert sb.state.user_status(user) == "active"
    # The group's outcome is in the ledger: purged, reconciled, settled read only.
    log = group_log(home, rid, "ticket:purge:")
    (outcome,) = [e.data for e in log if e.phase == "outcome"]
    assert outcome["purged"] == ids and outcome["not_purged"] == []
    assert outcome["reconciled"] is True and outcome["read_only"] is True
    history = TicketHistory.from_entries(entries(home, rid))
    assert history.purged == ids
    # Followed when its status could be read; else from the tickets' state.
    statuses = [e for e in sb.request_log(since) if "job_statuses" in e["path"]]
    state_read = any(e["path"] == "/api/v2/deleted_tickets" for e in sb.request_log(since))
    assert bool(statuses) == (how != "unrecorded")
    assert state_read == (how != "followed")
    # The evidence and the signed report say what the ledger backs.
    record = evidence(home, rid)
    assert all(rows(record)[t]["permanently_deleted"] for t in ids)
    assert record["counts"]["tickets_permanently_deleted"] == len(ids)
    assert not any("not permanently deleted" in d["why"] for d in record["not_done"])
    text = report_text(job.report_path)
    for tid in ids:
        assert re.search(rf"\b{tid} requested deleted no yes yes ", text), text


def test_reads_failing_leave_the_outcome_unknown_and_say_so(
    sb: SandboxServer, evidence_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = evidence_home
    monkeypatch.setattr(ticket_steps, "TicketJobs", SharedAtOnce)
    email, user, ids, olgas = person(sb, SINGLE_DELETES)
    rid = crash_then_hand_over(sb, home, email, olgas, user, CrashAtPoll)
    sb.advance(60)
    since = len(sb.request_log())
    monkeypatch.setattr(ticket_steps, "TicketJobs", purge.TicketJobs)
    sb.configure({"malformed": READS_FAIL})
    (job,) = run(sb, home, [email], concurrency=1, produce_reports=True).jobs
    sb.configure({"malformed": {}})
    assert job.status == "needs_review"
    assert mutating(sb, since) == []
    # No outcome recorded: the intent stays for a later --resume.
    assert [e.phase for e in group_log(home, rid, "ticket:purge:")] == ["intent", "info"]
    assert any("permanent deletion outcome unknown" in r for r in job.reasons), job.reasons
    record = evidence(home, rid)
    for tid in ids:
        row = rows(record)[tid]
        assert row["permanently_deleted"] is None and not row["done"]
        assert row["why"] is not None and "MalformedResponseError" in row["why"]
    lines = {d["item"]: d["why"] for d in record["not_done"]}
    for tid in ids:
        assert lines[f"ticket {tid}"].startswith("permanent deletion outcome unknown")
        assert "not permanently deleted" not in lines[f"ticket {tid}"]
    text = report_text(job.report_path)
    assert "unknown" in text and "MalformedResponseError" in text
    # A later run whose reads work settles it (the job did delete them for good).
    (again,) = run(sb, home, [email], concurrency=1).jobs
    assert again.request_id == rid
    assert TicketHistory.from_entries(entries(home, rid)).purged == ids
    assert mutating(sb, since) == []


def test_a_held_subject_settles_its_open_soft_delete_group_read_only(
    sb: SandboxServer, home: Path
) -> None:
    email, user, ids, olgas = person(sb, SINGLE_DELETES + 2)  # a soft-delete job of its own
    rid = crash_then_hand_over(sb, home, email, olgas, user, CrashAfterSoftJob)
    sb.advance(60)
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"soft_deleted"}
    since = len(sb.request_log())
    (job,) = run(sb, home, [email], concurrency=1).jobs
    assert job.status == "needs_review"
    assert mutating(sb, since) == []
    (outcome,) = [
        e.data for e in group_log(home, rid, "ticket:soft_delete_many:") if e.phase == "outcome"
    ]
    assert outcome["soft_deleted"] == ids and outcome["reconciled"] and outcome["read_only"]
    record = evidence(home, rid)
    assert all(rows(record)[t]["soft_deleted"] for t in ids)
    assert TicketHistory.from_entries(entries(home, rid)).soft_deleted == ids


def test_withdrawn_tickets_are_never_sent(sb: SandboxServer) -> None:
    """A subject stopping while its tickets wait in the batch's queue takes them off it;
    a read-only wait then reports them unknown at once and sends nothing."""
    user = sb.state.add_user("Wendy", email="wendy@example.com")["id"]
    ids = [sb.state.add_ticket(user, "closed", f"W{i}")["id"] for i in range(2)]
    with ZendeskClient(ZendeskConfig.from_env(sb.env())) as client:
        for tid in ids:
            client.soft_delete_ticket(tid)
        jobs = purge.TicketJobs(client)
        jobs.add(ids)
        assert jobs.withdraw([ids[0], 999]) == [ids[0]]
        since = len(sb.request_log())
        assert jobs.wait([ids[0]], send=False).unknown == [ids[0]]
        assert mutating(sb, since) == []
        assert jobs.wait([ids[1]]).done == [ids[1]]  # the rest is still sent as before
    assert sb.state.ticket_lifecycle(ids[0]) == "soft_deleted"
    assert sb.state.ticket_lifecycle(ids[1]) == "permanently_deleted"
