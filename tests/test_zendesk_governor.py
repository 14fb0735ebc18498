"""Governor unit tests on a fake clock: header parsing, budgets learned from the server,
in-flight accounting, 429 pauses and re-synchronisation, compressed server clocks."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from privacykit.errors import RateLimitWaitExceeded, ZendeskError
from privacykit.zendesk.governor import (
    ACCOUNT,
    JOBS,
    PERMANENT_DELETE,
    PROFILES,
    USER_WRITE,
    Budget,
    Governor,
    RateInfo,
    RateLimits,
    parse_rate_limit_headers,
    parse_retry_after,
)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.waits: list[float | None] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, _cond: threading.Condition, timeout: float | None) -> None:
        """The governor's blocking wait: on a fake clock, time just passes."""
        self.waits.append(timeout)
        self.now += timeout or 0.0


def governor(clock: FakeClock, limits: RateLimits | None = None, **kw: float) -> Governor:
    return Governor(limits or RateLimits(), clock=clock, wait=clock.wait, **kw)


def answer(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def account(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": f"{reset:.6f}",
    }


# -- header parsing ---------------------------------------------------------------------------


def test_parse_x_rate_limit_pair() -> None:
    infos = parse_rate_limit_headers({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"})
    assert infos == {ACCOUNT: RateInfo(limit=700, remaining=699, reset=None)}


def test_parse_ratelimit_triplet_fractional() -> None:
    infos = parse_rate_limit_headers(
        {"RateLimit-Limit": "200", "ratelimit-remaining": " 17 ", "RATELIMIT-RESET": "0.042"}
    )
    assert infos[ACCOUNT] == RateInfo(limit=200, remaining=17, reset=0.042, reset_granularity=0.001)


def test_parse_ratelimit_integer_reset_has_granularity() -> None:
    info = parse_rate_limit_headers({"ratelimit-remaining": "3", "ratelimit-reset": "12"})[ACCOUNT]
    assert info.reset == 12.0 and info.reset_granularity == 1.0


def test_parse_disagreeing_sources_takes_the_stricter() -> None:
    info = parse_rate_limit_headers(
        {
            "X-Rate-Limit": "700",
            "X-Rate-Limit-Remaining": "5",
            "ratelimit-limit": "400",
            "ratelimit-remaining": "9",
        }
    )[ACCOUNT]
    assert (info.limit, info.remaining) == (400, 5)


def test_parse_combined_ratelimit_header() -> None:
    info = parse_rate_limit_headers({"RateLimit": "limit=10, remaining=3, reset=2.5"})[ACCOUNT]
    assert (info.limit, info.remaining, info.reset) == (10, 3, 2.5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("total=1000; remaining=999; resets=12", RateInfo(1000, 999, 12.0, 1.0)),
        (" Total = 5 ;Remaining=4 ; RESETS=1.5 ", RateInfo(5, 4, 1.5, 0.1)),
        ("total=5,remaining=0,resets=0.001", RateInfo(5, 0, 0.001, 0.001)),
        ("total=5", RateInfo(5, None, None)),
        ("remaining=abc; total=x; resets=12", RateInfo(None, None, 12.0, 1.0)),
        ("remaining=-3; resets=-1", RateInfo(None, 0, 0.0, 1.0)),
    ],
)
def test_parse_zendesk_scoped_header(value: str, expected: RateInfo) -> None:
    infos = parse_rate_limit_headers({"Zendesk-RateLimit-Create-Update-User": value})
    assert infos["create-update-user"] == expected


def test_parse_garbage_is_ignored() -> None:
    assert parse_rate_limit_headers({"Zendesk-RateLimit-profiles": "nonsense"}) == {}
    assert parse_rate_limit_headers({"X-Rate-Limit": "lots"}) == {}
    assert parse_rate_limit_headers({"Content-Type": "text/plain"}) == {}
    assert parse_rate_limit_headers({"ratelimit-reset": "inf"}) == {}


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": " 0.042 "}) == 0.042
    assert parse_retry_after({"Retry-After": "-2"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    base = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    date = format_datetime(base + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=lambda: base) == 30.0


def test_budget_and_limits_validation() -> None:
    with pytest.raises(ValueError):
        Budget(0, 60)
    assert RateLimits.for_plan(2500).account == Budget(2500, 60.0)
    assert RateLimits.for_plan("growth").account.limit == 400
    with pytest.raises(ValueError):
        RateLimits.for_plan("platinum")
    fast = RateLimits().compressed(600)
    assert fast.permanent_delete == Budget(700, 1.0) and fast.user_write.window == 1 / 600


# -- probe, known windows, in-flight accounting --------------------------------------------


def test_probe_one_request_until_the_server_has_spoken() -> None:
    clock = FakeClock()
    gov = governor(clock)
    first = gov.try_acquire([ACCOUNT])
    assert first is not None
    assert gov.try_acquire([ACCOUNT]) is None  # the defaults are not trusted blindly
    gov.observe(answer(**account(10, 9, 5.0)), first)
    assert gov.snapshot()["scopes"][ACCOUNT]["mode"] == "known"
    assert gov.try_acquire([ACCOUNT]) is not None


def test_known_window_spends_exactly_the_remaining_budget() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(**account(5, 3, 10.0)), gov.try_acquire([ACCOUNT]))
    held = [gov.try_acquire([ACCOUNT]) for _ in range(3)]
    assert all(held)
    assert gov.try_acquire([ACCOUNT]) is None
    clock.now += 9.99
    assert gov.try_acquire([ACCOUNT]) is None
    clock.now += 0.02  # the window is over: the whole limit again, minus what is in flight
    fresh = [gov.try_acquire([ACCOUNT]) for _ in range(2)]
    assert all(fresh) and gov.try_acquire([ACCOUNT]) is None


def test_in_flight_requests_count_until_their_answer() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(**account(100, 4, 30.0)), gov.try_acquire([ACCOUNT]))
    flying = [gov.try_acquire([ACCOUNT]) for _ in range(4)]
    assert gov.try_acquire([ACCOUNT]) is None
    # Answers arrive out of order; the server's counter only goes down within a window.
    for remaining, reservation in zip([1, 3, 0, 2], flying, strict=True):
        gov.observe(answer(**account(100, remaining, 30.0)), reservation)
    assert gov.snapshot()["scopes"][ACCOUNT]["remaining"] == 0
    assert gov.try_acquire([ACCOUNT]) is None


def test_conservative_while_answers_are_missing_then_exact() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(**account(100, 10, 30.0)), gov.try_acquire([ACCOUNT]))
    flying = [gov.try_acquire([ACCOUNT]) for _ in range(10)]
    # The first answer says 9 left: it was counted, the other 9 in flight may not be yet.
    gov.observe(answer(**account(100, 9, 30.0)), flying[0])
    assert gov.try_acquire([ACCOUNT]) is None
    # A request that got no answer at all is assumed to have counted.
    gov.release(flying[1])
    assert gov.snapshot()["scopes"][ACCOUNT]["remaining"] == 8


def test_stale_answer_from_previous_window_is_ignored() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(**account(10, 9, 1.0)), gov.try_acquire([ACCOUNT]))
    late = gov.try_acquire([ACCOUNT])
    clock.now += 1.001  # our window rolls over
    assert gov.try_acquire([ACCOUNT]) is not None
    clock.now += 0.003
    # The late answer was processed just before the old window ended (reset ~0).
    gov.observe(answer(**account(10, 0, 0.0)), late)
    assert gov.snapshot()["scopes"][ACCOUNT]["remaining"] is None  # still our own count
    assert gov.try_acquire([ACCOUNT]) is not None


