"""A fixed set of threads that serve work by priority: the batch pipeline's pool.

Owns :class:`PriorityWorkers`. The pipeline submits every subject's preparation
(discovery, blockers, profiles) up front and, as jobs come back from the bulk soft delete
and the permanent-deletion queue, their continuations. A first-in-first-out pool (the
standard ``ThreadPoolExecutor``) ran every preparation before any continuation, so a batch
of 3,500 subjects planned all of them before its first permanent deletion and left the
deletion budget idle for the whole planning phase (issue 14: ~430 deletions per window
instead of 700). Here a continuation (priority :data:`CONTINUE`) is always taken before a
new subject (:data:`PREPARE`), FIFO within a priority, so deletions start as soon as the
first users are soft-deleted while later subjects are still being discovered. Each
subject's own blockers are still found before that subject's first change: a job's
preparation runs its read-only steps before its first mutating one, as before.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CONTINUE", "PREPARE", "PriorityWorkers"]

#: Work on a job that has already started (after its bulk soft delete or its last
#: permanent deletion): taken first, so started subjects finish and free their users.
CONTINUE = 0
#: A subject not started yet.
PREPARE = 1
_STOP = 2  # after everything else: a worker that takes it ends


class PriorityWorkers:
    """``count`` threads serving submitted calls, lowest priority number first.

    ``on_error`` receives anything a call raises (the pipeline's calls guard themselves;
    this is the last line, so a bug is never swallowed silently)."""

    def __init__(
        self,
        count: int,
        *,
        name: str,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[..., Any] | None, tuple]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()
        self._on_error = on_error
        self._closed = False
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{i}") for i in range(max(1, count))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = PREPARE) -> None:
        """Queue ``fn(*args)``; ignored once :meth:`shutdown` has begun."""
        with self._lock:
            if self._closed:
                return
            self._queue.put((priority, next(self._order), fn, args))

    def pending(self) -> int:
        """Calls queued and not yet taken by a worker."""
        return self._queue.qsize()

    def _serve(self) -> None:
        while True:
            _, _, fn, args = self._queue.get()
            if fn is None:
                return
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the owner, never lost
                self._on_error(exc)

    def shutdown(self, *, cancel_pending: bool = True) -> None:
        """Stop taking work (dropping what is queued when ``cancel_pending``), let the
        calls running now finish, and join every thread."""
        with self._lock:
            self._closed = True
            if cancel_pending:
                while True:
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        break
            for _ in self._threads:
                self._queue.put((_STOP, next(self._order), None, ()))
        for thread in self._threads:
            thread.join()
