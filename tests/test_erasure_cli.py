"""`privacykit erase` through click: exact output and exit codes, confirmation, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import DEMO_AGENT_EMAIL, DEMO_ERASE_EMAIL


@pytest.fixture
def demo(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="demo", users=3, time_scale=600.0, rng_seed=1)
    return server


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["erase", *args], input=input)


def mutating(sb: SandboxServer) -> list[dict[str, Any]]:
    return [e for e in sb.request_log() if e["method"] != "GET"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to erase: give a SUBJECT, --from-file FILE or --resume"),
        (
            ("jane@example.com", "user:abc"),
            "SUBJECT 2: user:<id> needs a positive numeric Zendesk user id",
        ),
        (
            ("shop:customer:email",),
            "SUBJECT 1: an identifier query needs exactly four "
            "non-empty parts source:type:identifier_type:value",
        ),
        (("user:1", "--concurrency", "0"), "--concurrency must be between 1 and 64"),
        (("user:1", "--received", "yesterday"), "--received must be a date like 2026-01-31"),
        (("user:1", "--playbook", "nope"), "nope: no playbook named 'nope'"),
        (
            ("user:1", "--playbook", "access"),
            "playbook 'access' is for access requests, not erasure",
        ),
    ],
)
def test_input_errors_exit_2_with_one_line_and_send_nothing(
    demo: SandboxServer, args: tuple[str, ...], message: str
) -> None:
    result = invoke(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")
    assert demo.request_log() == []


def test_bad_file_line_is_named(demo: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "batch.txt"
    path.write_text("user:1\n\n# note\nnot-a-subject\n")
    result = invoke("--from-file", str(path), "--yes")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path}:4: not a subject; expected an email, user:<id>, ext:<external_id> "
        "or source:type:identifier_type:value\n"
    )
    assert demo.request_log() == []


def test_missing_configuration_is_a_usage_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("ZENDESK_SUBDOMAIN", "ZENDESK_URL", "ZENDESK_API_TOKEN", "ZENDESK_OAUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    result = invoke("user:1", "--yes")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: set ZENDESK_SUBDOMAIN or ZENDESK_URL to say which Zendesk to use\n"
    )


def test_dry_run_prints_the_plan_and_changes_nothing(demo: SandboxServer) -> None:
    result = invoke(DEMO_ERASE_EMAIL, DEMO_AGENT_EMAIL, "--dry-run")
    assert result.exit_code == 1, result.output  # the agent would need review (#12)
    lines = result.stdout.splitlines()
    assert lines[0] == "#1 email address: 2 user(s), 2 identities, 3 profile(s)"
    assert sum(1 for line in lines if line.startswith("    profile ")) == 3
    assert lines[-3:] == [
        "    - agent or admin users are never erased by default: "
        f"user {demo.state.user_by_email(DEMO_AGENT_EMAIL)['id']} (agent)",  # type: ignore[index]
        "2 subject(s): 1 stopped for review, 1 to erase",
        "dry run: nothing was changed",
    ]
    assert "erin" not in result.stdout
    assert mutating(demo) == []


def test_declining_the_confirmation_changes_nothing(demo: SandboxServer) -> None:
    result = invoke(DEMO_ERASE_EMAIL, input="n\n")
    assert result.exit_code == 1
    assert "Erase now? This cannot be undone [y/N]: n" in result.stderr
    assert result.stderr.endswith("not confirmed: nothing was changed\n")
    assert result.stdout.startswith("#1 email address: 2 user(s)")
    assert mutating(demo) == []


def test_confirming_erases(demo: SandboxServer) -> None:
    result = invoke(DEMO_ERASE_EMAIL, "--no-report", input="y\n")
    assert result.exit_code == 0, result.output
    assert "pending compliance (users 2/2 permanently deleted, profiles 3 deleted" in result.stdout
    assert "run `privacykit erase --resume` later" in result.stdout
    assert demo.state.user_by_email(DEMO_ERASE_EMAIL) is None


def test_json_output_and_exit_code_1_when_review_is_needed(demo: SandboxServer) -> None:
    result = invoke(DEMO_ERASE_EMAIL, DEMO_AGENT_EMAIL, "--yes", "--json", "--no-report")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["summary"] == {"needs_review": 1, "pending_compliance": 1}
    assert document["exit_code"] == 1
    assert [r["status"] for r in document["requests"]] == ["pending_compliance", "needs_review"]
    assert document["checkpoint"]["tree_size"] > 0
    assert "erin" not in result.stdout


def test_report_path_is_printed(demo: SandboxServer, evidence_home: Path) -> None:
    result = invoke("nobody@example.net", "--yes")
    assert result.exit_code == 0, result.output
    first, report, summary = result.stdout.splitlines()
    assert first.startswith("#1 email address req-") and first.endswith(
        ": no data found (searched Zendesk Support users, Zendesk user identities, "
        "Sunshine profiles)"
    )
    assert report.startswith(f"    report: {evidence_home}") and report.endswith(".pdf")
    assert summary.startswith("1 request(s): 1 no data found (")


def test_resume_that_only_polls_does_not_ask(demo: SandboxServer) -> None:
    assert invoke(DEMO_ERASE_EMAIL, "--yes", "--no-report").exit_code == 0
    demo.advance(2 * 3600)
    result = invoke("--resume", "--no-report")  # no --yes, no input: nothing to confirm
    assert result.exit_code == 0, result.output
    assert "Erase now?" not in result.stderr
    assert result.stdout.splitlines()[-1].startswith("1 request(s): 1 erased (")