def test_server_window_ending_earlier_than_estimated_is_adopted() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(**account(10, 0, 1.0)), gov.try_acquire([ACCOUNT]))
    assert gov.try_acquire([ACCOUNT]) is None
    # Another client's answer (no reservation) already shows the next window.
    clock.now += 0.5
    gov.observe(answer(**account(10, 9, 1.49)))
    assert gov.try_acquire([ACCOUNT]) is not None


def test_limit_and_window_learned_from_a_compressed_server() -> None:
    """A server whose minute lasts 0.1 s: the governor follows its resets, not 60 s."""
    clock = FakeClock()
    gov = governor(clock)
    server = FixedWindowServer(clock, limit=20, window=0.1)
    sent = run_simulation(gov, server, clock, requests=400, in_flight=4, latency=0.0007)
    assert server.rejected == 0
    assert sent == 400
    snap = gov.snapshot()
    assert snap["scopes"][ACCOUNT]["limit"] == 20
    assert snap["scopes"][ACCOUNT]["learned_window"] == pytest.approx(0.1, abs=0.003)
    assert snap["time_scale"] == pytest.approx(0.1 / 60, rel=0.05)
    # Throughput at (>= 97% of) the limit: 400 requests at 20 per 0.1 s take ~2 s.
    assert server.windows_used() <= math.ceil(400 / 20 / 0.97) + 1


