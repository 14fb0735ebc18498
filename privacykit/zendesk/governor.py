"""The rate-limit governor: one thread-safe object that decides when a request may go out.

Owns the budgets per scope (account, Profiles API, permanent deletions, user writes per
account and per user, queued bulk jobs), what the server says about them in response
headers, and the pause after a 429. The client calls :meth:`Governor.acquire` before it
sends, :meth:`Governor.observe` with every answer and :meth:`Governor.release` when no
answer came.

Design (why it looks like this):

* **The server's word beats our defaults.** Each scope starts in *probe* mode: one request
  at a time until an answer tells us the scope's ``limit``/``remaining``/``reset``. From
  then on it is in *known* mode: a fixed window that ends at ``receive time + reset``
  (never earlier than the server's real reset, because the reset was computed before the
  answer travelled back), with ``remaining`` the lowest value the server reported in that
  window. A scope the server never reports (for example the 1 write/s account budget) is
  *local*: a sliding window over our own sends, which keeps any fixed server window under
  the limit whatever its alignment.
* **Requests in flight are budget already spent.** ``available = remaining - in_flight``:
  an in-flight request may or may not be counted in the last ``remaining`` we saw, so we
  count it (conservative). As answers arrive the estimate converges to the server's exact
  number, so a window's whole budget is used, not a safety fraction of it.
* **No wall-clock assumptions.** Windows come from ``reset`` values, never from "a minute
  is 60 s": a server whose clock runs K times faster reports resets K times smaller and
  the governor follows. The account window length learned from consecutive resets also
  scales the configured windows of scopes the server never reports, on the assumption
  (docs silent) that all of a server's budgets share one clock.
* **On a 429 the model was wrong: pause and re-learn.** The scope the answer blames (a
  scoped header with ``remaining=0``; otherwise every scope of the request the answer
  does not clear) is paused for exactly ``Retry-After`` for all threads, then re-enters
  probe mode so the first answer after the pause re-synchronises it. Answers to requests
  sent before the pause (an older *epoch*) no longer move the model.
* **An estimate that says "spent" is asked, not waited out.** Where no header states a
  window (a scope the server never reports, or ``X-Rate-Limit`` without a reset), our
  window is a guess, and a guess of a wall-clock minute on a server whose clock runs 30
  times faster would stall the run. So a scope blocked only by such an estimate may send
  one *probe* when nothing else of it is in flight: accepted, our window restarts there;
  refused, the 429's ``Retry-After`` is the server's exact window end. Two such pauses
  confirm an unreported scope's window and limit (then probing stops); see
  :mod:`privacykit.zendesk.buckets`.
* **Waits are bounded.** ``max_wait`` caps every wait for budget; a wait the server
  announced to be longer raises ``RateLimitWaitExceeded`` at once.
* **Routes learn their scopes.** A ``Zendesk-RateLimit-<endpoint>`` header the request did
  not reserve is remembered for its route, and later requests of the route spend it.

Headers understood: every spelling in :mod:`privacykit.zendesk.headers` (2023 and 2024).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from privacykit import clock as wall_clock
from privacykit.errors import RateLimitWaitExceeded
from privacykit.zendesk.buckets import (
    KNOWN,
    LOCAL,
    PROBE,
    Bucket,
    learn,
    learn_from_pause,
    may_probe,
    roll,
)
from privacykit.zendesk.budgets import (
    ACCOUNT,
    CREATE_UPDATE_USER,
    JOBS,
    PERMANENT_DELETE,
    PROFILES,
    USER_WRITE,
    Budget,
    RateLimits,
)
from privacykit.zendesk.headers import RateInfo, parse_rate_limit_headers, parse_retry_after

#: How long a request may wait for rate-limit budget before the run stops (resumable).
DEFAULT_MAX_WAIT = 15 * 60.0
# Routes whose reported scopes are remembered (bounded; a run touches a few dozen routes).
_MAX_ROUTES = 512

__all__ = [
    "ACCOUNT",
    "CREATE_UPDATE_USER",
    "DEFAULT_MAX_WAIT",
    "JOBS",
    "PERMANENT_DELETE",
    "PROFILES",
    "USER_WRITE",
    "Budget",
    "Governor",
    "RateInfo",
    "RateLimits",
    "Reservation",
    "parse_rate_limit_headers",
    "parse_retry_after",
]


@dataclass
class Reservation:
    """Budget held for one request between :meth:`Governor.acquire` and its answer."""

    scopes: tuple[str, ...]
    acquired_at: float
    epochs: dict[str, int]
    settled: bool = False
    route: str | None = None
    probes: tuple[str, ...] = ()  # scopes this request probes (see buckets.may_probe)


@dataclass
class _Counters:
    acquired: int = 0
    waited: int = 0
    rate_limited: int = 0
    pauses: int = 0


class Governor:
    """Thread-safe rate-limit budgets shared by every worker of a run.

    ``clock`` (monotonic seconds) and ``wait`` (block on the condition for at most the
    given seconds) are injectable so tests can run a fake clock without sleeping;
    ``utcnow`` (aware datetime) dates :attr:`RateLimitWaitExceeded.resume_at`.
    ``max_wait`` (seconds, default 15 minutes) caps how long a request waits for budget:
    a wait the server has announced to be longer (a ``Retry-After``, a reported reset)
    raises :class:`~privacykit.errors.RateLimitWaitExceeded` at once, without sleeping;
    any other wait raises it when ``max_wait`` has passed.
    """

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Condition, float | None], Any] | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        utcnow: Callable[[], datetime] | None = None,
    ) -> None:
        self.limits = limits or RateLimits()
        self._clock = clock
        self._wait = wait or (lambda cond, timeout: cond.wait(timeout))
        self.max_wait = max_wait
        self._utcnow = utcnow or wall_clock.now
        self._cond = threading.Condition(threading.Lock())
        self._buckets: dict[str, Bucket] = {}
        self._jobs: dict[str, float] = {}  # job id -> expiry (our clock)
        self._jobs_outstanding = 0
        self._counters = _Counters()
        # Scopes the server reported for a route that our route table does not name
        # (``Zendesk-RateLimit-<endpoint>`` headers): later requests of the route spend them.
        self._route_scopes: dict[str, tuple[str, ...]] = {}

    @property
    def max_wait(self) -> float:
        return self._max_wait

    @max_wait.setter
    def max_wait(self, seconds: float) -> None:
        if not seconds >= 0 or not math.isfinite(seconds):
            raise ValueError("max_wait must be a finite number of seconds >= 0")
        self._max_wait = float(seconds)

    def __repr__(self) -> str:
        return f"Governor(account={self.limits.account.limit}/{self.limits.account.window:g}s)"

    def now(self) -> float:
        """The governor's clock (monotonic seconds)."""
        return self._clock()

    def wait_exceeded(self, retry_after: float, what: str) -> RateLimitWaitExceeded:
        """The error for a wait of ``retry_after`` seconds that passes ``max_wait``."""
        retry_after = max(float(retry_after), 0.0)
        resume_at = self._utcnow() + timedelta(seconds=retry_after)
        return RateLimitWaitExceeded(
            f"rate limited: {what} would have to wait {retry_after:.0f}s, longer than the "
            f"{self._max_wait:g}s allowed; Zendesk said to come back at "
            f"{wall_clock.iso(resume_at)}",
            retry_after=retry_after,
            resume_at=resume_at,
        )

    # -- time scale -------------------------------------------------------------------

    def _scale(self) -> float:
        """How much faster the server's clock runs than the configured windows assume,
        learned from the account window (1.0 until a window length has been seen)."""
        account = self._buckets.get(ACCOUNT)
        if account is None or account.learned_window is None:
            return 1.0
        return account.learned_window / self.limits.account.window

    def _window(self, bucket: Bucket) -> float:
        if bucket.learned_window is not None:
            return bucket.learned_window
        return bucket.budget.window * self._scale()

    # -- acquire ------------------------------------------------------------------------

    def scopes_for_route(self, route: str | None, scopes: Iterable[str]) -> tuple[str, ...]:
        """``scopes`` plus those the server has reported for ``route``."""
        keys = tuple(dict.fromkeys(scopes))
        if route is None:
            return keys
        with self._cond:
            learned = self._route_scopes.get(route, ())
        return tuple(dict.fromkeys((*keys, *learned)))

    def acquire(
        self,
        scopes: Iterable[str],
        *,
        route: str | None = None,
        max_wait: float | None = None,
    ) -> Reservation:
        """Block until every scope has budget, then reserve one request in each.

        ``route`` (``"GET /api/v2/users/{id}"``) adds the scopes the server reported for
        it. ``max_wait`` overrides the governor's cap for this call (the client passes
        what is left of its request's allowance)."""
        keys = self.scopes_for_route(route, scopes)
        allowed = self._max_wait if max_wait is None else max(max_wait, 0.0)
        with self._cond:
            start = self._clock()
            waited = False
            while True:
                now = self._clock()
                ready, wake, announced, probes = self._check(keys, now)
                if ready:
                    reservation = self._reserve(keys, now, waited, probes)
                    reservation.route = route
                    return reservation
                waited = True
                if announced is not None and announced - start > allowed:
                    # The server said how long: no point sleeping before giving up.
                    raise self.wait_exceeded(announced - now, f"budget for {', '.join(keys)}")
                if now - start >= allowed:
                    later = max(wake, announced or wake) if wake is not None else announced
                    left = 0.0 if later is None else later - now
                    raise self.wait_exceeded(left, f"budget for {', '.join(keys)}")
                # No event in sight (waiting for answers in flight): re-check after at most
                # one window anyway, so a lost answer cannot wedge the governor.
                windows = [self._window(self._bucket(k)) for k in keys if k != JOBS]
                fallback = max(min(windows, default=1.0), 0.001)
                timeout = fallback if wake is None else max(wake - now, 0.0)
                timeout = min(timeout, allowed - (now - start))
                self._wait(self._cond, max(timeout, 0.0005))

    def try_acquire(self, scopes: Iterable[str]) -> Reservation | None:
        """Reserve at once if every scope has budget, else ``None`` (never blocks)."""
        keys = tuple(dict.fromkeys(scopes))
        with self._cond:
            now = self._clock()
            ready, _, _, probes = self._check(keys, now)
            return self._reserve(keys, now, False, probes) if ready else None

    def _check(
        self, keys: tuple[str, ...], now: float
    ) -> tuple[bool, float | None, float | None, tuple[str, ...]]:
        """Whether every scope has budget now (some perhaps only for a probe, listed
        last); if not, the earliest time one may have, and the latest time the server
        itself announced (a pause, a reported window end) before which some scope surely
        has none."""
        wake: float | None = None
        announced: float | None = None
        ready = True
        probes: list[str] = []
        for key in keys:
            ok, at = self._has_budget(key, now)
            if ok:
                continue
            if key != JOBS and may_probe(self._bucket(key), now):
                probes.append(key)
                continue
            ready = False
            if at is not None:
                wake = at if wake is None else min(wake, at)
                if self._announced(key, now):
                    announced = at if announced is None else max(announced, at)
        return ready, wake, announced, tuple(probes)

    def _announced(self, key: str, now: float) -> bool:
        """Whether a blocked scope's wake time is the server's word (a 429 pause, or the
        end of a window the server reported), not our estimate."""
        if key == JOBS:
            return False
        bucket = self._bucket(key)
        return bucket.paused_until > now or (bucket.mode == KNOWN and bucket.end_lo is not None)

    def _has_budget(self, key: str, now: float) -> tuple[bool, float | None]:
        if key == JOBS:
            return self._jobs_have_budget(now)
        bucket = self._bucket(key)
        roll(bucket, now)
        if bucket.paused_until > now:
            return False, bucket.paused_until
        if bucket.mode == PROBE:
            if bucket.epoch_outstanding > 0:
                return False, None
            return True, None
        if bucket.mode == LOCAL:
            window = self._window(bucket)
            while bucket.sends and bucket.sends[0] <= now - window:
                bucket.sends.popleft()
            if len(bucket.sends) < bucket.limit:
                return True, None
            return False, bucket.sends[0] + window
        if bucket.remaining is not None:
            free = bucket.remaining - bucket.outstanding
        else:
            free = bucket.limit - bucket.used
        if free > 0:
            return True, None
        return False, bucket.end_hi

    def _reserve(
        self, keys: tuple[str, ...], now: float, waited: bool, probes: tuple[str, ...] = ()
    ) -> Reservation:
        epochs: dict[str, int] = {}
        for key in keys:
            if key == JOBS:
                self._jobs_outstanding += 1
                continue
            bucket = self._bucket(key)
            bucket.outstanding += 1
            bucket.epoch_outstanding += 1
            bucket.used += 1
            bucket.last_used = now
            # Every send is logged (pruned to one window) so a scope that turns out to be
            # unreported starts its sliding window with the sends it already made.
            window = self._window(bucket)
            while bucket.sends and bucket.sends[0] <= now - window:
                bucket.sends.popleft()
            bucket.sends.append(now)
            epochs[key] = bucket.epoch
            if key in probes:
                bucket.probes += 1
        self._counters.acquired += 1
        if waited:
            self._counters.waited += 1
        return Reservation(scopes=keys, acquired_at=now, epochs=epochs, probes=probes)

    def _bucket(self, key: str) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 2048:
                self._prune()
            bucket = Bucket(key=key, budget=self.limits.budget_for(key))
            self._buckets[key] = bucket
        return bucket

    def _prune(self) -> None:
        """Forget idle per-user buckets whose windows are over (bounded memory)."""
        now = self._clock()
        for key, bucket in list(self._buckets.items()):
            if ":" not in key or bucket.outstanding or bucket.paused_until > now:
                continue
            if now - bucket.last_used > 2 * bucket.budget.window:
                del self._buckets[key]

    # -- jobs ---------------------------------------------------------------------------

    def _jobs_have_budget(self, now: float) -> tuple[bool, float | None]:
        for job_id, expiry in list(self._jobs.items()):
            if expiry <= now:
                del self._jobs[job_id]
        if self._jobs_outstanding + len(self._jobs) < self.limits.max_queued_jobs:
            return True, None
        return False, min(self._jobs.values()) if self._jobs else None

    def job_queued(self, job_id: str) -> None:
        """A bulk job was queued: it holds a jobs slot until :meth:`job_done` (or its TTL)."""
        with self._cond:
            self._jobs[str(job_id)] = self._clock() + self.limits.job_ttl * self._scale()

    def job_done(self, job_id: str) -> None:
        with self._cond:
            if self._jobs.pop(str(job_id), None) is not None:
                self._cond.notify_all()

    # -- answers ------------------------------------------------------------------------

    def observe(self, response: httpx.Response, reservation: Reservation | None = None) -> None:
        """Learn from an answer (any status) and settle the reservation it used."""
        infos = parse_rate_limit_headers(response.headers)
        with self._cond:
            now = self._clock()
            scopes = reservation.scopes if reservation is not None else ()
            latency = now - reservation.acquired_at if reservation is not None else 0.0
            by_key = self._match(scopes, infos)
            if reservation is not None and reservation.route is not None:
                self._learn_route(reservation.route, scopes, by_key)
            if response.status_code == 429:
                self._counters.rate_limited += 1
                retry_after = self._retry_after(response, by_key)
                self._pause(scopes, by_key, retry_after, now, latency)
            probes = reservation.probes if reservation is not None else ()
            for key, info in by_key.items():
                epoch = reservation.epochs.get(key) if reservation is not None else None
                bucket = self._bucket(key)
                window = self._window(bucket)
                learn(bucket, info, now, latency, epoch, window=window, probe=key in probes)
            if reservation is not None:
                normal = response.status_code < 500 and response.status_code != 429
                accepted = response.status_code != 429
                self._settle(reservation, by_key, now, silent_ok=normal, accepted=accepted)
            self._cond.notify_all()

    def release(self, reservation: Reservation) -> None:
        """The request got no answer (network error). The server may have counted it."""
        with self._cond:
            self._settle(reservation, {}, self._clock(), silent_ok=False)
            self._cond.notify_all()

    def _match(self, scopes: tuple[str, ...], infos: dict[str, RateInfo]) -> dict[str, RateInfo]:
        """Map header scopes onto reservation keys ("create-update-user" ->
        "create-update-user:42"). The account headers apply even to unreserved requests."""
        out: dict[str, RateInfo] = {}
        for name, info in infos.items():
            keys = [k for k in scopes if k == name or k.split(":", 1)[0] == name]
            if keys:
                for key in keys:
                    out[key] = info
            elif ":" not in name and name != CREATE_UPDATE_USER:
                # A scope this request did not reserve (or no reservation): still learn it.
                out[name] = info
        return out

    def _learn_route(
        self, route: str, scopes: tuple[str, ...], by_key: dict[str, RateInfo]
    ) -> None:
        """A scoped header the route did not reserve: from now on the route spends it too."""
        extra = [key for key in by_key if key not in scopes and key != ACCOUNT and ":" not in key]
        if not extra:
            return
        known = self._route_scopes.get(route, ())
        added = tuple(k for k in extra if k not in known)
        if not added:
            return
        if route not in self._route_scopes and len(self._route_scopes) >= _MAX_ROUTES:
            return  # bounded memory; such a route still learns through its 429s
        self._route_scopes[route] = (*known, *added)

    def _settle(
        self,
        reservation: Reservation,
        by_key: dict[str, RateInfo],
        now: float,
        *,
        silent_ok: bool,
        accepted: bool = False,
    ) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        for key in reservation.scopes:
            if key == JOBS:
                self._jobs_outstanding = max(self._jobs_outstanding - 1, 0)
                continue
            bucket = self._bucket(key)
            bucket.outstanding = max(bucket.outstanding - 1, 0)
            if reservation.epochs.get(key) == bucket.epoch:
                bucket.epoch_outstanding = max(bucket.epoch_outstanding - 1, 0)
                if accepted:
                    bucket.accepted_since_pause += 1
            if key in reservation.probes and accepted and bucket.mode == LOCAL:
                # The server took a request our estimate said it would refuse: its window
                # rolled before our guess said (or its limit is higher). Start our sliding
                # window again from this send.
                bucket.sends.clear()
                bucket.sends.append(reservation.acquired_at)
            if key in by_key:
                continue
            if bucket.mode == PROBE and silent_ok:
                # A proper answer without this scope's header: the server does not report
                # it, so we keep our own sliding window with the configured budget.
                bucket.mode = LOCAL
            elif bucket.mode == KNOWN and bucket.remaining is not None:
                # No word on this request: assume it counted (conservative).
                bucket.remaining = max(bucket.remaining - 1, 0)

    def _pause(
        self,
        scopes: tuple[str, ...],
        by_key: dict[str, RateInfo],
        retry_after: float,
        now: float,
        latency: float = 0.0,
    ) -> None:
        """Pause the scopes a 429 blames for exactly ``retry_after``, for every thread, and
        send them back to probe mode so the first answer after the pause re-synchronises."""
        culprits = [k for k, info in by_key.items() if info.remaining == 0 and k in scopes]
        if not culprits:
            # No header names the exhausted scope: blame every scope the answer does not
            # clear (remaining > 0), or all of them.
            cleared = {k for k, info in by_key.items() if info.remaining}
            own = [k for k in scopes if k != JOBS]
            culprits = [k for k in own if k not in cleared] or own or [ACCOUNT]
        until = now + retry_after
        self._counters.pauses += 1
        for key in culprits:
            bucket = self._bucket(key)
            if bucket.paused_until > now:
                # Already paused by an earlier 429 of the same burst: one pause, one lesson.
                bucket.paused_until = max(bucket.paused_until, until)
                continue
            bucket.paused_until = until
            bucket.epoch += 1
            bucket.epoch_outstanding = 0
            if bucket.mode == LOCAL:
                learn_from_pause(bucket, until, latency)
                continue
            # Answers to requests sent before the pause are an older epoch and ignored, so
            # the model restarts clean: the first answer after the pause defines it.
            bucket.mode = PROBE
            bucket.end_lo = bucket.end_hi = bucket.prev_lo = bucket.prev_hi = None
            bucket.remaining = None
            bucket.used = 0

    def _retry_after(self, response: httpx.Response, by_key: dict[str, RateInfo]) -> float:
        retry_after = parse_retry_after(response.headers)
        if retry_after is not None:
            return retry_after
        resets = [i.reset for i in by_key.values() if i.remaining == 0 and i.reset is not None]
        if resets:
            return max(resets)
        return self.limits.default_retry_after * self._scale()

    # -- introspection ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The governor's view of every scope (for tests, benches and debugging)."""
        with self._cond:
            now = self._clock()
            scopes = {
                key: {
                    "mode": b.mode,
                    "limit": b.limit,
                    "remaining": b.remaining,
                    "outstanding": b.outstanding,
                    "window_end_in": None if b.end_hi is None else b.end_hi - now,
                    "learned_window": b.learned_window,
                    "confirmed": b.confirmed,
                    "probes": b.probes,
                    "paused_for": max(b.paused_until - now, 0.0),
                }
                for key, b in self._buckets.items()
            }
            return {
                "scopes": scopes,
                "jobs": {"queued": len(self._jobs), "outstanding": self._jobs_outstanding},
                "acquired": self._counters.acquired,
                "waited": self._counters.waited,
                "rate_limited": self._counters.rate_limited,
                "pauses": self._counters.pauses,
                "time_scale": self._scale(),
                "routes": {route: list(keys) for route, keys in self._route_scopes.items()},
            }

    def retry_after_for(self, response: httpx.Response) -> float:
        """The wait a 429 asks for: ``Retry-After``, else the exhausted scope's reset, else
        the configured default (scaled to the server's clock as far as it is known)."""
        infos = parse_rate_limit_headers(response.headers)
        with self._cond:
            return self._retry_after(response, infos)
