"""Fail closed (#12), the engine's part, end to end over real HTTP against the sandbox:
untrusted answers stop a subject for review naming the endpoint; blockers are found with
GET requests only; refused credentials stop before anything is recorded; a request runs
and is reported under the playbook it was opened with; the evidence record states the
final status, what was not done, interim and compliance completion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.playbooks.loader import builtin_playbook_dir
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import DEMO_AGENT_EMAIL, DEMO_BLOCKED_EMAIL, DEMO_ERASE_EMAIL


@pytest.fixture
def demo(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="demo", users=3, time_scale=600.0, rng_seed=1)
    return server


def erase(*args: str) -> Any:
    return CliRunner().invoke(cli, ["erase", *args])


def mutating(sb: SandboxServer, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in sb.request_log(since) if e["method"] != "GET"]


def requests(home: Path) -> list[Any]:
    with Ledger.open(home) as ledger:
        return ledger.list_requests(kind="erasure")


def evidence(home: Path, request_id: str) -> dict[str, Any]:
    with Ledger.open(home) as ledger:
        found = [e.data for e in ledger.entries(request_id) if e.step_key == "evidence"]
    assert found, "no evidence recorded"
    return found[-1]


MALFORMED = [
    ("GET /api/v2/users/search", "users_null"),
    ("GET /api/v2/users/search", "empty"),
    ("GET /api/v2/users/search", "bad_id"),
    ("GET /api/v2/users/{id}/identities", "identities_object"),
    ("GET /api/v2/users/{id}/profiles", "profiles_string"),
    ("GET /api/v2/users/search", "html"),
]


@pytest.mark.parametrize(("endpoint", "kind"), MALFORMED)
def test_a_malformed_answer_is_never_no_data_found(
    demo: SandboxServer, home: Path, endpoint: str, kind: str
) -> None:
    demo.configure({"malformed": {endpoint: kind}})
    planned = erase(DEMO_ERASE_EMAIL, "--dry-run")
    assert planned.exit_code == 1, planned.output
    assert "stops for review" in planned.stdout and endpoint in planned.stdout
    assert requests(home) == [], "a dry run records nothing"

    result = erase(DEMO_ERASE_EMAIL, "--yes", "--no-report", "--json")
    assert result.exit_code == 1, result.output
    (view,) = json.loads(result.stdout)["requests"]
    assert view["outcome"] == view["status"] == "needs_review"
    assert any(endpoint in reason for reason in view["reasons"]), view["reasons"]
    assert mutating(demo) == []
    (request,) = requests(home)
    assert request.status == "needs_review" and endpoint in (request.status_reason or "")
    record = evidence(home, request.request_id)
    assert record["status"] == "needs_review" and record["outcome"] != "no_data_found"
    assert record["not_done"] and record["not_done"][0]["item"] == "discovery"
    assert endpoint in record["not_done"][0]["why"]


def test_a_blocked_subject_is_found_read_only_and_never_changed(
    demo: SandboxServer, home: Path
) -> None:
    blake = demo.state.user_by_email(DEMO_BLOCKED_EMAIL)
    assert blake is not None
    profiles_before = demo.state.counts()
    planned = erase(DEMO_BLOCKED_EMAIL, DEMO_ERASE_EMAIL, "--dry-run")
    assert planned.exit_code == 1, planned.output
    assert {e["method"] for e in demo.request_log()} == {"GET"}
    assert f"user {blake['id']} is the requester of 1 ticket(s) that are not closed" in (
        planned.stdout
    )
    assert "2 subject(s): 1 stopped for review, 1 to erase" in planned.stdout

    since = demo.request_log()[-1]["seq"]
    result = erase(DEMO_BLOCKED_EMAIL, DEMO_ERASE_EMAIL, "--yes", "--no-report", "--json")
    assert result.exit_code == 1
    blocked, erased = json.loads(result.stdout)["requests"]
    assert blocked["status"] == "needs_review" and erased["status"] == "pending_compliance"
    # Mutations were sent for the other subject only: none names Blake or his profile.
    blake_profiles = {p["profile_id"] for p in blocked["profiles"]}
    for entry in mutating(demo, since):
        assert str(blake["id"]) not in entry["path"]
        assert not any(pid in entry["path"] for pid in blake_profiles)
    assert demo.state.user_by_email(DEMO_BLOCKED_EMAIL) is not None
    assert demo.state.counts()["profiles"] == profiles_before["profiles"] - 3
    record = evidence(home, blocked["request_id"])
    assert record["status"] == "needs_review"
    assert f"user {blake['id']}" in [item["item"] for item in record["not_done"]]
    assert record["users"][0]["blocking_tickets"]
    # His profile was left alone: the record says so, not what the plan would have done.
    (profile,) = record["profiles"]
    assert (profile["action"], profile["done"]) == ("deleted", False)
    assert (profile["identifiers_removed"], profile["events_remain"]) == (0, True)
    assert profile["identifiers_kept"] == 2


@pytest.mark.parametrize("extra", [("--yes",), ("--dry-run",)])
def test_wrong_token_stops_before_any_request_is_opened(
    demo: SandboxServer, home: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]
) -> None:
    monkeypatch.setenv("ZENDESK_API_TOKEN", "not-the-sandbox-token")
    result = erase(DEMO_ERASE_EMAIL, DEMO_AGENT_EMAIL, *extra)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: Zendesk refused the credentials (401): check ZENDESK_EMAIL/ZENDESK_API_TOKEN "
        "or ZENDESK_OAUTH_TOKEN\n"
    )
    assert [e["path"] for e in demo.request_log()] == ["/api/v2/users/me"]
    assert not (home / "ledger.sqlite3").exists()


def _agents_playbook(home: Path) -> Path:
    text = (builtin_playbook_dir() / "erasure.yaml").read_text()
    text = text.replace("name: erasure\n", "name: erase-agents\n", 1)
    folder = home / "playbooks"
    folder.mkdir(exist_ok=True)
    path = folder / "erase-agents.yaml"
    path.write_text(text + "\n# agents may be erased by this copy\n")
    return path


def test_a_request_is_reported_under_the_playbook_it_ran_with(
    demo: SandboxServer, home: Path
) -> None:
    path = _agents_playbook(home)
    first = erase(DEMO_ERASE_EMAIL, "--yes", "--no-report", "--playbook", "erase-agents")
    assert first.exit_code == 0, first.output
    (request,) = requests(home)
    assert request.playbook_name == "erase-agents"
    demo.advance(2 * 3600)
    # Continued by --resume with the default playbook given: it goes on under its own.
    path.unlink()  # even when the file is gone: the request keeps a copy
    again = erase("--resume", "--no-report")
    assert again.exit_code == 0, again.output
    (request,) = requests(home)
    record = evidence(home, request.request_id)
    assert record["status"] == request.status == "completed"
    assert record["playbook"] == {"name": "erase-agents", "sha256": request.playbook_sha256}
    # All but what Zendesk's redaction cannot remove (#15): where she wrote from, on the
    # comment she left on another customer's ticket.
    assert record["interim"] is False
    assert [n["item"] for n in record["not_done"]] == ["comment metadata on ticket(s) #3"]
    assert record["compliance_completed_at"] is not None


def test_a_new_playbook_supersedes_a_request_nothing_was_done_in(
    demo: SandboxServer, home: Path
) -> None:
    blocked = erase(DEMO_AGENT_EMAIL, "--yes", "--no-report")
    assert blocked.exit_code == 1
    (old,) = requests(home)
    assert (old.status, old.playbook_name) == ("needs_review", "erasure")
    text = (builtin_playbook_dir() / "erasure.yaml").read_text()
    assert "protected_roles" in text
    custom = home / "allow-agents.yaml"
    custom.write_text(
        text.replace("name: erasure\n", "name: allow-agents\n", 1).replace(
            "protected_roles: [agent, admin]", "protected_roles: []"
        )
    )
    result = erase(DEMO_AGENT_EMAIL, "--yes", "--no-report", "--playbook", str(custom))
    assert result.exit_code == 0, result.output
    by_id = {r.request_id: r for r in requests(home)}
    assert by_id[old.request_id].status == "failed"
    assert "superseded by" in (by_id[old.request_id].status_reason or "")
    (new,) = [r for r in by_id.values() if r.request_id != old.request_id]
    assert new.playbook_name == "allow-agents" and new.status == "pending_compliance"
    record = evidence(home, new.request_id)
    assert record["playbook"]["name"] == "allow-agents" and record["interim"] is True
    assert record["status"] == "pending_compliance"


def test_the_request_keeps_the_playbook_file_it_was_opened_with(
    demo: SandboxServer, home: Path
) -> None:
    assert erase("nobody@example.net", "--yes", "--no-report").exit_code == 0
    (request,) = requests(home)
    with Ledger.open(home) as ledger:
        (copy,) = [a for a in ledger.artifacts(request.request_id) if a.kind == "playbook"]
    assert copy.sha256 == request.playbook_sha256
    assert copy.path.read_text() == (builtin_playbook_dir() / "erasure.yaml").read_text()


def _pdf_text(path: str) -> str:
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(Path(path).read_bytes()))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_signed_reports_state_what_the_ledger_shows(
    demo: SandboxServer, evidence_home: Path
) -> None:
    """End to end through the engine: each report's status is the final one, the playbook
    is the one used, and a blocked person's report lists what was not done and why."""
    _agents_playbook(evidence_home)
    blake = demo.state.user_by_email(DEMO_BLOCKED_EMAIL)
    assert blake is not None
    result = erase(
        DEMO_BLOCKED_EMAIL, DEMO_ERASE_EMAIL, "--yes", "--json", "--playbook", "erase-agents"
    )
    assert result.exit_code == 1, result.output
    blocked, pending = json.loads(result.stdout)["requests"]
    blocked_text = _pdf_text(blocked["report"])
    assert "Status needs_review" in blocked_text and "in_progress" not in blocked_text
    assert "Playbook erase-agents" in blocked_text
    assert "What was not done" in blocked_text
    assert f"user {blake['id']}" in blocked_text and "not closed" in blocked_text
    assert "none: everything found was erased" not in blocked_text
    assert "not everything found was erased" in blocked_text
    # Neither his profile nor his ticket reads as deleted: both rows say not finished.
    assert blocked_text.count("deleted (not finished)") == 2, blocked_text
    # The tickets table is shown once, in its own section (not again as a further detail).
    assert "Tickets (conversations)" in blocked_text and "Further details" not in blocked_text
    pending_text = _pdf_text(pending["report"])
    assert "Status pending_compliance" in pending_text and "Interim" in pending_text
    assert "Playbook erase-agents" in pending_text

    demo.advance(2 * 3600)
    final = erase("--resume", "--json")
    assert final.exit_code == 0, final.output
    (done,) = json.loads(final.stdout)["requests"]
    final_text = _pdf_text(done["report"])
    assert "Status completed" in final_text and "Interim" not in final_text
    assert "Zendesk reported the deletion complete" in final_text
    # Everything but what Zendesk's redaction cannot remove (#15): where Erin wrote from,
    # on the comment she left on another customer's ticket -- so the report says so.
    assert "none: everything found was erased" not in final_text
    assert "comment metadata on ticket(s) #3" in final_text
    assert "Playbook erase-agents" in final_text