@pytest.mark.parametrize("rounding", [math.floor, math.ceil, round], ids=["floor", "ceil", "round"])
def test_whole_second_resets_however_rounded(rounding: Callable[[float], int]) -> None:
    """Real Zendesk sends whole seconds; whichever way it rounds, no 429 and the limit."""
    clock = FakeClock(start=7.3)
    gov = governor(clock)
    server = FixedWindowServer(clock, limit=30, window=60.0, whole_seconds=rounding)
    sent = run_simulation(gov, server, clock, requests=300, in_flight=4, latency=0.08)
    assert sent == 300 and server.rejected == 0
    # A second of margin per 60 s window at most: still >= 97% of the limit.
    assert clock.now - 7.3 <= 60 * (300 / 30 / 0.97)


def test_user_write_scope_scales_with_the_learned_server_clock() -> None:
    clock = FakeClock()
    gov = governor(clock)
    server = FixedWindowServer(clock, limit=1000, window=0.1)
    run_simulation(gov, server, clock, requests=60, in_flight=2, latency=0.02)
    scale = gov.snapshot()["time_scale"]
    assert scale == pytest.approx(0.1 / 60, rel=0.3)
    first = gov.try_acquire([USER_WRITE])
    assert first is not None and first.probes == ()
    gov.observe(answer(), first)  # no header for this scope: local sliding window
    assert gov.snapshot()["scopes"][USER_WRITE]["mode"] == "local"
    # Spent by our estimate, which the server has never confirmed: one probe may ask.
    probe = gov.try_acquire([USER_WRITE])
    assert probe is not None and probe.probes == (USER_WRITE,)
    assert gov.try_acquire([USER_WRITE]) is None  # one probe at a time
    gov.observe(answer(429, Retry_After=f"{0.4 * scale:.6f}"), probe)
    assert gov.try_acquire([USER_WRITE]) is None  # paused exactly as the server said
    clock.now += 0.4 * scale + 1e-9
    after = gov.try_acquire([USER_WRITE])
    assert after is not None and after.probes == ()  # a fresh window, not a probe


# -- 429 --------------------------------------------------------------------------------------


def test_429_pauses_the_scope_for_exactly_retry_after_then_probes() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(**account(10, 5, 30.0)), gov.try_acquire([ACCOUNT]))
    one, two = gov.try_acquire([ACCOUNT]), gov.try_acquire([ACCOUNT])
    headers = {"Retry-After": "2.5", **account(10, 0, 2.5)}
    gov.observe(answer(429, **headers), one)
    assert gov.try_acquire([ACCOUNT]) is None
    # An answer to a request sent before the pause does not undo it.
    gov.observe(answer(**account(10, 4, 2.4)), two)
    clock.now += 2.4999
    assert gov.try_acquire([ACCOUNT]) is None
    clock.now += 0.0001
    probe = gov.try_acquire([ACCOUNT])
    assert probe is not None and gov.try_acquire([ACCOUNT]) is None  # re-synchronising
    gov.observe(answer(**account(10, 9, 0.1)), probe)
    assert gov.try_acquire([ACCOUNT]) is not None
    assert gov.snapshot()["rate_limited"] == 1


def test_429_blames_the_scope_whose_header_is_exhausted() -> None:
    clock = FakeClock()
    gov = governor(clock)
    r = gov.try_acquire([ACCOUNT, PROFILES])
    gov.observe(
        answer(
            429,
            Retry_After="3",
            Zendesk_RateLimit_profiles="total=10; remaining=0; resets=3",
            **account(700, 650, 40.0),
        ),
        r,
    )
    assert gov.try_acquire([ACCOUNT, PROFILES]) is None
    assert gov.try_acquire([ACCOUNT]) is not None  # the account budget is fine
    clock.now += 3
    assert gov.try_acquire([PROFILES]) is not None


