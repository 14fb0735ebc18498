"""Bulk soft deletion (#14): a batch's users are soft-deleted with ``destroy_many`` jobs,
each user's intent and outcome recorded; only what the job reports is concluded."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from privacykit.config import ZendeskConfig
from privacykit.errors import ServerError, ValidationError
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import EraseOptions, erase, pipeline
from privacykit.playbooks.erasure.bulk import soft_delete_many
from privacykit.playbooks.erasure.state import ErasureJob, UserState
from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook
from privacykit.playbooks.request import RequestSession
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import ZendeskClient
from tests.conftest import erase_people

ERASURE = builtin_playbook_dir() / "erasure.yaml"


def test_a_batch_soft_deletes_its_users_in_bulk(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bulk thread waits for subjects still being prepared only up to a floor (50 ms at
    # this time scale); on a loaded machine preparing 12 subjects takes longer and the users
    # were split into more (or lone) batches. A long floor makes the grouping independent of
    # the machine's speed: the wait still ends as soon as no subject is being prepared.
    monkeypatch.setattr(pipeline, "BULK_LINGER_FLOOR", 60.0)
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=2) as sb:
        ids = [sb.state.add_user(f"P{i}", email=f"p{i}@example.com")["id"] for i in range(12)]
        report = erase_people(sb, home, [f"p{i}@example.com" for i in range(12)], concurrency=4)
        assert {j.outcome for j in report.jobs} == {"pending_compliance"}
        log = sb.request_log()
        single = [
            e
            for e in log
            if e["method"] == "DELETE"
            and e["path"].startswith("/api/v2/users/")
            and e["path"] != "/api/v2/users/destroy_many"
        ]
        bulk = [e for e in log if e["path"] == "/api/v2/users/destroy_many"]
        assert single == [], "no user was soft-deleted one by one"
        assert 1 <= len(bulk) <= math.ceil(12 / 3)
        assert all(sb.state.user_status(uid) == "permanently_deleted" for uid in ids)
        with Ledger.open(home) as ledger:
            for job in report.jobs:
                (uid,) = job.users
                outcome = ledger.step_outcome(job.request_id or "", f"soft_delete:user:{uid}")
                assert outcome is not None and outcome["state"] == "soft_deleted"
                assert outcome["job_id"]


def test_a_batch_of_subjects_signs_two_checkpoints_not_one_per_report(
    evidence_home: Path,
) -> None:
    # #13: every report used to add a checkpoint (N + 1 for N subjects). A batch signs one
    # that every report references, and one covering the reports' registrations.
    home = evidence_home
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=4) as sb:
        for i in range(4):
            sb.state.add_user(f"Q{i}", email=f"q{i}@example.com")
        with Ledger.open(home) as ledger:
            before = len(ledger.checkpoints())
        with (
            ZendeskClient(ZendeskConfig.from_env(sb.env())) as client,
            Ledger.open(home) as ledger,
        ):
            report = erase(
                client,
                ledger,
                EraseOptions(
                    subjects=[parse_subject(f"q{i}@example.com") for i in range(4)],
                    playbook=load_playbook(ERASURE),
                    yes=True,
                    concurrency=4,
                ),
                home=home,
            )
    assert all(job.report_path for job in report.jobs)
    with Ledger.open(home, readonly=True) as reader:
        checkpoints = reader.checkpoints()
        assert len(checkpoints) == before + 2
        reader.verify()
    from pypdf import PdfReader

    run_checkpoint = checkpoints[before]
    for job in report.jobs:
        text = " ".join(
            " ".join((page.extract_text() or "").split())
            for page in PdfReader(job.report_path).pages
        )
        assert f"Checkpoint root (SHA-256) {run_checkpoint.root_hex}" in text


class FakeClient:
    """destroy_many/show_job_status answering what each test needs."""

    def __init__(self, results: Any = None, error: Exception | None = None) -> None:
        self.results = results
        self.error = error
        self.sent: list[list[int]] = []
        self.polls = 0

    def destroy_many(self, ids: list[int]) -> dict[str, Any]:
        self.sent.append(list(ids))
        if self.error is not None:
            raise self.error
        return {"id": "job1", "status": "queued"}

    def show_job_status(self, job_id: str) -> dict[str, Any]:
        self.polls += 1
        return {"id": job_id, "status": "completed", "results": self.results}


def _jobs(ledger: Ledger, n: int) -> list[tuple[ErasureJob, int]]:
    book = load_playbook(ERASURE)
    items = []
    for uid in range(1, n + 1):
        session = RequestSession.for_subject(ledger, "erasure", book, f"user:{uid}")
        session.open()
        job = ErasureJob(session=session, users={uid: UserState(uid, "end-user")})
        items.append((job, uid))
    return items


def _outcome(ledger: Ledger, job: ErasureJob, uid: int) -> dict[str, Any]:
    entries = [
        e.data
        for e in ledger.entries(job.request_id)
        if e.step_key == f"soft_delete:user:{uid}" and e.phase == "outcome"
    ]
    return entries[-1]


def test_only_what_the_job_reports_is_concluded(ledger: Ledger) -> None:
    items = _jobs(ledger, 4)
    results = [
        {"id": 1, "success": True, "status": "Deleted"},
        {"id": 2, "success": False, "status": "Failed", "error": "RecordInvalid"},
        {"id": 3, "success": "yes"},  # unreadable: unknown
    ]  # user 4: not reported at all
    client = FakeClient(results)
    assert soft_delete_many(client, items, sleep=lambda s: None) == 1  # type: ignore[arg-type]
    assert client.sent == [[1, 2, 3, 4]] and client.polls == 1
    states = [
        ledger.step_state(job.request_id or "", f"soft_delete:user:{uid}") for job, uid in items
    ]
    assert states == ["done", "none", "intent", "intent"]
    assert [job.users[uid].soft_deleted for job, uid in items] == [True, False, False, False]
    assert _outcome(ledger, *items[1])["result"] == "failed"
    assert _outcome(ledger, *items[2])["result"] == "unknown"
    # A second call leaves every user to its own step: done ones skipped, others reconciled.
    again = FakeClient(results)
    assert soft_delete_many(again, items, sleep=lambda s: None) == 0  # type: ignore[arg-type]
    assert again.sent == [[2]]


@pytest.mark.parametrize(
    ("error", "result"),
    [
        (ValidationError("422", response=httpx.Response(422)), "failed"),
        (ServerError("503", response=httpx.Response(503)), "unknown"),
    ],
)
def test_a_refused_request_queued_nothing_an_unanswered_one_may_have(
    ledger: Ledger, error: Exception, result: str
) -> None:
    items = _jobs(ledger, 3)
    client = FakeClient(error=error)
    assert soft_delete_many(client, items, sleep=lambda s: None) == 0  # type: ignore[arg-type]
    assert {_outcome(ledger, job, uid)["result"] for job, uid in items} == {result}


class SlowJobClient(FakeClient):
    """A job that takes ``duration`` seconds on the clock the sleeps advance."""

    def __init__(self, results: Any, duration: float) -> None:
        super().__init__(results)
        self.duration = duration
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def show_job_status(self, job_id: str) -> dict[str, Any]:
        self.polls += 1
        if self.now < self.duration:
            return {"id": job_id, "status": "working", "results": None}
        return {"id": job_id, "status": "completed", "results": self.results}


@pytest.mark.parametrize(("duration", "most_polls"), [(2.0, 2), (20.0, 5), (120.0, 18)])
def test_a_job_is_not_polled_more_than_it_can_show(
    ledger: Ledger, duration: float, most_polls: int
) -> None:
    # Every poll spends the account budget the erasures share (#14): a 2 s job is looked
    # at twice, a long one about every 8 s -- and each still to its end.
    items = _jobs(ledger, 3)
    client = SlowJobClient([{"id": uid, "success": True} for _, uid in items], duration)
    assert soft_delete_many(client, items, sleep=client.sleep) == 3  # type: ignore[arg-type]
    assert client.polls <= most_polls
    assert client.now - duration < 8.0 + 1e-9  # never more than one gap late
