"""Access benchmark: a person with thousands of tickets -- time, peak memory, requests.

Seeds the sandbox (in-process) with one person who requested N tickets of M comments each
(default 2,000 x 5; every fifth ticket also has an attachment on the sandbox's second
host) and answers their access request with the real command (``python -m privacykit
access ... --no-report``) in a child process, so its peak memory (``ru_maxrss`` of that
process alone) is the tool's, not the sandbox's. The same run with a small person
(``--small`` tickets) gives the baseline: memory that stays flat while the tickets grow
100-fold is the proof that the answer is streamed to disk.

The account budget is raised so that the tool, not the sandbox's rate limits, is measured;
``requests_per_subject`` (every request the sandbox received, the preflight included)
tells what a real plan allows: e.g. at 700 requests/minute such a person takes
``requests / 700`` minutes. The signed report is skipped (see ``evidence_bench``).

Run: ``python -m bench.access_bench [--tickets 2000] [--comments 5] [--small 20] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from privacykit.sandbox import SandboxServer

__all__ = ["HEADLINE", "main", "measure", "seed_person"]

#: Figures `python -m bench` shows in its summary.
HEADLINE = ["seconds", "peak_rss_mb", "peak_rss_small_mb", "requests_per_subject"]

EMAIL = "bench.person@example.test"


def seed_person(sb: SandboxServer, tickets: int, comments: int) -> int:
    """One end user who requested ``tickets`` tickets, each with ``comments`` comments
    (the first is the description), alternating with an agent; every fifth ticket has a
    small attachment. Returns the number of attachments."""
    state = sb.state
    person = state.add_user("Bench Person", email=EMAIL, verified=True, notes="bench")
    agent = state.add_user("Bench Agent", email="agent@shop.example", role="agent")
    attachments = 0
    for number in range(tickets):
        files = []
        if number % 5 == 0:
            files = [(f"photo-{number}.jpg", b"\xff\xd8" + bytes(2048))]
            attachments += 1
        ticket = state.add_ticket(
            person["id"],
            "solved",
            f"Order {number}",
            description=f"Ticket {number}: my order arrived damaged, please help.",
            assignee_id=agent["id"],
            attachments=files,
        )
        for index in range(1, comments):
            author = agent["id"] if index % 2 else person["id"]
            state.add_comment(ticket["id"], author, f"Reply {index} on ticket {number}. " * 4)
    return attachments


def _run_child(env: dict[str, str], out: Path) -> tuple[float, int, int, str]:
    """The access command in a child process: (seconds, peak RSS KiB, exit code, stdout)."""
    command = [sys.executable, "-m", "privacykit", "access", EMAIL, "--out", str(out)]
    command += ["--no-report", "--json", "--quiet"]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    stdout = child.stdout.read().decode("utf-8", "replace")
    child.stderr.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()
    child.stderr.close()
    return seconds, int(usage.ru_maxrss), child.returncode, stdout


def measure(tickets: int, comments: int) -> dict[str, Any]:
    """One person, one access request: time, peak RSS, requests, sizes."""
    with (
        tempfile.TemporaryDirectory(prefix="pk-access-bench-") as tmp,
        SandboxServer(seed="none", time_scale=60.0, account_limit=1_000_000) as sb,
    ):
        attachments = seed_person(sb, tickets, comments)
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "PRIVACYKIT_"))
            },
            **sb.env(),
            "PRIVACYKIT_HOME": str(home),
        }
        out = Path(tmp) / "answer"
        seconds, rss_kib, code, stdout = _run_child(env, out)
        if code != 0:
            raise RuntimeError(f"access exited {code}: {stdout[-500:]}")
        summary = json.loads(stdout)
        [request] = summary["requests"]
        log = sb.request_log()
        by_kind: dict[str, int] = {}
        for entry in log:
            path = str(entry["path"])
            kind = "comments" if path.endswith("/comments") else path.split("/")[-1]
            if kind.isdigit():
                kind = path.split("/")[-2]
            by_kind[kind] = by_kind.get(kind, 0) + 1
        data = out / "data.json"
        return {
            "tickets": tickets,
            "comments_per_ticket": comments,
            "outcome": request["outcome"],
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(rss_kib / 1024, 1),
            "requests": len(log),
            "requests_by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])[:8]),
            "attachments_downloaded": len(sb.attachment_log()),
            "attachments_seeded": attachments,
            "data_json_mb": round(data.stat().st_size / 1024**2, 2),
            "answer_mb": round(
                sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1024**2, 2
            ),
            "counts": {k: request["counts"].get(k) for k in ("tickets", "comments", "attachments")},
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.access_bench")
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--comments", type=int, default=5)
    parser.add_argument("--small", type=int, default=20, help="tickets of the baseline person")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    small = measure(args.small, args.comments)
    large = measure(args.tickets, args.comments)
    result = {
        **large,
        "peak_rss_small_mb": small["peak_rss_mb"],
        "small_tickets": args.small,
        "seconds_small": small["seconds"],
        "requests_per_subject": large["requests"],
        "minutes_at_700_per_minute": round(large["requests"] / 700, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"access, 1 person with {args.tickets} tickets x {args.comments} comments: "
            f"{result['seconds']} s, peak RSS {result['peak_rss_mb']} MB "
            f"(a person with {args.small} tickets: {result['peak_rss_small_mb']} MB), "
            f"{result['requests']} requests "
            f"(~{result['minutes_at_700_per_minute']} min at 700 requests/min), "
            f"data.json {result['data_json_mb']} MB"
        )
    return result


if __name__ == "__main__":
    main()