def test_429_without_information_pauses_every_scope_of_the_request() -> None:
    clock = FakeClock()
    gov = governor(clock)
    r = gov.try_acquire([ACCOUNT, PERMANENT_DELETE])
    gov.observe(answer(429, Retry_After="1"), r)
    assert gov.try_acquire([ACCOUNT]) is None and gov.try_acquire([PERMANENT_DELETE]) is None
    assert gov.retry_after_for(answer(429)) == 60.0  # nothing said: the configured default


def test_acquire_blocks_until_the_pause_ends() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(429, Retry_After="4"), gov.try_acquire([ACCOUNT]))
    start = clock.now
    gov.acquire([ACCOUNT])
    assert clock.now - start == pytest.approx(4.0)


def test_acquire_gives_up_at_once_when_the_server_announced_a_longer_wait() -> None:
    clock = FakeClock()
    wall = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    gov = governor(clock, max_wait=10.0, utcnow=lambda: wall)
    gov.observe(answer(429, Retry_After="3600"), gov.try_acquire([ACCOUNT]))
    with pytest.raises(RateLimitWaitExceeded) as info:
        gov.acquire([ACCOUNT])
    assert clock.waits == []  # no sleeping before giving up
    assert info.value.retry_after == pytest.approx(3600)
    assert info.value.resume_at == wall + timedelta(hours=1)
    assert "2024-05-01T13:00:00Z" in str(info.value)
    assert isinstance(info.value, ZendeskError)


def test_acquire_gives_up_after_max_wait_on_an_estimated_wait() -> None:
    clock = FakeClock()
    # Every job slot is held by a job nobody polls: only its TTL (our estimate) frees it,
    # so we do wait, but never longer than max_wait.
    gov = governor(clock, RateLimits(max_queued_jobs=1, job_ttl=3600.0), max_wait=10.0)
    gov.job_queued("J1")
    with pytest.raises(RateLimitWaitExceeded):
        gov.acquire([JOBS])
    assert sum(w or 0 for w in clock.waits) == pytest.approx(10.0)


def test_max_wait_default_is_fifteen_minutes_and_validated() -> None:
    assert Governor().max_wait == 900.0
    with pytest.raises(ValueError):
        Governor(max_wait=-1)


# -- scopes the server does not report, windows without a reset, jobs --------------------------


def test_silent_scope_uses_sliding_window_of_configured_budget() -> None:
    clock = FakeClock()
    limits = RateLimits(permanent_delete=Budget(2, 10.0))
    gov = governor(clock, limits)
    first = gov.try_acquire([PERMANENT_DELETE])
    gov.observe(answer(), first)  # no Zendesk-RateLimit-permanent-delete header
    clock.now += 4
    second = gov.try_acquire([PERMANENT_DELETE])
    assert second is not None and second.probes == ()
    gov.observe(answer(), second)
    # Spent by our estimate: one probe asks the server (nothing is in flight)...
    probe = gov.try_acquire([PERMANENT_DELETE])
    assert probe is not None and probe.probes == (PERMANENT_DELETE,)
    assert gov.try_acquire([PERMANENT_DELETE]) is None
    # ... and a 429 pauses it until the server's window ends.
    gov.observe(answer(429, Retry_After="6"), probe)
    assert gov.try_acquire([PERMANENT_DELETE]) is None
    clock.now += 6
    assert gov.try_acquire([PERMANENT_DELETE]) is not None
    assert gov.try_acquire([PERMANENT_DELETE]) is not None
    assert gov.try_acquire([PERMANENT_DELETE]) is None  # two in flight: the budget


def test_silent_scope_probe_accepted_restarts_the_sliding_window() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimits(permanent_delete=Budget(2, 600.0)))
    for _ in range(2):
        gov.observe(answer(), gov.try_acquire([PERMANENT_DELETE]))
    probe = gov.try_acquire([PERMANENT_DELETE])
    assert probe is not None and probe.probes == (PERMANENT_DELETE,)
    gov.observe(answer(), probe)  # the server took it: its window is not ours
    nxt = gov.try_acquire([PERMANENT_DELETE])
    assert nxt is not None and nxt.probes == ()  # our window restarted at the probe


