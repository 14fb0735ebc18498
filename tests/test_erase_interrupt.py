"""Ctrl-C in a batch: what was done and how to continue is printed, the batch is
remembered (keyed references only) and ``erase --resume --from-file FILE`` continues the
subjects that had not started (real sandbox over loopback, real ledger, the real CLI; the
interrupt raised in-process at a step, and a real SIGINT to a subprocess)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit import clock
from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure.steps import ErasureRunner
from privacykit.sandbox import SandboxServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def sb(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="none", time_scale=600.0, rng_seed=1)
    return server


def invoke(*args: str) -> Any:
    with clock.frozen(T0):
        return CliRunner().invoke(cli, ["erase", *args])


def subjects_file(home: Path, sb: SandboxServer) -> tuple[Path, list[int]]:
    """Two people without data, then three real end users."""
    ids = [int(sb.state.add_user(f"P{i}", email=f"p{i}@example.com")["id"]) for i in (3, 4, 5)]
    path = home.parent / "subjects.txt"
    path.write_text(
        "none1@example.net\nnone2@example.net\np3@example.com\np4@example.com\np5@example.com\n",
        encoding="utf-8",
    )
    return path, ids


def interrupt_at_soft_delete(monkeypatch: pytest.MonkeyPatch, user_id: int) -> Any:
    """The operator's Ctrl-C, arriving while the batch soft-deletes ``user_id``; returns
    the original method."""
    original = ErasureRunner.soft_delete_one

    def soft_delete_one(self: ErasureRunner, job: Any, uid: int) -> None:
        if uid == user_id:
            raise KeyboardInterrupt
        original(self, job, uid)

    monkeypatch.setattr(ErasureRunner, "soft_delete_one", soft_delete_one)
    return original


def test_ctrl_c_says_what_was_done_and_resume_continues_the_rest(
    sb: SandboxServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, (p3, p4, p5) = subjects_file(home, sb)
    original = interrupt_at_soft_delete(monkeypatch, p3)
    result = invoke("--from-file", str(path), "--yes", "--no-report", "--concurrency", "1")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#1 email address req-20260302-")
    assert lines[0].endswith(
        ": no data found (searched Zendesk Support users, "
        "Zendesk user identities, Sunshine profiles)"
    )
    assert lines[1].startswith("#2 email address req-20260302-")
    rid3 = lines[2].split()[3].rstrip(":")
    assert lines[2] == f"#3 email address {rid3}: interrupted (continues with --resume)"
    assert lines[3:5] == ["#4 email address -: not started", "#5 email address -: not started"]
    assert lines[5].startswith("5 request(s): 1 interrupted, 2 no data found, 2 not started (")
    with Ledger.open(home) as led:
        batch_id = led.get_request(rid3).batch_id
        rid1, rid2 = (line.split()[3].rstrip(":") for line in lines[:2])
        refs = [led.subject_ref(f"email:p{i}@example.com") for i in (4, 5)]
    assert lines[6:] == [
        "Interrupted: 2 request(s) finished, 1 stopped mid-way (recorded; nothing half-done "
        f"is lost), 2 subject(s) not started (batch {batch_id}).",
        f"Continue with: privacykit erase --resume --yes --from-file {path}",
    ]
    assert "Aborted!" not in result.output
    # The batch is remembered by keyed references only.
    memory = json.loads((home / "batches" / f"{batch_id}.json").read_text(encoding="utf-8"))
    assert memory["subject_refs"][3:] == refs
    assert "example" not in json.dumps(memory)
    assert sb.state.user_status(p3) == "active"  # the interrupted step never ran

    # --resume alone continues the interrupted request and names the waiting batch.
    monkeypatch.setattr(ErasureRunner, "soft_delete_one", original)
    alone = invoke("--resume", "--yes", "--no-report", "--json")
    document = json.loads(alone.stdout)
    assert [r["request_id"] for r in document["requests"]] == [rid3]
    assert document["waiting_batches"] == [
        {
            "batch_id": batch_id,
            "created_at": "2026-03-02T09:00:00Z",
            "subjects": 5,
            "not_started": 2,
            "given_now": 0,
        }
    ]
    # With the file: the two not started run under the same batch, the rest is skipped.
    again = invoke("--resume", "--yes", "--no-report", "--from-file", str(path))
    assert again.exit_code == 0, again.output
    out = again.stdout.splitlines()
    assert (
        out[0]
        == f"#1 email address: already finished on 2026-03-02 in this batch ({rid1}); skipped"
    )
    assert (
        out[1]
        == f"#2 email address: already finished on 2026-03-02 in this batch ({rid2}); skipped"
    )
    assert out[2] == "2 subject(s) skipped as finished in this batch"
    done = (
        " pending compliance (users 1/1 permanently deleted, profiles 0 deleted / 0 scrubbed / 0)"
    )
    assert out[3] == f"#3 email address {rid3}:{done}"
    assert out[4].startswith("#4 email address req-") and out[4].endswith(done)
    assert out[5].startswith("#5 email address req-") and out[5].endswith(done)
    assert out[6].startswith("3 request(s): 3 pending compliance (")
    with Ledger.open(home) as led:
        assert {led.get_request(out[i].split()[3].rstrip(":")).batch_id for i in (4, 5)} == {
            batch_id
        }
    assert sb.state.user_status(p4) != "active" and sb.state.user_status(p5) != "active"
    assert not (home / "batches" / f"{batch_id}.json").exists()  # nothing left to start


_SIGINT_DRIVER = """
import os, signal, sys
from privacykit.cli import main
from privacykit.playbooks.erasure.steps import ErasureRunner

