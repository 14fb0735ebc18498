"""A faithful local Zendesk (Users, Profiles, Tickets APIs) over real HTTP on loopback.

Owns the sandbox used by tests, benchmarks and ``make demo``: :class:`SandboxServer`
(HTTP layer, :mod:`.server`), the data model (:mod:`.state`, one module per resource),
rate-limit windows on a virtual clock (:mod:`.limits`), faults (:mod:`.faults`), the
attachments host (:mod:`.attachments`) and seed data with well-known demo people
(:mod:`.seed`).

    with SandboxServer(seed="none", time_scale=600.0, fault_rate=0.0, rng_seed=1) as sb:
        sb.url, sb.env(), sb.state, sb.request_log(), sb.advance(3600)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.sandbox.seed import (
        DEMO_ACCESS_EMAIL,
        DEMO_AGENT_EMAIL,
        DEMO_BLOCKED_EMAIL,
        DEMO_ERASE_EMAIL,
        DEMO_ERASE_PHONE,
    )
    from privacykit.sandbox.server import (
        SandboxServer,
    )
    from privacykit.sandbox.state import (
        APPLICATIONS,
        ApiError,
        SandboxState,
    )

__all__ = [
    "APPLICATIONS",
    "DEMO_ACCESS_EMAIL",
    "DEMO_AGENT_EMAIL",
    "DEMO_BLOCKED_EMAIL",
    "DEMO_ERASE_EMAIL",
    "DEMO_ERASE_PHONE",
    "ApiError",
    "SandboxServer",
    "SandboxState",
]

# Imported on first use (see privacykit._lazy): importing this package stays cheap.
_EXPORTS = {
    "privacykit.sandbox.seed": (
        "DEMO_ACCESS_EMAIL",
        "DEMO_AGENT_EMAIL",
        "DEMO_BLOCKED_EMAIL",
        "DEMO_ERASE_EMAIL",
        "DEMO_ERASE_PHONE",
    ),
    "privacykit.sandbox.server": ("SandboxServer",),
    "privacykit.sandbox.state": (
        "APPLICATIONS",
        "ApiError",
        "SandboxState",
    ),
}
lazy_exports(__name__, _EXPORTS)
