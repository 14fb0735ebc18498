"""``--request-deadline`` and ``--max-wait`` on every command that talks to Zendesk (#14).

Bad values are bad input (one line, exit 2, nothing sent); a small deadline ends a
dripping answer as it says (erase: needs review, exit 1; audit: incomplete, exit 2); and
``--max-wait`` reaches ``access`` and ``audit`` as it reaches ``erase``. Time is real but
short: the sandbox drips one byte every 10 s (600x) and the deadline given is 1 s.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.app import client_bounds
from privacykit.cli import cli
from privacykit.cli.request_options import DEFAULT_MAX_WAIT, DEFAULT_REQUEST_DEADLINE
from privacykit.errors import UsageError
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import Governor
from privacykit.zendesk.transport import DEFAULT_DEADLINE

EMAIL = "drip@example.com"
#: One header byte every 6,000 virtual seconds: 10 s of real time at 600x.
DRIP = {"interval": 6000.0, "part": "head"}


@pytest.fixture
def sb(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="none", time_scale=600.0, rng_seed=5)
    server.state.add_user("Drip Person", email=EMAIL)
    return server


def user_id(sb: SandboxServer) -> int:
    user = sb.state.user_by_email(EMAIL)
    assert user is not None
    return int(user["id"])


def invoke(args: list[str], **kwargs: Any) -> Any:
    return CliRunner().invoke(cli, args, prog_name="privacykit", **kwargs)


# -- bad values -----------------------------------------------------------------------------

COMMANDS = {
    "erase": ["erase", EMAIL, "--yes", "--no-report"],
    "access": ["access", EMAIL, "--out", "OUT"],
    "audit": ["audit"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--request-deadline", "0", "0.0 is not in the range x>=1."),
        ("--request-deadline", "0.5", "0.5 is not in the range x>=1."),
        ("--request-deadline", "-3", "-3.0 is not in the range x>=1."),
        ("--request-deadline", "soon", "'soon' is not a valid float range."),
        ("--max-wait", "0", "0.0 is not in the range x>=1."),
    ],
)
def test_a_bad_bound_is_one_line_exit_2_and_nothing_sent(
    sb: SandboxServer, tmp_path: Path, command: str, option: str, value: str, why: str
) -> None:
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in COMMANDS[command]]
    result = invoke([*args, option, value])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: Invalid value for '{option}': {why} (see 'privacykit {command} --help')\n"
    )
    assert sb.request_log() == []
    assert not out.exists()


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf])
@pytest.mark.parametrize(("keyword", "flag"), [("request_deadline", "--request-deadline")])
def test_the_library_refuses_what_the_cli_would(keyword: str, flag: str, value: float) -> None:
    with pytest.raises(UsageError) as caught:
        client_bounds(**{keyword: value})
    assert str(caught.value) == f"{flag} must be a positive number of seconds"
    with pytest.raises(UsageError, match=r"^--max-wait must be a positive number of seconds$"):
        client_bounds(max_wait=value)


def test_bounds_become_client_options_and_the_defaults_are_the_clients() -> None:
    assert client_bounds() == {}
    assert client_bounds(max_wait=60, request_deadline=5) == {"max_wait": 60.0, "deadline": 5.0}
    # The CLI repeats the client's defaults so that --help stays light: they must agree.
    assert DEFAULT_REQUEST_DEADLINE == DEFAULT_DEADLINE == 180
    assert DEFAULT_MAX_WAIT == Governor().max_wait == 900


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_shows_both_bounds_with_their_defaults(command: str) -> None:
    result = invoke([command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "--max-wait SECONDS Longest wait for Zendesk's rate limits" in text
    assert "[default: 900] [x>=1]" in text
    assert "--request-deadline SECONDS Longest time one request to Zendesk may take" in text
    assert "[default: 180] [x>=1]" in text


# -- a small deadline ends a dripping answer --------------------------------------------------


def test_a_small_request_deadline_ends_a_dripping_answer(sb: SandboxServer, home: Path) -> None:
    sb.configure({"slow_drip": {**DRIP, "endpoints": ["GET /api/v2/users/search"]}})
    started = time.monotonic()
    erased = invoke(
        ["erase", "--from-file", "-", "--yes", "--no-report", "--request-deadline", "1"],
        input=EMAIL + "\n",
    )
    elapsed = time.monotonic() - started
    assert erased.exit_code == 1, erased.output
    assert elapsed < 8, "the default deadline (180 s) or the drip (10 s a byte) was used"
    assert "no complete answer within the 1s request deadline" in erased.stdout
    with Ledger.open(home, readonly=True) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        assert request.status == "needs_review"  # fail closed: nothing concluded
    searches = [e for e in sb.request_log() if e["path"].startswith("/api/v2/users/search")]
    assert len(searches) == 1, "a request that passed its deadline is not retried"
    assert sb.state.user_status(user_id(sb)) == "active"


def test_a_small_request_deadline_ends_a_dripping_audit(sb: SandboxServer, ledger: Any) -> None:
    ledger.close()  # the audit never starts an empty ledger: this one exists
    sb.configure({"slow_drip": {**DRIP, "endpoints": None}})  # every answer drips
    started = time.monotonic()
    audited = invoke(["audit", "--request-deadline", "1"])
    assert time.monotonic() - started < 8
    assert audited.exit_code == 2, audited.output  # incomplete, never a clean bill
    assert "audit incomplete: zendesk:" in audited.stderr
    assert "within the 1s request deadline" in audited.stderr
    # The preflight that ran out of time is the answer: sending it again would double the
    # time an unreachable Zendesk holds a cron job (2 x the deadline, seen at 10 s).
    me = [e for e in sb.request_log() if e["path"] == "/api/v2/users/me"]
    assert len(me) == 1, me


# -- --max-wait reaches access and audit -----------------------------------------------------


def test_max_wait_bounds_access_and_audit(sb: SandboxServer, home: Path, tmp_path: Path) -> None:
    # Zendesk asks for 120 s: within the default (900 s), past --max-wait 60.
    sb.configure(
        {"throttle": {"endpoints": ["GET /api/v2/users/search"], "times": 1}, "retry_after": 120}
    )
    result = invoke(["access", EMAIL, "--out", str(tmp_path / "out"), "--max-wait", "60"])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert "would have to wait 120s, longer than the 60s allowed" in line
    assert "Zendesk said to come back at 20" in line
    assert len([e for e in sb.request_log() if e["status"] == 429]) == 1, "no wait, no retry"

    sb.configure({"throttle": {"endpoints": ["GET /api/v2/users/me"], "times": 2}})
    audited = invoke(["audit", "--max-wait", "60"])
    assert audited.exit_code == 2, audited.output
    assert "longer than the 60s allowed" in audited.stderr
