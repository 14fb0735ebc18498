"""Permanent deletion of soft-deleted tickets: bulk jobs shared by the subjects of a batch.

Owns :class:`TicketPurger`. Each subject hands over the ids of the tickets it
soft-deleted (:meth:`TicketPurger.add`, after recording its intent); the first subject
that needs its tickets gone (:meth:`TicketPurger.wait`) sends everything pending --
every subject's ids, up to 100 per ``DELETE /api/v2/deleted_tickets/destroy_many`` job --
and then one waiting thread at a time polls ``job_statuses/show_many`` until every job
has ended, so a batch of 33 people with 3 tickets each costs one job. Jobs are followed
to their end well before Zendesk expires their statuses (about an hour; polls back off
from a fraction of a second to :attr:`~TicketPurger.poll_max`, both scaled to the
server's clock as the governor learned it), and at most :attr:`~TicketPurger.max_jobs`
of them are in flight (Zendesk allows 30 queued per account; the client's governor holds
the slots).

A ticket's outcome is ``purged`` (the job says so), ``failed`` (the job says it could
not: e.g. ``RecordNotFound``) or ``unknown`` (no answer: a job status that expired or was
never seen, an error while queueing, the wait bound). Anything but ``purged`` is settled
by reading the tickets' state (:meth:`TicketPurger.states`: live in ``show_many``,
soft-deleted in ``deleted_tickets``, else gone) -- never by assuming.

Assumption (the docs are silent on the results of ``deleted_tickets/destroy_many``): a
finished job's ``results`` hold one ``{"id": ticket id, "success": bool, ...}`` per
ticket, as Zendesk's other bulk jobs do; a result we cannot read counts as unknown.
"""

from __future__ import annotations

import threading
import time
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
from privacykit.playbooks.erasure.tickets import TicketClient
from privacykit.playbooks.reasons import why

__all__ = ["PurgeOutcome", "TicketPurger"]

_TERMINAL = frozenset({"completed", "failed", "killed"})
Submitted = Callable[[str, list[int]], None]


@dataclass
class PurgeOutcome:
    """What became of some tickets handed to permanent deletion."""

    purged: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)


@dataclass
class _Job:
    ids: list[int]
    done: bool = False


@dataclass
class _Result:
    state: str  # purged | failed | unknown
    job_id: str | None = None
    error: str | None = None


