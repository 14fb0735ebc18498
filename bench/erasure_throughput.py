"""Erasure throughput: does a batch keep Zendesk's permanent-deletion budget saturated?

Seeds the sandbox (in-process) with N people -- each an end user with an email identity
and a Sunshine profile -- and erases them all with the shipped erasure playbook through
the real pipeline (``privacykit.playbooks.erasure.erase``: HTTP over loopback, the
governor, a real SQLite ledger; signed PDF reports are skipped, the evidence record is
still written). Zendesk documents 700 permanent deletions per 10 minutes; the account plan
is set to 2,500 requests/minute so that deletions, not the account budget, are the
bottleneck. Time is compressed (``--time-scale``), so a 10-minute window lasts
600/K real seconds.

Network latency is emulated on the client side (``--latency-ms`` of real-world latency,
divided by the time scale like every other duration), because loopback answers in
microseconds while the windows are compressed: without it a sequential client would look
K times faster than it is against Zendesk.

Prints, for the pipeline and for a naive sequential baseline (one subject at a time, every
call in turn, reacting to 429 only -- a plain httpx client, no governor): permanent
deletions per full window and that figure over the documented limit, the number and share
of requests answered 429, and the elapsed time. The baseline is time-boxed to
``--baseline-windows`` full windows.

Run: ``python -m bench.erasure_throughput [--subjects 3500] [--time-scale 25] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from privacykit.config import ZendeskConfig
from privacykit.ledger import Ledger
from privacykit.playbooks.erasure import EraseOptions, erase
from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import ZendeskClient

__all__ = ["main", "run_baseline", "run_pipeline"]

LIMIT = 700  # documented permanent deletions per window
WINDOW = 600.0  # documented window, seconds
ACCOUNT_LIMIT = 2500  # requests per minute (Enterprise Plus): deletions are the bottleneck
SOURCES = ("coolbikes:rider", "webshop:customer", "smsclub:member")


class LatencyTransport(httpx.HTTPTransport):
    """Adds a fixed delay before every request (emulated network latency)."""

    def __init__(self, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.delay > 0:
            time.sleep(self.delay)
        return super().handle_request(request)


def seed(sb: SandboxServer, count: int, prefix: str) -> list[str]:
    """``count`` people through the sandbox's in-process state; returns their emails."""
    emails = []
    for i in range(count):
        email = f"{prefix}{i}@example.com"
        user = sb.state.add_user(f"Bench Person {i}", email=email)
        sb.state.put_profile(
            "coolbikes",
            "rider",
            [{"type": "email", "value": email}, {"type": "coolbike_id", "value": f"B-{i}"}],
            user_id=user["id"],
            attributes={"rides": i},
        )
        emails.append(email)
    return emails


