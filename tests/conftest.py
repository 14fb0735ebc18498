"""Shared fixtures: a fresh ledger home in tmp_path, a running sandbox Zendesk on loopback."""

from __future__ import annotations

import threading
import time
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


class VirtualTime:
    """One clock for a frozen sandbox and the Governor/ZendeskClient talking to it, in the
    seconds the client sees on the wire (virtual seconds / ``time_scale``).

    It moves as in a discrete-event simulation: each answer the governor sees takes
    ``latency``, and otherwise time passes only when every worker (a call run by
    :meth:`burst`, or the test's own thread) waits -- in the governor for budget or in the
    client's sleep for a ``Retry-After`` -- and then only to the earliest moment any of
    them waits for. How fast the machine is changes nothing::

        with ZendeskClient(config, governor=vt.governor(), sleep=vt.sleep) as c:
            vt.burst([lambda: c.show_user(1)] * 100, threads=8)
    """

    def __init__(self, sb: Any, latency: float = 0.001) -> None:
        assert sb.clock.frozen, "VirtualTime drives a frozen sandbox clock"
        self.sb = sb
        self.scale = sb.clock.time_scale
        # Every answer takes this long (wire seconds): requests never all land on the
        # very start of a window, so resets vary as they do on a real wire.
        self.latency = latency
        self.sleeps: list[float] = []
        self._cond = threading.Condition()
        self._busy = 0  # workers of the running burst that have a call to run
        self._left = 0  # calls of the running burst not finished yet
        self._waiting: list[float] = []  # the moments parked workers wait for
        self._answers = 0  # answers the governor has seen (they wake parked workers)

    def clock(self) -> float:
        return float(self.sb.clock.now()) / self.scale

    def governor(self, limits: Any = None, **kwargs: Any) -> Any:
        """A Governor on this clock; its answers wake waiting workers (as its own
        condition would) so they look again before time moves on."""
        from privacykit.zendesk import Governor

        vt = self

        class _Governor(Governor):
            def observe(self, response: Any, reservation: Any = None) -> None:
                try:
                    super().observe(response, reservation)
                finally:
                    vt._answered()

            def release(self, reservation: Any) -> None:
                try:
                    super().release(reservation)
                finally:
                    vt._answered()

        return _Governor(limits, clock=self.clock, wait=self.wait, **kwargs)

    def _answered(self) -> None:
        with self._cond:
            self._answers += 1
            self.advance_to(self.clock() + self.latency)
            self._cond.notify_all()

    def burst(self, calls: list[Any], threads: int = 8) -> list[Any]:
        """Run ``calls`` on ``threads`` workers; returns their results in order."""
        from concurrent.futures import ThreadPoolExecutor

        def work(call: Any) -> Any:
            try:
                return call()
            finally:
                with self._cond:
                    self._left -= 1
                    self._busy = min(self._busy, self._left)
                    self._cond.notify_all()

        with self._cond:
            self._left, self._busy = len(calls), min(threads, len(calls))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(work, calls))

    def advance_to(self, moment: float) -> None:
        """Move the sandbox to ``moment`` and a hair past it (time never stands exactly on
        a window's end, and float rounding must not leave it a hair before)."""
        ahead = moment * self.scale - float(self.sb.clock.now())
        if ahead > 0:
            self.sb.advance(ahead + 1e-6)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        until = self.clock() + seconds
        while self.clock() < until:
            self._park(until)

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """The governor's wait, called holding ``cond``: returns once time has moved; the
        governor then looks again and waits on if it must."""
        until = self.clock() + (timeout or 0.0)
        cond.release()
        try:
            self._park(until)
        finally:
            cond.acquire()

    def _park(self, until: float) -> None:
        """Wait until time reaches ``until`` or an answer arrives. Whoever parks last moves
        time to the earliest moment a parked worker waits for."""
        give_up = time.monotonic() + 10.0  # a worker stuck elsewhere must not wedge us
        with self._cond:
            seen = self._answers
            self._waiting.append(until)
            self._cond.notify_all()
            try:
                while self.clock() < until and self._answers == seen:
                    if len(self._waiting) >= self._busy or time.monotonic() > give_up:
                        self.advance_to(min(self._waiting))
                        self._cond.notify_all()
                    self._cond.wait(0.05)
            finally:
                self._waiting.remove(until)


@pytest.fixture
def frozen_sandbox() -> Iterator[Any]:
    """Like ``sandbox`` (600 times compressed: a 60 s window is 0.1 s on the wire), but its
    clock is frozen: only ``advance`` -- or a client on ``virtual_time`` waiting -- moves it."""
    from privacykit.sandbox import SandboxServer

    with SandboxServer(seed="none", time_scale=600.0, frozen=True, rng_seed=1) as server:
        yield server


@pytest.fixture
def virtual_time(frozen_sandbox: Any) -> VirtualTime:
    """The clock, governor wait and client sleep shared with ``frozen_sandbox``."""
    return VirtualTime(frozen_sandbox)


@pytest.fixture
def point_zendesk_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``point_zendesk_at(server)``: ZENDESK_* name that sandbox (and nothing else) for the
    rest of the test; returns its environment."""

    def point(server: Any) -> dict[str, str]:
        env: dict[str, str] = server.env()
        for key in ("ZENDESK_SUBDOMAIN", "ZENDESK_OAUTH_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    return point


@pytest.fixture
def env_sandbox(point_zendesk_at: Any) -> Iterator[Any]:
    """``env_sandbox(**options)``: a running SandboxServer with those options that ZENDESK_*
    points at, stopped after the test (a test file's own seed, scale or limits)."""
    from contextlib import ExitStack

    from privacykit.sandbox import SandboxServer

    with ExitStack() as stack:

        def start(**options: Any) -> Any:
            server = stack.enter_context(SandboxServer(**options))
            point_zendesk_at(server)
            return server

        yield start


@pytest.fixture
def zendesk_env(sandbox: Any, point_zendesk_at: Any) -> dict[str, str]:
    """Point ZENDESK_* at the running sandbox."""
    env: dict[str, str] = point_zendesk_at(sandbox)
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


def erase_people(sb: Any, home: Path, emails: list[str], **options: Any) -> Any:
    """Erase ``emails`` on the sandbox ``sb`` with the shipped erasure playbook through
    the library (`--yes`, no signed reports unless ``produce_reports=True``); returns the
    EraseReport. ``options`` are further EraseOptions fields (e.g. ``concurrency``)."""
    from privacykit.config import ZendeskConfig
    from privacykit.ledger import Ledger
    from privacykit.playbooks.erasure import EraseOptions, erase
    from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook
    from privacykit.playbooks.subjects import parse_subject
    from privacykit.zendesk import ZendeskClient

    options.setdefault("produce_reports", False)
    with ZendeskClient(ZendeskConfig.from_env(sb.env())) as client, Ledger.open(home) as ledger:
        return erase(
            client,
            ledger,
            EraseOptions(
                subjects=[parse_subject(e) for e in emails],
                playbook=load_playbook(builtin_playbook_dir() / "erasure.yaml"),
                yes=True,
                **options,
            ),
            home=home,
        )
