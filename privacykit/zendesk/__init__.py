"""The Zendesk client (the one choke-point for every Zendesk request), the rate-limit
governor and pagination. See docs/ARCHITECTURE.md, "Zendesk client"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.zendesk.client import (
        ClientStats,
        ZendeskClient,
        redact_url,
        scopes_for,
    )
    from privacykit.zendesk.governor import (
        Budget,
        Governor,
        RateLimits,
        Reservation,
    )
    from privacykit.zendesk.pagination import (
        iter_cursor,
        iter_offset,
    )

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

# Imported on first use (see privacykit._lazy): importing this package stays cheap.
_EXPORTS = {
    "privacykit.zendesk.client": (
        "ClientStats",
        "ZendeskClient",
        "redact_url",
        "scopes_for",
    ),
    "privacykit.zendesk.governor": (
        "Budget",
        "Governor",
        "RateLimits",
        "Reservation",
    ),
    "privacykit.zendesk.pagination": (
        "iter_cursor",
        "iter_offset",
    ),
}
if not TYPE_CHECKING:  # type checkers see the imports above, and flag unknown names
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
