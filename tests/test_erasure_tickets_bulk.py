"""Soft deletion of the person's tickets through ``tickets/destroy_many`` jobs shared by
the subjects of a batch (#14): fewer requests, crash-safe, never assumed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_erasure_tickets import entries, evidence, mutating, rows, run

from privacykit.config import ZendeskConfig
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import purge
from privacykit.playbooks.erasure.ticket_history import TicketHistory
from privacykit.playbooks.erasure.ticket_steps import SINGLE_DELETES
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import ZendeskClient

SOFT_MANY = "/api/v2/tickets/destroy_many"
PURGE_MANY = "/api/v2/deleted_tickets/destroy_many"
GROUP = "ticket:soft_delete_many:"
MANY = SINGLE_DELETES + 2  # more tickets than a lone subject deletes one by one


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=7) as server:
        yield server


@pytest.fixture(autouse=True)
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Soft-delete waiters wait for every subject still being prepared (the bound is only
    for a subject stuck elsewhere): how tickets are grouped does not depend on speed."""
    monkeypatch.setattr(purge, "LINGER_FLOOR", 30.0)


def person(sb: SandboxServer, n: int, tickets: int) -> tuple[str, int, list[int]]:
    email = f"person{n}@example.com"
    user = sb.state.add_user(f"Person {n}", email=email)["id"]
    ids = []
    for i in range(tickets):
        tid = sb.state.add_ticket(user, "open", f"Bike {n}.{i}", description=f"words {n}.{i}")
        sb.state.set_ticket_status(tid["id"], "closed")
        ids.append(tid["id"])
    return email, user, ids


def soft_deletes(sb: SandboxServer, since: int = 0) -> tuple[int, int]:
    """(``tickets/destroy_many`` jobs, single ``DELETE /tickets/{id}``) sent."""
    log = mutating(sb, since)
    jobs = sum(1 for m, p in log if (m, p) == ("DELETE", SOFT_MANY))
    single = sum(1 for m, p in log if m == "DELETE" and p.startswith("/api/v2/tickets/"))
    return jobs, single - jobs


def group_entries(home: Path, request_id: str | None) -> list[Any]:
    return [e for e in entries(home, request_id) if e.step_key.startswith(GROUP)]


def test_a_batch_shares_its_soft_delete_jobs(sb: SandboxServer, home: Path) -> None:
    people = [person(sb, n, 3) for n in range(30)]
    report = run(sb, home, [email for email, _, _ in people], concurrency=8)
    assert {job.outcome for job in report.jobs} == {"pending_compliance"}
    for _, user, ids in people:
        assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}
        assert sb.state.user_status(user) == "permanently_deleted"
    # 90 tickets, 8 subjects prepared at a time: a job per group of subjects (4 when they
    # start together) instead of 90 DELETEs. The batch runs work on started subjects
    # first, so a later subject may start while the others are busy further on and find
    # nobody to share a job with: it deletes its 3 tickets one by one (as cheap as a job
    # of its own and its polls). Either way: a handful of requests for 90 tickets.
    jobs, single = soft_deletes(sb)
    assert single % 3 == 0
    assert 1 <= jobs and jobs + single // 3 <= 8, (jobs, single)
    # Every ticket was sent once.
    sent = [
        int(t)
        for e in sb.request_log()
        if (e["method"], e["path"]) == ("DELETE", SOFT_MANY)
        for t in e["query"].split("=", 1)[1].replace("%2C", ",").split(",")
    ]
    sent += [
        int(p.rsplit("/", 1)[1])
        for m, p in mutating(sb)
        if m == "DELETE" and p.startswith("/api/v2/tickets/") and p != SOFT_MANY
    ]
    assert sorted(sent) == sorted(t for _, _, ids in people for t in ids)
    # The ledger: intent before the job, the job id, the outcome; the evidence says which.
    # (The first subjects start together: the first one's tickets went in a shared job.)
    job = report.jobs[0]
    _, _, ids = people[0]
    log = group_entries(home, job.request_id)
    assert [e.phase for e in log] == ["intent", "info", "outcome"]
    assert log[0].data == {"ticket_ids": ids}
    assert log[1].data["ticket_ids"] == ids and log[1].data["job_id"]
    assert log[2].data["soft_deleted"] == ids and log[2].data["not_soft_deleted"] == []
    assert not log[2].data["reconciled"]
    record = evidence(home, job.request_id)
    assert all(rows(record)[t]["soft_deleted"] for t in ids)
    assert record["counts"]["tickets_soft_deleted"] == 3
    assert TicketHistory.from_entries(entries(home, job.request_id)).soft_deleted == ids


