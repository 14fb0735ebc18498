"""Crash and fault soak: does a batch erasure survive SIGKILL anywhere, faults and 429 storms?

Everything runs as separate processes, as in production: the sandbox is
``privacykit sandbox serve --port 0`` in its own process, and every erasure is
``privacykit erase --from-file FILE --yes --quiet --resume`` in a fresh process.

* ``crash_trial``: seeds N end users (email, phone, external id, a Sunshine profile), starts
  the batch, SIGKILLs it at a seeded random moment, resumes, and repeats (bounded) until a
  run finishes without being killed. Then it checks through the sandbox's request log that
  no user was permanently deleted twice and none is left (every subject user has exactly
  one successful ``DELETE /api/v2/deleted_users/{id}`` and ``GET /api/v2/users/search`` no
  longer finds anyone), that ``privacykit ledger verify`` passes, and that every erasure
  request has a signed report.
* ``fault_trial``: the same batch under a sandbox ``fault_rate`` (5xx, slow answers, dropped
  connections before or after the action), resumed until done (bounded); reports completion
  and requests spent per subject.
* ``storm_trial``: the batch while the account budget is cut mid-run
  (``POST /_sandbox/config``) so nearly every request meets a 429 for a while.

Run: ``python -m bench.crash_soak [--subjects 60] [--kills 40] [--seed 1] [--json]``
(``make soak`` runs it through ``bench.soak``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "SandboxProcess",
    "TrialResult",
    "crash_trial",
    "fault_trial",
    "main",
    "storm_trial",
]

PRIVACYKIT = [sys.executable, "-m", "privacykit"]
EMAIL = "dpo@sandbox.test"
TOKEN = "sandbox-token"
RUN_TIMEOUT = 300.0  # seconds one erase process may take before the harness gives up


class SandboxProcess:
    """``privacykit sandbox serve`` in a child process, controlled over its HTTP API."""

    def __init__(self, *, time_scale: float, fault_rate: float = 0.0, rng_seed: int = 1) -> None:
        self.proc = subprocess.Popen(
            [
                *PRIVACYKIT,
                "sandbox",
                "serve",
                "--port",
                "0",
                "--seed",
                "none",
                "--time-scale",
                str(time_scale),
                "--fault-rate",
                str(fault_rate),
                "--rng-seed",
                str(rng_seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"sandbox did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        self.http = httpx.Client(base_url=self.url, auth=(f"{EMAIL}/token", TOKEN), timeout=30)

    def env(self, home: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "PRIVACYKIT_"))}
        env.update(
            ZENDESK_URL=self.url,
            ZENDESK_EMAIL=EMAIL,
            ZENDESK_API_TOKEN=TOKEN,
            PRIVACYKIT_HOME=str(home),
        )
        return env

    def configure(self, **settings: Any) -> None:
        self.http.post("/_sandbox/config", json=settings).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for _ in range(100_000):  # bounded paging
            page = self.http.get("/_sandbox/log", params={"since": len(entries)}).json()
            batch = page["entries"]
            if not batch:
                return entries
            entries.extend(batch)
        raise RuntimeError("sandbox log did not end")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One Zendesk API call, waiting out 429s and retrying injected faults (bounded)."""
        for _ in range(200):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                continue
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "0.05")))
                continue
            if response.status_code >= 500:
                continue
            return response
        raise RuntimeError(f"{method} {path} kept failing")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if hasattr(self, "http"):
            self.http.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def seed_subjects(sb: SandboxProcess, count: int, tag: str) -> dict[str, int]:
    """Create ``count`` end users through the API; returns {email: user id}."""
    subjects: dict[str, int] = {}
    for i in range(count):
        email = f"soak.{tag}.{i}@example.com"
        body = {
            "user": {
                "name": f"Soak Person {tag} {i}",
                "email": email,
                "phone": f"+1555{i:07d}",
                "external_id": f"soak-{tag}-{i}",
                "verified": True,
            }
        }
        created = sb.api("POST", "/api/v2/users", json=body)
        created.raise_for_status()
        user_id = created.json()["user"]["id"]
        profile = {
            "profile": {"name": f"Soak {i}", "identifiers": [{"type": "email", "value": email}]}
        }
        sb.api(
            "PUT",
            f"/api/v2/users/{user_id}/profiles",
            params={"identifier": f"webshop:customer:email:{email}"},
            json=profile,
        ).raise_for_status()
        subjects[email] = user_id
    return subjects


