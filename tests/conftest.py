"""Shared fixtures: a fresh ledger home in tmp_path, a running sandbox Zendesk on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh PRIVACYKIT_HOME, owner-only, set in the environment, with a witness
    directory outside it (PRIVACYKIT_WITNESS_DIR, as the README asks of a DPO)."""
    path = tmp_path / "pk-home"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("PRIVACYKIT_HOME", str(path))
    witness = tmp_path / "pk-witness"
    witness.mkdir(mode=0o700)
    monkeypatch.setenv("PRIVACYKIT_WITNESS_DIR", str(witness))
    return path


@pytest.fixture
def ledger(home: Path) -> Iterator[Any]:
    """A fresh ledger in tmp_path."""
    from privacykit.ledger import Ledger

    led = Ledger.open(home)
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """A running sandbox Zendesk on a free loopback port, empty, with time compressed
    so rate-limit windows pass in milliseconds, and no faults."""
    from privacykit.sandbox import SandboxServer

    with SandboxServer(seed="none", time_scale=600.0, fault_rate=0.0, rng_seed=1) as server:
        yield server


@pytest.fixture
def zendesk_env(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point ZENDESK_* at the running sandbox."""
    env = sandbox.env()
    for key in ("ZENDESK_SUBDOMAIN", "ZENDESK_OAUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def sandbox_http(sandbox: Any) -> Iterator[Any]:
    """A plain httpx client authenticated against the running sandbox (raw wire access)."""
    import httpx

    env = sandbox.env()
    auth = (env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"])
    with httpx.Client(base_url=sandbox.url, auth=auth, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="session")
def evidence_keys_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding one evidence signing key, made once per session (copy it, don't use it)."""
    from privacykit.evidence import init_keys

    source = tmp_path_factory.mktemp("evidence-keys")
    source.chmod(0o700)
    init_keys(source, organisation="Test Controller Ltd")
    return source


@pytest.fixture
def evidence_home(home: Path, evidence_keys_source: Path) -> Path:
    """``home`` with the session's evidence signing key copied in (owner-only)."""
    import shutil

    shutil.copytree(evidence_keys_source / "keys", home / "keys")
    return home


@pytest.fixture
def zendesk_client(sandbox: Any) -> Iterator[Any]:
    """A ZendeskClient on the running sandbox. Its governor learns the sandbox's limits and
    compressed windows from headers; `compressed(time_scale)` only pre-scales the budget the
    sandbox never reports (1 user write per second per account)."""
    from privacykit.config import ZendeskConfig
    from privacykit.zendesk import Governor, RateLimits, ZendeskClient

    governor = Governor(RateLimits().compressed(sandbox.clock.time_scale))
    config = ZendeskConfig.from_env(sandbox.env())
    with ZendeskClient(config, governor=governor, backoff_initial=0.001, backoff_max=0.01) as zc:
        yield zc