def test_a_lone_subject_with_few_tickets_deletes_them_one_by_one(
    sb: SandboxServer, home: Path
) -> None:
    email, _, ids = person(sb, 1, SINGLE_DELETES)
    (job,) = run(sb, home, [email], concurrency=1).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert soft_deletes(sb) == (0, SINGLE_DELETES)
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}


def test_a_lone_subject_with_many_tickets_uses_one_job(sb: SandboxServer, home: Path) -> None:
    email, _, ids = person(sb, 1, MANY)
    (job,) = run(sb, home, [email], concurrency=1).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert soft_deletes(sb) == (1, 0)
    assert rows(evidence(home, job.request_id))[ids[-1]]["permanently_deleted"]


class Crash(BaseException):
    """Stands in for the process dying (nothing may swallow it)."""


class CrashBeforeJob(ZendeskClient):
    """Dies after the group's intent was recorded, before the job is queued."""

    def soft_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        raise Crash()


class CrashAfterJob(ZendeskClient):
    """Dies right after Zendesk queued the soft-delete job (its id not recorded)."""

    def soft_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        super().soft_delete_tickets(ticket_ids)
        raise Crash()


class CrashWhilePolling(ZendeskClient):
    """Dies at the first poll of the soft-delete job (its id recorded)."""

    def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        raise Crash()


@pytest.mark.parametrize("crash", [CrashBeforeJob, CrashAfterJob, CrashWhilePolling])
def test_a_crash_around_the_soft_delete_job_resumes_without_repeating_or_skipping(
    sb: SandboxServer, home: Path, crash: type[ZendeskClient]
) -> None:
    email, user, ids = person(sb, 1, MANY)
    with crash(ZendeskConfig.from_env(sb.env())) as client, pytest.raises(Crash):
        run(sb, home, [email], client=client, concurrency=1)
    with Ledger.open(home) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        key = f"{GROUP}{ids[0]}"
        assert ledger.step_state(request.request_id, key) == "intent"
    assert sb.state.user_status(user) == "active"
    sb.advance(60)  # a queued job runs to its end meanwhile
    since = len(sb.request_log())
    (job,) = run(sb, home, [email], concurrency=1).jobs
    assert job.request_id == request.request_id
    assert job.outcome == "pending_compliance", job.reasons
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}
    # Sent exactly once: the job that reached Zendesk is never repeated, and a job that
    # never did is sent by the resumed run.
    assert soft_deletes(sb) == (1, 0)
    (outcome,) = [e.data for e in group_entries(home, job.request_id) if e.phase == "outcome"]
    assert outcome["soft_deleted"] == ids and outcome["reconciled"]
    # The resumed run reads the tickets once to see they are still the person's; then,
    # when the job id was recorded, it follows that job, else it reads their state.
    reads = [e for e in sb.request_log(since) if e["path"] == "/api/v2/tickets/show_many"]
    assert len(reads) == (1 if crash is CrashWhilePolling else 2)
    assert len(outcome["job_ids"]) == (0 if crash is CrashAfterJob else 1)
    assert all(rows(evidence(home, job.request_id))[t]["soft_deleted"] for t in ids)


def test_an_expired_job_status_is_settled_from_the_tickets(sb: SandboxServer, home: Path) -> None:
    email, _, ids = person(sb, 1, MANY)
    sb.configure({"job_ttl": 0.001})
    (job,) = run(sb, home, [email], concurrency=1).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert soft_deletes(sb) == (1, 0)
    (outcome,) = [e.data for e in group_entries(home, job.request_id) if e.phase == "outcome"]
    assert outcome["soft_deleted"] == ids and outcome["reconciled"]


class AgentUndoes(ZendeskClient):
    """An agent races the erasure for one ticket: before a soft-delete job reaches it,
    they delete it themselves, then restore it once the job has passed -- so the job says
    it failed (``RecordNotFound``) and the ticket is live again. ``times`` jobs are raced."""

    sb: SandboxServer
    ticket = 0
    times = 1

    def soft_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        job = super().soft_delete_tickets(ticket_ids)
        if self.times > 0 and self.ticket in ticket_ids:
            type(self).times -= 1
            self.sb.state.soft_delete_ticket(self.ticket, self.sb.state.admin_id)
            self.sb.advance(60)  # the job runs; its item for the ticket fails
            self.sb.state.restore_ticket(self.ticket)
        return job


