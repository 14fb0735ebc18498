"""The batch pipeline: many subjects' erasures at Zendesk's deletion pace.

Owns :class:`Pipeline` and :class:`BatchProgress`. Discovery, profile replacement and
soft deletion run in a pool of ``concurrency`` threads; each soft-deleted user then goes
into a queue served by a few permanent-deletion workers, whose requests the shared
governor paces at Zendesk's documented 700 per 10 minutes. The pool takes work on started
jobs before new subjects (:mod:`~privacykit.playbooks.erasure.workers`), so deletions
begin as soon as the first users are soft-deleted and later subjects are prepared while
earlier users wait for deletion budget: a batch of N users takes about N/700 x 10 minutes.
Each job then finishes (compliance look, evidence, report) on the pool.

Permanent deletion goes through the runner (:meth:`ErasureRunner.permanently_delete_one`,
i.e. the engine's ``perform``), and a job continues through the engine from where it
paused -- the pipeline never moves a job's cursor itself.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privacykit.errors import PrivacykitError
from privacykit.playbooks.erasure.actions import why
from privacykit.playbooks.erasure.bulk import MAX_IDS, MIN_USERS, soft_delete_many
from privacykit.playbooks.erasure.state import PERMANENT_DELETE_STEP, SOFT_DELETE_STEP, ErasureJob
from privacykit.playbooks.erasure.steps import Aborted, ErasureRunner
from privacykit.playbooks.erasure.workers import CONTINUE, PREPARE, PriorityWorkers
from privacykit.playbooks.reasons import stops_the_run

__all__ = ["BULK_LINGER_FLOOR", "BatchProgress", "Pipeline", "deletion_eta"]


@dataclass
class BatchProgress:
    """Counts per stage for the progress display, and an ETA from the deletion budget."""

    total: int = 0
    discovered: int = 0
    profiles_done: int = 0
    soft_deleted: int = 0
    users_to_delete: int = 0
    permanently_deleted: int = 0
    finished: int = 0
    needs_review: int = 0
    pending_compliance: int = 0
    eta_seconds: float | None = None

    def label(self) -> str:
        eta = "" if self.eta_seconds is None else f" eta {_duration(self.eta_seconds)}"
        return (
            f"found {self.discovered}/{self.total}  profiles {self.profiles_done}  "
            f"soft {self.soft_deleted}  permanent {self.permanently_deleted}/"
            f"{self.users_to_delete}  review {self.needs_review}{eta}"
        )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


# The least time the bulk soft-deleter waits for subjects still being prepared to join a
# destroy_many job (it stops waiting as soon as none is left). Tests that assert how users
# were grouped raise it so the grouping does not depend on the machine's speed.
BULK_LINGER_FLOOR = 0.05


class Pipeline:
    """Runs many jobs: a prepare pool, permanent-deletion workers, a finish step."""

    def __init__(
        self,
        runners: Mapping[str, ErasureRunner],
        jobs: Sequence[ErasureJob],
        *,
        concurrency: int,
        deleters: int,
        on_progress: Callable[[BatchProgress], None] | None,
    ) -> None:
        # One runner per playbook: a resumed request goes on under the playbook it was
        # opened with (``job.playbook_sha256`` selects it).
        self.runners = dict(runners)
        self.jobs = list(jobs)
        self.concurrency = max(1, concurrency)
        self.deleters = max(1, deleters)
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.all_done = threading.Condition(self.lock)
        self.remaining = len(self.jobs)
        self.fatal: BaseException | None = None
        self.queue: queue.Queue[tuple[ErasureJob, int] | None] = queue.Queue()
        # Soft deletion in bulk (destroy_many) when several subjects are prepared in
        # parallel: jobs pause before soft_delete_users and one thread sends their users
        # together. ``--concurrency 1`` keeps one subject at a time, start to finish.
        self.bulk = len(self.jobs) >= 2 and self.concurrency > 1
        self.bulk_queue: queue.Queue[tuple[ErasureJob, list[int]] | None] = queue.Queue()
        self.preparing = 0
        self.client = next(iter(self.runners.values())).client
        self.progress = BatchProgress(total=len(self.jobs))
        self._last_progress = 0.0
        for runner in self.runners.values():
            runner.on_change = self._changed

    def _runner(self, job: ErasureJob) -> ErasureRunner:
        return self.runners[job.playbook_sha256]

    def _abort_all(self) -> None:
        for runner in self.runners.values():
            runner.aborted.set()

    def _stop_all(self, exc: BaseException) -> None:
        """Stop the whole batch at step boundaries: the first cause is kept (and raised by
        :meth:`run`), every runner told to stop, the waiting run woken. Also the pool's
        last line when a call raised past its own guard (a bug)."""
        with self.lock:
            if self.fatal is None:
                self.fatal = exc
            self._abort_all()
            self.all_done.notify_all()

    # progress -----------------------------------------------------------------------------

    def _changed(self, job: ErasureJob, what: str) -> None:
        with self.lock:
            p = self.progress
            if what == "discovered":
                p.discovered += 1
            elif what == "profiles":
                p.profiles_done += 1
            elif what == "soft_deleted":
                p.soft_deleted += sum(1 for u in job.users.values() if u.soft_deleted)
            elif what == "permanently_deleted":
                p.permanently_deleted += 1
            elif what == "finished":
                p.finished += 1
                if job.status == "needs_review":
                    p.needs_review += 1
                elif job.status == "pending_compliance":
                    p.pending_compliance += 1
            self._emit(force=what == "finished" and p.finished == p.total)

    def _emit(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.2:
            return
        self._last_progress = now
        p = self.progress
        undiscovered = max(0, p.total - p.discovered)
        left = max(0, p.users_to_delete - p.permanently_deleted) + undiscovered
        p.eta_seconds = deletion_eta(next(iter(self.runners.values())).client, left)
        self.on_progress(p)

    # workers ------------------------------------------------------------------------------

    def _guard(self, job: ErasureJob, fn: Callable[[], None]) -> None:
        try:
            if self.fatal is not None:
                raise Aborted()
            fn()
        except Aborted:
            self._finish(job, aborted=True)
        except PrivacykitError as exc:
            if not stops_the_run(exc):
                job.error = why(exc)
                self._fail(job, exc)
                return
            self._stop(job, exc)
        except BaseException as exc:  # noqa: BLE001 - a crash must stop the whole batch
            self._stop(job, exc)

    def _stop(self, job: ErasureJob, exc: BaseException) -> None:
        """Stop the whole batch at step boundaries (see ``stops_the_run``): this job stays
        where its ledger says, resumable."""
        self._stop_all(exc)
        self._finish(job, aborted=True)

    def _fail(self, job: ErasureJob, exc: BaseException) -> None:
        """An unexpected Zendesk/ledger error: record what we can and keep the batch going.
        The request ends needing review, so a later run continues it with its SUBJECT."""
        job.failures.append(f"stopped by an error: {why(exc)}")
        try:
            if job.session is not None and job.session.opened and job.report_error is None:
                self._runner(job).finish_after_error(job)
        except Exception:  # noqa: BLE001 - evidence is best effort after a failure
            job.outcome = job.status = "needs_review"
        self._finish(job)

    def _finish(self, job: ErasureJob, aborted: bool = False) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining <= 0 or aborted:
                self.all_done.notify_all()

    def _prepare(self, job: ErasureJob) -> None:
        def work() -> None:
            pause = {SOFT_DELETE_STEP, PERMANENT_DELETE_STEP} if self.bulk else set()
            done = self._runner(job).run_job(job, pause_before=pause | {PERMANENT_DELETE_STEP})
            if done:
                self._finish(job)
            elif job.paused_at == SOFT_DELETE_STEP:
                users = [uid for uid, u in job.users.items() if not u.soft_deleted]
                if users:
                    self.bulk_queue.put((job, users))  # the bulk thread continues the job
                else:
                    self._after_soft_delete(job)
            else:
                self._queue_permanent(job)

        try:
            self._guard(job, work)
        finally:
            with self.lock:
                self.preparing -= 1

    def _after_soft_delete(self, job: ErasureJob) -> None:
        """Run the job's soft-delete step (users the bulk job deleted are skipped; others
        get their own request) up to the permanent deletion."""
        done = self._runner(job).engine.run(job, pause_before={PERMANENT_DELETE_STEP})
        if done:
            self._finish(job)
        else:
            self._queue_permanent(job)

    def _resume_after_bulk(self, job: ErasureJob) -> None:
        self._guard(job, lambda: self._after_soft_delete(job))

    def _queue_permanent(self, job: ErasureJob) -> None:
        users = self._runner(job).users_to_permanently_delete(job)
        if not users:
            self._continue(job)
            return
        with self.lock:
            job.outstanding = len(users)
            self.progress.users_to_delete += len(users)
        for uid in users:
            self.queue.put((job, uid))

    def _bulk_soft_deleter(self, pool: PriorityWorkers) -> None:
        """Gathers the users of paused jobs (up to 100, waiting briefly while subjects are
        still being prepared) and soft-deletes them with one ``destroy_many`` job."""
        while True:
            item = self.bulk_queue.get()
            if item is None:
                return
            batch, stop = [item], False
            count = len(item[1])
            linger = max(BULK_LINGER_FLOOR, 2.0 * _server_scale(self.client))
            linger_until = time.monotonic() + linger
            while count < MAX_IDS:
                try:
                    more = self.bulk_queue.get(timeout=0.01)
                except queue.Empty:
                    with self.lock:
                        preparing = self.preparing
                    if preparing > 0 and time.monotonic() < linger_until:
                        continue
                    # A job may have queued its users between the empty read and the
                    # count above (it queues before it stops counting as preparing):
                    # one last look without waiting, so it is not left for a lone batch.
                    try:
                        more = self.bulk_queue.get_nowait()
                    except queue.Empty:
                        break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                count += len(more[1])
            items = [(job, uid) for job, uids in batch for uid in uids]
            if self.fatal is None and len(items) >= MIN_USERS:
                try:
                    soft_delete_many(self.client, items, scale=_server_scale(self.client))
                except BaseException as exc:  # noqa: BLE001 - see _guard
                    self._stop_all(exc)
            for job, _ in batch:
                if self.fatal is not None:
                    self._finish(job, aborted=True)
                else:
                    pool.submit(self._resume_after_bulk, job, priority=CONTINUE)
            if stop:
                return

    def _continue(self, job: ErasureJob) -> None:
        def work() -> None:
            self._runner(job).engine.run(job)
            self._finish(job)

        self._guard(job, work)

    def _deleter(self, pool: PriorityWorkers) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            job, uid = item
            try:
                if self.fatal is None:
                    self._runner(job).permanently_delete_one(job, uid)
            except BaseException as exc:  # noqa: BLE001 - see _guard
                self._stop_all(exc)
            with self.lock:
                job.outstanding -= 1
                last = job.outstanding == 0
            if last:
                if self.fatal is not None:
                    self._finish(job, aborted=True)
                else:
                    pool.submit(self._continue, job, priority=CONTINUE)

    def run(self) -> None:
        if not self.jobs:
            return
        # Started jobs go before new subjects (see workers.py): deletions begin while later
        # subjects are still being discovered.
        pool = PriorityWorkers(self.concurrency, name="erase", on_error=self._stop_all)
        workers = [
            threading.Thread(target=self._deleter, args=(pool,), name=f"erase-delete-{i}")
            for i in range(self.deleters)
        ]
        bulk = threading.Thread(
            target=self._bulk_soft_deleter, args=(pool,), name="erase-soft-delete-many"
        )
        workers.append(bulk)
        for worker in workers:
            worker.start()
        try:
            with self.lock:
                self.preparing = len(self.jobs)
            for job in self.jobs:
                pool.submit(self._prepare, job, priority=PREPARE)
            with self.lock:
                while self.remaining > 0 and self.fatal is None:
                    self.all_done.wait(0.5)
                    self._emit()
        except BaseException as exc:  # the operator's Ctrl-C: stop at step boundaries
            self._stop_all(exc)
        finally:
            for _ in range(self.deleters):
                self.queue.put(None)
            self.bulk_queue.put(None)
            for worker in workers:
                worker.join()
            pool.shutdown(cancel_pending=True)
        if self.fatal is not None:
            raise self.fatal


def _server_scale(client: Any) -> float:
    """How much faster the server's clock runs than ours, as the governor learned it
    (1.0 against Zendesk; 1/K against a sandbox with ``time_scale`` K)."""
    governor = getattr(client, "governor", None)
    try:
        scale = float(governor.snapshot().get("time_scale") or 1.0) if governor else 1.0
    except (AttributeError, TypeError, ValueError):
        return 1.0
    return min(1.0, max(scale, 1e-6))


def deletion_eta(client: Any, users_left: int) -> float | None:
    """Seconds the permanent-deletion budget needs for ``users_left`` users: the server's
    budget as the governor learned it, else the documented 700 per 600 s."""
    if users_left <= 0:
        return 0.0
    governor = getattr(client, "governor", None)
    limit, window = 700, 600.0
    if governor is not None:
        try:
            budget = governor.limits.permanent_delete
            limit, window = budget.limit, budget.window
            snapshot = governor.snapshot()
            window *= float(snapshot.get("time_scale") or 1.0)
            learned = snapshot.get("scopes", {}).get("permanent-delete") or {}
            if learned.get("limit"):
                limit = int(learned["limit"])
            if learned.get("learned_window"):
                window = float(learned["learned_window"])
        except (AttributeError, TypeError, ValueError):
            pass
    return users_left / max(1, limit) * window
