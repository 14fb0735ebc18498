"""Sandbox Zendesk on the wire: rate limits, faults, request log, control endpoints,
demo seed and the `privacykit sandbox serve` command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import (
    DEMO_ACCESS_EMAIL,
    DEMO_ACCESS_EVENTS,
    DEMO_AGENT_EMAIL,
    DEMO_ANON_SOURCE,
    DEMO_BLOCKED_EMAIL,
    DEMO_ERASE_EMAIL,
    DEMO_ERASE_PHONE,
)

THROTTLED = "Number of allowed API requests per minute exceeded"
ACCOUNT_HEADERS = (
    "X-Rate-Limit",
    "X-Rate-Limit-Remaining",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
)


def _client(sb: SandboxServer) -> httpx.Client:
    env = sb.env()
    return httpx.Client(
        base_url=sb.url,
        auth=(env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"]),
        timeout=10.0,
    )


def _scoped(response: httpx.Response, scope: str) -> dict[str, str]:
    header = response.headers[f"Zendesk-RateLimit-{scope}"]
    return dict(part.strip().split("=", 1) for part in header.split(";"))


@pytest.fixture
def real_time() -> Iterator[SandboxServer]:
    """Uncompressed time: a 60 s window cannot roll over during a test, so budgets are
    exact. Time moves only through advance()."""
    with SandboxServer(
        seed="none",
        time_scale=1.0,
        frozen=True,
        rng_seed=3,
        account_limit=5,
        profiles_limit=3,
        permanent_delete_limit=2,
    ) as sb:
        yield sb


# ---------------------------------------------------------------- rate limits


def test_account_headers_and_429_text_plain(real_time: SandboxServer) -> None:
    with _client(real_time) as client:
        first = client.get("/api/v2/users/me.json")
        for name in ACCOUNT_HEADERS:
            assert name in first.headers
        assert first.headers["X-Rate-Limit"] == first.headers["ratelimit-limit"] == "5"
        assert first.headers["X-Rate-Limit-Remaining"] == "4"
        assert 1 <= int(first.headers["ratelimit-reset"]) <= 60
        for remaining in (3, 2, 1, 0):
            assert client.get("/api/v2/users/me").headers["ratelimit-remaining"] == str(remaining)
        throttled = client.get("/api/v2/users/me")
        assert throttled.status_code == 429
        assert throttled.headers["content-type"].startswith("text/plain")
        assert throttled.text == THROTTLED
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        assert throttled.headers["X-Rate-Limit-Remaining"] == "0"
        # 429s consume nothing: after the window the full budget is back.
        client.get("/api/v2/users/me")
        real_time.advance(60)
        fresh = client.get("/api/v2/users/me")
        assert fresh.status_code == 200 and fresh.headers["ratelimit-remaining"] == "4"
    statuses = [e["status"] for e in real_time.request_log()]
    assert statuses == [200, 200, 200, 200, 200, 429, 429, 200]


def test_scoped_budgets(real_time: SandboxServer) -> None:
    real_time.configure({"account_limit": 100})
    with _client(real_time) as client:
        users = client.get("/api/v2/users/me")
        assert not any(h.lower().startswith("zendesk-ratelimit-") for h in users.headers)
        for remaining in (2, 1, 0):
            response = client.get(
                "/api/v2/user_profiles", params={"identifier": "a:b:email:x@example.com"}
            )
            assert response.status_code == 404
            scoped = _scoped(response, "profiles")
            assert scoped["total"] == "3" and scoped["remaining"] == str(remaining)
        over = client.get("/api/v2/users/1/profiles")
        assert over.status_code == 429 and over.text == THROTTLED
        assert client.get("/api/v2/users/me").status_code == 200  # account budget untouched

        uid = real_time.state.add_user("Budget Example")["id"]
        other = real_time.state.add_user("Other Example")["id"]
        for remaining in (4, 3, 2, 1, 0):
            put = client.put(f"/api/v2/users/{uid}", json={"user": {"notes": "x"}})
            assert put.status_code == 200
            assert _scoped(put, "create-update-user")["remaining"] == str(remaining)
        blocked = client.put(f"/api/v2/users/{uid}", json={"user": {"notes": "y"}})
        assert blocked.status_code == 429
        assert (
            client.put(f"/api/v2/users/{other}", json={"user": {"notes": "y"}}).status_code == 200
        )

        ids = [real_time.state.add_user(f"Perm {i}")["id"] for i in range(3)]
        for uid in ids:
            real_time.state.soft_delete_user(uid)
        first = client.delete(f"/api/v2/deleted_users/{ids[0]}")
        assert first.status_code == 200
        assert _scoped(first, "permanent-delete") == {
            "total": "2",
            "remaining": "1",
            "resets": "600",
        }
        assert client.delete(f"/api/v2/deleted_users/{ids[1]}").status_code == 200
        third = client.delete(f"/api/v2/deleted_users/{ids[2]}")
        assert third.status_code == 429
        assert 540 <= int(third.headers["Retry-After"]) <= 600
        real_time.advance(600)
        assert client.delete(f"/api/v2/deleted_users/{ids[2]}").status_code == 200


def test_time_scaled_seconds_are_real_and_fractional(
    sandbox: SandboxServer, sandbox_http: httpx.Client
) -> None:
    sandbox.configure({"account_limit": 2})
    first = sandbox_http.get("/api/v2/users/me")
    assert 0 < float(first.headers["ratelimit-reset"]) <= 0.1  # 60 s / 600
    throttled = None
    for _ in range(50):  # bounded: the 0.1 s window may roll over once or twice
        response = sandbox_http.get("/api/v2/users/me")
        if response.status_code == 429:
            throttled = response
            break
    assert throttled is not None
    retry_after = throttled.headers["Retry-After"]
    assert re.fullmatch(r"\d+(\.\d{1,3})?", retry_after)
    assert 0 < float(retry_after) <= 0.1
    sandbox.advance(60)
    assert sandbox_http.get("/api/v2/users/me").status_code == 200


# ---------------------------------------------------------------- faults


def _fault_run(rng_seed: int, count: int) -> list[tuple[str | None, Any]]:
    with SandboxServer(seed="none", time_scale=600.0, fault_rate=1.0, rng_seed=rng_seed) as sb:
        outcomes: list[tuple[str | None, Any]] = []
        with _client(sb) as client:
            for index in range(count):
                name = f"Fault Example {index}"
                try:
                    response = client.post("/api/v2/users", json={"user": {"name": name}})
                    outcome: Any = (response.status_code, response.headers.get("content-type", ""))
                except httpx.TransportError:
                    outcome = "dropped"
                entry = sb.request_log()[-1]
                exists = name in sb.state.user_names()
                outcomes.append((entry["fault"], (outcome, exists)))
        sb.set_faults(0.0)
        with _client(sb) as client:
            assert client.get("/api/v2/users/me").status_code == 200
    return outcomes


def test_faults_are_seeded_and_behave() -> None:
    outcomes = _fault_run(rng_seed=11, count=24)
    kinds = {fault for fault, _ in outcomes}
    assert kinds == {"error", "slow", "drop_before", "drop_after"}
    content_types = set()
    for fault, (outcome, exists) in outcomes:
        if fault == "error":
            status, ctype = outcome
            assert status in (500, 502, 503)
            content_types.add(ctype.split(";")[0])
            assert not exists  # a 5xx applied nothing
        elif fault == "slow":
            assert outcome[0] == 201 and exists
        elif fault == "drop_before":
            assert outcome == "dropped" and not exists
        elif fault == "drop_after":
            assert outcome == "dropped" and exists  # the action happened, the answer was lost
    assert content_types == {"application/json", "text/html"}
    # Same seed, same faults.
    assert [fault for fault, _ in _fault_run(rng_seed=11, count=12)] == [
        f for f, _ in outcomes[:12]
    ]


# ---------------------------------------------------------------- log and control endpoints


def test_request_log_and_control_endpoints(
    sandbox: SandboxServer, sandbox_http: httpx.Client
) -> None:
    sandbox_http.get("/api/v2/users/search.json", params={"query": "email:a@example.com"})
    httpx.get(f"{sandbox.url}/api/v2/users/me")  # unauthenticated: logged as 401
    log = httpx.get(f"{sandbox.url}/_sandbox/log").json()["entries"]
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/api/v2/users/search.json", 200),
        ("GET", "/api/v2/users/me", 401),
    ]
    assert log[0]["query"] == "query=email%3Aa%40example.com"
    assert set(log[0]) >= {"seq", "method", "path", "query", "status", "at"}
    since = httpx.get(f"{sandbox.url}/_sandbox/log", params={"since": log[0]["seq"]}).json()[
        "entries"
    ]
    assert [e["seq"] for e in since] == [log[1]["seq"]]
    assert sandbox.request_log() == log

    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    assert state["counts"]["users"] == 2 and state["config"]["time_scale"] == 600.0
    uid = sandbox.state.add_user("Control Example")["id"]
    ticket = httpx.post(
        f"{sandbox.url}/_sandbox/tickets", json={"requester_id": uid, "status": "hold"}
    )
    assert ticket.status_code == 201 and ticket.json()["ticket"]["status"] == "hold"
    bad_ticket = httpx.post(
        f"{sandbox.url}/_sandbox/tickets", json={"requester_id": uid, "status": "weird"}
    )
    assert bad_ticket.status_code == 422
    before = sandbox.clock.now()
    clock = httpx.post(f"{sandbox.url}/_sandbox/clock", json={"advance": 3600}).json()
    assert clock["virtual_seconds"] >= before + 3600
    config = httpx.post(
        f"{sandbox.url}/_sandbox/config",
        json={"fault_rate": 0.0, "account_limit": 400, "profiles_limit": 50},
    )
    assert config.json()["config"]["account_limit"] == 400
    assert httpx.post(f"{sandbox.url}/_sandbox/config", json={"bogus": 1}).status_code == 400
    assert httpx.post(f"{sandbox.url}/_sandbox/config", content=b"{").status_code == 400
    assert httpx.get(f"{sandbox.url}/_sandbox/nothing").status_code == 404
    seeded = httpx.post(f"{sandbox.url}/_sandbox/seed", json={"seed": "demo", "users": 4}).json()
    assert seeded["counts"]["users"] > 4
    # Control requests are neither logged nor rate limited.
    assert len(sandbox.request_log()) == 2
    assert "ratelimit-limit" not in httpx.get(f"{sandbox.url}/_sandbox/state").headers


def test_keep_alive(sandbox: SandboxServer, sandbox_http: httpx.Client) -> None:
    responses = [sandbox_http.get("/api/v2/users/me") for _ in range(3)]
    assert all(r.http_version == "HTTP/1.1" and "connection" not in r.headers for r in responses)
    assert all(int(r.headers["content-length"]) == len(r.content) for r in responses)


# ---------------------------------------------------------------- demo seed


def test_demo_seed_people() -> None:
    with (
        SandboxServer(seed="demo", users=10, time_scale=600.0, rng_seed=5) as sb,
        _client(sb) as client,
    ):

        def one(email: str) -> dict[str, Any]:
            users = client.get("/api/v2/users/search", params={"query": f"email:{email}"}).json()[
                "users"
            ]
            assert len(users) == 1, email
            return users[0]

        erin = one(DEMO_ERASE_EMAIL)
        profiles = client.get(f"/api/v2/users/{erin['id']}/profiles").json()["profiles"]
        assert {f"{p['source']}:{p['type']}" for p in profiles} == {
            "coolbikes:rider",
            "webshop:customer",
        }
        phones = [
            i["value"] for p in profiles for i in p["identifiers"] if i["type"] == "phone_number"
        ]
        assert phones == [DEMO_ERASE_PHONE]
        others = client.get(
            "/api/v2/users/search", params={"query": f"phone:{DEMO_ERASE_PHONE}"}
        ).json()["users"]
        anon = [u for u in others if u["id"] != erin["id"]]
        assert len(anon) == 1
        anon_profiles = client.get(f"/api/v2/users/{anon[0]['id']}/profiles").json()["profiles"]
        assert [f"{p['source']}:{p['type']}" for p in anon_profiles] == [DEMO_ANON_SOURCE]
        tickets = client.get(f"/api/v2/users/{erin['id']}/tickets/requested").json()["tickets"]
        assert [t["status"] for t in tickets] == ["closed", "closed"]

        alex = one(DEMO_ACCESS_EMAIL)
        alex_profiles = client.get(f"/api/v2/users/{alex['id']}/profiles").json()["profiles"]
        events = sum(
            len(client.get(f"/api/v2/user_profiles/{p['id']}/events").json()["events"])
            for p in alex_profiles
        )
        assert events == DEMO_ACCESS_EVENTS

        blake = one(DEMO_BLOCKED_EMAIL)
        assert client.delete(f"/api/v2/users/{blake['id']}").status_code == 422
        assert one(DEMO_AGENT_EMAIL)["role"] == "agent"
        all_emails = [
            u["email"]
            for u in client.get("/api/v2/users", params={"per_page": 100}).json()["users"]
        ]
        assert all(
            e is None or e.endswith(("@example.com", "@example.org", "@sandbox.test"))
            for e in all_emails
        )
        counts = sb.state.counts()
    with SandboxServer(seed="demo", users=10, time_scale=600.0, rng_seed=5) as again:
        assert again.state.counts() == counts
        assert again.state.user_names() == sb.state.user_names()


# ---------------------------------------------------------------- CLI


def test_cli_serve_prints_first_line_and_stops_cleanly() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "privacykit",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--seed",
            "none",
            "--time-scale",
            "600",
            "--rate-limit",
            "123",
            "--profiles-limit",
            "45",
        ],
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
        assert lines, "no first line within 20 s"
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", lines[0])
        assert match, lines[0]
        url = match.group(1)
        response = httpx.get(
            f"{url}/api/v2/users/me.json", auth=("dpo@sandbox.test/token", "sandbox-token")
        )
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit"] == "123"
        profiles = httpx.get(
            f"{url}/api/v2/users/1/profiles", auth=("dpo@sandbox.test/token", "sandbox-token")
        )
        assert _scoped(profiles, "profiles")["total"] == "45"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