def test_remaining_without_reset_guesses_one_window() -> None:
    clock = FakeClock()
    gov = governor(clock)
    gov.observe(answer(X_Rate_Limit="700", X_Rate_Limit_Remaining="0"), gov.try_acquire([ACCOUNT]))
    # The window's end is only a guess: one probe asks instead of waiting it out.
    probe = gov.try_acquire([ACCOUNT])
    assert probe is not None and probe.probes == (ACCOUNT,)
    assert gov.try_acquire([ACCOUNT]) is None
    gov.observe(answer(X_Rate_Limit="700", X_Rate_Limit_Remaining="699"), probe)
    assert gov.try_acquire([ACCOUNT]) is not None  # the server's window had rolled


def test_jobs_slots() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimits(max_queued_jobs=2, job_ttl=100.0))
    a = gov.try_acquire([JOBS])
    b = gov.try_acquire([JOBS])
    assert a and b and gov.try_acquire([JOBS]) is None
    gov.observe(answer(), a)
    gov.job_queued("j1")
    gov.observe(answer(500), b)  # failed: its slot is free again
    assert gov.try_acquire([JOBS]) is not None
    assert gov.try_acquire([JOBS]) is None
    gov.job_done("j1")
    assert gov.try_acquire([JOBS]) is not None


def test_job_slot_expires_after_ttl() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimits(max_queued_jobs=1, job_ttl=100.0))
    gov.observe(answer(), gov.try_acquire([JOBS]))
    gov.job_queued("j1")
    assert gov.try_acquire([JOBS]) is None
    clock.now += 100
    assert gov.try_acquire([JOBS]) is not None


def test_per_user_scope_learns_from_create_update_header() -> None:
    clock = FakeClock()
    gov = governor(clock)
    key = "create-update-user:42"
    r = gov.try_acquire([key])
    gov.observe(answer(Zendesk_RateLimit_create_update_user="total=5; remaining=0; resets=0.50"), r)
    assert gov.try_acquire([key]) is None
    assert gov.try_acquire(["create-update-user:43"]) is not None  # another user's budget
    clock.now += 0.5
    assert gov.try_acquire([key]) is None  # 0.50 may be 0.509...: a quantum of margin
    clock.now += 0.01
    assert gov.try_acquire([key]) is not None


# -- threads ------------------------------------------------------------------------------------


def test_threads_share_the_budget_without_overspending() -> None:
    """Real threads on the real clock against an in-process fixed-window model."""
    import time

    gov = Governor(RateLimits())
    server = FixedWindowServer(time.monotonic, limit=15, window=0.05, lock=threading.Lock())
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(15):
                r = gov.acquire([ACCOUNT])
                gov.observe(server.handle(), r)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert server.accepted == 120
    assert server.rejected == 0
    assert max(server.per_window.values()) <= 15


# -- a fixed-window server model ------------------------------------------------------------------


