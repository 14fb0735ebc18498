"""Kill-anywhere soak of a batch erasure's conversations: shared ``destroy_many`` jobs.

The batch's tickets are soft-deleted through ``tickets/destroy_many`` jobs shared by its
subjects and permanently deleted through ``deleted_tickets/destroy_many`` jobs, while the
priority pool runs started subjects' continuations before new ones. This harness proves
those survive SIGKILL at any point, as :mod:`bench.crash_soak` does for users.

Each trial (separate processes, as in production: ``privacykit sandbox serve`` and one
``privacykit erase --from-file FILE --yes --quiet --resume --playbook SOAK`` per run):

* seeds N people: a user with a Sunshine profile, 3 closed tickets they requested, 1
  solved one (the soak playbook says ``open: close``: closed first, then deleted), and a
  comment of theirs on someone else's closed ticket they are CC'd on (the redact path);
* runs the batch and SIGKILLs it, again and again, at seeded points chosen from
  :data:`KILL_POINTS`. The targeted ones hold one answer of the sandbox (a slow drip on one
  endpoint) and kill while it is held, i.e. after the request was applied and before the
  process read the answer: a ticket being closed (plans recorded), the soft-delete job
  queued and its id not recorded (after the
  ledger's intent), the permanent-deletion job likewise, a job-status poll in flight
  (between a job and its outcome); ``soft_job_accepted`` kills a few milliseconds after a
  soft-delete job was accepted (job id recorded or not); ``random`` at a random moment;
* between runs (process dead), now and then gives one of a person's untouched solved
  tickets to another requester (``PUT /api/v2/tickets/{id}``, as an agent would): a
  resumed run must never close or delete it, and that person ends needing review;
* resumes without kills until a run ends on its own (bounded), then checks
  (:func:`check_conversations`):

  - from the sandbox's request log: every user of a finished person permanently deleted
    exactly once and gone; every ticket the plan meant to delete is permanently deleted
    (neither live nor soft-deleted); no ticket was sent to a job of a kind (or its single
    ``DELETE``) after an earlier job of that kind holding it had certainly finished
    (``job_delay`` virtual seconds after it was queued); no request named a ticket given to
    another requester after it changed hands; the person's comment on the other ticket is
    redacted;
  - from the ledger: ``ledger verify`` passes; no request left ``in_progress``; only the
    people whose ticket changed hands need review; each request's latest evidence lists
    exactly the tickets, soft deletions and redacted comments its ledger entries show, and
    its signed PDF report names every permanently deleted ticket; no subject's email,
    name or comment text appears anywhere in the ledger's files.

Run: ``python -m bench.ticket_soak [--subjects 12] [--kills 120] [--per-trial 12] [--seed 1]``
(``make soak`` runs it after :mod:`bench.crash_soak`).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.crash_soak import PRIVACYKIT, RUN_TIMEOUT, SandboxProcess, seed_subjects

__all__ = [
    "KILL_POINTS",
    "Seeded",
    "TicketTrial",
    "check_conversations",
    "main",
    "seed_conversations",
    "ticket_crash_trial",
]

#: Where a run is killed. A targeted point holds the first answer of its endpoint (a
#: slow drip: the request is applied, the answer never arrives) and kills while it is held.
KILL_POINTS: dict[str, str | None] = {
    "ticket_close": "PUT /api/v2/tickets/{id}",  # plans recorded, tickets being closed
    "soft_job_queued": "DELETE /api/v2/tickets/destroy_many",
    "purge_job_queued": "DELETE /api/v2/deleted_tickets/destroy_many",
    "job_poll": "GET /api/v2/job_statuses/show_many",
    "soft_job_accepted": None,  # a few ms after a soft-delete job was accepted
    "random": None,
}
#: Virtual seconds a job runs (queued to completed). Long enough that a kill often lands
#: while one runs; short next to the job statuses' hour of life.
JOB_DELAY = 120.0
#: How long (real seconds) a run waits for its kill point before it is killed anyway.
POINT_WAIT = 20.0
_SOFT = ("DELETE", "/api/v2/tickets/destroy_many")
_PURGE = ("DELETE", "/api/v2/deleted_tickets/destroy_many")


@dataclass
class Seeded:
    """One trial's people and their conversations (sandbox ids)."""

    people: dict[str, int]  # email -> user id
    other: int  # the requester of the tickets the people only commented on
    requested: dict[int, list[int]] = field(default_factory=dict)  # user -> tickets
    solved: dict[int, int] = field(default_factory=dict)  # user -> their solved ticket
    foreign: dict[int, int] = field(default_factory=dict)  # user -> other's ticket
    markers: dict[int, str] = field(default_factory=dict)  # user -> text of their comment


