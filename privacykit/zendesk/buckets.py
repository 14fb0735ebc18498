"""One rate-limit scope as the governor models it, and how answers move the model.

Owns :class:`Bucket` (the state of one scope: its mode, the server's window as an
interval, what is left, what is in flight, pauses) and the pure learning functions the
:class:`~privacykit.zendesk.governor.Governor` calls under its lock: :func:`roll`,
:func:`learn` (an answer's headers), :func:`learn_from_pause` (a 429 on a scope the
server never reports) and :func:`may_probe`. The governor's docstring explains the design.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from privacykit.zendesk.budgets import Budget
from privacykit.zendesk.headers import RateInfo

__all__ = [
    "KNOWN",
    "LOCAL",
    "PROBE",
    "Bucket",
    "learn",
    "learn_from_pause",
    "may_probe",
    "roll",
]

PROBE = "probe"  # the server has not told us this scope's budget yet: one request at a time
KNOWN = "known"  # fixed window as the server reports it
LOCAL = "local"  # the server is silent about this scope: sliding window over our sends


def _lowest(current: int | None, reported: int) -> int:
    return reported if current is None else min(current, reported)


@dataclass
class Bucket:
    key: str
    budget: Budget
    mode: str = PROBE
    limit: int = 0
    # The server's current window ends somewhere in [end_lo, end_hi] (our clock); end_hi
    # is when we roll over. end_lo is None while the end is only a guess.
    end_lo: float | None = None
    end_hi: float | None = None
    prev_lo: float | None = None  # the previous window's interval, to spot late answers
    prev_hi: float | None = None
    remaining: int | None = None  # lowest remaining the server reported in this window
    used: int = 0  # our sends since the window rolled, while ``remaining`` is unknown
    outstanding: int = 0
    epoch: int = 0  # bumped by every 429 pause; older answers no longer move the model
    epoch_outstanding: int = 0
    paused_until: float = 0.0
    learned_window: float | None = None  # shortest gap seen between consecutive resets
    quantum: float | None = None  # finest reset precision this scope has been sent
    # Local scopes learn from 429s alone: answers accepted between two pauses (each pause
    # ends at a server window boundary) bound the limit, the pause ends' gap the window.
    last_pause_end: float | None = None
    last_pause_slack: float = 0.0  # how late that pause end may be (the answer's latency)
    accepted_since_pause: int = 0
    # A local scope whose window the server confirmed (two 429 pauses): no more probing.
    confirmed: bool = False
    probes: int = 0  # probes sent (introspection)
    sends: deque[float] = field(default_factory=deque)
    last_used: float = 0.0

    def __post_init__(self) -> None:
        self.limit = self.budget.limit


def may_probe(bucket: Bucket, now: float) -> bool:
    """Whether a scope that our *estimate* says is spent may send one request anyway, to
    let the server say (accepted, or a 429 whose ``Retry-After`` is the exact window
    end). Only when nothing else of the scope is in flight, so the answer is news, and
    only for estimates: a scope the server never reports before its window is confirmed,
    or a window whose end the server never stated (``X-Rate-Limit`` without a reset).
    Without this a wrong guess of the window (a wall-clock minute on a server whose clock
    runs 30 times faster) would stall the run for the whole guessed window."""
    if bucket.paused_until > now or bucket.outstanding > 0:
        return False
    if bucket.mode == LOCAL:
        return not bucket.confirmed
    return bucket.mode == KNOWN and bucket.end_lo is None


def roll(bucket: Bucket, now: float) -> None:
    """Start a new fixed window when the current one has surely ended (our clock)."""
    if bucket.mode != KNOWN or bucket.end_hi is None or now < bucket.end_hi:
        return
    bucket.prev_lo, bucket.prev_hi = bucket.end_lo, bucket.end_hi
    bucket.end_lo = bucket.end_hi = None
    if bucket.learned_window is not None:
        # Consecutive windows: the next one ends at most one (over-estimated) window
        # later; a guess until an answer pins it down.
        periods = math.floor((now - bucket.prev_hi) / bucket.learned_window) + 1
        bucket.end_hi = bucket.prev_hi + periods * bucket.learned_window
    bucket.remaining = None
    # Requests still in flight may land in the new window: count them as used there.
    bucket.used = bucket.outstanding


def learn(
    bucket: Bucket,
    info: RateInfo,
    now: float,
    latency: float,
    epoch: int | None,
    *,
    window: float,
    probe: bool = False,
) -> None:
    """Move the model by what one answer said about this scope. ``window`` is the
    governor's current estimate of the scope's window (used when the answer has no reset);
    ``probe``: the answer to a probe, the only request of the scope in flight."""
    if epoch is not None and epoch != bucket.epoch:
        return  # sent before the last 429 pause: describes a model we threw away
    if bucket.paused_until > now:
        return
    roll(bucket, now)
    if info.limit is not None and info.limit > 0:
        bucket.limit = info.limit
    if info.remaining is None:
        # A limit without a remaining count: our own sliding window, at the server's limit.
        if bucket.mode == PROBE:
            bucket.mode = LOCAL
        return
    remaining = info.remaining
    if info.reset is None:
        _learn_without_reset(bucket, remaining, now, window, probe)
        return
    quantum = info.reset_granularity
    if quantum < 1.0:
        bucket.quantum = quantum if bucket.quantum is None else min(bucket.quantum, quantum)
    elif bucket.quantum is not None:
        quantum = bucket.quantum  # "1" from a server that sends fractions means 1.000
    # The server processed the request somewhere between our send and its answer, and
    # its window ends `reset` (± quantum) after that: an interval for the true end.
    sent = now - latency
    lo, hi = sent + info.reset - quantum, now + info.reset + quantum
    if bucket.mode != KNOWN:
        bucket.mode = KNOWN
        bucket.prev_lo = bucket.prev_hi = None
        bucket.end_lo, bucket.end_hi = lo, hi
        bucket.remaining = remaining
        return
    if bucket.end_lo is None:
        # No answer yet in this window (we rolled over, its end is at most a guess).
        # An answer from the window that ended is late news: ignore it.
        if bucket.prev_hi is not None and lo <= bucket.prev_hi:
            return
        if bucket.prev_lo is not None:
            _learn_window(bucket, hi - bucket.prev_lo)
        guess = bucket.end_hi
        bucket.end_lo, bucket.end_hi = lo, (hi if guess is None or lo > guess else min(hi, guess))
        bucket.remaining = remaining
        return
    assert bucket.end_hi is not None
    if lo > bucket.end_hi:
        # A later window than ours (the server reset before our conservative estimate):
        # impossible for an answer from our window, since lo <= its true end <= end_hi.
        bucket.prev_lo, bucket.prev_hi = bucket.end_lo, bucket.end_hi
        _learn_window(bucket, hi - bucket.end_lo)
        bucket.end_lo, bucket.end_hi = lo, hi
        bucket.remaining = remaining
        bucket.used = bucket.outstanding
        return
    if hi >= bucket.end_lo:
        # The current window (the two intervals overlap): narrow the interval.
        bucket.end_lo = max(bucket.end_lo, lo)
        bucket.end_hi = min(bucket.end_hi, hi)
        bucket.remaining = _lowest(bucket.remaining, remaining)
    # else: from an older window, arrived late


def _learn_window(bucket: Bucket, gap: float) -> None:
    """``gap`` bounds a whole number (>= 1) of windows from above, so the smallest gap
    seen is a window length never shorter than the server's."""
    if gap <= 0:
        return
    if bucket.learned_window is None or gap < bucket.learned_window:
        bucket.learned_window = gap


