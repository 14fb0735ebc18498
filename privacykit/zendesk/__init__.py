"""The Zendesk client (the one choke-point for every Zendesk request), the rate-limit
governor and pagination. See docs/ARCHITECTURE.md, "Zendesk client"."""

from privacykit.zendesk.client import ClientStats, ZendeskClient, redact_url, scopes_for
from privacykit.zendesk.governor import Budget, Governor, RateLimits, Reservation
from privacykit.zendesk.pagination import iter_cursor, iter_offset

__all__ = [
    "Budget",
    "ClientStats",
    "Governor",
    "RateLimits",
    "Reservation",
    "ZendeskClient",
    "iter_cursor",
    "iter_offset",
    "redact_url",
    "scopes_for",
]
