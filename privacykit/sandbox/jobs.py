"""Background jobs (``job_statuses``) on the virtual clock.

Owns :class:`JobsState`: bulk endpoints queue a :class:`Job` whose items run one after
another on the virtual clock (queued for the first quarter of ``job_delay``, then working,
one item at a time, completed at ``job_delay``). An item's effect happens when the clock
reaches it (:meth:`JobsState._settle`), not when the job is queued, so a client that
polls early sees ``queued``/``working`` and the data unchanged. Documented limits: at most
``MAX_QUEUED_JOBS`` (30) queued or running per account; statuses expire (about an hour:
``job_ttl`` virtual seconds after the job completed) and
only the last ``JOBS_KEPT`` (100) statuses are kept — an expired or evicted status answers
404 while its job still runs to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from privacykit.sandbox.core import StateCore
from privacykit.sandbox.model import MAX_QUEUED_JOBS, record_not_found

__all__ = ["JOBS_KEPT", "JOB_TTL", "Job", "JobItem", "JobsState"]

#: Documented: only the last 100 job statuses are kept.
JOBS_KEPT = 100
#: Documented: job statuses expire "within about an hour" (virtual seconds).
JOB_TTL = 3600.0


@dataclass
class JobItem:
    """One unit of a job: ``run`` applies it and returns its ``results`` entry."""

    at: float  # virtual instant the item is processed
    run: Callable[[], dict[str, Any]]


@dataclass
class Job:
    id: str
    created_at: float
    started_at: float
    done_at: float
    expires_at: float
    items: list[JobItem]
    results: list[dict[str, Any]] = field(default_factory=list)
    visible: bool = True  # False once expired or evicted (404), though it may still run

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def finished(self) -> bool:
        return len(self.results) == len(self.items)


def _constant(result: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: result


class JobsState(StateCore):
    """Job queue, progress, expiry and the queued-jobs cap."""

    job_delay: float
    job_ttl: float
    jobs: dict[str, Job]
    _job_order: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.job_delay = 2.0  # virtual seconds from queueing a job to its completion
        self.job_ttl = JOB_TTL
        super().__init__(*args, **kwargs)

    def _clear(self) -> None:
        super()._clear()
        self.jobs = {}
        self._job_order = []  # ids, oldest first (for JOBS_KEPT)

    def _settle(self) -> None:
        super()._settle()
        now = self.clock.now()
        for job_id in list(self._job_order):
            job = self.jobs[job_id]
            while not job.finished and job.items[len(job.results)].at <= now:
                job.results.append(job.items[len(job.results)].run())
            if job.visible and now >= job.expires_at:
                job.visible = False
            if not job.visible and job.finished:
                self._forget_job(job_id)

    def _forget_job(self, job_id: str) -> None:
        del self.jobs[job_id]
        self._job_order.remove(job_id)

    def job_slot_wait(self) -> float | None:
        """None if a job may be queued now, else virtual seconds until a slot frees."""
        with self.lock:
            self._settle()
            now = self.clock.now()
            running = sorted(job.done_at for job in self.jobs.values() if job.done_at > now)
            if len(running) < MAX_QUEUED_JOBS:
                return None
            return running[len(running) - MAX_QUEUED_JOBS] - now

    def _queue_job(self, work: Iterable[Callable[[], dict[str, Any]]]) -> Job:
        """Queue a job doing ``work`` in order (callers check :meth:`job_slot_wait`)."""
        steps = list(work)
        now = self.clock.now()
        started = now + self.job_delay / 4
        done = now + self.job_delay
        span = (done - started) / max(1, len(steps))
        items = [JobItem(started + span * (index + 1), run) for index, run in enumerate(steps)]
        job_id = f"{self._rng.getrandbits(128):032x}"
        job = Job(job_id, now, started, done, done + self.job_ttl, items)
        self.jobs[job_id] = job
        self._job_order.append(job_id)
        visible = [j for j in self._job_order if self.jobs[j].visible]
        for old in visible[: max(0, len(visible) - JOBS_KEPT)]:
            self.jobs[old].visible = False
        return job

    def _job_results(self, results: list[dict[str, Any]]) -> Job:
        """A job whose effects already happened: it only reports ``results``."""
        return self._queue_job([_constant(result) for result in results])

    def job_json(self, job: Job) -> dict[str, Any]:
        now = self.clock.now()
        if job.finished and now >= job.done_at:
            status = "completed"
        elif now < job.started_at:
            status = "queued"
        else:
            status = "working"
        done = status == "completed"
        return {
            "id": job.id,
            "url": f"{self.base_url}/api/v2/job_statuses/{job.id}.json",
            "status": status,
            "total": job.total,
            "progress": len(job.results),
            "message": f"Completed at {self.clock.iso(job.done_at)}" if done else None,
            "results": [dict(r) for r in job.results] if done else None,
        }

    def show_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            self._settle()
            job = self.jobs.get(job_id)
            if job is None or not job.visible:
                raise record_not_found()
            return self.job_json(job)

    def show_many_jobs(self, job_ids: Iterable[str]) -> list[dict[str, Any]]:
        """``GET /api/v2/job_statuses/show_many?ids=``: unknown or expired ids are left out."""
        with self.lock:
            self._settle()
            out = []
            for job_id in job_ids:
                job = self.jobs.get(job_id)
                if job is not None and job.visible:
                    out.append(self.job_json(job))
            return out
