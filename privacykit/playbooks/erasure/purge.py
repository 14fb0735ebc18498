"""Bulk ticket jobs shared by the subjects of a batch: soft deletion
(``tickets/destroy_many``) and permanent deletion (``deleted_tickets/destroy_many``).

Owns :class:`TicketJobs`. Each subject hands over
the ids of its tickets after recording its intent (:meth:`TicketJobs.add`, with a
``kind``: :data:`SOFT_DELETE` or :data:`PURGE`); the first subject that needs them done
(:meth:`TicketJobs.wait`) sends everything pending of that kind -- every subject's ids,
up to 100 per job -- and then one waiting thread at a time polls
``job_statuses/show_many`` (jobs of both kinds in one request) until every job has
ended, so a batch of 33 people with 3 tickets each costs one job per kind. Jobs are
followed to their end well before Zendesk expires their statuses (about an hour; polls
back off from a fraction of a second to :attr:`~TicketJobs.poll_max`, both scaled to the
server's clock as the governor learned it, and a job's first poll waits for as long as
recent jobs of its kind were still seen running), and at most :attr:`~TicketJobs.max_jobs` of
them are in flight (Zendesk allows 30 queued per account; the client's governor holds
the slots).

Soft deletion happens while subjects are still being prepared in parallel (before their
users are deleted), so its waiters linger: a soft-delete job is sent once no other
subject is still on its way to hand tickets over (:meth:`TicketJobs.coming` /
:meth:`TicketJobs.arrived`), once 100 ids are pending, or after :data:`LINGER` (server
seconds; at least :data:`LINGER_FLOOR` real seconds) -- whichever comes first.

A ticket's outcome is ``done`` (the job says so), ``failed`` (the job says it could
not: e.g. ``RecordNotFound``) or ``unknown`` (no answer: a job status that expired or
was never seen, an error while queueing, the wait bound). Anything but ``done`` is
settled by the caller from the tickets' state (:meth:`TicketJobs.states`: live in
``show_many``, soft-deleted in ``deleted_tickets``, else gone) -- never by assuming.

Assumption (the docs are silent on the results of both ``destroy_many`` jobs): a
finished job's ``results`` hold one ``{"id": ticket id, "success": bool, ...}`` per
ticket, as Zendesk's other bulk jobs do; a result we cannot read counts as unknown.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privacykit.errors import (
    HTTPStatusError,
    RateLimitError,
    RateLimitWaitExceeded,
    ServerError,
    ZendeskError,
)
from privacykit.playbooks.erasure.tickets import TicketClient, zendesk_id
from privacykit.playbooks.reasons import why

__all__ = [
    "KINDS",
    "LINGER",
    "LINGER_FLOOR",
    "PURGE",
    "SOFT_DELETE",
    "JobOutcome",
    "TicketJobs",
]

#: ``DELETE /api/v2/tickets/destroy_many``: live tickets become soft-deleted.
SOFT_DELETE = "soft_delete"
#: ``DELETE /api/v2/deleted_tickets/destroy_many``: soft-deleted tickets are deleted for good.
PURGE = "purge"
#: Each kind and the client method that queues its job.
KINDS = {SOFT_DELETE: "soft_delete_tickets", PURGE: "permanently_delete_tickets"}
#: How long (server seconds) a soft-delete waiter waits for subjects still on their way.
LINGER = 5.0
#: ... and at least this many real seconds. Tests that assert how tickets were grouped
#: raise it, so the grouping does not depend on the machine's speed.
LINGER_FLOOR = 0.05

_TERMINAL = frozenset({"completed", "failed", "killed"})
Submitted = Callable[[str, list[int]], None]


@dataclass
class JobOutcome:
    """What became of some tickets handed to a kind of job."""

    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)


@dataclass
class _Job:
    kind: str
    ids: list[int]
    sent: float  # our clock, when it was queued (or followed)
    followed: bool = False  # an earlier run's job: when it was queued is unknown
    polls: int = 0  # polls that saw it running
    last_poll: float | None = None  # our clock, the last poll that saw it running
    done: bool = False


@dataclass
class _Result:
    state: str  # done | failed | unknown
    job_id: str | None = None
    error: str | None = None


class TicketJobs:
    """Bulk soft and permanent deletion of tickets for many subjects (see the module
    docstring).

    Thread-safe. ``sleep`` and ``clock`` are replaceable for tests; ``scale`` returns how
    much faster the server's clock runs (default: the governor's learned time scale)."""

    def __init__(
        self,
        client: TicketClient,
        *,
        max_ids: int = 100,
        max_jobs: int = 25,
        poll_first: float = 0.05,
        poll_max: float = 10.0,
        give_up_after: float = 1800.0,
        linger: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        scale: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.max_ids = max(1, min(100, max_ids))
        self.max_jobs = max(1, max_jobs)
        self.poll_first = poll_first
        self.poll_max = poll_max
        self.give_up_after = give_up_after
        self.linger = linger
        self._sleep = sleep
        self._clock = clock
        self._scale_fn = scale or self._governor_scale
        self._cond = threading.Condition()
        self._pending: list[tuple[str, int, Submitted | None]] = []
        self._jobs: dict[str, _Job] = {}
        self._results: dict[tuple[str, int], _Result] = {}
        self._flushing: set[str] = set()
        self._polling = False
        # Per kind, how long recent jobs were at least seen running (server seconds): a new
        # job's first poll waits that long instead of polling from 0.05 s up each time.
        self._durations: dict[str, deque[float]] = {k: deque(maxlen=8) for k in KINDS}
        self._coming: set[Any] = set()
        self._generation = 0
        self._deleted: tuple[int, set[int]] | None = None
        self._deleted_lock = threading.Lock()
        self.submitted: dict[str, int] = dict.fromkeys(KINDS, 0)

    # -- who is still on the way ---------------------------------------------------------------

    def coming(self, key: Any) -> None:
        """A subject that may still hand tickets to soft deletion is being prepared."""
        with self._cond:
            self._coming.add(key)

    def arrived(self, key: Any) -> None:
        """It handed its tickets over (or has none, or stopped): nobody waits for it."""
        with self._cond:
            if key in self._coming:
                self._coming.discard(key)
                self._cond.notify_all()

    def alone(self, key: Any = None) -> bool:
        """Whether no other subject is on its way and no soft deletion is pending: a job
        would carry this subject's tickets only."""
        with self._cond:
            others = self._coming - {key}
            return not others and not any(k == SOFT_DELETE for k, _, _ in self._pending)

    # -- handing tickets over ----------------------------------------------------------------

    def add(
        self,
        ticket_ids: Iterable[int],
        on_submitted: Submitted | None = None,
        *,
        kind: str = PURGE,
    ) -> None:
        """Queue tickets for a ``kind`` of job (sent by the next :meth:`wait` for that
        kind). ``on_submitted(job_id, ids)`` is called once per job holding any of them,
        right after Zendesk accepted it (to record the job id)."""
        assert kind in KINDS
        with self._cond:
            for tid in ticket_ids:
                self._results.pop((kind, tid), None)
                self._pending.append((kind, tid, on_submitted))
            # Tickets about to change: a deleted tickets list read before is out of date.
            self._generation += 1
            self._cond.notify_all()

    def withdraw(self, ticket_ids: Iterable[int], *, kind: str = PURGE) -> list[int]:
        """Take tickets still waiting to be sent in a job of ``kind`` off the queue (a
        subject stopped for review before its job was sent: nothing irreversible happens
        for it). Returns the ids withdrawn; ids already in a job are unaffected."""
        assert kind in KINDS
        ids = set(ticket_ids)
        with self._cond:
            out = [t for k, t, _ in self._pending if k == kind and t in ids]
            self._pending = [p for p in self._pending if not (p[0] == kind and p[1] in ids)]
            self._cond.notify_all()
        return sorted(set(out))

    def follow(self, job_id: str, ticket_ids: Iterable[int], *, kind: str = PURGE) -> None:
        """Follow a job an earlier run submitted (its status may have expired)."""
        assert kind in KINDS
        with self._cond:
            ids = list(ticket_ids)
            for tid in ids:
                self._results.pop((kind, tid), None)
            self._jobs[str(job_id)] = _Job(kind, ids, self._clock(), followed=True)
            self._generation += 1

    # -- waiting -----------------------------------------------------------------------------

    def wait(
        self,
        ticket_ids: Sequence[int],
        *,
        kind: str = PURGE,
        check: Callable[[], None] = lambda: None,
        key: Any = None,
        send: bool = True,
    ) -> JobOutcome:
        """Block until every ticket has an outcome (or the wait bound passed: unknown).
        Sends what is pending of ``kind`` and polls job statuses as needed; ``check`` is
        called between rounds (it raises to abort). ``key``: the waiting subject (never
        waited for by itself). ``send=False``: read only -- nothing is sent; a ticket no
        job we follow holds is unknown at once (a job already being sent is waited for)."""
        wanted = list(dict.fromkeys(ticket_ids))
        started = self._clock()
        deadline = started + self.give_up_after * self._scale()
        while True:
            check()
            batch: list[tuple[str, int, Submitted | None]] = []
            with self._cond:
                missing = [t for t in wanted if (kind, t) not in self._results]
                if not missing or self._clock() >= deadline:
                    return self._outcome(kind, wanted)
                pending = {t for k, t, _ in self._pending if k == kind} if send else set()
                queued = {
                    t
                    for job in self._jobs.values()
                    if not job.done and job.kind == kind
                    for t in job.ids
                }
                role = None
                if any(t in pending for t in missing) and kind not in self._flushing:
                    if not self._ready(kind, started, key):
                        self._cond.wait(timeout=0.01)
                        continue
                    self._flushing.add(kind)
                    role = "flush"
                    batch = [p for p in self._pending if p[0] == kind]
                    self._pending = [p for p in self._pending if p[0] != kind]
                elif any(t in queued for t in missing) and not self._polling:
                    self._polling, role = True, "poll"
                elif not any(t in pending or t in queued for t in missing) and (
                    kind not in self._flushing
                ):
                    # Neither pending nor in a job we follow: nothing will answer for them.
                    for t in missing:
                        self._results[(kind, t)] = _Result("unknown")
                    continue
                else:
                    self._cond.wait(timeout=max(0.01, self._due_in()))
                    continue
            try:
                if role == "flush":
                    self._flush(kind, batch)
                else:
                    self._sleep(self._due_in())
                    self._poll()
            finally:
                with self._cond:
                    if role == "flush":
                        self._flushing.discard(kind)
                    else:
                        self._polling = False
                    self._cond.notify_all()

    def _ready(self, kind: str, started: float, key: Any) -> bool:
        """Whether a job of ``kind`` should be sent now (called holding the lock)."""
        if kind != SOFT_DELETE or not self._coming - {key}:
            return True
        if sum(1 for k, _, _ in self._pending if k == kind) >= self.max_ids:
            return True
        linger = LINGER if self.linger is None else self.linger
        return self._clock() >= started + max(LINGER_FLOOR, linger * self._scale())

    def _outcome(self, kind: str, wanted: Sequence[int]) -> JobOutcome:
        out = JobOutcome()
        jobs: list[str] = []
        for tid in wanted:
            result = self._results.get((kind, tid)) or _Result("unknown")
            if result.job_id and result.job_id not in jobs:
                jobs.append(result.job_id)
            if result.state == "done":
                out.done.append(tid)
            elif result.state == "failed":
                out.failed[tid] = result.error or "failed"
            else:
                out.unknown.append(tid)
        out.job_ids = jobs
        return out

    # -- sending -----------------------------------------------------------------------------

    def _flush(self, kind: str, batch: list[tuple[str, int, Submitted | None]]) -> None:
        ids = list(dict.fromkeys(t for _, t, _ in batch))
        owners: dict[int, list[Submitted]] = {}
        for _, tid, callback in batch:
            if callback is not None and callback not in owners.setdefault(tid, []):
                owners[tid].append(callback)
        for start in range(0, len(ids), self.max_ids):
            chunk = ids[start : start + self.max_ids]
            try:
                self._make_room()
                # Looked up at each call: tests (and wrappers) replace the client's methods.
                job = getattr(self.client, KINDS[kind])(chunk)
            except RateLimitWaitExceeded:
                # The run stops (resumable): what was not sent goes back to the queue.
                with self._cond:
                    unsent = set(ids[start:])
                    self._pending[:0] = [p for p in batch if p[1] in unsent]
                raise
            except ZendeskError as exc:
                # A 4xx (not 429) answer means the job was not queued; anything else may
                # have queued it: the caller reads the tickets' state either way.
                certain = isinstance(exc, HTTPStatusError) and not isinstance(
                    exc, ServerError | RateLimitError
                )
                with self._cond:
                    for tid in chunk:
                        self._results[(kind, tid)] = _Result(
                            "failed" if certain else "unknown", error=why(exc)
                        )
                continue
            job_id = str(job["id"])
            with self._cond:
                self._jobs[job_id] = _Job(kind, list(chunk), self._clock())
                self._generation += 1
                self.submitted[kind] += 1
            calls: dict[Submitted, list[int]] = {}
            for tid in chunk:
                for callback in owners.get(tid, []):
                    calls.setdefault(callback, []).append(tid)
            for callback, owned in calls.items():
                callback(job_id, owned)
            if job.get("status") in _TERMINAL:
                self._finished(job_id, job)

    def _make_room(self) -> None:
        """Keep at most ``max_jobs`` of our jobs in flight: poll until one ends."""
        while True:
            with self._cond:
                running = sum(1 for job in self._jobs.values() if not job.done)
            if running < self.max_jobs:
                return
            self._sleep(self._due_in())
            self._poll()

    # -- polling -----------------------------------------------------------------------------

    def _due_in(self) -> float:
        """Seconds until the next poll is due. Per open job: not before the typical
        duration its kind showed lately (unknown for a followed job), then backing off
        after each poll that saw it running (doubling from ``poll_first``, or from a
        quarter of the typical duration past it; at most ``poll_max``); the earliest job
        decides."""
        scale = self._scale()
        now = self._clock()
        with self._cond:
            due = []
            for job in self._jobs.values():
                if job.done:
                    continue
                typical = 0.0 if job.followed else self._typical(job.kind)
                step = self.poll_first * 2 ** min(job.polls, 20)
                if typical and job.polls:
                    # Past the typical duration: steps in proportion to it.
                    step = max(step, typical / 4 * 2 ** min(job.polls - 1, 20))
                step = min(self.poll_max, step) * scale
                typical *= scale
                after = job.sent if job.last_poll is None else job.last_poll
                due.append(max(job.sent + typical, after + step))
        if not due:
            return max(0.002, self.poll_first * scale)
        return max(0.002, min(due) - now)

    def _typical(self, kind: str) -> float:
        """Server seconds recent jobs of ``kind`` were at least seen running (median)."""
        seen = self._durations[kind]
        return statistics.median(seen) if seen else 0.0

    def _governor_scale(self) -> float:
        governor = getattr(self.client, "governor", None)
        try:
            scale = float(governor.snapshot().get("time_scale") or 1.0) if governor else 1.0
        except (AttributeError, TypeError, ValueError):
            return 1.0
        return min(1.0, max(scale, 1e-6))

    def _scale(self) -> float:
        return self._scale_fn()

    def _poll(self) -> None:
        with self._cond:
            open_jobs = [jid for jid, job in self._jobs.items() if not job.done]
        if not open_jobs:
            return
        asked = self._clock()
        statuses = self.client.show_many_job_statuses(open_jobs)
        seen = set()
        for status in statuses:
            jid = str(status.get("id"))
            seen.add(jid)
            if jid in self._jobs and status.get("status") in _TERMINAL:
                self._finished(jid, status)
            elif jid in self._jobs:
                with self._cond:
                    job = self._jobs[jid]
                    job.polls += 1
                    job.last_poll = asked
        for jid in open_jobs:
            if jid not in seen:
                # Zendesk no longer knows the job (expired or evicted): the work may still
                # happen; only the tickets' state can tell.
                self._finished(jid, None)

    def _finished(self, job_id: str, status: Mapping[str, Any] | None) -> None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            job.done = True
            self._generation += 1
            if status is not None and not job.followed and job.last_poll is not None:
                # It ran at least this long: a lower bound of how long such jobs take.
                lasted = (job.last_poll - job.sent) / max(self._scale(), 1e-9)
                self._durations[job.kind].append(lasted)
            readable: dict[int, Mapping[str, Any]] = {}
            results = status.get("results") if status is not None else None
            for item in results if isinstance(results, list) else []:
                tid = zendesk_id(item.get("id")) if isinstance(item, Mapping) else None
                if tid is not None and isinstance(item.get("success"), bool):
                    readable[tid] = item
            for tid in job.ids:
                item = readable.get(tid)
                key = (job.kind, tid)
                if item is None:
                    self._results[key] = _Result("unknown", job_id)
                elif item["success"]:
                    self._results[key] = _Result("done", job_id)
                else:
                    error = item.get("error")
                    code = error if isinstance(error, str) and error.isidentifier() else "failed"
                    self._results[key] = _Result("failed", job_id, code)
            self._cond.notify_all()

    # -- reading the tickets' state ----------------------------------------------------------

    def live(self, ticket_ids: Sequence[int]) -> set[int]:
        """The tickets ``show_many`` still returns (not deleted, soft or for good)."""
        ids = list(dict.fromkeys(ticket_ids))
        if not ids:
            return set()
        answered = self.client.show_many_tickets(ids)
        return {t for t in (zendesk_id(x.get("id")) for x in answered) if t}

    def states(self, ticket_ids: Sequence[int]) -> dict[int, str]:
        """Where each ticket is now: ``live`` (``show_many`` returns it),
        ``soft_deleted`` (``deleted_tickets`` lists it) or ``gone``. The deleted tickets
        list (10 requests a minute) is read once per change this object saw and shared."""
        ids = list(dict.fromkeys(ticket_ids))
        if not ids:
            return {}
        live = self.live(ids)
        deleted = self._deleted_ids()
        return {t: "live" if t in live else "soft_deleted" if t in deleted else "gone" for t in ids}

    def _deleted_ids(self) -> set[int]:
        with self._deleted_lock:
            with self._cond:
                generation = self._generation
            cached = self._deleted
            if cached is not None and cached[0] == generation:
                return cached[1]
            found = set()
            for item in self.client.iter_deleted_tickets():
                tid = zendesk_id(item.get("id")) if isinstance(item, Mapping) else None
                if tid is None:
                    raise ZendeskError("GET /api/v2/deleted_tickets: a ticket has no usable id")
                found.add(tid)
            self._deleted = (generation, found)
            return found

    def forget_states(self) -> None:
        """Drop the cached deleted tickets list (something changed that this object did
        not do, e.g. tickets were soft-deleted since)."""
        with self._deleted_lock:
            self._deleted = None
