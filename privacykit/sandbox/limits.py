"""The sandbox's virtual clock and its fixed-window rate-limit budgets.

Owns time inside the sandbox: :class:`VirtualClock` runs ``time_scale`` times faster
than real time and can be advanced by tests, and :class:`RateLimiter` keeps Zendesk's
budgets (account, profiles, permanent delete, create/update user and the ticket
endpoints' own budgets, see :data:`BUDGETS`) as fixed windows on that clock, aligned to
the sandbox's start, and spells their headers the way real accounts did in 2023 or 2024
(:data:`HEADER_STYLES`). Every seconds value it reports is in *real* seconds (virtual
seconds / ``time_scale``), because that is what a client must wait.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "ACCOUNT",
    "BUDGETS",
    "CREATE_UPDATE_USER",
    "DELETED_TICKETS_DESTROY",
    "DELETED_TICKETS_DESTROY_MANY",
    "DELETED_TICKETS_INDEX",
    "HEADER_STYLES",
    "PERMANENT_DELETE",
    "PROFILES",
    "TICKETS_DELETE",
    "TICKETS_UPDATE",
    "TICKET_UPDATE",
    "Budget",
    "Decision",
    "RateLimiter",
    "VirtualClock",
    "format_seconds",
]

ACCOUNT = "account"
PROFILES = "profiles"
PERMANENT_DELETE = "permanent-delete"
CREATE_UPDATE_USER = "create-update-user"
# Ticket endpoints' own budgets. Only "deleted-tickets-destroy" is a name recorded from a
# real account (total=1000); the others are assumed names for documented limits.
TICKETS_DELETE = "tickets-delete"  # DELETE /tickets/{id}
TICKETS_UPDATE = "tickets-update"  # PUT /tickets/{id}, account-wide
TICKET_UPDATE = "ticket-update"  # PUT /tickets/{id}, per ticket
DELETED_TICKETS_INDEX = "deleted-tickets-index"  # GET /deleted_tickets
DELETED_TICKETS_DESTROY = "deleted-tickets-destroy"  # DELETE /deleted_tickets/{id}
DELETED_TICKETS_DESTROY_MANY = "deleted-tickets-destroy-many"  # .../destroy_many

#: scope -> (default limit, window in virtual seconds), as documented.
BUDGETS: dict[str, tuple[int, float]] = {
    ACCOUNT: (700, 60.0),
    PROFILES: (1000, 60.0),
    # 700 permanent deletions every 10 minutes.
    PERMANENT_DELETE: (700, 600.0),
    # 5 requests per minute for each unique user.
    CREATE_UPDATE_USER: (5, 60.0),
    # 400 soft deletions per minute.
    TICKETS_DELETE: (400, 60.0),
    # 100 ticket updates per minute per account; 30 per ticket (per user) per 10 minutes.
    TICKETS_UPDATE: (100, 60.0),
    TICKET_UPDATE: (30, 600.0),
    # Listing deleted tickets: 10 requests per minute.
    DELETED_TICKETS_INDEX: (10, 60.0),
    # Permanent ticket deletion: 1,000 per minute one by one, 300 bulk requests per minute.
    DELETED_TICKETS_DESTROY: (1000, 60.0),
    DELETED_TICKETS_DESTROY_MANY: (300, 60.0),
}
#: How rate-limit headers are spelled: real answers changed spelling between years.
HEADER_STYLES = ("2023", "2024")


class VirtualClock:
    """Virtual seconds since the sandbox started: real elapsed × ``time_scale`` + advanced.

    Timestamps (``created_at`` …) are the wall clock at start plus virtual elapsed time,
    so compressed or advanced time shows up in the data as it would in Zendesk.

    A ``frozen`` clock ignores real time: it moves only by :meth:`advance`, so a test can
    drive windows, jobs and compliance exactly and no window rolls over because the
    machine was slow (the client's waits then advance it; see the tests' ``virtual_time``).
    """

    def __init__(self, time_scale: float = 1.0, *, frozen: bool = False) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = float(time_scale)
        self.frozen = bool(frozen)
        self._start = time.monotonic()
        self._wall_start = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Virtual seconds since start."""
        if self.frozen:
            return self._offset
        return (time.monotonic() - self._start) * self.time_scale + self._offset

    def advance(self, virtual_seconds: float) -> float:
        """Move the clock forward (never backwards); returns the new virtual time."""
        if virtual_seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += virtual_seconds
        return self.now()

    def to_real(self, virtual_seconds: float) -> float:
        """How many real seconds a span of virtual seconds takes."""
        return virtual_seconds / self.time_scale

    def epoch(self, at: float | None = None) -> float:
        """Unix time of virtual instant ``at`` (default: now)."""
        return self._wall_start + (self.now() if at is None else at)

    def iso(self, at: float | None = None) -> str:
        """Zendesk-style UTC timestamp (``2020-02-03T01:37:16Z``) of a virtual instant."""
        stamp = datetime.fromtimestamp(self.epoch(at), tz=UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_seconds(real_seconds: float, time_scale: float) -> str:
    """A seconds header value. Real Zendesk sends whole seconds; when time is compressed
    the wait is a fraction of a second, so we send milliseconds (rounded up, never 0)."""
    if time_scale == 1.0:
        return str(max(1, math.ceil(real_seconds - 1e-9)))
    millis = max(1, math.ceil(real_seconds * 1000 - 1e-9))
    return f"{millis / 1000:.3f}".rstrip("0").rstrip(".")


@dataclass
class Budget:
    """One scope's fixed-window budget: ``limit`` requests per ``window`` virtual seconds,
    counted separately per key (the account-wide scopes use the key ``""``)."""

    scope: str
    limit: int
    window: float
    window_index: int = -1
    used: dict[str, int] = field(default_factory=dict)

    def _roll(self, now: float) -> None:
        index = int(now // self.window)
        if index != self.window_index:
            # Windows are aligned to the sandbox's start, so all keys of a scope roll
            # together and the per-key table never outgrows one window.
            self.window_index = index
            self.used = {}

    def remaining(self, key: str, now: float) -> int:
        self._roll(now)
        return max(0, self.limit - self.used.get(key, 0))

    def resets_in(self, now: float) -> float:
        """Virtual seconds until this window ends."""
        self._roll(now)
        return (self.window_index + 1) * self.window - now


@dataclass
class Decision:
    """The outcome of asking for budget: allowed or not, and the headers to send."""

    allowed: bool
    headers: list[tuple[str, str]]
    retry_after: str | None = None


class RateLimiter:
    """Thread-safe fixed-window budgets for every scope the sandbox enforces."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        account_limit: int = 700,
        profiles_limit: int = 1000,
        permanent_delete_limit: int = 700,
        create_update_user_limit: int = 5,
        header_style: str = "2024",
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.budgets = {scope: Budget(scope, *BUDGETS[scope]) for scope in BUDGETS}
        self.header_style = "2024"
        self.set_header_style(header_style)
        for scope, limit in (
            (ACCOUNT, account_limit),
            (PROFILES, profiles_limit),
            (PERMANENT_DELETE, permanent_delete_limit),
            (CREATE_UPDATE_USER, create_update_user_limit),
        ):
            self.set_limit(scope, limit)

    def set_limit(self, scope: str, limit: int) -> None:
        if scope not in self.budgets:
            raise ValueError(f"unknown rate-limit scope {scope!r}")
        if limit < 1:
            raise ValueError(f"{scope} limit must be at least 1")
        with self._lock:
            self.budgets[scope].limit = int(limit)

    def set_header_style(self, style: str) -> None:
        style = str(style)
        if style not in HEADER_STYLES:
            raise ValueError(f"header style must be one of {', '.join(HEADER_STYLES)}")
        with self._lock:
            self.header_style = style

    def limits(self) -> dict[str, int]:
        with self._lock:
            return {scope: budget.limit for scope, budget in self.budgets.items()}

    def acquire(self, scopes: list[tuple[str, str]]) -> Decision:
        """Take one unit from the account budget and every ``(scope, key)`` given, or
        none at all if any is exhausted (a 429 does not consume budget)."""
        scale = self.clock.time_scale
        with self._lock:
            now = self.clock.now()
            wanted = [(ACCOUNT, ""), *scopes]
            exhausted = [
                self.budgets[scope]
                for scope, key in wanted
                if self.budgets[scope].remaining(key, now) <= 0
            ]
            allowed = not exhausted
            if allowed:
                for scope, key in wanted:
                    budget = self.budgets[scope]
                    budget.used[key] = budget.used.get(key, 0) + 1
            headers: list[tuple[str, str]] = []
            account = self.budgets[ACCOUNT]
            limit = str(account.limit)
            remaining = str(account.remaining("", now))
            reset = format_seconds(self.clock.to_real(account.resets_in(now)), scale)
            # Both years send x-rate-limit(-remaining); the unprefixed names and the
            # per-endpoint prefix changed spelling (../shared/zendesk-docs).
            if self.header_style == "2023":
                headers += [
                    ("x-rate-limit", limit),
                    ("x-rate-limit-remaining", remaining),
                    ("rate-limit", limit),
                    ("rate-limit-remaining", remaining),
                    ("rate-limit-reset", reset),
                ]
                prefix = "zendesk-rate-limit-"
            else:
                headers += [
                    ("X-Rate-Limit", limit),
                    ("X-Rate-Limit-Remaining", remaining),
                    ("ratelimit-limit", limit),
                    ("ratelimit-remaining", remaining),
                    ("ratelimit-reset", reset),
                ]
                prefix = "Zendesk-RateLimit-"
            for scope, key in scopes:
                budget = self.budgets[scope]
                resets = format_seconds(self.clock.to_real(budget.resets_in(now)), scale)
                left = budget.remaining(key, now)
                value = f"total={budget.limit}; remaining={left}; resets={resets}"
                headers.append((f"{prefix}{scope}", value))
            retry_after = None
            if not allowed:
                wait = max(budget.resets_in(now) for budget in exhausted)
                retry_after = format_seconds(self.clock.to_real(wait), scale)
            return Decision(allowed, headers, retry_after)