def test_a_ticket_the_job_could_not_delete_is_sent_again_once(
    sb: SandboxServer, home: Path
) -> None:
    email, _, ids = person(sb, 1, MANY)
    racing = type("Racing", (AgentUndoes,), {"sb": sb, "ticket": ids[1], "times": 1})
    with racing(ZendeskConfig.from_env(sb.env())) as client:
        (job,) = run(sb, home, [email], client=client, concurrency=1).jobs
    assert job.outcome == "pending_compliance", job.reasons
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}
    assert soft_deletes(sb) == (2, 0)
    (outcome,) = [e.data for e in group_entries(home, job.request_id) if e.phase == "outcome"]
    assert outcome["soft_deleted"] == ids and len(outcome["job_ids"]) == 2


def test_a_ticket_the_jobs_keep_failing_on_stops_the_subject_for_review(
    sb: SandboxServer, home: Path
) -> None:
    email, user, ids = person(sb, 1, MANY)
    stuck = ids[2]
    racing = type("Racing", (AgentUndoes,), {"sb": sb, "ticket": stuck, "times": 2})
    with racing(ZendeskConfig.from_env(sb.env())) as client:
        (job,) = run(sb, home, [email], client=client, concurrency=1).jobs
    assert job.status == "needs_review"
    assert f"ticket {stuck} could not be soft-deleted (RecordNotFound)" in job.reasons
    # Never claimed: the ticket is live, the person not deleted, the evidence says so.
    assert sb.state.ticket_lifecycle(stuck) == "live"
    assert sb.state.user_status(user) == "active"
    assert soft_deletes(sb) == (2, 0)
    (outcome,) = [e.data for e in group_entries(home, job.request_id) if e.phase == "outcome"]
    assert outcome["not_soft_deleted"] == [stuck]
    assert outcome["soft_deleted"] == [t for t in ids if t != stuck]
    row = rows(evidence(home, job.request_id))[stuck]
    assert not row["soft_deleted"] and not row["permanently_deleted"] and not row["done"]
    assert TicketHistory.from_entries(entries(home, job.request_id)).soft_deleted == [
        t for t in ids if t != stuck
    ]


class RestoredBeforePurge(ZendeskClient):
    """An agent restores one soft-deleted ticket before it is deleted for good."""

    sb: SandboxServer
    ticket = 0

    def permanently_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        if self.ticket in ticket_ids and self.sb.state.ticket_lifecycle(self.ticket) != "live":
            self.sb.state.restore_ticket(self.ticket)
        return super().permanently_delete_tickets(ticket_ids)


def test_a_ticket_restored_after_the_job_is_not_claimed_deleted(
    sb: SandboxServer, home: Path
) -> None:
    email, _, ids = person(sb, 1, MANY)
    restored = ids[0]
    client_type = type("Restoring", (RestoredBeforePurge,), {"sb": sb, "ticket": restored})
    with client_type(ZendeskConfig.from_env(sb.env())) as client:
        (job,) = run(sb, home, [email], client=client, concurrency=1).jobs
    assert soft_deletes(sb) == (1, 0)
    assert sb.state.ticket_lifecycle(restored) == "live"
    assert job.status == "needs_review"
    text = f"ticket {restored} was not permanently deleted: live again"
    assert any(r.startswith(text) for r in job.reasons), job.reasons
    row = rows(evidence(home, job.request_id))[restored]
    assert row["soft_deleted"] and not row["permanently_deleted"] and not row["done"]


def test_a_resumed_group_never_deletes_a_ticket_that_changed_hands(
    sb: SandboxServer, home: Path
) -> None:
    email, _, ids = person(sb, 1, MANY)
    other = sb.state.add_user("Olga Other", email="olga@example.net")["id"]
    with CrashBeforeJob(ZendeskConfig.from_env(sb.env())) as client, pytest.raises(Crash):
        run(sb, home, [email], client=client, concurrency=1)
    olgas = ids[3]
    with sb.state.lock:
        sb.state.tickets[olgas].requester_id = other
    (job,) = run(sb, home, [email], concurrency=1).jobs
    assert sb.state.ticket_lifecycle(olgas) == "live"
    assert all(sb.state.ticket_lifecycle(t) != "live" for t in ids if t != olgas)
    sent = [e["query"] for e in sb.request_log() if e["path"] == SOFT_MANY]
    assert len(sent) == 1 and str(olgas) not in sent[0].replace("%2C", ",").split("=")[1]
    assert job.status == "needs_review"
    assert f"ticket {olgas} has another requester since the plan: left alone" in job.reasons


