"""Governor at the limit: how close to a server's rate limit does a default ``Governor()``
run, and how many 429s does it take to get there?

A sandbox in its own process with an account limit of ``--limit`` requests per minute and
its clock compressed ``--time-scale`` times (a minute lasts 60/K real seconds); the
governor is told nothing about either and learns both from the headers. ``--threads``
workers share one client and ask for ``GET /api/v2/users/{id}`` for ``--windows`` whole
windows, starting at a window boundary. Each answer is placed in its window by its reset
header; the figures are the requests per full window over the limit (efficiency) and the
number of 429s. It runs once per header spelling real accounts have sent (``--styles
2024,2023``: ``ratelimit-*`` or ``rate-limit-*``, issue 14); the top-level figures are the
2024 run's, ``styles`` holds each.

Run: ``python -m bench.governor_at_limit [--limit 400] [--time-scale 60] [--windows 8]
[--styles 2024,2023]``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from typing import Any

import httpx

from bench.client_overhead import USER_ID, sandbox_process
from privacykit.config import ZendeskConfig
from privacykit.zendesk import Governor, ZendeskClient
from privacykit.zendesk.headers import parse_rate_limit_headers

__all__ = ["HEADLINE", "main", "run"]

HEADLINE = ("efficiency", "rate_limited", "learned_window_s")


class _Recorder(httpx.HTTPTransport):
    """Notes, for each answer, when it arrived and which window it was counted in."""

    def __init__(self) -> None:
        super().__init__(limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))
        self.lock = threading.Lock()
        self.answers: list[tuple[float, int, float | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        now = time.monotonic()
        # Whatever the spelling (2023 rate-limit-reset, 2024 ratelimit-reset).
        account = parse_rate_limit_headers(response.headers).get("account")
        reset = account.reset if account is not None else None
        with self.lock:
            self.answers.append((now, response.status_code, reset))
        return response


def run(
    limit: int = 400,
    time_scale: float = 60.0,
    windows: int = 8,
    threads: int = 8,
    header_style: str = "2024",
) -> dict[str, Any]:
    window = 60.0 / time_scale
    options = ("--rate-limit", str(limit), "--time-scale", str(time_scale))
    with sandbox_process(*options, "--header-style", header_style) as env:
        recorder = _Recorder()
        governor = Governor()
        with ZendeskClient(ZendeskConfig.from_env(env), governor=governor, transport=recorder) as c:
            c.show_user(USER_ID)  # learn where the window ends
            _, _, reset = recorder.answers[-1]
            assert reset is not None
            boundary = recorder.answers[-1][0] + reset
            time.sleep(max(boundary - time.monotonic(), 0.0))
            start = time.monotonic()
            stop_at = boundary + windows * window
            recorder.answers.clear()

            def worker() -> None:
                while time.monotonic() < stop_at:
                    c.show_user(USER_ID)

            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            elapsed = time.monotonic() - start
            snap = governor.snapshot()
            stats = c.stats.snapshot()
    per_window: Counter[int] = Counter()
    for arrived, status, reset in recorder.answers:
        if status == 200 and reset is not None:
            # The window this answer was counted in ends at arrived + reset.
            per_window[round((arrived + reset - boundary) / window) - 1] += 1
    full = [per_window[i] for i in range(windows)]
    return {
        "header_style": header_style,
        "limit_per_window": limit,
        "window_s": window,
        "threads": threads,
        "windows": windows,
        "requests_ok": stats["by_status"].get(200, 0),
        "rate_limited": stats["rate_limited"],
        "per_window": full,
        "max_per_window": max(full),
        "efficiency": round(sum(full) / (windows * limit), 4),
        "elapsed_s": round(elapsed, 2),
        "learned_window_s": snap["scopes"]["account"]["learned_window"],
        "learned_limit": snap["scopes"]["account"]["limit"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.governor_at_limit", description=__doc__)
    parser.add_argument("--limit", type=int, default=400, help="account requests per minute")
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--styles", default="2024,2023", help="header spellings to run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    runs = {
        style: run(args.limit, args.time_scale, args.windows, args.threads, style)
        for style in styles
    }
    # The first style's figures at the top level (what the summary table reads).
    results: dict[str, Any] = {**runs[styles[0]], "styles": runs}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for style, r in runs.items():
            print(
                f"governor at the limit, {style} headers ({r['limit_per_window']} per "
                f"{r['window_s']:g} s window, {r['threads']} threads, {r['windows']} windows)"
            )
            print(f"  per window        : {r['per_window']}")
            print(f"  efficiency        : {r['efficiency']:.2%} of the limit")
            print(f"  429s              : {r['rate_limited']}")
            print(
                f"  learned           : limit {r['learned_limit']}, "
                f"window {r['learned_window_s']:.4f} s"
            )
    return results


if __name__ == "__main__":
    main()