def _zid(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


class TicketPurger:
    """Bulk permanent deletion of tickets for many subjects (see the module docstring).

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
        self._sleep = sleep
        self._clock = clock
        self._scale_fn = scale or self._governor_scale
        self._cond = threading.Condition()
        self._pending: list[tuple[int, Submitted | None]] = []
        self._jobs: dict[str, _Job] = {}
        self._results: dict[int, _Result] = {}
        self._flushing = False
        self._polling = False
        self._polls = 0
        self._generation = 0
        self._deleted: tuple[int, set[int]] | None = None
        self._deleted_lock = threading.Lock()
        self.jobs_submitted = 0

    # -- handing tickets over ----------------------------------------------------------------

    def add(self, ticket_ids: Iterable[int], on_submitted: Submitted | None = None) -> None:
        """Queue soft-deleted tickets for permanent deletion (sent by the next
        :meth:`wait`). ``on_submitted(job_id, ids)`` is called once per job holding any of
        them, right after Zendesk accepted it (to record the job id)."""
        with self._cond:
            for tid in ticket_ids:
                self._results.pop(tid, None)
                self._pending.append((tid, on_submitted))
            # Just soft-deleted: a deleted tickets list read before is out of date.
            self._generation += 1

    def follow(self, job_id: str, ticket_ids: Iterable[int]) -> None:
        """Follow a job an earlier run submitted (its status may have expired)."""
        with self._cond:
            ids = list(ticket_ids)
            for tid in ids:
                self._results.pop(tid, None)
            self._jobs[str(job_id)] = _Job(ids)
            self._polls = 0
            self._generation += 1

    # -- waiting -----------------------------------------------------------------------------

    def wait(
        self, ticket_ids: Sequence[int], *, check: Callable[[], None] = lambda: None
    ) -> PurgeOutcome:
        """Block until every ticket has an outcome (or the wait bound passed: unknown).
        Sends what is pending and polls job statuses as needed; ``check`` is called
        between rounds (it raises to abort)."""
        wanted = list(dict.fromkeys(ticket_ids))
        deadline = self._clock() + self.give_up_after * self._scale()
        while True:
            check()
            batch: list[tuple[int, Submitted | None]] = []
            with self._cond:
                missing = [t for t in wanted if t not in self._results]
                if not missing or self._clock() >= deadline:
                    return self._outcome(wanted)
                pending = {t for t, _ in self._pending}
                queued = {t for job in self._jobs.values() if not job.done for t in job.ids}
                role = None
                if any(t in pending for t in missing) and not self._flushing:
                    self._flushing, role = True, "flush"
                    batch, self._pending = self._pending, []
                elif any(t in queued for t in missing) and not self._polling:
                    self._polling, role = True, "poll"
                elif not any(t in pending or t in queued for t in missing) and not self._flushing:
                    # Neither pending nor in a job we follow: nothing will answer for them.
                    for t in missing:
                        self._results[t] = _Result("unknown")
                    continue
                else:
                    self._cond.wait(timeout=max(0.01, self._interval()))
                    continue
            try:
                if role == "flush":
                    self._flush(batch)
                else:
                    self._sleep(self._interval())
                    self._poll()
            finally:
                with self._cond:
                    if role == "flush":
                        self._flushing = False
                    else:
                        self._polling = False
                    self._cond.notify_all()

    def _outcome(self, wanted: Sequence[int]) -> PurgeOutcome:
        out = PurgeOutcome()
        jobs: list[str] = []
        for tid in wanted:
            result = self._results.get(tid) or _Result("unknown")
            if result.job_id and result.job_id not in jobs:
                jobs.append(result.job_id)
            if result.state == "purged":
                out.purged.append(tid)
            elif result.state == "failed":
                out.failed[tid] = result.error or "failed"
            else:
                out.unknown.append(tid)
        out.job_ids = jobs
        return out

    # -- sending -----------------------------------------------------------------------------

    def _flush(self, batch: list[tuple[int, Submitted | None]]) -> None:
        ids = list(dict.fromkeys(t for t, _ in batch))
        owners: dict[int, list[Submitted]] = {}
        for tid, callback in batch:
            if callback is not None and callback not in owners.setdefault(tid, []):
                owners[tid].append(callback)
        for start in range(0, len(ids), self.max_ids):
            chunk = ids[start : start + self.max_ids]
            try:
                self._make_room()
                job = self.client.permanently_delete_tickets(chunk)
            except RateLimitWaitExceeded:
                # The run stops (resumable): what was not sent goes back to the queue.
                with self._cond:
                    unsent = set(ids[start:])
                    self._pending[:0] = [(t, c) for t, c in batch if t in unsent]
                raise
            except ZendeskError as exc:
                # A 4xx (not 429) answer means the job was not queued; anything else may
                # have queued it: the caller reads the tickets' state either way.
                certain = isinstance(exc, HTTPStatusError) and not isinstance(
                    exc, ServerError | RateLimitError
                )
                with self._cond:
                    for tid in chunk:
                        self._results[tid] = _Result(
                            "failed" if certain else "unknown", error=why(exc)
                        )
                continue
            job_id = str(job["id"])
            with self._cond:
                self._jobs[job_id] = _Job(list(chunk))
                self._generation += 1
                self._polls = 0
                self.jobs_submitted += 1
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
            self._sleep(self._interval())
            self._poll()

    # -- polling -----------------------------------------------------------------------------

    def _interval(self) -> float:
        base = min(self.poll_max, self.poll_first * (2 ** min(self._polls, 20)))
        return max(0.002, base * self._scale())

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
            self._polls += 1
        if not open_jobs:
            return
        statuses = self.client.show_many_job_statuses(open_jobs)
        seen = set()
        for status in statuses:
            jid = str(status.get("id"))
            seen.add(jid)
            if jid in self._jobs and status.get("status") in _TERMINAL:
                self._finished(jid, status)
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
            readable: dict[int, Mapping[str, Any]] = {}
            results = status.get("results") if status is not None else None
            for item in results if isinstance(results, list) else []:
                tid = _zid(item.get("id")) if isinstance(item, Mapping) else None
                if tid is not None and isinstance(item.get("success"), bool):
                    readable[tid] = item
            for tid in job.ids:
                item = readable.get(tid)
                if item is None:
                    self._results[tid] = _Result("unknown", job_id)
                elif item["success"]:
                    self._results[tid] = _Result("purged", job_id)
                else:
                    error = item.get("error")
                    code = error if isinstance(error, str) and error.isidentifier() else "failed"
                    self._results[tid] = _Result("failed", job_id, code)
            self._cond.notify_all()

    # -- reading the tickets' state ----------------------------------------------------------

    def states(self, ticket_ids: Sequence[int]) -> dict[int, str]:
        """Where each ticket is now: ``live`` (``show_many`` returns it),
        ``soft_deleted`` (``deleted_tickets`` lists it) or ``gone``. The deleted tickets
        list (10 requests a minute) is read once per change this purger saw and shared."""
        ids = list(dict.fromkeys(ticket_ids))
        if not ids:
            return {}
        live = {t for t in (_zid(x.get("id")) for x in self.client.show_many_tickets(ids)) if t}
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
                tid = _zid(item.get("id")) if isinstance(item, Mapping) else None
                if tid is None:
                    raise ZendeskError("GET /api/v2/deleted_tickets: a ticket has no usable id")
                found.add(tid)
            self._deleted = (generation, found)
            return found

    def forget_states(self) -> None:
        """Drop the cached deleted tickets list (something changed that this purger did
        not do, e.g. tickets were soft-deleted since)."""
        with self._deleted_lock:
            self._deleted = None
