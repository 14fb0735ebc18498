"""Issue 14, end to end: an answer dripping one byte every 10 s no longer hangs ``erase`` or
``audit`` (an operator's cron job must finish). Every request has a total deadline on top
of the per-read timeout; here the default deadline (180 s) is shortened to 2 s so the test
takes seconds, through the same default every command's client gets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import DEMO_ERASE_EMAIL
from privacykit.zendesk import ZendeskClient

#: One byte every 6,000 virtual seconds: 10 s of real time at 600x.
DRIP = {"interval": 6000.0, "part": "head"}


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[SandboxServer]:
    defaults = ZendeskClient.__init__.__kwdefaults__
    assert defaults is not None and defaults["deadline"] == 180.0
    monkeypatch.setitem(defaults, "deadline", 2.0)
    with SandboxServer(seed="demo", time_scale=600.0, rng_seed=1) as server:
        for key in ("ZENDESK_SUBDOMAIN", "ZENDESK_OAUTH_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def test_a_dripping_answer_ends_erase_and_audit(sb: SandboxServer, home: Path) -> None:
    sb.configure({"slow_drip": {**DRIP, "endpoints": ["GET /api/v2/users/search"]}})
    started = time.monotonic()
    erased = CliRunner().invoke(
        cli, ["erase", "--from-file", "-", "--yes", "--no-report"], input=DEMO_ERASE_EMAIL + "\n"
    )
    assert time.monotonic() - started < 30  # the drip alone would take 1,000 s
    assert erased.exit_code == 1, erased.output
    assert "no complete answer within the 2s request deadline" in erased.stdout
    with Ledger.open(home, readonly=True) as ledger:
        (request,) = ledger.list_requests(kind="erasure")
        assert request.status == "needs_review"  # fail closed: nothing concluded

    sb.configure({"slow_drip": {**DRIP, "endpoints": None}})  # every answer drips
    started = time.monotonic()
    audited = CliRunner().invoke(cli, ["audit"])
    assert time.monotonic() - started < 30
    assert audited.exit_code == 2, audited.output  # incomplete, never a clean bill
    assert "audit incomplete" in audited.stderr and "request deadline" in audited.stderr
    assert "Traceback" not in audited.output
