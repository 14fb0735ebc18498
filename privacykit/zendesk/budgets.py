"""Rate-limit scopes and their documented budgets.

Owns the scope names a request can spend (:func:`privacykit.zendesk.routes.scopes_for`
maps routes onto them) and :class:`RateLimits`, the configured budgets the governor uses
until the server reports a scope's real budget in headers (and always for scopes it never
reports). A scope named like a ``Zendesk-RateLimit-<name>`` header learns from it; the
governor also learns header scopes it has no name for (see ``Governor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

__all__ = [
    "ACCOUNT",
    "CREATE_UPDATE_USER",
    "DELETED_TICKETS_DESTROY",
    "DELETED_TICKETS_DESTROY_MANY",
    "DELETED_TICKETS_INDEX",
    "JOBS",
    "PERMANENT_DELETE",
    "PLAN_LIMITS",
    "PROFILES",
    "TICKETS_DELETE",
    "TICKETS_UPDATE",
    "TICKET_UPDATE",
    "USER_WRITE",
    "Budget",
    "RateLimits",
]

ACCOUNT = "account"
PROFILES = "profiles"  # assumed header name; the docs are silent (see ARCHITECTURE.md)
PERMANENT_DELETE = "permanent-delete"  # assumed header name
CREATE_UPDATE_USER = "create-update-user"  # documented; keyed per user: "create-update-user:42"
USER_WRITE = "user-write"  # create/update users, account-wide 1/s; no header documented
JOBS = "jobs"  # queued bulk jobs: a concurrency budget, not a rate
# Ticket endpoints (tickets-and-more.md). Header names are assumptions except
# "deleted-tickets-destroy", seen in recorded answers; a header the server sends under any
# other name is learned for the route that carried it, so a wrong guess costs nothing.
TICKETS_DELETE = "tickets-delete"  # DELETE /tickets/{id}: 400 per minute
TICKETS_UPDATE = "tickets-update"  # PUT /tickets/{id}: 100 updates per minute per account
TICKET_UPDATE = "ticket-update"  # ... and 30 per ticket per 10 min: "ticket-update:<id>"
DELETED_TICKETS_INDEX = "deleted-tickets-index"  # GET /deleted_tickets: 10 per minute
DELETED_TICKETS_DESTROY = "deleted-tickets-destroy"  # DELETE /deleted_tickets/{id}: 1000/min
DELETED_TICKETS_DESTROY_MANY = "deleted-tickets-destroy-many"  # destroy_many: 300 per minute


@dataclass(frozen=True)
class Budget:
    """``limit`` requests per ``window`` seconds (of the server's clock)."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.window > 0:
            raise ValueError("a budget needs limit >= 1 and window > 0")


#: Account-wide requests per minute by Zendesk plan (Team, Growth, Professional, Enterprise+).
PLAN_LIMITS = {"team": 200, "growth": 400, "professional": 700, "enterprise_plus": 2500}


def _endpoint_defaults() -> Mapping[str, Budget]:
    return MappingProxyType(
        {
            TICKETS_DELETE: Budget(400, 60.0),
            TICKETS_UPDATE: Budget(100, 60.0),
            TICKET_UPDATE: Budget(30, 600.0),
            DELETED_TICKETS_INDEX: Budget(10, 60.0),
            DELETED_TICKETS_DESTROY: Budget(1000, 60.0),
            DELETED_TICKETS_DESTROY_MANY: Budget(300, 60.0),
        }
    )


@dataclass(frozen=True)
class RateLimits:
    """The documented budgets, all configurable. They apply only until the server reports a
    scope's real budget in headers (and always to scopes it never reports)."""

    account: Budget = Budget(700, 60.0)
    profiles: Budget = Budget(1000, 60.0)  # assumed; docs silent
    permanent_delete: Budget = Budget(700, 600.0)
    create_update_user: Budget = Budget(5, 60.0)  # per user
    user_write: Budget = Budget(1, 1.0)  # per account
    max_queued_jobs: int = 30
    # A job we never hear finish frees its slot after this long (server seconds), so a
    # caller that never polls job statuses cannot wedge the jobs budget for ever.
    job_ttl: float = 600.0
    # Used only when a 429 carries neither Retry-After nor a reset header.
    default_retry_after: float = 60.0
    # The ticket endpoints' documented budgets, by scope name (see the constants above).
    endpoints: Mapping[str, Budget] = field(default_factory=_endpoint_defaults)

    @classmethod
    def for_plan(cls, requests_per_minute: int | str) -> RateLimits:
        """Defaults with the account budget of a plan (200/400/700/2500 or a plan name)."""
        if isinstance(requests_per_minute, str):
            try:
                requests_per_minute = PLAN_LIMITS[requests_per_minute.lower()]
            except KeyError:
                raise ValueError(f"unknown plan; one of {sorted(PLAN_LIMITS)}") from None
        return cls(account=Budget(int(requests_per_minute), 60.0))

    @classmethod
    def unlimited(cls) -> RateLimits:
        """Budgets too large to bind (benchmarks against a sandbox with limits lifted).
        Server headers still apply if the server sends them."""
        big = Budget(10**9, 1.0)
        return cls(
            account=big,
            profiles=big,
            permanent_delete=big,
            create_update_user=big,
            user_write=big,
            max_queued_jobs=10**9,
            endpoints=MappingProxyType(dict.fromkeys(_endpoint_defaults(), big)),
        )

    def compressed(self, time_scale: float) -> RateLimits:
        """These budgets on a server whose clock runs ``time_scale`` times faster (the
        sandbox's ``time_scale``): every window and wait divided by it. Only needed for
        scopes the server never reports (user writes per account); the rest is learned."""
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")

        def scaled(budget: Budget) -> Budget:
            return Budget(budget.limit, budget.window / time_scale)

        return replace(
            self,
            account=scaled(self.account),
            profiles=scaled(self.profiles),
            permanent_delete=scaled(self.permanent_delete),
            create_update_user=scaled(self.create_update_user),
            user_write=scaled(self.user_write),
            job_ttl=self.job_ttl / time_scale,
            default_retry_after=self.default_retry_after / time_scale,
            endpoints=MappingProxyType({k: scaled(b) for k, b in self.endpoints.items()}),
        )

    def budget_for(self, scope: str) -> Budget:
        base = scope.split(":", 1)[0]
        budgets = {
            ACCOUNT: self.account,
            PROFILES: self.profiles,
            PERMANENT_DELETE: self.permanent_delete,
            CREATE_UPDATE_USER: self.create_update_user,
            USER_WRITE: self.user_write,
        }
        if base in budgets:
            return budgets[base]
        # A scope we have no default for (a header we did not know) gets the account's.
        return self.endpoints.get(base, self.account)

    def with_account(self, limit: int, window: float = 60.0) -> RateLimits:
        return replace(self, account=Budget(limit, window))
