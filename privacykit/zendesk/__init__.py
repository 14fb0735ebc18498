"""The Zendesk client (the one choke-point for every Zendesk request), the rate-limit
governor, pagination, response schemas and the read-only transport. See
docs/ARCHITECTURE.md, "Zendesk client"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.zendesk.client import (
        ClientStats,
        Download,
        ZendeskClient,
        redact_url,
        scopes_for,
    )
    from privacykit.zendesk.governor import (
        DEFAULT_MAX_WAIT,
        Budget,
        Governor,
        RateLimits,
        Reservation,
    )
    from privacykit.zendesk.pagination import (
        iter_cursor,
        iter_offset,
    )
    from privacykit.zendesk.readonly import ReadOnlyTransport
    from privacykit.zendesk.routes import endpoint_for
    from privacykit.zendesk.schemas import SCHEMAS
    from privacykit.zendesk.tickets import TICKET_RELATIONS
    from privacykit.zendesk.transport import DEFAULT_DEADLINE, DEFAULT_MAX_RESPONSE_BYTES

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_WAIT",
    "SCHEMAS",
    "TICKET_RELATIONS",
    "Budget",
    "ClientStats",
    "Download",
    "Governor",
    "RateLimits",
    "ReadOnlyTransport",
    "Reservation",
    "ZendeskClient",
    "endpoint_for",
    "iter_cursor",
    "iter_offset",
    "redact_url",
    "scopes_for",
]

# Imported on first use (see privacykit._lazy): importing this package stays cheap.
_EXPORTS = {
    "privacykit.zendesk.client": (
        "ClientStats",
        "Download",
        "ZendeskClient",
        "redact_url",
        "scopes_for",
    ),
    "privacykit.zendesk.governor": (
        "DEFAULT_MAX_WAIT",
        "Budget",
        "Governor",
        "RateLimits",
        "Reservation",
    ),
    "privacykit.zendesk.pagination": (
        "iter_cursor",
        "iter_offset",
    ),
    "privacykit.zendesk.readonly": ("ReadOnlyTransport",),
    "privacykit.zendesk.routes": ("endpoint_for",),
    "privacykit.zendesk.schemas": ("SCHEMAS",),
    "privacykit.zendesk.tickets": ("TICKET_RELATIONS",),
    "privacykit.zendesk.transport": ("DEFAULT_DEADLINE", "DEFAULT_MAX_RESPONSE_BYTES"),
}
lazy_exports(__name__, _EXPORTS)