class FixedWindowServer:
    """Windows aligned to time 0, like Zendesk's and the sandbox's; fractional resets
    rounded up to the millisecond, as the sandbox sends them."""

    def __init__(
        self,
        clock,
        limit: int,
        window: float,
        lock=None,
        headers: bool = True,
        whole_seconds: Callable[[float], int] | None = None,
    ) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        self.limit = limit
        self.window = window
        self.per_window: dict[int, int] = {}
        self.accepted = 0
        self.rejected = 0
        self.lock = lock or threading.Lock()
        self.headers = headers
        self.whole_seconds = whole_seconds  # e.g. math.floor: send integers, as Zendesk does

    def windows_used(self) -> int:
        return len(self.per_window)

    def handle(self) -> httpx.Response:
        with self.lock:
            now = self.clock()
            index = int(now // self.window)
            reset = (index + 1) * self.window - now
            reset_text = f"{math.ceil(reset * 1000 - 1e-9) / 1000:.3f}"
            if self.whole_seconds is not None:
                reset_text = str(self.whole_seconds(reset))
            used = self.per_window.get(index, 0)
            if used >= self.limit:
                self.rejected += 1
                budget = account_text(self.limit, 0, reset_text) if self.headers else {}
                return answer(429, Retry_After=reset_text, **budget)
            self.per_window[index] = used + 1
            self.accepted += 1
            if not self.headers:
                return answer()
            return answer(**account_text(self.limit, self.limit - used - 1, reset_text))


def account_text(limit: int, remaining: int, reset: str) -> dict[str, str]:
    return {
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": reset,
    }


def run_simulation(
    gov: Governor,
    server: FixedWindowServer,
    clock: FakeClock,
    *,
    requests: int,
    in_flight: int,
    latency: float,
) -> int:
    """Up to ``in_flight`` requests at once: each reaches the server after ``latency``/2
    and its answer comes back after ``latency``; answers are observed in random order."""
    rng = random.Random(7)
    sent = 0
    for _ in range(requests * 10):
        if sent >= requests:
            break
        batch = [gov.acquire([ACCOUNT])]
        while len(batch) < in_flight and sent + len(batch) < requests:
            more = gov.try_acquire([ACCOUNT])
            if more is None:
                break
            batch.append(more)
        clock.now += latency / 2
        answers = [(r, server.handle()) for r in batch]
        clock.now += latency / 2
        rng.shuffle(answers)
        for reservation, response in answers:
            gov.observe(response, reservation)
        sent += len(batch)
    return sent


def test_silent_server_limit_and_window_learned_from_429s() -> None:
    """A server that sends no budget headers, only 429 + Retry-After: after two pauses
    the governor knows the limit (answers accepted between them) and the window."""
    clock = FakeClock(start=0.0)
    gov = governor(clock, RateLimits.for_plan(2500))
    server = FixedWindowServer(clock, limit=4, window=0.5, headers=False)
    for _ in range(40):
        reservation = gov.acquire([ACCOUNT])
        clock.now += 0.001
        gov.observe(server.handle(), reservation)
    account_state = gov.snapshot()["scopes"][ACCOUNT]
    assert account_state["mode"] == "local"
    assert account_state["limit"] == 4
    assert account_state["learned_window"] == pytest.approx(0.5, abs=0.01)
    assert server.rejected == 2  # the first two windows taught it; none after


# -- every header spelling real accounts sent (issue 14) ---------------------------------------

HEADERS_2023 = {
    "rate-limit": "400",
    "rate-limit-remaining": "398",
    "rate-limit-reset": "17",
    "x-rate-limit": "400",
    "x-rate-limit-remaining": "398",
    "zendesk-rate-limit-deleted-tickets-destroy": "total=1000; remaining=999; resets=12",
}
HEADERS_2024 = {
    "ratelimit-limit": "400",
    "ratelimit-remaining": "398",
    "ratelimit-reset": "17",
    "x-rate-limit": "400",
    "x-rate-limit-remaining": "398",
    "zendesk-ratelimit-deleted-tickets-destroy": "total=1000; remaining=999; resets=12",
}


@pytest.mark.parametrize("headers", [HEADERS_2023, HEADERS_2024], ids=["2023", "2024"])
def test_both_years_parse_the_same(headers: dict[str, str]) -> None:
    infos = parse_rate_limit_headers(httpx.Headers(headers))
    assert infos[ACCOUNT] == RateInfo(limit=400, remaining=398, reset=17.0, reset_granularity=1.0)
    assert infos["deleted-tickets-destroy"] == RateInfo(
        limit=1000, remaining=999, reset=12.0, reset_granularity=1.0
    )
    assert set(infos) == {ACCOUNT, "deleted-tickets-destroy"}


def test_mixed_spellings_take_the_stricter_value() -> None:
    infos = parse_rate_limit_headers(
        {
            "Rate-Limit-Remaining": "5",
            "RateLimit-Remaining": "7",
            "X-RateLimit-Limit": "100",
            "Zendesk-Rate-Limit-profiles": "total=10; remaining=4; resets=3",
            "Zendesk-RateLimit-profiles": "total=10; remaining=6; resets=3",
        }
    )
    assert infos[ACCOUNT].remaining == 5 and infos[ACCOUNT].limit == 100
    assert infos[PROFILES].remaining == 4


# -- windows no header states: converge on the server's, never assume a wall-clock one ------


class SilentScopeServer:
    """Fixed windows aligned to 0 for the account (reported only as the ``X-Rate-Limit``
    pair: no reset, so no window length) and for one scope the server never reports at
    all; a request over either budget gets 429 with the exact ``Retry-After``."""

    def __init__(self, clock: FakeClock, account: tuple[int, float], scope: tuple[int, float]):
        self.clock = clock
        self.account, self.scope = account, scope
        self.used: dict[tuple[str, int], int] = {}
        self.accepted: dict[int, int] = {}  # scope window index -> accepted scoped requests
        self.rejected = 0

    def handle(self, scoped: bool) -> httpx.Response:
        now = self.clock.now
        budgets = [("account", *self.account)] + ([("scope", *self.scope)] if scoped else [])
        waits = []
        for name, limit, window in budgets:
            index = int(now // window)
            if self.used.get((name, index), 0) >= limit:
                waits.append((index + 1) * window - now)
        a_limit, a_window = self.account
        a_used = self.used.get(("account", int(now // a_window)), 0)
        headers = {"X-Rate-Limit": str(a_limit), "X-Rate-Limit-Remaining": str(a_limit - a_used)}
        if waits:
            self.rejected += 1
            return answer(429, Retry_After=f"{max(waits):.6f}", **headers)
        for name, _limit, window in budgets:
            key = (name, int(now // window))
            self.used[key] = self.used.get(key, 0) + 1
        if scoped:
            index = int(now // self.scope[1])
            self.accepted[index] = self.accepted.get(index, 0) + 1
        headers["X-Rate-Limit-Remaining"] = str(a_limit - a_used - 1)
        return answer(**headers)


def drive(gov: Governor, server: SilentScopeServer, clock: FakeClock, scopes, until: float):  # type: ignore[no-untyped-def]
    """One request at a time, 10 ms each, until ``until`` (server seconds)."""
    scoped = PERMANENT_DELETE in scopes
    for _ in range(1_000_000):
        if clock.now >= until:
            return
        reservation = gov.acquire(scopes)
        clock.now += 0.01
        gov.observe(server.handle(scoped), reservation)
    raise AssertionError("the loop is bounded")


def test_unreported_scope_converges_on_the_servers_window() -> None:
    """Issue 14: the 700 permanent deletions per 10 minutes of the docs, on a server whose
    clock runs 30 times faster (a 20 s window) and that reports neither that scope nor any
    reset. A wall-clock window would send 700 and then wait ten minutes (saturation 0.03);
    the governor asks the server instead and runs at its real window."""
    clock = FakeClock(start=0.0)
    gov = governor(clock, RateLimits(account=Budget(100_000, 60.0)))
    server = SilentScopeServer(clock, account=(100_000, 60.0), scope=(700, 20.0))
    drive(gov, server, clock, [ACCOUNT, PERMANENT_DELETE], until=200.0)
    state = gov.snapshot()["scopes"][PERMANENT_DELETE]
    assert state["mode"] == "local" and state["confirmed"]
    assert state["limit"] == 700
    assert state["learned_window"] == pytest.approx(20.0, abs=0.05)
    steady = [server.accepted.get(i, 0) for i in range(2, 10)]
    assert min(steady) >= 0.95 * 700, steady
    assert server.rejected <= 2  # two probes taught it; no 429 after that


def test_reset_less_account_window_converges_with_one_probe_per_window() -> None:
    """``X-Rate-Limit``/``-Remaining`` only: no window length in any header. The guessed
    window (the configured minute) is 30 times too long; one probe per window asks."""
    clock = FakeClock(start=0.0)
    gov = governor(clock, RateLimits(account=Budget(100, 60.0)))
    server = SilentScopeServer(clock, account=(100, 2.0), scope=(1, 1.0))
    drive(gov, server, clock, [ACCOUNT], until=40.0)
    per_window = [server.used.get(("account", i), 0) for i in range(2, 20)]
    assert min(per_window) >= 95, per_window
    assert server.rejected <= 20  # at most one probe's 429 per window
