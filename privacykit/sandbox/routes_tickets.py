"""Tickets API routes and ``job_statuses``.

Owns one small function per endpoint; the rules are in :mod:`.tickets` and :mod:`.jobs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit.sandbox.routing import Call, Reply, Route, paged, route

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = ["ROUTES"]


def _related(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"user_related": sb.state.related(call.int_arg())})


def _requested_tickets(sb: SandboxServer, call: Call) -> Reply:
    # Tickets API (assumed): GET /api/v2/users/{id}/tickets/requested.
    keys = sb.state.requested_ticket_ids(call.int_arg())
    return paged(sb, call, "tickets", keys, sb.state.render_tickets)


def _job_status(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"job_status": sb.state.show_job(call.match.group(1))})


ROUTES: list[Route] = [
    route("GET", "/api/v2/users/{id:int}/related", _related),
    route("GET", "/api/v2/users/{id:int}/tickets/requested", _requested_tickets),
    route("GET", "/api/v2/job_statuses/{id:token}", _job_status),
]
