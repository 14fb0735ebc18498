"""The pipeline's pool (#14): work on started jobs goes before new subjects, so a batch's
permanent deletions begin while later subjects are still being discovered."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from privacykit.playbooks.erasure import pipeline
from privacykit.playbooks.erasure.workers import CONTINUE, PREPARE, PriorityWorkers
from privacykit.sandbox import SandboxServer
from tests.conftest import erase_people


def test_a_continuation_is_taken_before_subjects_queued_earlier() -> None:
    errors: list[BaseException] = []
    order: list[str] = []
    busy, release = threading.Event(), threading.Event()

    def blocker() -> None:
        busy.set()
        assert release.wait(10)

    pool = PriorityWorkers(1, name="t", on_error=errors.append)
    try:
        pool.submit(blocker)
        assert busy.wait(10)
        for name in ("p1", "p2", "p3"):
            pool.submit(order.append, name, priority=PREPARE)
        pool.submit(order.append, "c1", priority=CONTINUE)
        pool.submit(order.append, "c2", priority=CONTINUE)
        assert pool.pending() == 5
        release.set()
    finally:
        pool.shutdown(cancel_pending=False)
    assert order == ["c1", "c2", "p1", "p2", "p3"]
    assert errors == []


def test_shutdown_drops_queued_work_and_a_raising_call_is_reported() -> None:
    errors: list[BaseException] = []
    ran: list[int] = []
    busy, release = threading.Event(), threading.Event()

    def blocker() -> None:
        busy.set()
        assert release.wait(10)
        raise RuntimeError("a bug")

    pool = PriorityWorkers(1, name="t", on_error=errors.append)
    pool.submit(blocker)
    assert busy.wait(10)
    pool.submit(ran.append, 1)
    release.set()
    pool.shutdown(cancel_pending=True)
    pool.submit(ran.append, 2)  # after shutdown: ignored, never run
    assert ran in ([], [1])  # the queued call may have been taken before the drop
    assert [str(e) for e in errors] == ["a bug"]


def test_deletions_start_before_the_last_subject_is_discovered(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bulk soft-deleter waits up to 2 s of the server's time for more users to join a
    # job; at this time scale that is 3 ms, but the scale is learned from answers, so
    # tell it (else the first job waits 2 real seconds, longer than this whole batch).
    monkeypatch.setattr(pipeline, "_server_scale", lambda client: 1 / 600)
    count = 80
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=3) as sb:
        for i in range(count):
            sb.state.add_user(f"P{i}", email=f"w{i}@example.com")
        report = erase_people(sb, home, [f"w{i}@example.com" for i in range(count)], concurrency=2)
        assert {j.outcome for j in report.jobs} == {"pending_compliance"}
        log = sb.request_log()
    searches = [n for n, e in enumerate(log) if e["path"] == "/api/v2/users/search"]
    deletions = [n for n, e in enumerate(log) if e["path"].startswith("/api/v2/deleted_users/")]
    assert len(searches) == count and len(deletions) == count
    # Planned-everything-first would put every search before the first deletion.
    assert deletions[0] < searches[-1]
