"""Crash-safe resume: a process killed (SIGKILL) at any step boundary resumes without
skipping a step and without a second destructive call.

A minimal engine loop drives the ledger's step API the way the erasure engine does: check
``step_state``, reconcile an ``intent`` with the remote state, otherwise run the step
inside ``ledger.step()``. The "remote" is a file of non-idempotent delete calls, fsync'd,
so it survives the kill like Zendesk would. The engine runs in a child process that kills
itself with SIGKILL at the chosen boundary: nothing after that point is written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from privacykit.errors import LedgerIntegrityError
from privacykit.ledger import Ledger

SUBJECT = "email:resume.subject@example.com"
USERS = (11, 12, 13)
POINTS = ("before_intent", "after_intent", "after_call", "after_outcome")
BOUNDARIES = [(user, point) for user in USERS for point in POINTS]


class RemoteDeletes:
    """A non-idempotent remote action (like a permanent delete): every call is appended and
    fsync'd, so duplicates are visible."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self) -> list[int]:
        if not self.path.exists():
            return []
        return [int(line) for line in self.path.read_text().split()]

    def is_deleted(self, user_id: int) -> bool:
        return user_id in self.calls()

    def delete(self, user_id: int) -> None:
        with open(self.path, "a") as handle:
            handle.write(f"{user_id}\n")
            handle.flush()
            os.fsync(handle.fileno())


def run_engine(home: Path, remote_path: Path, crash_at: tuple[int, str] | None = None) -> str:
    remote = RemoteDeletes(remote_path)

    def boundary(user_id: int, point: str) -> None:
        if crash_at == (user_id, point):
            os.kill(os.getpid(), signal.SIGKILL)

    with Ledger.open(home) as ledger:
        ref = ledger.subject_ref(SUBJECT)
        found = ledger.find_open_request("erasure", ref)
        if found is None:
            rid = ledger.create_request("erasure", ref, received_at="2026-03-01")
            ledger.set_status(rid, "in_progress")
        else:
            rid = found.request_id
        for user_id in USERS:
            key = f"permanent_delete:user:{user_id}"
            boundary(user_id, "before_intent")
            state = ledger.step_state(rid, key)
            if state == "done":
                continue
            if state == "intent" and remote.is_deleted(user_id):
                # The call went through before the crash: record it, do not repeat it.
                ledger.record(rid, key, "outcome", {"user_id": user_id, "reconciled": True})
                continue
            with ledger.step(
                rid, key, {"user_id": user_id}, allow_repeat=state == "intent"
            ) as step:
                boundary(user_id, "after_intent")
                remote.delete(user_id)
                boundary(user_id, "after_call")
                step.done({"user_id": user_id, "status": 204})
            boundary(user_id, "after_outcome")
        ledger.set_status(rid, "completed")
        ledger.checkpoint()
    return rid


def run_killed(home: Path, remote_path: Path, crash_at: tuple[int, str]) -> None:
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from test_ledger_resume import run_engine; "
        "run_engine(Path(sys.argv[2]), Path(sys.argv[3]), (int(sys.argv[4]), sys.argv[5]))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(Path(__file__).parent),
            str(home),
            str(remote_path),
            str(crash_at[0]),
            crash_at[1],
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()


@pytest.mark.parametrize(("user_id", "point"), BOUNDARIES, ids=[f"{u}-{p}" for u, p in BOUNDARIES])
def test_killed_at_boundary_resumes_exactly_once(tmp_path: Path, user_id: int, point: str) -> None:
    home, remote_path = tmp_path / "home", tmp_path / "remote.txt"
    run_killed(home, remote_path, (user_id, point))
    key = f"permanent_delete:user:{user_id}"
    # Intact, but nothing signed what the killed run wrote: a reader names it, until the
    # run is resumed (the resuming run signs it).
    with Ledger.open(home, readonly=True) as reader:
        with pytest.raises(LedgerIntegrityError, match="no run is writing them") as caught:
            reader.verify()
    assert caught.value.entry == 1
    with Ledger.open(home) as ledger:
        [request] = ledger.list_requests()
        state = ledger.step_state(request.request_id, key)
        # What the engine sees after the crash: an intent without an outcome is "intent",
        # never "none", so it reconciles instead of calling the destructive API blindly.
        expected = {
            "before_intent": "none",
            "after_intent": "intent",
            "after_call": "intent",
            "after_outcome": "done",
        }[point]
        assert state == expected
        # A writer (the run that resumes it, and will sign it) sees the tail as stale.
        report = ledger.verify()
        assert (report.unsigned_from, report.stale_unsigned_to) == (1, ledger.size)
    remote = RemoteDeletes(remote_path)
    assert remote.calls() == [
        u
        for u in USERS
        if u < user_id or (u == user_id and point in ("after_call", "after_outcome"))
    ]

    rid = run_engine(home, remote_path)
    assert rid == request.request_id  # the same request was resumed
    assert sorted(remote.calls()) == list(USERS)  # each destructive call exactly once
    with Ledger.open(home) as ledger:
        assert ledger.get_request(rid).status == "completed"
        for user in USERS:
            assert ledger.step_state(rid, f"permanent_delete:user:{user}") == "done"
        info = ledger.step_info(rid, key)
        if point == "after_call":
            assert info.outcome == {"user_id": user_id, "reconciled": True, "result": "ok"}
            assert info.attempts == 1
        if point == "after_intent":
            assert info.attempts == 2  # the first intent never reached the remote: retried
        report = ledger.verify()
        assert report.checkpoints == 1


def test_repeated_crashes_at_successive_boundaries(tmp_path: Path) -> None:
    home, remote_path = tmp_path / "home", tmp_path / "remote.txt"
    # Every third boundary in order: each run dies a little further along.
    for boundary in BOUNDARIES[1::3]:
        run_killed(home, remote_path, boundary)
    run_engine(home, remote_path)
    assert sorted(RemoteDeletes(remote_path).calls()) == list(USERS)
    with Ledger.open(home) as ledger:
        [request] = ledger.list_requests()
        assert request.status == "completed"
        ledger.verify()