def test_a_subject_held_for_review_hands_nothing_to_permanent_deletion(
    sb: SandboxServer, home: Path
) -> None:
    """Found by ``bench/ticket_soak.py``: a person stopped for review in ``erase_tickets``
    (a planned ticket changed hands) had queued their other soft-deleted tickets for the
    batch's shared permanent-deletion job; the next subject's job purged them, while the
    person's ledger (and report) never recorded it. Stopped for review, nothing
    irreversible happens: the tickets stay soft-deleted, as the ledger says."""
    email, _, ids = person(sb, 1, MANY)
    second, _, theirs = person(sb, 2, MANY)
    other = sb.state.add_user("Olga Other", email="olga@example.net")["id"]
    with CrashBeforeJob(ZendeskConfig.from_env(sb.env())) as client, pytest.raises(Crash):
        run(sb, home, [email], client=client, concurrency=1)
    olgas = ids[3]
    with sb.state.lock:
        sb.state.tickets[olgas].requester_id = other
    held, done = run(sb, home, [email, second], concurrency=1).jobs
    assert held.status == "needs_review"
    assert done.outcome == "pending_compliance"
    assert {sb.state.ticket_lifecycle(t) for t in theirs} == {"permanently_deleted"}
    assert sb.state.ticket_lifecycle(olgas) == "live"
    rest = [t for t in ids if t != olgas]
    assert {sb.state.ticket_lifecycle(t) for t in rest} == {"soft_deleted"}
    history = TicketHistory.from_entries(entries(home, held.request_id))
    assert history.purges == {} and history.purged == []
    assert history.soft_deleted == rest
    shown = rows(evidence(home, held.request_id))
    assert not any(shown[t]["permanently_deleted"] for t in ids)
    assert all(shown[t]["soft_deleted"] for t in rest)


def test_history_reads_both_forms_of_soft_deletion() -> None:
    from dataclasses import dataclass

    @dataclass
    class E:
        step_key: str
        phase: str
        data: dict[str, Any]

    history = TicketHistory.from_entries(
        [
            E("ticket:soft_delete:3", "intent", {"ticket_id": 3}),
            E("ticket:soft_delete:3", "outcome", {"state": "soft_deleted"}),
            E("ticket:soft_delete_many:5", "intent", {"ticket_ids": [5, 6, 7]}),
            E("ticket:soft_delete_many:5", "info", {"job_id": "J1", "ticket_ids": [5, 6, 7]}),
            E(
                "ticket:soft_delete_many:5",
                "outcome",
                {"ticket_ids": [5, 6, 7], "soft_deleted": [5, 7], "not_soft_deleted": [6]},
            ),
            E("ticket:soft_delete_many:9", "intent", {"ticket_ids": [9, 10]}),
            E("ticket:soft_delete_many:9", "info", {"job_id": "J2", "ticket_ids": [9, 10]}),
        ]
    )
    assert history.soft_deleted == [3, 5, 7]
    (still_open,) = history.open_delete_groups()
    assert (still_open.first, still_open.ticket_ids, still_open.job_ids) == (9, [9, 10], ["J2"])


def test_polls_start_at_the_duration_jobs_showed_lately(frozen_sandbox: SandboxServer) -> None:
    """On a clock that only moves when the poller sleeps: the first job is polled from
    0.05 s up; later ones first when earlier jobs were still seen running."""
    sb = frozen_sandbox
    user = sb.state.add_user("Polly", email="polly@example.com")["id"]
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        sb.advance(seconds)

    class Counting(ZendeskClient):
        polls = 0

        def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
            Counting.polls += 1
            return super().show_many_job_statuses(job_ids)

    polls = []
    with Counting(ZendeskConfig.from_env(sb.env())) as client:
        jobs = purge.TicketJobs(client, sleep=sleep, clock=lambda: now[0], scale=lambda: 1.0)
        for n in range(4):
            ids = [sb.state.add_ticket(user, "closed", f"P{n}.{i}")["id"] for i in range(3)]
            before = Counting.polls
            jobs.add(ids, kind=purge.SOFT_DELETE)
            assert jobs.wait(ids, kind=purge.SOFT_DELETE).done == ids
            polls.append(Counting.polls - before)
    # The sandbox's jobs take 2 virtual seconds: 0.05, 0.15, 0.35, 0.75, 1.55, 3.15.
    assert polls[0] == 6
    assert all(p <= 3 for p in polls[1:]), polls
    assert jobs.submitted == {purge.SOFT_DELETE: 4, purge.PURGE: 0}