def _windows(times: list[float], start: float, end: float) -> dict[str, Any]:
    """Deletions per sandbox window (virtual time, aligned to the sandbox's start). Full
    windows are those that lie wholly within [start, end] of the measured run."""
    per_window = Counter(int(t // WINDOW) for t in times)
    first_full = math.ceil(start / WINDOW)
    last_full = math.floor(end / WINDOW) - 1
    full = [per_window.get(i, 0) for i in range(first_full, last_full + 1)]
    return {
        "per_window": {str(k): v for k, v in sorted(per_window.items())},
        "full_windows": full,
        "per_full_window": (sum(full) / len(full)) if full else None,
        "of_limit": (sum(full) / len(full) / LIMIT) if full else None,
    }


def run_pipeline(
    subjects: int, time_scale: float, latency_ms: float, concurrency: int
) -> dict[str, Any]:
    """The real erasure pipeline on ``subjects`` people."""
    with SandboxServer(
        seed="none", time_scale=time_scale, account_limit=ACCOUNT_LIMIT, rng_seed=1
    ) as sb:
        emails = seed(sb, subjects, "p")
        deletions: list[float] = []
        lock = threading.Lock()

        class Timed(ZendeskClient):
            def permanently_delete_user(self, user_id: int | str) -> dict[str, Any]:
                answer = super().permanently_delete_user(user_id)
                with lock:
                    deletions.append(sb.clock.now())
                return answer

        transport = LatencyTransport(latency_ms / 1000.0 / time_scale)
        book = load_playbook(builtin_playbook_dir() / "erasure.yaml")
        with tempfile.TemporaryDirectory(prefix="pk-bench-") as tmp:
            home = Path(tmp)
            with (
                Timed(
                    ZendeskConfig.from_env(sb.env()), transport=transport, max_connections=64
                ) as client,
                Ledger.open(home) as ledger,
            ):
                start_v, started = sb.clock.now(), time.monotonic()
                report = erase(
                    client,
                    ledger,
                    EraseOptions(
                        subjects=[parse_subject(e) for e in emails],
                        playbook=book,
                        yes=True,
                        concurrency=concurrency,
                        produce_reports=False,
                    ),
                    home=home,
                )
                elapsed, end_v = time.monotonic() - started, sb.clock.now()
                stats = client.stats.snapshot()
        outcomes = Counter(job.outcome for job in report.jobs)
        last = max(deletions) if deletions else end_v
        return {
            "subjects": subjects,
            "permanent_deletions": len(deletions),
            "outcomes": dict(outcomes),
            "requests": stats["requests"],
            "rate_limited": stats["rate_limited"],
            "rate_limited_share": stats["rate_limited"] / max(1, stats["requests"]),
            "elapsed_seconds": elapsed,
            "virtual_seconds": end_v - start_v,
            "ideal_seconds": subjects / LIMIT * WINDOW / time_scale,
            "windows": _windows(deletions, start_v, last),
        }


def run_baseline(
    subjects: int, time_scale: float, latency_ms: float, windows: int
) -> dict[str, Any]:
    """One subject at a time, each call in turn; on 429 wait Retry-After and repeat."""
    with SandboxServer(
        seed="none", time_scale=time_scale, account_limit=ACCOUNT_LIMIT, rng_seed=2
    ) as sb:
        emails = seed(sb, subjects, "b")
        env = sb.env()
        auth = (env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"])
        transport = LatencyTransport(latency_ms / 1000.0 / time_scale)
        deletions: list[float] = []
        counts = {"requests": 0, "rate_limited": 0}
        start_v, started = sb.clock.now(), time.monotonic()
        stop_v = (math.ceil(start_v / WINDOW) + windows) * WINDOW

        with httpx.Client(base_url=sb.url, auth=auth, transport=transport, timeout=30) as http:

            def call(method: str, path: str, **kw: Any) -> httpx.Response:
                while True:
                    counts["requests"] += 1
                    response = http.request(method, path, **kw)
                    if response.status_code != 429:
                        return response
                    counts["rate_limited"] += 1
                    time.sleep(float(response.headers.get("Retry-After", "1")))

            done = 0
            for email in emails:
                if sb.clock.now() >= stop_v:
                    break
                found = call("GET", "/api/v2/users/search", params={"query": f"email:{email}"})
                for user in found.json()["users"]:
                    uid = user["id"]
                    call("GET", f"/api/v2/users/{uid}/identities")
                    profiles = call("GET", f"/api/v2/users/{uid}/profiles").json()["profiles"]
                    for profile in profiles:
                        for ident in profile["identifiers"]:
                            for source in SOURCES:
                                query = f"{source}:{ident['type']}:{ident['value']}"
                                call("GET", "/api/v2/user_profiles", params={"identifier": query})
                    for profile in profiles:
                        call("DELETE", f"/api/v2/user_profiles/{profile['id']}")
                    call("DELETE", f"/api/v2/users/{uid}")
                    if call("DELETE", f"/api/v2/deleted_users/{uid}").status_code == 200:
                        deletions.append(sb.clock.now())
                    call("GET", f"/api/v2/users/{uid}/compliance_deletion_statuses")
                done += 1
        elapsed = time.monotonic() - started
        return {
            "subjects": done,
            "permanent_deletions": len(deletions),
            "requests": counts["requests"],
            "rate_limited": counts["rate_limited"],
            "rate_limited_share": counts["rate_limited"] / max(1, counts["requests"]),
            "elapsed_seconds": elapsed,
            "windows": _windows(deletions, start_v, min(stop_v, sb.clock.now())),
        }


def _line(name: str, result: dict[str, Any]) -> str:
    w = result["windows"]
    per = "n/a" if w["per_full_window"] is None else f"{w['per_full_window']:.0f}"
    ratio = "n/a" if w["of_limit"] is None else f"{w['of_limit']:.3f}"
    return (
        f"{name:<10} {result['subjects']:>6} subjects  {result['permanent_deletions']:>5} "
        f"permanent deletions  {per:>5}/window = {ratio} of {LIMIT}  "
        f"429s {result['rate_limited']}/{result['requests']} "
        f"({100 * result['rate_limited_share']:.2f}%)  {result['elapsed_seconds']:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.erasure_throughput")
    parser.add_argument("--subjects", type=int, default=5 * LIMIT)
    parser.add_argument("--time-scale", type=float, default=25.0)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--baseline-windows", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    pipeline = run_pipeline(args.subjects, args.time_scale, args.latency_ms, args.concurrency)
    results: dict[str, Any] = {
        "settings": {
            "time_scale": args.time_scale,
            "window_real_seconds": WINDOW / args.time_scale,
            "latency_ms_emulated": args.latency_ms,
            "account_limit_per_minute": ACCOUNT_LIMIT,
            "permanent_delete_limit": LIMIT,
            "concurrency": args.concurrency,
        },
        "pipeline": pipeline,
    }
    if not args.no_baseline:
        # Enough people for the time box; the baseline never gets near them all.
        results["baseline"] = run_baseline(
            (args.baseline_windows + 1) * LIMIT,
            args.time_scale,
            args.latency_ms,
            args.baseline_windows,
        )
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        s = results["settings"]
        print(
            f"erasure throughput: window {s['window_real_seconds']:.1f} s real "
            f"(time x{args.time_scale:g}), emulated latency {args.latency_ms:g} ms, "
            f"account {ACCOUNT_LIMIT}/min"
        )
        print(_line("pipeline", pipeline))
        print(f"           per window: {pipeline['windows']['per_window']}")
        print(
            f"           ideal N/700 x 10 min = {pipeline['ideal_seconds']:.1f} s real; "
            f"outcomes {pipeline['outcomes']}"
        )
        if "baseline" in results:
            baseline = results["baseline"]
            print(_line("baseline", baseline))
            print(f"           per window: {baseline['windows']['per_window']}")
    ratio = pipeline["windows"]["of_limit"]
    ok = ratio is not None and ratio >= 0.97 and pipeline["rate_limited_share"] < 0.01
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
