"""Bad input across the CLI: one clear line on stderr, exit 2, no traceback, nothing sent.

Table-driven (#8): every case runs the real CLI (click's CliRunner) with ``ZENDESK_URL``
pointing at a running sandbox, then asserts the exit code, the key text of the one
``Error:`` line, that no exception escaped, and that the sandbox's request log is still
empty, i.e. not a single request reached "Zendesk".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.sandbox import SandboxServer

VALID_PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "erasure.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    message: str  # the key text of the one "Error:" line
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative to tmp_path
    exit_code: int = 2


def _bad_policy_playbook() -> str:
    text = VALID_PLAYBOOK.read_text()
    assert "profiles: delete" in text  # the mutation below must change something
    return text.replace("profiles: delete", "profiles: shred", 1)


CASES = [
    # --- subjects on the command line
    Case("erase-garbage-subject", ["erase", "not-an-email", "--yes"], "SUBJECT 1: not a subject"),
    Case("erase-no-subject", ["erase", "--yes"], "nothing to erase"),
    Case("erase-user-not-numeric", ["erase", "user:abc", "--yes"], "SUBJECT 1: user:<id> needs"),
    Case("erase-user-zero", ["erase", "user:0", "--yes"], "positive numeric Zendesk user id"),
    Case("erase-ext-empty", ["erase", "ext:", "--yes"], "SUBJECT 1: ext:<external_id> needs"),
    Case("erase-query-3-parts", ["erase", "src:type:email", "--yes"], "exactly four non-empty"),
    Case(
        "erase-second-subject-bad",
        ["erase", "ok@example.com", "user:-5", "--yes"],
        "SUBJECT 2:",
    ),
    Case(
        "erase-control-chars",
        ["erase", "a@b.example\x1b[31m", "--yes"],
        "SUBJECT 1: subject contains whitespace or control characters",
    ),
    Case("access-space-subject", ["access", "a b@example.com", "--out", "{tmp}/out"], "SUBJECT 1"),
    # --- subject files
    Case(
        "erase-file-missing",
        ["erase", "--from-file", "{tmp}/absent.txt", "--yes"],
        "subjects file not found",
    ),
    Case(
        "erase-file-bad-line",
        ["erase", "--from-file", "{tmp}/subjects.txt", "--yes"],
        "subjects.txt:3:",
        files={"subjects.txt": "ok@example.com\n# comment\nuser:nope\n"},
    ),
    Case(
        "erase-file-binary",
        ["erase", "--from-file", "{tmp}/subjects.bin", "--yes"],
        "subjects.bin",
        files={"subjects.bin": b"\xff\xfe\x00\x81garbage"},
    ),
    Case(
        "access-file-is-dir",
        ["access", "--from-file", "{tmp}", "--out", "{tmp}/out"],
        "is a directory",
    ),
    # --- playbooks
    Case("erase-unknown-playbook", ["erase", "a@example.com", "--playbook", "nosuch"], "nosuch"),
    Case(
        "validate-missing-playbook",
        ["playbook", "validate", "{tmp}/absent.yaml"],
        "playbook file not found",
    ),
    Case(
        "validate-yaml-syntax",
        ["playbook", "validate", "{tmp}/bad.yaml"],
        "bad.yaml:2: YAML syntax error",
        files={"bad.yaml": "name: [\n"},
    ),
    Case(
        "validate-bad-policy-value",
        ["playbook", "validate", "{tmp}/shred.yaml"],
        "policy.profiles",
        files={"shred.yaml": "@bad-policy"},
    ),
    Case(
        "erase-with-bad-playbook-file",
        ["erase", "a@example.com", "--playbook", "{tmp}/shred.yaml", "--yes"],
        "shred.yaml",
        files={"shred.yaml": "@bad-policy"},
    ),
    # --- configuration and environment
    Case(
        "no-zendesk-config",
        ["erase", "a@example.com", "--yes"],
        "ZENDESK_SUBDOMAIN or ZENDESK_URL",
        env={"ZENDESK_URL": None},
    ),
    Case(
        "http-url-not-loopback",
        ["access", "a@example.com", "--out", "{tmp}/out"],
        "must use https",
        env={"ZENDESK_URL": "http://zendesk.example.com"},
    ),
    Case(
        "url-with-credentials",
        ["erase", "a@example.com", "--yes"],
        "must not contain credentials",
        env={"ZENDESK_URL": "https://u:p@acme.zendesk.com"},
    ),
    Case(
        "token-without-email",
        ["erase", "a@example.com", "--yes"],
        "ZENDESK_API_TOKEN needs ZENDESK_EMAIL",
        env={"ZENDESK_EMAIL": None},
    ),
    Case(
        "bad-subdomain",
        ["audit"],
        "ZENDESK_SUBDOMAIN must be a bare subdomain",
        env={"ZENDESK_URL": None, "ZENDESK_SUBDOMAIN": "acme.zendesk.com/x"},
    ),
    Case(
        "home-is-a-file",
        ["ledger", "list"],
        "PRIVACYKIT_HOME is not a directory",
        env={"PRIVACYKIT_HOME": "{tmp}/plainfile"},
        files={"plainfile": "x"},
    ),
    # --- paths
    Case("access-no-out", ["access", "a@example.com"], "--out DIR is required"),
    Case(
        "access-out-is-file",
        ["access", "a@example.com", "--out", "{tmp}/plainfile"],
        "is a file",
        files={"plainfile": "x"},
    ),
    Case(
        "access-out-nonempty",
        ["access", "a@example.com", "--out", "{tmp}/full"],
        "not empty",
        files={"full/other.txt": "x"},
    ),
    Case("verify-missing-bundle", ["evidence", "verify", "{tmp}/absent.zip"], "no such bundle"),
    Case(
        "verify-not-a-zip",
        ["evidence", "verify", "{tmp}/fake.zip"],
        "not a readable zip archive",
        files={"fake.zip": "hello"},
    ),
    Case(
        "ledger-verify-missing-checkpoint",
        ["ledger", "verify", "--checkpoint", "{tmp}/absent.note"],
        "does not exist",
    ),
    Case(
        "keys-missing-pkcs12",
        ["keys", "init", "--pkcs12", "{tmp}/absent.p12", "--passphrase-env", "PK_PASS"],
        "does not exist",
    ),
    Case(
        "keys-passphrase-env-unset",
        ["keys", "init", "--pkcs12", "{tmp}/fake.p12", "--passphrase-env", "PK_UNSET_VAR"],
        "PK_UNSET_VAR is not set",
        files={"fake.p12": "not pkcs12"},
    ),
    Case(
        "keys-garbage-pkcs12",
        ["keys", "init", "--pkcs12", "{tmp}/fake.p12", "--passphrase-env", "PK_PASS"],
        "cannot read the PKCS#12 file",
        env={"PK_PASS": "secret"},
        files={"fake.p12": "not pkcs12"},
    ),
    # --- dates
    Case(
        "erase-received-invalid",
        ["erase", "a@example.com", "--received", "2026-13-45", "--yes"],
        "--received must be a date",
    ),
    Case(
        "erase-received-future",
        ["erase", "a@example.com", "--received", "2999-01-01", "--yes"],
        "--received cannot be in the future",
    ),
    Case(
        "access-received-invalid",
        ["access", "a@example.com", "--out", "{tmp}/out", "--received", "yesterday"],
        "--received",
    ),
    Case(
        "export-since-invalid",
        ["evidence", "export", "--out", "{tmp}/b.zip", "--since", "31/05/2024"],
        "--since must be a date",
    ),
    # --- options and ids
    Case("erase-concurrency-0", ["erase", "a@example.com", "--concurrency", "0"], "--concurrency"),
    Case(
        "erase-concurrency-65", ["erase", "a@example.com", "--concurrency", "65"], "--concurrency"
    ),
    Case("erase-unknown-option", ["erase", "a@example.com", "--bogus"], "No such option"),
    Case("audit-negative-due", ["audit", "--due-within", "-1"], "--due-within"),
    Case("audit-zero-max-requests", ["audit", "--max-requests", "0"], "--max-requests"),
    Case("audit-no-ledger", ["audit"], "ledger"),
    Case("ledger-show-no-ledger", ["ledger", "show", "nope"], "no ledger at"),
    Case("ledger-verify-no-ledger", ["ledger", "verify"], "no ledger at"),
    Case("ledger-list-bad-status", ["ledger", "list", "--status", "weird"], "--status"),
    Case(
        "ledger-extend-too-long",
        ["ledger", "extend", "nope", "--months", "5", "--reason", "x"],
        "--months",
    ),
    Case(
        "ledger-extend-unknown",
        [
            "ledger",
            "extend",
            "nope",
            "--months",
            "1",
            "--reason",
            "workload",
            "--notified",
            "2026-01-02",
        ],
        "no ledger at",  # the home holds none: not created to say the id is unknown
    ),
    Case("export-nothing-chosen", ["evidence", "export", "--out", "{tmp}/b.zip"], "--request ID"),
    Case(
        "export-unknown-request",
        ["evidence", "export", "--out", "{tmp}/b.zip", "--request", "nope"],
        "no ledger at",  # no home yet; unknown ids of a real ledger: test_evidence_cli
    ),
    Case("evidence-show-unknown", ["evidence", "show", "nope"], "no ledger at"),
    Case("evidence-report-unknown", ["evidence", "report", "nope"], "no ledger at"),
    Case("keys-days-zero", ["keys", "init", "--days", "0"], "--days"),
    Case("sandbox-fault-rate", ["sandbox", "serve", "--fault-rate", "2"], "--fault-rate"),
    Case("sandbox-port", ["sandbox", "serve", "--port", "70000"], "--port"),
    Case("sandbox-time-scale", ["sandbox", "serve", "--time-scale", "0"], "--time-scale"),
    Case("sandbox-public-host", ["sandbox", "serve", "--host", "0.0.0.0"], "loopback"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(seed="none", time_scale=600.0, fault_rate=0.0, rng_seed=1) as sb:
        yield sb


def _fill(value: str, tmp: Path) -> str:
    return value.replace("{tmp}", str(tmp))


def test_at_least_thirty_cases_across_every_command_group() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    groups = {c.args[0] for c in CASES}
    assert {"erase", "access", "audit", "ledger", "evidence", "keys", "playbook", "sandbox"} <= (
        groups
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, server: SandboxServer, tmp_path: Path) -> None:
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "@bad-policy":
            content = _bad_policy_playbook()
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    env: dict[str, Any] = {
        **server.env(),
        "ZENDESK_SUBDOMAIN": None,
        "ZENDESK_OAUTH_TOKEN": None,
        "PRIVACYKIT_TSA_URL": None,
        "PRIVACYKIT_HOME": str(tmp_path / "home"),
    }
    env.update({k: _fill(v, tmp_path) if v is not None else None for k, v in case.env.items()})

    result = CliRunner().invoke(cli, [_fill(a, tmp_path) for a in case.args], env=env)

    # No exception escaped (click exits through SystemExit), so no traceback was printed.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code == case.exit_code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert case.message in errors[0]
    if not result.stderr.startswith("Usage:"):
        # Our own errors are exactly one line; click's usage errors add a usage hint.
        assert result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    # The sandbox logs every /api/v2 request, answered or not; this module never sends one.
    assert server.request_log() == []
    # Nothing changed: not even an empty home was created (#11).
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["erase", "--from-file", "-", "--yes"],
        ["erase", "--from-file", "-", "--dry-run"],
        ["access", "--from-file", "-", "--out", "{tmp}/shared/answer"],
    ],
    ids=["erase", "erase-dry-run", "access"],
)
def test_refused_credentials_change_nothing(args: list[str], sandbox: Any, tmp_path: Path) -> None:
    """A wrong token is bad input too (#11): one line, exit 2, after the one credentials
    check, and nothing on disk -- neither the home (nor its missing parents) nor --out."""
    env: dict[str, Any] = {
        **sandbox.env(),
        "ZENDESK_API_TOKEN": "not-the-sandbox-token",
        "ZENDESK_SUBDOMAIN": None,
        "ZENDESK_OAUTH_TOKEN": None,
        "PRIVACYKIT_HOME": str(tmp_path / "new" / "home"),
    }
    result = CliRunner().invoke(
        cli, [_fill(a, tmp_path) for a in args], env=env, input="ann@example.com\n"
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "ZENDESK_API_TOKEN" in result.stderr and "not-the-sandbox" not in result.stderr
    assert [e["path"] for e in sandbox.request_log()] == ["/api/v2/users/me"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_control_valid_input_does_reach_the_sandbox(sandbox: Any, tmp_path: Path) -> None:
    """The log assertion above can fail: a well-formed dry run is logged by a sandbox."""
    env = {**sandbox.env(), "PRIVACYKIT_HOME": str(tmp_path / "home"), "ZENDESK_SUBDOMAIN": None}
    result = CliRunner().invoke(cli, ["erase", "nobody@example.com", "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert len(sandbox.request_log()) > 0