def _learn_without_reset(
    bucket: Bucket, remaining: int, now: float, window: float, probe: bool
) -> None:
    """Only limit/remaining (the X-Rate-Limit pair): the window's end is a guess of one
    window from now, which a later answer with a reset replaces. A probe's answer is the
    freshest word (nothing else was in flight): more left than we thought means the
    server's window rolled before our guess, so a new guessed window starts."""
    if bucket.mode != KNOWN or bucket.end_hi is None:
        bucket.mode = KNOWN
        bucket.end_lo, bucket.end_hi = None, now + window
        bucket.remaining = remaining
        return
    if probe and (bucket.remaining is None or remaining > bucket.remaining):
        bucket.end_lo, bucket.end_hi = None, now + window
        bucket.remaining = remaining
        bucket.used = bucket.outstanding
        return
    bucket.remaining = _lowest(bucket.remaining, remaining)


def learn_from_pause(bucket: Bucket, until: float, slack: float) -> None:
    """A scope the server never reports learns from its 429s: the previous pause ended
    at a window boundary, so the answers accepted since then are at most one window's
    budget if this 429 falls in that window, and more otherwise (min keeps the lowest,
    which is never below the limit); the gap between the two pause ends is a whole
    number of windows, so it bounds the window from above once each end's lateness
    (the travel time of its 429) is added. The pause ends where the server's next window
    starts, so our sliding window restarts there too (a guessed window far longer than
    the server's would otherwise hold the scope long after the server has budget)."""
    if bucket.last_pause_end is not None and bucket.accepted_since_pause > 0:
        bucket.limit = min(bucket.limit, bucket.accepted_since_pause)
        gap = until - bucket.last_pause_end + slack + bucket.last_pause_slack
        if gap > 0 and (bucket.learned_window is None or gap < bucket.learned_window):
            bucket.learned_window = gap
            bucket.confirmed = True
    bucket.last_pause_end = until
    bucket.last_pause_slack = slack
    bucket.accepted_since_pause = 0
    bucket.sends.clear()