@dataclass
class TicketTrial:
    name: str
    subjects: int
    seed: int = 0
    runs: int = 0
    kills: int = 0
    kills_by_point: dict[str, int] = field(default_factory=dict)
    hand_overs: int = 0  # tickets given to another requester between runs
    failures: list[str] = field(default_factory=list)
    completed: int = 0
    needs_review: int = 0
    tickets_purged: int = 0
    soft_jobs: int = 0
    purge_jobs: int = 0
    resent: int = 0  # tickets sent to a job of a kind more than once (allowed while unknown)
    requests: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _playbook(directory: Path) -> Path:
    """The shipped erasure playbook with ``open: close`` (so a solved ticket is closed,
    then deleted: the close path runs too)."""
    from privacykit.playbooks.loader import builtin_playbook_dir

    text = (builtin_playbook_dir() / "erasure.yaml").read_text()
    if "    open: review\n" not in text:
        raise RuntimeError("the shipped erasure playbook changed: update the soak playbook")
    path = directory / "erasure-soak.yaml"
    path.write_text(text.replace("    open: review\n", "    open: close\n"))
    return path


def seed_conversations(sb: SandboxProcess, count: int, tag: str) -> Seeded:
    """``count`` people (see :func:`bench.crash_soak.seed_subjects`), each with 3 closed
    and 1 solved requested tickets and a comment on another person's closed ticket."""
    people = seed_subjects(sb, count, tag)
    other = sb.api(
        "POST",
        "/api/v2/users",
        json={"user": {"name": "Soak Other", "email": f"other.{tag}@example.org"}},
    )
    other.raise_for_status()
    seeded = Seeded(people, other.json()["user"]["id"])

    def ticket(requester: int, status: str, **extra: Any) -> int:
        body = {"requester_id": requester, "status": status, "subject": "Order", **extra}
        made = sb.http.post("/_sandbox/tickets", json=body)
        made.raise_for_status()
        return int(made.json()["ticket"]["id"])

    for index, user_id in enumerate(people.values()):
        marker = f"soak-said-{tag}-{index}"
        seeded.markers[user_id] = marker
        seeded.requested[user_id] = [
            ticket(user_id, "closed", description=f"{marker} order {k}") for k in range(3)
        ]
        seeded.solved[user_id] = ticket(user_id, "solved", description=f"{marker} solved")
        seeded.requested[user_id].append(seeded.solved[user_id])
        foreign = ticket(seeded.other, "open", description="A question", ccs=[user_id])
        sb.http.post(
            "/_sandbox/comments",
            json={"ticket_id": foreign, "author_id": user_id, "body": f"{marker} call me"},
        ).raise_for_status()
        sb.http.post(f"/_sandbox/tickets/{foreign}", json={"status": "closed"}).raise_for_status()
        seeded.foreign[user_id] = foreign
    return seeded


# -- the request log -------------------------------------------------------------------------


def _path(entry: dict[str, Any]) -> str:
    return str(entry["path"]).split("?")[0].removesuffix(".json")


def _ids(entry: dict[str, Any]) -> list[int]:
    query = str(entry.get("query") or "")
    if not query and "?" in str(entry["path"]):
        query = str(entry["path"]).split("?", 1)[1]
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "ids":
            return [int(v) for v in value.replace("%2C", ",").split(",") if v.strip()]
    return []


def _applied(entry: dict[str, Any]) -> bool:
    status = entry.get("status")
    ok = isinstance(status, int) and 200 <= status < 300
    return ok or entry.get("fault") == "drop_after"


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00")).timestamp()


