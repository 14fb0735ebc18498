"""Running a subjects file again: subjects whose erasure finished are reported as
"already erased on DATE (REQ)" and skipped, unless ``--new-request`` (real sandbox over
loopback, real ledger, the real CLI)."""

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
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import DEMO_ERASE_EMAIL

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def demo(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="demo", users=3, time_scale=600.0, rng_seed=1)
    return server


def invoke(*args: str, input: str | None = None) -> Any:
    with clock.frozen(T0):
        return CliRunner().invoke(cli, ["erase", *args], input=input)


def erased_request(sb: SandboxServer) -> str:
    """The demo person erased to the end (compliance confirmed): its request id."""
    first = invoke(DEMO_ERASE_EMAIL, "--yes", "--no-report", "--json")
    assert first.exit_code == 0, first.output
    (request,) = json.loads(first.stdout)["requests"]
    sb.advance(2 * 3600)
    assert invoke("--resume", "--no-report").exit_code == 0
    return str(request["request_id"])


def test_finished_subject_is_skipped_and_others_run(demo: SandboxServer, home: Path) -> None:
    rid = erased_request(demo)
    subjects = home.parent / "subjects.txt"
    subjects.write_text(f"{DEMO_ERASE_EMAIL}\nnobody@example.net\n", encoding="utf-8")
    result = invoke("--from-file", str(subjects), "--yes", "--no-report")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"#1 email address: already erased on 2026-03-02 ({rid}); skipped"
    assert lines[1] == (
        "1 subject(s) skipped as already erased (--new-request if a person asked again)"
    )
    assert lines[2].startswith("#2 email address req-20260302-")
    assert lines[2].endswith(
        ": no data found (searched Zendesk Support users, "
        "Zendesk user identities, Sunshine profiles)"
    )
    assert lines[3].startswith("1 request(s): 1 no data found (")
    with Ledger.open(home) as led:
        erasures = led.list_requests(kind="erasure")
    assert len(erasures) == 2  # no second request for the erased person


def test_everyone_finished_is_nothing_to_do(demo: SandboxServer) -> None:
    rid = erased_request(demo)
    result = invoke(DEMO_ERASE_EMAIL, "--yes", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["requests"] == []
    assert document["skipped"] == [
        {
            "index": 1,
            "label": "#1 email address",
            "subject_ref": document["skipped"][0]["subject_ref"],
            "skipped": "already_erased",
            "on": "2026-03-02",
            "request_id": rid,
            "text": f"already erased on 2026-03-02 ({rid})",
        }
    ]
    assert document["skipped"][0]["subject_ref"].startswith("sr1:")
    text = invoke(DEMO_ERASE_EMAIL, "--dry-run")
    assert text.exit_code == 0
    assert text.stdout == (
        f"#1 email address: already erased on 2026-03-02 ({rid}); skipped\n"
        "1 subject(s) skipped as already erased (--new-request if a person asked again)\n"
        "0 request(s): nothing to do\n"
    )


def test_new_request_runs_it_again(demo: SandboxServer) -> None:
    rid = erased_request(demo)
    result = invoke(DEMO_ERASE_EMAIL, "--yes", "--no-report", "--new-request", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["skipped"] == []
    (request,) = document["requests"]
    assert request["request_id"] != rid and request["outcome"] == "no_data_found"


def test_completion_time_is_when_zendesk_reported_the_last_application(
    demo: SandboxServer, home: Path
) -> None:
    rid = erased_request(demo)
    with Ledger.open(home) as led:
        (record,) = [e.data for e in led.entries(rid) if e.step_key == "evidence"][-1:]
    assert record["outcome"] == "erased"
    last = max(row["at"] for row in record["compliance"] if row["status"] == "complete")
    assert record["compliance_completed_at"] == last
    assert record["completed_at"] == last