target = int(sys.argv[1])
original = ErasureRunner.soft_delete_one

def soft_delete_one(self, job, uid):
    if uid == target:
        # A real SIGINT to this process, as a terminal's Ctrl-C sends it; the main thread
        # gets it while it waits for the batch, and this worker stops at its next boundary.
        os.kill(os.getpid(), signal.SIGINT)
        self.aborted.wait(100)  # bounded by the test's own timeout, not by machine speed
        self.check_abort()
    original(self, job, uid)

ErasureRunner.soft_delete_one = soft_delete_one
sys.argv = ["privacykit", *sys.argv[2:]]
main()
"""


def test_a_real_sigint_to_a_subprocess(sb: SandboxServer, home: Path) -> None:
    import os
    import subprocess
    import sys

    path, (p3, _p4, _p5) = subjects_file(home, sb)
    env = {**os.environ, **sb.env(), "PRIVACYKIT_HOME": str(home)}
    for key in ("ZENDESK_SUBDOMAIN", "ZENDESK_OAUTH_TOKEN"):
        env.pop(key, None)
    args = ["erase", "--from-file", str(path), "--yes", "--no-report", "--concurrency", "1"]
    done = subprocess.run(
        [sys.executable, "-c", _SIGINT_DRIVER, str(p3), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Aborted!" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[2].endswith(": interrupted (continues with --resume)")
    assert lines[3:5] == ["#4 email address -: not started", "#5 email address -: not started"]
    assert lines[-1] == f"Continue with: privacykit erase --resume --yes --from-file {path}"
    assert lines[-2].startswith("Interrupted: 2 request(s) finished, 1 stopped mid-way")
    assert sb.state.user_status(p3) == "active"


def test_ctrl_c_while_planning_changes_nothing(
    sb: SandboxServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacykit.playbooks.erasure import ErasureBatch

    def plan(self: ErasureBatch) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(ErasureBatch, "plan", plan)
    result = invoke("p3@example.com", "--dry-run")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Interrupted before erasing anything: nothing was changed.\n"
    assert [e for e in sb.request_log() if e["method"] != "GET"] == []
