"""A batch erasure that cannot go on stops cleanly (#14): Zendesk asking to wait longer than
``--max-wait``, or a disk that cannot be written. One line says why (and when to come
back), the summary is still printed, exit 1, and ``--resume`` finishes everything."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.errors import LedgerIntegrityError
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer


@pytest.fixture
def sb(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="none", time_scale=600.0, rng_seed=3)
    return server


def people(sb: SandboxServer, home: Path, n: int) -> tuple[Path, list[int]]:
    ids = []
    for i in range(n):
        ids.append(sb.state.add_user(f"Person {i}", email=f"p{i}@example.com")["id"])
    path = home.parent / "subjects.txt"
    path.write_text("".join(f"p{i}@example.com\n" for i in range(n)))
    return path, ids


def erase(*args: str) -> Any:
    return CliRunner().invoke(cli, ["erase", *args])


def test_a_wait_past_max_wait_stops_the_batch_cleanly(sb: SandboxServer, home: Path) -> None:
    path, ids = people(sb, home, 4)
    # The first permanent deletion is answered 429 "come back in a day".
    sb.configure(
        {
            "throttle": {"endpoints": ["DELETE /api/v2/deleted_users/{id}"], "times": 1},
            "retry_after": 86400,
        }
    )
    result = erase("--from-file", str(path), "--yes", "--no-report", "--concurrency", "2")
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if "Zendesk asked to wait" in x]
    assert line.startswith("Zendesk asked to wait 86400 s, longer than --max-wait: stopped;")
    assert "continue after 20" in line and line.endswith("Z")
    assert "request(s):" in result.stdout, "the summary is still printed"
    assert "Continue with: privacykit erase --resume --yes" in result.stdout
    with Ledger.open(home) as ledger:
        statuses = {r.status for r in ledger.list_requests(kind="erasure")}
        assert "needs_review" not in statuses and "failed" not in statuses
    log = sb.request_log()
    throttled = [e for e in log if e["status"] == 429]
    assert len(throttled) == 1, "no retry of the refused request, no wait"

    sb.configure({"retry_after": None})
    again = erase("--from-file", str(path), "--yes", "--no-report", "--resume", "--json")
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert document["stopped"] is None
    for uid in ids:
        assert sb.state.user_status(uid) == "permanently_deleted"
    deletes = [e for e in sb.request_log() if e["method"] == "DELETE" and e["status"] == 200]
    permanent = [e for e in deletes if e["path"].startswith("/api/v2/deleted_users/")]
    assert sorted(int(e["path"].rsplit("/", 1)[1]) for e in permanent) == sorted(ids)


def test_a_stop_before_discovery_finished_asks_for_the_subjects_again(
    sb: SandboxServer, home: Path
) -> None:
    # The ledger keeps only keyed hashes: a request stopped while its person was still
    # being looked up continues only with its subject; `--resume` alone would end it as
    # needing review, so the advice names the subjects and following it finishes the job.
    path, ids = people(sb, home, 1)
    sb.configure(
        {
            "throttle": {"endpoints": ["GET /api/v2/users/{id}/identities"], "times": 1},
            "retry_after": 86400,
        }
    )
    result = CliRunner().invoke(
        cli, ["erase", "--from-file", "-", "--yes", "--no-report"], input=path.read_text()
    )
    assert result.exit_code == 1, result.output
    assert "Zendesk asked to wait 86400 s" in result.stderr
    assert (
        "Continue with: privacykit erase --resume --yes --from-file - < SUBJECTS_FILE"
        in result.stdout
    )
    sb.configure({"retry_after": None})
    again = CliRunner().invoke(
        cli,
        ["erase", "--resume", "--yes", "--no-report", "--from-file", "-"],
        input=path.read_text(),
    )
    assert again.exit_code == 0, again.output
    assert sb.state.user_status(ids[0]) == "permanently_deleted"
    with Ledger.open(home) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        assert request.status in ("pending_compliance", "completed")


def test_a_full_disk_stops_the_batch_with_one_line(
    sb: SandboxServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, ids = people(sb, home, 3)
    real_record = Ledger.record
    real_checkpoint = Ledger.checkpoint
    calls = {"n": 0}

    def record(self: Ledger, *args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] > 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_record(self, *args, **kwargs)

    def checkpoint(self: Ledger) -> Any:
        if calls["n"] > 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_checkpoint(self)

    monkeypatch.setattr(Ledger, "record", record)
    monkeypatch.setattr(Ledger, "checkpoint", checkpoint)
    result = erase("--from-file", str(path), "--yes", "--no-report", "--concurrency", "1")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("No space left on device") == 1
    assert "stopped: a file could not be written (No space left on device)" in result.stderr
    assert "request(s):" in result.stdout

    monkeypatch.setattr(Ledger, "record", real_record)
    monkeypatch.setattr(Ledger, "checkpoint", real_checkpoint)
    again = erase("--from-file", str(path), "--yes", "--no-report", "--resume")
    assert again.exit_code == 0, again.output
    assert all(sb.state.user_status(uid) == "permanently_deleted" for uid in ids)
    with Ledger.open(home) as ledger:
        ledger.verify()


def test_after_a_full_disk_the_next_run_signs_its_reports(
    sb: SandboxServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stopped run could not sign its last checkpoint, so the ledger ends with entries
    # no checkpoint covers, and reports are signed only over a ledger that verifies: the
    # next run signs that tail first (verifying everything), then its reports (#14).
    path, ids = people(sb, home, 2)
    real_record, real_checkpoint = Ledger.record, Ledger.checkpoint
    calls = {"n": 0}

    def record(self: Ledger, *args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] > 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_record(self, *args, **kwargs)

    def checkpoint(self: Ledger) -> Any:
        if calls["n"] > 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_checkpoint(self)

    monkeypatch.setattr(Ledger, "record", record)
    monkeypatch.setattr(Ledger, "checkpoint", checkpoint)
    result = erase("--from-file", str(path), "--yes", "--concurrency", "1")
    assert result.exit_code == 1, result.output
    assert "stopped: a file could not be written (No space left on device)" in result.stderr
    with Ledger.open(home, readonly=True) as reader, pytest.raises(LedgerIntegrityError):
        reader.verify()  # the unsigned tail the stopped run left

    monkeypatch.setattr(Ledger, "record", real_record)
    monkeypatch.setattr(Ledger, "checkpoint", real_checkpoint)
    again = erase("--from-file", str(path), "--yes", "--resume", "--json")
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert document["stopped"] is None
    assert all(sb.state.user_status(uid) == "permanently_deleted" for uid in ids)
    assert all(view["report"] for view in document["requests"]), document["requests"]
    with Ledger.open(home, readonly=True) as reader:
        reader.verify()
