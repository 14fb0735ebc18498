"""Tickets API routes (tickets, a user's ticket lists, comments, redactions, attachments,
deleted tickets), ``job_statuses`` and organizations.

Owns one small function per endpoint and each ticket endpoint's own budget (answers carry
``Zendesk-RateLimit-<scope>``, see :data:`privacykit.sandbox.limits.BUDGETS`); the rules
are in :mod:`.tickets`, :mod:`.conversations`, :mod:`.organizations` and :mod:`.jobs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit.sandbox.limits import (
    DELETED_TICKETS_DESTROY,
    DELETED_TICKETS_DESTROY_MANY,
    DELETED_TICKETS_INDEX,
    TICKET_UPDATE,
    TICKETS_DELETE,
    TICKETS_UPDATE,
)
from privacykit.sandbox.model import ApiError
from privacykit.sandbox.routing import (
    Call,
    Handler,
    Reply,
    Route,
    Scopes,
    id_list,
    job_cap,
    paged,
    route,
    scoped,
)
from privacykit.sandbox.tickets import TICKET_LISTS

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = ["ROUTES"]

#: Documented: show_many and the bulk endpoints take at most 100 ids.
MAX_IDS = 100


def _ids(call: Call) -> list[int]:
    ids = id_list(call.param("ids"))
    if not ids:
        raise ApiError(400, {"error": "InvalidValue", "description": "ids required"})
    if len(ids) > MAX_IDS:
        raise ApiError(400, {"error": "InvalidValue", "description": "At most 100 ids"})
    return ids


# ---------------------------------------------------------------- tickets


def _show_ticket(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"ticket": sb.state.show_ticket(call.int_arg())})


def _show_many(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"tickets": sb.state.show_many_tickets(_ids(call))})


def _user_tickets(which: str) -> Handler:
    def handler(sb: SandboxServer, call: Call) -> Reply:
        # Documented: 100 per page; both pagination styles.
        keys = sb.state.user_ticket_ids(call.int_arg(), which)
        return paged(sb, call, "tickets", keys, sb.state.render_tickets)

    return handler


def _related(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"user_related": sb.state.related(call.int_arg())})


def _update_ticket(sb: SandboxServer, call: Call) -> Reply:
    answer = sb.state.update_ticket(call.int_arg(), call.json(), sb.state.admin_id)
    return Reply(200, answer)


def _delete_ticket(sb: SandboxServer, call: Call) -> Reply:
    sb.state.soft_delete_ticket(call.int_arg(), sb.state.admin_id)
    return Reply(204)


def _destroy_many(sb: SandboxServer, call: Call) -> Reply:
    ids = _ids(call)
    refused = job_cap(sb)
    if refused is not None:
        return refused
    return Reply(200, {"job_status": sb.state.destroy_many_tickets(ids, sb.state.admin_id)})


def _update_scopes(call: Call) -> Scopes:
    return [(TICKETS_UPDATE, ""), (TICKET_UPDATE, call.arg())]


# ---------------------------------------------------------------- comments


def _comments(sb: SandboxServer, call: Call) -> Reply:
    # Documented: cursor pagination, 100 per page (offset answered too).
    keys = sb.state.comment_ids(call.int_arg())
    return paged(sb, call, "comments", keys, sb.state.render_comments)


def _comment_redaction(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"comment": sb.state.redact_comment(call.int_arg(), call.json())})


def _legacy_redact(sb: SandboxServer, call: Call) -> Reply:
    comment = sb.state.redact_comment_legacy(call.int_arg(1), call.int_arg(2), call.json())
    return Reply(200, {"comment": comment})


def _redact_attachment(sb: SandboxServer, call: Call) -> Reply:
    attachment = sb.state.redact_attachment(call.int_arg(1), call.int_arg(2), call.int_arg(3))
    return Reply(200, {"attachment": attachment})


def _show_attachment(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"attachment": sb.state.show_attachment(call.int_arg())})


# ---------------------------------------------------------------- deleted tickets


def _deleted_tickets(sb: SandboxServer, call: Call) -> Reply:
    keys = sb.state.deleted_ticket_ids()
    return paged(sb, call, "deleted_tickets", keys, sb.state.render_deleted_tickets)


def _permanently_delete(sb: SandboxServer, call: Call) -> Reply:
    ticket_id = call.int_arg()
    sb.state.show_deleted_ticket(ticket_id)  # 404 comes before the job cap
    refused = job_cap(sb)
    if refused is not None:
        return refused
    job = sb.state.permanently_delete_tickets([ticket_id], single=True)
    return Reply(200, {"job_status": job})


def _permanently_delete_many(sb: SandboxServer, call: Call) -> Reply:
    ids = _ids(call)
    refused = job_cap(sb)
    if refused is not None:
        return refused
    return Reply(200, {"job_status": sb.state.permanently_delete_tickets(ids, single=False)})


def _restore(sb: SandboxServer, call: Call) -> Reply:
    sb.state.restore_ticket(call.int_arg())
    return Reply(200, {})


# ---------------------------------------------------------------- jobs, organizations


def _job_status(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"job_status": sb.state.show_job(call.arg())})


def _job_statuses(sb: SandboxServer, call: Call) -> Reply:
    ids = [part.strip() for part in (call.param("ids") or "").split(",") if part.strip()]
    if len(ids) > MAX_IDS:
        raise ApiError(400, {"error": "InvalidValue", "description": "At most 100 ids"})
    return Reply(200, {"job_statuses": sb.state.show_many_jobs(ids)})


def _user_organizations(sb: SandboxServer, call: Call) -> Reply:
    keys = sb.state.user_organization_ids(call.int_arg())
    return paged(sb, call, "organizations", keys, sb.state.render_organizations)


def _user_memberships(sb: SandboxServer, call: Call) -> Reply:
    keys = sb.state.user_membership_ids(call.int_arg())
    return paged(sb, call, "organization_memberships", keys, sb.state.render_memberships)


def _show_organization(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"organization": sb.state.show_organization(call.int_arg())})


ROUTES: list[Route] = [
    route("GET", "/api/v2/users/{id:int}/related", _related),
    *[
        route("GET", f"/api/v2/users/{{id:int}}/tickets/{which}", _user_tickets(which))
        for which in TICKET_LISTS
    ],
    route("GET", "/api/v2/users/{id:int}/organizations", _user_organizations),
    route("GET", "/api/v2/users/{id:int}/organization_memberships", _user_memberships),
    route("GET", "/api/v2/organizations/{id:int}", _show_organization),
    route("GET", "/api/v2/tickets/show_many", _show_many),
    # No documented budget of its own: the account and the queued-jobs cap.
    route("DELETE", "/api/v2/tickets/destroy_many", _destroy_many),
    route("GET", "/api/v2/tickets/{id:int}", _show_ticket),
    route("PUT", "/api/v2/tickets/{id:int}", _update_ticket, scopes=_update_scopes),
    route("DELETE", "/api/v2/tickets/{id:int}", _delete_ticket, scopes=scoped(TICKETS_DELETE)),
    route("GET", "/api/v2/tickets/{id:int}/comments", _comments),
    route("PUT", "/api/v2/tickets/{ticket_id:int}/comments/{id:int}/redact", _legacy_redact),
    route(
        "PUT",
        "/api/v2/tickets/{ticket_id:int}/comments/{comment_id:int}/attachments/{id:int}/redact",
        _redact_attachment,
    ),
    route("PUT", "/api/v2/comment_redactions/{id:int}", _comment_redaction),
    route("GET", "/api/v2/attachments/{id:int}", _show_attachment),
    route("GET", "/api/v2/deleted_tickets", _deleted_tickets, scopes=scoped(DELETED_TICKETS_INDEX)),
    route(
        "DELETE",
        "/api/v2/deleted_tickets/destroy_many",
        _permanently_delete_many,
        scopes=scoped(DELETED_TICKETS_DESTROY_MANY),
    ),
    route(
        "DELETE",
        "/api/v2/deleted_tickets/{id:int}",
        _permanently_delete,
        scopes=scoped(DELETED_TICKETS_DESTROY),
    ),
    route("PUT", "/api/v2/deleted_tickets/{id:int}/restore", _restore),
    route("GET", "/api/v2/job_statuses/show_many", _job_statuses),
    route("GET", "/api/v2/job_statuses/{id:token}", _job_status),
]