def _ticket_sends(log: list[dict[str, Any]]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Per kind (``soft``/``purge``), per ticket: the applied requests that asked for it
    (a bulk job or its single ``DELETE``), in log order."""
    sends: dict[str, dict[int, list[dict[str, Any]]]] = {"soft": {}, "purge": {}}
    for entry in log:
        method, path = entry["method"], _path(entry)
        if method != "DELETE" or not _applied(entry):
            continue
        if (method, path) == _SOFT:
            kind, ids = "soft", _ids(entry)
        elif (method, path) == _PURGE:
            kind, ids = "purge", _ids(entry)
        elif path.startswith("/api/v2/tickets/") and path.rsplit("/", 1)[1].isdigit():
            kind, ids = "soft", [int(path.rsplit("/", 1)[1])]
        elif path.startswith("/api/v2/deleted_tickets/") and path.rsplit("/", 1)[1].isdigit():
            kind, ids = "purge", [int(path.rsplit("/", 1)[1])]
        else:
            continue
        for tid in ids:
            sends[kind].setdefault(tid, []).append(entry)
    return sends


def _names_ticket(entry: dict[str, Any], tid: int) -> bool:
    """Whether a changing request (not a read) names ticket ``tid``."""
    if entry["method"] == "GET":
        return False
    path = _path(entry)
    return path.endswith(f"/{tid}") or f"/{tid}/" in path or tid in _ids(entry)


# -- one trial -------------------------------------------------------------------------------


def _erase(subjects: Path, playbook: Path) -> list[str]:
    return [
        *PRIVACYKIT,
        "erase",
        "--from-file",
        str(subjects),
        "--playbook",
        str(playbook),
        "--yes",
        "--quiet",
        "--resume",
        "--concurrency",
        "4",
    ]


def _run_killed(
    sb: SandboxProcess,
    cmd: list[str],
    env: dict[str, str],
    point: str,
    rng: random.Random,
    max_delay: float,
) -> bool:
    """One run, killed at ``point``; True if it was killed (False: it ended first)."""
    endpoint = KILL_POINTS[point]
    if endpoint is not None:
        # One answer held for (virtual) hours: the request is applied, the answer waits.
        drip = {"interval": 36000, "max_bytes": 10, "part": "head", "endpoints": [endpoint]}
        sb.configure(slow_drip={**drip, "times": 1})
    since = len(sb.log())
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if point == "random":
            try:
                proc.wait(rng.uniform(0.05, max_delay))
                return False
            except subprocess.TimeoutExpired:
                pass
        else:
            deadline = time.monotonic() + POINT_WAIT
            hit = False
            while not hit and proc.poll() is None and time.monotonic() < deadline:
                batch = sb.http.get("/_sandbox/log", params={"since": since}).json()["entries"]
                since += len(batch)
                for entry in batch:
                    if endpoint is not None:
                        hit = hit or entry.get("fault") == "slow_drip"
                    elif (entry["method"], _path(entry)) == _SOFT and _applied(entry):
                        hit = True
                if not hit:
                    time.sleep(0.005)
            if hit and endpoint is None:
                time.sleep(rng.uniform(0.0, 0.03))
            if proc.poll() is not None:
                return False
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if endpoint is not None:
            sb.configure(slow_drip=None)


def _hand_over(
    sb: SandboxProcess, seeded: Seeded, changed: dict[int, tuple[int, int]], rng: random.Random
) -> None:
    """Give one untouched solved ticket to another requester (the erasing process is
    dead). ``changed``: user -> (ticket, log seq of the change)."""
    log = sb.log()
    candidates = [
        (uid, tid)
        for uid, tid in sorted(seeded.solved.items())
        if uid not in changed and not any(_names_ticket(e, tid) for e in log)
    ]
    if not candidates:
        return
    uid, tid = rng.choice(candidates)
    body = {"ticket": {"requester_id": seeded.other}}
    sb.api("PUT", f"/api/v2/tickets/{tid}", json=body).raise_for_status()
    after = sb.log()
    # Its own entry: the last PUT naming it (a request of the killed run still being
    # answered can only come before it).
    seq = max(e["seq"] for e in after if e["method"] == "PUT" and _names_ticket(e, tid))
    if any(_names_ticket(e, tid) for e in after[len(log) :] if e["seq"] < seq):
        return  # the killed run's last request reached it meanwhile: not a clean change
    changed[uid] = (tid, seq)


def ticket_crash_trial(
    subjects: int = 12,
    kills: int = 30,
    seed: int = 1,
    *,
    time_scale: float = 600.0,
    max_delay: float = 3.0,
    hand_over_rate: float = 0.15,
    max_hand_overs: int = 2,
    points: Sequence[str] | None = None,
    workdir: Path | None = None,
) -> TicketTrial:
    """Kill the batch ``kills`` times at seeded points (or at ``points``, in order),
    resume to the end, check."""
    rng = random.Random(seed)
    result = TicketTrial("tickets", subjects, seed)
    choices = list(KILL_POINTS)
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=workdir) as tmp,
        SandboxProcess(time_scale=time_scale, rng_seed=seed) as sb,
    ):
        sb.configure(job_delay=JOB_DELAY)
        home = Path(tmp) / "home"
        env = sb.env(home)
        seeded = seed_conversations(sb, subjects, f"t{seed}")
        subjects_file = Path(tmp) / "subjects.txt"
        subjects_file.write_text("".join(f"{email}\n" for email in seeded.people))
        cmd = _erase(subjects_file, _playbook(Path(tmp)))
        before = len(sb.log())
        changed: dict[int, tuple[int, int]] = {}
        by_point: Counter[str] = Counter()
        for index in range(kills if points is None else len(points)):
            point = rng.choice(choices) if points is None else points[index]
            result.runs += 1
            if not _run_killed(sb, cmd, env, point, rng, max_delay):
                break  # the batch ended before the kill came
            result.kills += 1
            by_point[point] += 1
            if len(changed) < max_hand_overs and rng.random() < hand_over_rate:
                _hand_over(sb, seeded, changed, rng)
        result.kills_by_point = dict(by_point)
        result.hand_overs = len(changed)
        code = None
        for _ in range(5):  # resume without kills until a run ends on its own (bounded)
            result.runs += 1
            code = subprocess.run(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT
            ).returncode
            if code == 0 or code == 1 and changed:
                break
        if code not in (0, 1) or code == 1 and not changed:
            result.failures.append(f"the batch did not finish after 5 clean resumes (exit {code})")
        log = sb.log()
        check_conversations(sb, home, env, seeded, changed, log[before:], result)
    result.seconds = time.perf_counter() - start
    return result


# -- the checks ------------------------------------------------------------------------------


def check_conversations(
    sb: SandboxProcess,
    home: Path,
    env: dict[str, str],
    seeded: Seeded,
    changed: dict[int, tuple[int, int]],
    log: list[dict[str, Any]],
    result: TicketTrial,
) -> None:
    """The invariants of the module docstring; failures are appended to ``result``."""
    fail = result.failures.append
    result.requests = len(log)
    sends = _ticket_sends(log)
    result.soft_jobs = sum(1 for e in log if (e["method"], _path(e)) == _SOFT and _applied(e))
    result.purge_jobs = sum(1 for e in log if (e["method"], _path(e)) == _PURGE and _applied(e))
    # No ticket sent again once an earlier job of that kind holding it had certainly ended.
    for kind, per_ticket in sends.items():
        for tid, entries in per_ticket.items():
            result.resent += len(entries) > 1
            for earlier, later in zip(entries, entries[1:], strict=False):
                if _at(later) > _at(earlier) + JOB_DELAY + 1:
                    fail(
                        f"ticket {tid}: sent to {kind} deletion again (log #{later['seq']}) "
                        f"after its job from log #{earlier['seq']} had ended"
                    )
    # A ticket given to another requester: no changing request names it afterwards.
    for tid, seq in changed.values():
        for entry in log:
            if entry["seq"] > seq and _names_ticket(entry, tid):
                fail(f"ticket {tid} changed hands, then {entry['method']} {_path(entry)}")
        shown = sb.api("GET", f"/api/v2/tickets/{tid}")
        if shown.status_code != 200 or shown.json()["ticket"]["requester_id"] != seeded.other:
            fail(f"ticket {tid} changed hands and is no longer live with its new requester")
    # Users: exactly one permanent deletion each for everyone who finished; none otherwise.
    deletions: Counter[int] = Counter()
    for entry in log:
        path = _path(entry)
        if entry["method"] == "DELETE" and path.startswith("/api/v2/deleted_users/"):
            if _applied(entry):
                deletions[int(path.rsplit("/", 1)[1])] += 1
    deleted_tickets = _deleted_ticket_ids(sb)
    deleted_tickets = _deleted_ticket_ids(sb)
    everyone = [t for ts in seeded.requested.values() for t in ts]
    zendesk = dict.fromkeys(deleted_tickets & set(everyone), "soft_deleted")
    for start in range(0, len(everyone), 100):
        chunk = ",".join(map(str, everyone[start : start + 100]))
        for row in sb.api("GET", "/api/v2/tickets/show_many", params={"ids": chunk}).json()[
            "tickets"
        ]:
            zendesk[row["id"]] = "live"
    held = _check_ledger(zendesk, home, env, seeded, changed, result)
    for uid in seeded.people.values():
        if uid in held:
            if deletions[uid]:
                fail(f"user {uid} was deleted though a planned ticket changed hands")
            continue
        tomb = sb.api("GET", f"/api/v2/deleted_users/{uid}")
        gone = tomb.status_code == 200 and (
            tomb.json()["deleted_user"]["name"] == "Permanently Deleted User"
        )
        if not gone or deletions[uid] != 1:
            fail(f"user {uid}: permanently deleted {deletions[uid]} times (gone: {gone})")
        else:
            result.completed += 1
        wanted = [t for t in seeded.requested[uid] if t != changed.get(uid, (0, 0))[0]]
        live = {
            t["id"]
            for t in sb.api(
                "GET", "/api/v2/tickets/show_many", params={"ids": ",".join(map(str, wanted))}
            ).json()["tickets"]
        }
        for tid in wanted:
            if tid in live or tid in deleted_tickets:
                fail(f"ticket {tid} of user {uid} not permanently deleted")
            elif len(sends["purge"].get(tid, [])) < 1:
                fail(f"ticket {tid} gone without a permanent deletion request")
            else:
                result.tickets_purged += 1
        comments = sb.api("GET", f"/api/v2/tickets/{seeded.foreign[uid]}/comments")
        if seeded.markers[uid] in comments.text:
            fail(f"user {uid}'s comment on ticket {seeded.foreign[uid]} is not redacted")


def _deleted_ticket_ids(sb: SandboxProcess) -> set[int]:
    found: set[int] = set()
    url: str | None = "/api/v2/deleted_tickets"
    for _ in range(1000):  # bounded paging
        if url is None:
            return found
        page = sb.api("GET", url).json()
        found.update(t["id"] for t in page["deleted_tickets"])
        url = page.get("next_page")
    raise RuntimeError("deleted_tickets did not end")


def _check_ledger(
    zendesk: dict[int, str],
    home: Path,
    env: dict[str, str],
    seeded: Seeded,
    changed: dict[int, tuple[int, int]],
    result: TicketTrial,
) -> set[int]:
    """Ledger checks; returns the people held for review (a planned ticket changed
    hands)."""
    fail = result.failures.append
    held: set[int] = set()
    verify = subprocess.run(
        [*PRIVACYKIT, "ledger", "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    if verify.returncode != 0:
        fail(f"ledger verify: {verify.stdout.strip()} {verify.stderr.strip()}")
    # Nothing the people said or were called, anywhere in the home's files but the PDFs
    # (compressed; they are checked for ids below).
    secrets = [e.encode() for e in seeded.people] + [m.encode() for m in seeded.markers.values()]
    secrets.append(b"Soak Person")
    for path in home.rglob("*"):
        if path.is_file() and path.suffix != ".pdf":
            data = path.read_bytes()
            for secret in secrets:
                if secret in data:
                    fail(f"{path.name} holds a subject's data ({secret[:12]!r}...)")
                    break
    from privacykit.evidence import request_reports
    from privacykit.ledger import Ledger
    from privacykit.playbooks.erasure.ticket_history import TicketHistory

    ledger = Ledger.open(home)
    try:
        requests = ledger.list_requests(kind="erasure")
        by_subject: dict[str, list[Any]] = defaultdict(list)
        for request in requests:
            by_subject[request.subject_ref].append(request)
        from privacykit.playbooks.subjects import parse_subject

        refs = {
            ledger.subject_ref(parse_subject(email).key): uid
            for email, uid in seeded.people.items()
        }
        if set(by_subject) != set(refs):
            fail(f"erasure requests for {len(by_subject)} of {len(refs)} people")
        for ref, uid in refs.items():
            statuses = [r.status for r in by_subject.get(ref, [])]
            if "in_progress" in statuses:
                fail(f"user {uid}: a request left in_progress ({statuses})")
            review = "needs_review" in statuses
            result.needs_review += review
            # A ticket that changed hands after the person's plan was recorded stops them
            # for review; one that changed before their discovery is simply not theirs.
            planned = uid in changed and any(
                _plans_ticket(ledger.entries(r.request_id), changed[uid][0])
                for r in by_subject.get(ref, [])
            )
            if review != planned:
                fail(f"user {uid}: statuses {statuses}; a planned ticket changed hands: {planned}")
            if planned:
                held.add(uid)
        for request in requests:
            rid = request.request_id
            entries = ledger.entries(rid)
            history = TicketHistory.from_entries(entries)
            evidence = [e for e in entries if e.step_key == "evidence" and e.phase == "info"]
            if not evidence:
                fail(f"request {rid}: no evidence")
                continue
            rows = evidence[-1].data.get("tickets") or []
            shown = {
                "permanently deleted": {r["ticket_id"] for r in rows if r["permanently_deleted"]},
                "soft-deleted": {r["ticket_id"] for r in rows if r["soft_deleted"]},
                "comments redacted": {c for r in rows for c in r["comments_redacted"]},
            }
            recorded = {
                "permanently deleted": set(history.purged),
                "soft-deleted": set(history.soft_deleted),
                "comments redacted": {cid for _, cid in history.redacted},
            }
            for what, ids in shown.items():
                if ids != recorded[what]:
                    fail(
                        f"request {rid}: evidence lists {what} {sorted(ids)}, "
                        f"the ledger {sorted(recorded[what])}"
                    )
            _check_report(request_reports(ledger, rid), rid, history.purged, fail)
            # What Zendesk shows of the tickets this request sent to jobs, its ledger says.
            for tid in {t for r in history.purges.values() for t in r.intent.get("ticket_ids", [])}:
                if tid not in zendesk and tid not in history.purged:
                    fail(f"request {rid}: ticket {tid} is gone, its ledger does not say purged")
            sent = {
                t for r in history.delete_groups.values() for t in r.intent.get("ticket_ids", [])
            }
            for tid in sent:
                if zendesk.get(tid) != "live" and tid not in history.soft_deleted:
                    fail(f"request {rid}: ticket {tid} was deleted, its ledger does not say so")
    finally:
        ledger.close()
    return held


def _plans_ticket(entries: list[Any], tid: int) -> bool:
    """Whether a request's latest recorded ticket plan (the one a resumed run reads back)
    holds ``tid``. A run that found the person's plan unfinished discovers again, and a
    ticket that changed hands meanwhile is simply not theirs any more."""
    plans = [e for e in entries if e.step_key == "tickets" and e.phase == "info"]
    rows = plans[-1].data.get("tickets") or [] if plans else []
    return any(row.get("ticket_id") == tid for row in rows)


def _check_report(reports: list[dict[str, Any]], rid: str, purged: list[int], fail: Any) -> None:
    """The latest signed report exists and names every permanently deleted ticket."""
    if not reports or not Path(reports[-1].get("path", "")).is_file():
        fail(f"request {rid}: no signed report")
        return
    from pypdf import PdfReader

    reader = PdfReader(reports[-1]["path"])
    text = "".join(page.extract_text() or "" for page in reader.pages)
    text = text.replace("\n", " ")
    missing = [t for t in purged if str(t) not in text]
    if missing:
        fail(f"request {rid}: the report does not name permanently deleted tickets {missing}")


def print_table(results: list[TicketTrial]) -> None:
    print(
        f"{'seed':>4} {'subj':>4} {'runs':>4} {'kills':>5} {'handed':>6} {'done':>7} "
        f"{'review':>6} {'purged':>6} {'soft jobs':>9} {'purge jobs':>10} {'resent':>6} "
        f"{'failures':>8} {'seconds':>7}"
    )
    for r in results:
        print(
            f"{r.seed:>4} {r.subjects:>4} {r.runs:>4} {r.kills:>5} {r.hand_overs:>6} "
            f"{r.completed:>3}/{r.subjects:<3} {r.needs_review:>6} {r.tickets_purged:>6} "
            f"{r.soft_jobs:>9} {r.purge_jobs:>10} {r.resent:>6} {len(r.failures):>8} "
            f"{r.seconds:>7.1f}"
        )
    points: Counter[str] = Counter()
    for r in results:
        points.update(r.kills_by_point)
    print("kills by point:", dict(sorted(points.items())))
    for r in results:
        for failure in r.failures[:20]:
            print(f"FAILURE seed {r.seed}: {failure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ticket_soak")
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--kills", type=int, default=120, help="in all, over the trials")
    parser.add_argument("--per-trial", type=int, default=12, help="most kills in one trial")
    parser.add_argument("--max-trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: list[TicketTrial] = []
    # A trial ends when its batch does: trials (seeds args.seed, +1, ...) until enough kills.
    while sum(r.kills for r in results) < args.kills and len(results) < args.max_trials:
        results.append(ticket_crash_trial(args.subjects, args.per_trial, args.seed + len(results)))
        if not args.json:
            print_table(results[-1:])
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print("total:", sum(r.kills for r in results), "kills")
        print_table(results)
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