class _RevokedAfterPreflight(httpx.BaseTransport):
    """Forwards reads to the sandbox; every write is refused with a 401 (the token was
    revoked after the run started)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return httpx.Response(401, json={"error": "Couldn't authenticate you"})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_credentials_refused_mid_run_end_in_review_with_a_report(
    demo: SandboxServer, evidence_home: Path
) -> None:
    """Every write refused (401) after the preflight: the person is not erased, the final
    status and its reason (naming each profile request) are recorded, and the signed
    report says what was not done -- never "everything found was erased" (#12)."""
    from privacykit.config import ZendeskConfig
    from privacykit.playbooks.erasure import EraseOptions
    from privacykit.playbooks.erasure import erase as erase_library
    from privacykit.playbooks.loader import load_playbook
    from privacykit.playbooks.subjects import parse_subject
    from privacykit.zendesk import ZendeskClient

    options = EraseOptions(
        subjects=[parse_subject(DEMO_ERASE_EMAIL)],
        playbook=load_playbook(builtin_playbook_dir() / "erasure.yaml"),
        yes=True,
        concurrency=1,
    )
    config = ZendeskConfig.from_env(demo.env())
    with (
        ZendeskClient(config, transport=_RevokedAfterPreflight()) as client,
        Ledger.open(evidence_home) as ledger,
    ):
        (job,) = erase_library(client, ledger, options, home=evidence_home).jobs
    assert job.status == "needs_review"
    (request,) = requests(evidence_home)
    assert request.status == "needs_review"
    assert "could not be processed (AuthenticationError 401: DELETE /api/v2/user_profiles/" in (
        request.status_reason or ""
    )
    record = evidence(evidence_home, request.request_id)
    assert record["status"] == "needs_review" and record["not_done"]
    with Ledger.open(evidence_home) as ledger:
        (report,) = [a for a in ledger.artifacts(request.request_id) if a.kind == "report"]
    text = _pdf_text(str(report.path))
    assert "Status needs_review" in text and "everything found was erased" not in text.replace(
        "not everything found was erased", ""
    )
    assert demo.state.user_by_email(DEMO_ERASE_EMAIL) is not None
