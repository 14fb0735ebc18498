"""Sandbox Zendesk faults and wire options over real HTTP: rate-limit header styles (2023 and
2024 spellings), forced 429s with a configurable Retry-After, the slow drip, malformed
bodies per endpoint, and ``GET /users/me``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.faults import MALFORMED_KINDS

STYLE_2023 = ("x-rate-limit", "x-rate-limit-remaining", "rate-limit", "rate-limit-remaining")
STYLE_2024 = ("x-rate-limit", "x-rate-limit-remaining", "ratelimit-limit", "ratelimit-remaining")


def _client(sb: SandboxServer, **kwargs: Any) -> httpx.Client:
    env = sb.env()
    kwargs.setdefault("timeout", 10.0)
    return httpx.Client(
        base_url=sb.url, auth=(env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"]), **kwargs
    )


@pytest.fixture
def real_time() -> Iterator[SandboxServer]:
    """Uncompressed time: budgets and drips are exact; time moves only through advance()."""
    with SandboxServer(seed="none", time_scale=1.0, frozen=True, rng_seed=3) as sb:
        yield sb


# ---------------------------------------------------------------- header styles


@pytest.mark.parametrize("style", ["2023", "2024"])
def test_header_styles(style: str) -> None:
    with (
        SandboxServer(
            seed="none", time_scale=1.0, frozen=True, header_style=style, profiles_limit=3
        ) as sb,
        _client(sb) as client,
    ):
        uid = sb.state.add_user("Style Example")["id"]
        answer = client.get(f"/api/v2/users/{uid}/profiles")
        names = {name.lower() for name in answer.headers}
        wanted, other = (STYLE_2023, STYLE_2024) if style == "2023" else (STYLE_2024, STYLE_2023)
        assert set(wanted) <= names
        assert not (set(other) - set(wanted)) & names
        reset = "rate-limit-reset" if style == "2023" else "ratelimit-reset"
        assert 1 <= int(answer.headers[reset]) <= 60
        prefix = "zendesk-rate-limit-" if style == "2023" else "zendesk-ratelimit-"
        scoped = answer.headers[prefix + "profiles"].split(";")
        parts = dict(part.strip().split("=", 1) for part in scoped)
        assert (parts["total"], parts["remaining"]) == ("3", "2")
        assert [n for n in names if n.startswith("zendesk-")] == [prefix + "profiles"]
        assert sb.config()["header_style"] == style


def test_header_style_switches_at_runtime(real_time: SandboxServer) -> None:
    with _client(real_time) as client:
        assert "ratelimit-limit" in client.get("/api/v2/users/me").headers
        real_time.configure({"header_style": "2023"})
        answer = client.get("/api/v2/users/me")
        assert "rate-limit" in answer.headers and "ratelimit-limit" not in answer.headers
        control = httpx.post(f"{real_time.url}/_sandbox/config", json={"header_style": "2024"})
        assert control.json()["config"]["header_style"] == "2024"
        assert "ratelimit-limit" in client.get("/api/v2/users/me").headers
    with pytest.raises(ValueError, match="header style"):
        real_time.configure({"header_style": "2025"})
    bad = httpx.post(f"{real_time.url}/_sandbox/config", json={"header_style": "1999"})
    assert bad.status_code == 400


# ---------------------------------------------------------------- 429s and Retry-After


def test_configured_retry_after_on_budget_429(real_time: SandboxServer) -> None:
    real_time.configure({"account_limit": 1, "retry_after": 86400})
    with _client(real_time) as client:
        assert client.get("/api/v2/users/me").status_code == 200
        refused = client.get("/api/v2/users/me")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "86400"
        real_time.configure({"retry_after": None})
        computed = client.get("/api/v2/users/me")
        assert computed.status_code == 429 and 1 <= int(computed.headers["Retry-After"]) <= 60


def test_forced_429s_on_one_endpoint(sandbox: SandboxServer, sandbox_http: httpx.Client) -> None:
    sandbox.configure(
        {"throttle": {"endpoints": ["GET /api/v2/users/search"], "times": 2}, "retry_after": 7.5}
    )
    for _ in range(2):
        refused = sandbox_http.get("/api/v2/users/search", params={"query": "x"})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "7.5"
        assert refused.text == "Number of allowed API requests per minute exceeded"
        assert sandbox_http.get("/api/v2/users/me").status_code == 200  # other endpoints
    assert sandbox_http.get("/api/v2/users/search", params={"query": "x"}).status_code == 200
    faults = [e["fault"] for e in sandbox.request_log()]
    assert faults == ["throttle", None, "throttle", None, None]
    assert sandbox.config()["throttle"] is None


def test_retry_after_applies_to_the_job_cap(sandbox: SandboxServer) -> None:
    sandbox.configure({"job_delay": 600, "retry_after": 86400})
    with _client(sandbox) as client:
        for index in range(30):
            uid = sandbox.state.add_user(f"Queued {index}")["id"]
            assert client.delete("/api/v2/users/destroy_many", params={"ids": uid}).is_success
        uid = sandbox.state.add_user("One Too Many")["id"]
        refused = client.delete("/api/v2/users/destroy_many", params={"ids": uid})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "86400"


# ---------------------------------------------------------------- slow drip


def test_slow_drip_is_bounded_and_complete(real_time: SandboxServer) -> None:
    real_time.configure(
        {"slow_drip": {"interval": 0.02, "max_bytes": 10, "endpoints": ["GET /api/v2/users/me"]}}
    )
    with _client(real_time) as client:
        started = time.monotonic()
        answer = client.get("/api/v2/users/me")
        elapsed = time.monotonic() - started
        assert answer.status_code == 200
        assert answer.json()["user"]["email"] == real_time.email  # the whole body arrived
        assert elapsed >= 10 * 0.02 * 0.9
        assert [e["fault"] for e in real_time.request_log()] == ["slow_drip"]
        # Other endpoints answer at once.
        assert client.get("/api/v2/users/count").status_code == 200
        assert real_time.request_log()[-1]["fault"] is None


def test_slow_drip_defeats_a_per_read_timeout(real_time: SandboxServer) -> None:
    # Each byte arrives within the 0.5 s read timeout, so the read timeout never fires,
    # though the answer as a whole takes longer than that: only a total deadline helps.
    real_time.configure({"slow_drip": {"interval": 0.1, "max_bytes": 8, "times": 1}})
    timeout = httpx.Timeout(5.0, read=0.5)
    with _client(real_time, timeout=timeout) as client:
        started = time.monotonic()
        assert client.get("/api/v2/users/me").status_code == 200
        assert time.monotonic() - started > 0.5
        # times=1: the next answer is prompt.
        assert client.get("/api/v2/users/me").status_code == 200
    assert real_time.config()["slow_drip"] is None


def test_slow_drip_of_the_head_and_a_virtual_interval() -> None:
    # 60 virtual seconds per byte at 600x is 0.1 real second.
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=1) as sb:
        sb.configure({"slow_drip": {"interval": 60, "max_bytes": 3, "part": "head"}})
        with _client(sb) as client:
            started = time.monotonic()
            assert client.get("/api/v2/users/me").status_code == 200
            assert time.monotonic() - started >= 0.27


def test_stop_ends_a_drip_at_once() -> None:
    sb = SandboxServer(seed="none", time_scale=1.0).start()
    sb.configure({"slow_drip": {"interval": 30, "max_bytes": 100}})
    outcome: list[Any] = []

    def fetch() -> None:
        with _client(sb, timeout=httpx.Timeout(10.0, read=60.0)) as client:
            try:
                outcome.append(client.get("/api/v2/users/me").status_code)
            except httpx.HTTPError as exc:
                outcome.append(type(exc).__name__)

    thread = threading.Thread(target=fetch)
    thread.start()
    for _ in range(500):  # bounded wait until the request is being dripped
        if sb.request_log():
            break
        time.sleep(0.01)
    started = time.monotonic()
    sb.stop()
    thread.join(timeout=10)
    assert time.monotonic() - started < 5
    assert not thread.is_alive()
    assert outcome and outcome[0] != 200  # the answer never completed


def test_slow_drip_settings_are_validated(sandbox: SandboxServer) -> None:
    for bad in (
        {"interval": 0},
        {"interval": 1, "max_bytes": 0},
        {"interval": 1, "max_bytes": 10**9},
        {"part": "tail"},
        {"times": 0},
    ):
        with pytest.raises(ValueError):
            sandbox.configure({"slow_drip": bad})
    assert sandbox.config()["slow_drip"] is None


# ---------------------------------------------------------------- malformed bodies


def _seed_person(sb: SandboxServer) -> int:
    uid = sb.state.add_user("Mal Formed", email="mal@example.com")["id"]
    sb.state.put_profile("shop", "customer", [("email", "mal@example.com")], user_id=uid)
    return int(uid)


def test_malformed_kinds_named_in_the_issue(sandbox: SandboxServer) -> None:
    uid = _seed_person(sandbox)
    search = "GET /api/v2/users/search"
    cases: list[tuple[str, str, str, Any]] = [
        (search, "users_null", "/api/v2/users/search", {"users": None}),
        (search, "empty", "/api/v2/users/search", {}),
        (
            "GET /api/v2/users/{id}/identities",
            "identities_object",
            f"/api/v2/users/{uid}/identities",
            dict,
        ),
        (
            "GET /api/v2/users/{user_id}/profiles",
            "profiles_string",
            f"/api/v2/users/{uid}/profiles",
            str,
        ),
    ]
    with _client(sandbox) as client:
        for endpoint, kind, path, expected in cases:
            sandbox.configure({"malformed": {endpoint: kind}})
            body = client.get(path, params={"query": "email:mal@example.com"}).json()
            if isinstance(expected, dict):
                assert {k: body[k] for k in expected} == expected
                if not expected:
                    assert body == {}
            else:
                main = next(iter(body))
                assert isinstance(body[main], expected), (kind, body)
        sandbox.configure({"malformed": {search: "bad_id"}})
        (user,) = client.get(search.split()[1], params={"query": "mal"}).json()["users"]
        assert user["id"] == "not-a-number" and user["email"] == "mal@example.com"
        sandbox.configure({"malformed": {search: "html"}})
        page = client.get(search.split()[1], params={"query": "mal"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "maintenance" in page.text
        sandbox.configure({"malformed": {search: "truncated_json"}})
        cut = client.get(search.split()[1], params={"query": "mal"})
        with pytest.raises(json.JSONDecodeError):
            json.loads(cut.text)
    faults = [e["fault"] for e in sandbox.request_log()]
    assert faults[-1] == "malformed:truncated_json" and "malformed:null_collection" in faults


def test_malformed_only_on_the_configured_endpoint_and_times(sandbox: SandboxServer) -> None:
    uid = _seed_person(sandbox)
    sandbox.configure(
        {"malformed": {f"GET /api/v2/users/{uid}/identities": {"kind": "empty", "times": 1}}}
    )
    with _client(sandbox) as client:
        assert client.get(f"/api/v2/users/{uid}").json()["user"]["id"] == uid  # untouched
        assert client.get(f"/api/v2/users/{uid}/identities.json").json() == {}
        again = client.get(f"/api/v2/users/{uid}/identities").json()
        assert [i["value"] for i in again["identities"]] == ["mal@example.com"]
        # Errors stay errors: a 404 is not bent.
        sandbox.configure({"malformed": {"GET /api/v2/users/{id}": "empty"}})
        assert client.get("/api/v2/users/999999").status_code == 404
    assert sandbox.config()["malformed"] == {
        "GET /api/v2/users/{}": {"kind": "empty_object", "times": None}
    }


def test_malformed_through_constructor_and_control_endpoint() -> None:
    with SandboxServer(
        seed="none",
        time_scale=600.0,
        malformed={"GET /api/v2/users/search": "users_null", "*": "html"},
    ) as sb:
        with _client(sb) as client:
            assert client.get("/api/v2/users/search", params={"query": "x"}).json()["users"] is None
            assert client.get("/api/v2/users/me").headers["content-type"].startswith("text/html")
        cleared = httpx.post(f"{sb.url}/_sandbox/config", json={"malformed": {}})
        assert cleared.json()["config"]["malformed"] == {}
        bad = httpx.post(f"{sb.url}/_sandbox/config", json={"malformed": {"GET /x": "nonsense"}})
        assert bad.status_code == 400 and "unknown malformed kind" in bad.json()["error"]
        set_ = httpx.post(
            f"{sb.url}/_sandbox/config",
            json={"malformed": {"GET /api/v2/users/me": {"kind": "bad_id", "times": 1}}},
        )
        assert set_.status_code == 200
        with _client(sb) as client:
            assert client.get("/api/v2/users/me").json()["user"]["id"] == "not-a-number"
            assert isinstance(client.get("/api/v2/users/me").json()["user"]["id"], int)
    assert set(MALFORMED_KINDS) >= {"null_collection", "html_maintenance"}


# ---------------------------------------------------------------- users/me


def test_me_is_the_authenticated_agent_and_needs_credentials(sandbox: SandboxServer) -> None:
    with _client(sandbox) as client:
        me = client.get("/api/v2/users/me.json").json()["user"]
    assert me["email"] == sandbox.email and me["role"] == "admin" and me["active"] is True
    assert me["id"] == sandbox.state.admin_id
    wrong = httpx.get(
        f"{sandbox.url}/api/v2/users/me.json", auth=(sandbox.email + "/token", "wrong-token")
    )
    assert wrong.status_code == 401 and wrong.json() == {"error": "Couldn't authenticate you"}
    # The role the token carries can be changed, e.g. to test a preflight role check.
    sandbox.state.update_user(sandbox.state.admin_id, {"role": "agent"})
    with _client(sandbox) as client:
        assert client.get("/api/v2/users/me").json()["user"]["role"] == "agent"


# ---------------------------------------------------------------- sandbox serve


def test_cli_serve_wire_options() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # One request per minute, on a clock 1,000 times slower than real time: the minute
    # lasts 17 real hours, so the second request is refused however slow the machine.
    args = [
        *("--port", "0", "--seed", "none", "--time-scale", "0.001", "--rate-limit", "1"),
        *("--header-style", "2023", "--retry-after", "86400", "--job-ttl", "120"),
        *("--malformed", "GET /api/v2/users/search=users_null"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "privacykit", "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.append(proc.stdout.readline() if proc.stdout else "")
        )
        reader.start()
        reader.join(timeout=20)
        assert lines and lines[0].startswith("listening on "), lines
        url = lines[0].split()[-1]
        config = httpx.get(f"{url}/_sandbox/state").json()["config"]
        assert config["header_style"] == "2023" and config["job_ttl"] == 120
        auth = ("dpo@sandbox.test/token", "sandbox-token")
        search = httpx.get(f"{url}/api/v2/users/search", params={"query": "x"}, auth=auth)
        assert search.json()["users"] is None and search.headers["rate-limit"] == "1"
        refused = httpx.get(f"{url}/api/v2/users/me", auth=auth)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "86400"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--header-style", "2022"],
        ["--malformed", "nonsense"],
        ["--malformed", "GET /api/v2/users/search=no_such_kind"],
        ["--retry-after", "-1"],
        ["--slow-drip", "0"],
    ],
)
def test_cli_serve_refuses_bad_wire_options(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--seed", "none", *args])
    assert result.exit_code == 2, result.output
    assert "listening" not in result.output