@dataclass
class TrialResult:
    name: str
    subjects: int
    runs: int = 0
    kills: int = 0
    failures: list[str] = field(default_factory=list)
    completed: int = 0
    requests: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    extra_requests: int = 0

    @property
    def requests_per_subject(self) -> float:
        return self.requests / self.subjects if self.subjects else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subjects": self.subjects,
            "runs": self.runs,
            "kills": self.kills,
            "completed": self.completed,
            "completion": self.completed / self.subjects if self.subjects else 0.0,
            "requests": self.requests,
            "requests_per_subject": round(self.requests_per_subject, 1),
            "status_counts": self.status_counts,
            "failures": self.failures,
            "extra_no_data_requests": self.extra_requests,
            "seconds": round(self.seconds, 1),
        }


def _erase_command(subjects_file: Path) -> list[str]:
    return [*PRIVACYKIT, "erase", "--from-file", str(subjects_file), "--yes", "--quiet", "--resume"]


def _run_to_end(cmd: list[str], env: dict[str, str]) -> int:
    done = subprocess.run(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT
    )
    return done.returncode


def _check(
    sb: SandboxProcess,
    home: Path,
    env: dict[str, str],
    subjects: dict[str, int],
    result: TrialResult,
) -> None:
    """Exactly-once deletion from the sandbox's log, nobody left, ledger verifies, evidence."""
    log = sb.log()
    result.requests = len(log)
    result.status_counts = dict(Counter(str(e["status"]) for e in log))
    deletions: Counter[int] = Counter()
    for entry in log:
        path = entry["path"].split("?")[0]
        if entry["method"] == "DELETE" and path.startswith("/api/v2/deleted_users/"):
            # A connection dropped after the action counts too: the user is gone.
            applied = entry["status"] is not None and 200 <= entry["status"] < 300
            if applied or entry.get("fault") == "drop_after":
                deletions[int(path.rsplit("/", 1)[1])] += 1
    for user_id, times in deletions.items():
        if times > 1:
            result.failures.append(f"user {user_id} permanently deleted {times} times")
    erased = 0
    for email, user_id in subjects.items():
        tomb = sb.api("GET", f"/api/v2/deleted_users/{user_id}")
        gone = tomb.status_code == 200 and tomb.json()["deleted_user"]["name"] == (
            "Permanently Deleted User"
        )
        found = sb.api("GET", "/api/v2/users/search", params={"query": f"email:{email}"})
        if gone and not found.json().get("users") and deletions[user_id] == 1:
            erased += 1
        else:
            result.failures.append(f"user {user_id} not erased exactly once")
    result.completed = erased
    verify = subprocess.run(
        [*PRIVACYKIT, "ledger", "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    if verify.returncode != 0:
        result.failures.append(f"ledger verify: {verify.stdout.strip()} {verify.stderr.strip()}")
    listing = subprocess.run(
        [*PRIVACYKIT, "ledger", "list", "--kind", "erasure", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    requests = json.loads(listing.stdout)["requests"] if listing.returncode == 0 else []
    # Re-running the batch file after a subject's request completed opens a new request
    # that finds nothing (evidence "no data found"): expected, so count subjects, not
    # requests. Exactly-once deletion is judged from the sandbox's log above.
    refs = {r["subject_ref"] for r in requests}
    result.extra_requests = len(requests) - len(refs)
    if len(refs) != len(subjects):
        result.failures.append(f"erasure requests for {len(refs)} of {len(subjects)} subjects")
    for rid, reports in _stored_reports(home, [r["request_id"] for r in requests]).items():
        missing = [r for r in reports if not Path(r.get("path", "")).is_file()]
        if not reports or missing:
            result.failures.append(f"request {rid}: no signed report")


def _stored_reports(home: Path, request_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every request's stored signed reports (what ``privacykit evidence show`` lists), read
    through the library in this process: every erase process has ended by now, and one
    ledger open is seconds cheaper than one ``evidence show`` process per request."""
    from privacykit.evidence import request_reports
    from privacykit.ledger import Ledger

    ledger = Ledger.open(home)
    try:
        return {rid: request_reports(ledger, rid) for rid in request_ids}
    finally:
        ledger.close()


def _subjects_file(home: Path, subjects: dict[str, int]) -> Path:
    path = home.parent / "subjects.txt"
    path.write_text("".join(f"{email}\n" for email in subjects))
    return path


@dataclass
class _Batch:
    """One trial's running sandbox, home, environment, seeded people and erase command."""

    sb: Any
    home: Path
    env: dict[str, str]
    people: dict[str, int]
    cmd: list[str]


@contextmanager
def _trial(
    result: TrialResult,
    prefix: str,
    seed: int,
    time_scale: float,
    workdir: Path | None = None,
) -> Iterator[_Batch]:
    """Set up a sandbox process with ``result.subjects`` seeded people and a subjects file;
    after the trial body, check the outcome and count only the erasure's requests."""
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=workdir) as tmp,
        SandboxProcess(time_scale=time_scale, rng_seed=seed) as sb,
    ):
        home = Path(tmp) / "home"
        env = sb.env(home)
        people = seed_subjects(sb, result.subjects, f"{prefix}{seed}")
        before = len(sb.log())
        yield _Batch(sb, home, env, people, _erase_command(_subjects_file(home, people)))
        _check(sb, home, env, people, result)
        result.requests -= before  # the seeding's requests are not the erasure's
    result.seconds = time.perf_counter() - start


def crash_trial(
    subjects: int = 60,
    kills: int = 40,
    seed: int = 1,
    *,
    time_scale: float = 600.0,
    max_delay: float = 2.0,
    workdir: Path | None = None,
) -> TrialResult:
    """Kill the batch at ``kills`` seeded random moments, resuming each time, then check."""
    rng = random.Random(seed)
    result = TrialResult("crash", subjects)
    with _trial(result, "crash", seed, time_scale, workdir) as batch:
        cmd, env = batch.cmd, batch.env
        for _ in range(kills):
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            result.runs += 1
            try:
                proc.wait(rng.uniform(0.05, max_delay))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                result.kills += 1
                continue
            if proc.returncode == 0:
                break  # the batch finished before the kill came
        for _ in range(5):  # resume without kills until a run ends cleanly (bounded)
            result.runs += 1
            if _run_to_end(cmd, env) == 0:
                break
        else:
            result.failures.append("the batch did not finish after 5 clean resumes")
    return result


def fault_trial(
    subjects: int = 60,
    fault_rate: float = 0.05,
    seed: int = 1,
    *,
    time_scale: float = 600.0,
    max_runs: int = 10,
) -> TrialResult:
    """The batch under injected faults, resumed until it ends cleanly (bounded)."""
    result = TrialResult(f"faults {fault_rate:g}", subjects)
    with _trial(result, "fault", seed, time_scale) as batch:
        batch.sb.configure(fault_rate=fault_rate)
        for _ in range(max_runs):
            result.runs += 1
            if _run_to_end(batch.cmd, batch.env) == 0:
                break
        else:
            result.failures.append(f"not finished after {max_runs} runs")
        batch.sb.configure(fault_rate=0.0)
    return result


def storm_trial(
    subjects: int = 60,
    seed: int = 1,
    *,
    time_scale: float = 60.0,
    storm_limit: int = 10,
    storm_seconds: float = 3.0,
    max_runs: int = 5,
) -> TrialResult:
    """The batch while the account budget drops to ``storm_limit``/minute mid-run."""
    result = TrialResult(f"429 storm (limit {storm_limit}/min)", subjects)
    with _trial(result, "storm", seed, time_scale) as batch:
        cmd, env, sb = batch.cmd, batch.env, batch.sb
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result.runs += 1
        try:
            time.sleep(0.3)
            sb.configure(account_limit=storm_limit, permanent_delete_limit=storm_limit)
            time.sleep(storm_seconds)
            sb.configure(account_limit=700, permanent_delete_limit=700)
            code = proc.wait(RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        while code != 0 and result.runs < max_runs:
            result.runs += 1
            code = _run_to_end(cmd, env)
        if code != 0:
            result.failures.append(f"not finished after {max_runs} runs")
    return result


def print_table(results: list[TrialResult]) -> None:
    print(
        f"{'trial':<28} {'subjects':>8} {'runs':>5} {'kills':>5} {'done':>9} "
        f"{'req/subj':>8} {'429s':>6} {'failures':>8} {'seconds':>8}"
    )
    for r in results:
        print(
            f"{r.name:<28} {r.subjects:>8} {r.runs:>5} {r.kills:>5} "
            f"{r.completed:>4}/{r.subjects:<4} {r.requests_per_subject:>8.1f} "
            f"{r.status_counts.get('429', 0):>6} {len(r.failures):>8} {r.seconds:>8.1f}"
        )
    for r in results:
        for failure in r.failures[:10]:
            print(f"FAILURE {r.name}: {failure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_soak")
    parser.add_argument("--subjects", type=int, default=60)
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [crash_trial(args.subjects, args.kills, args.seed)]
    if not args.skip_faults:
        results.append(fault_trial(args.subjects, 0.05, args.seed))
        results.append(fault_trial(args.subjects, 0.2, args.seed))
        results.append(storm_trial(args.subjects, args.seed))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print_table(results)
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
