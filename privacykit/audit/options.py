"""What an audit run checks and how much of Zendesk's budget it may use.

Owns :class:`AuditOptions` and its defaults. Kept apart from :mod:`.runner` (which needs
httpx, the ledger and the Zendesk client) so that ``privacykit audit --help`` can show the
defaults without importing any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "DEFAULT_DUE_WITHIN_DAYS",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_SOFT_DELETE_GRACE_HOURS",
    "DEFAULT_STUCK_AFTER_DAYS",
    "AuditOptions",
]

DEFAULT_DUE_WITHIN_DAYS = 7
DEFAULT_STUCK_AFTER_DAYS = 30
#: 5,000 requests is about 7 minutes of a 700/minute account budget (25 on a 200/minute
#: plan); a ledger of 100,000 erasures (~200,000 requests) is re-checked every ~40 nights.
DEFAULT_MAX_REQUESTS = 5_000
DEFAULT_SOFT_DELETE_GRACE_HOURS = 24


@dataclass(frozen=True)
class AuditOptions:
    """What a run checks and how much of Zendesk's budget it may use."""

    due_within_days: int = DEFAULT_DUE_WITHIN_DAYS
    stuck_after_days: int = DEFAULT_STUCK_AFTER_DAYS
    max_requests: int = DEFAULT_MAX_REQUESTS
    soft_delete_grace_hours: int = DEFAULT_SOFT_DELETE_GRACE_HOURS
    report: bool = False
    # Threads re-checking completed erasures (Zendesk's latency would otherwise bound the
    # run well below the account budget; the shared governor paces them all).
    workers: int = 8
    # The moment the run considers "now" (deadlines, grace, stuck); tests move it.
    now: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("due_within_days", "stuck_after_days", "soft_delete_grace_hours"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if not 1 <= self.workers <= 32:
            raise ValueError("workers must be between 1 and 32")
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("now")
        return data
