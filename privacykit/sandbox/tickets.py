"""Tickets: statuses, the lists of a user's tickets, updates, soft deletion, the
deleted_tickets collection and permanent deletion as a job.

Owns :class:`TicketsState` (see :mod:`privacykit.sandbox.core` for the layering). Rules
from ``../shared/zendesk-docs/tickets-and-more.md``: a closed ticket can no longer be
updated (422); tickets outlive their requester; ``DELETE /tickets/{id}`` soft-deletes
(the ticket leaves every list and answers 404, and is listed by ``/deleted_tickets``);
``DELETE /deleted_tickets/{id}`` and ``destroy_many`` delete permanently through a job;
soft-deleted tickets are scrubbed by Zendesk about 30 days later. Comments, attachments,
redactions and satisfaction ratings are in :mod:`.comments` (storage, below this layer)
and :mod:`.conversations` (the endpoints that need a ticket, above it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from privacykit.sandbox.comments import CommentsState
from privacykit.sandbox.model import (
    TICKET_STATUSES,
    ApiError,
    Ticket,
    invalid_field,
    record_invalid,
    record_not_found,
    ticket_closed,
)

__all__ = ["DELETED_TICKET_RETENTION", "TICKET_LISTS", "TicketsState"]

#: Documented: soft-deleted tickets are scrubbed by Zendesk about 30 days later.
DELETED_TICKET_RETENTION = 30 * 86400.0
#: ``GET /api/v2/users/{id}/tickets/<list>``.
TICKET_LISTS = ("requested", "ccd", "followed", "assigned")


class TicketsState(CommentsState):
    """Tickets and the lists of a user's tickets."""

    tickets: dict[int, Ticket]
    purged_tickets: set[int]
    _deletions: deque[tuple[float, int]]
    required_ticket_fields: set[int]

    def _clear(self) -> None:
        super()._clear()
        self.tickets = {}
        self.purged_tickets = set()  # ids permanently deleted (for inspection only)
        self.required_ticket_fields = set()  # custom field ids needed to solve or close
        # (deleted_at, id) in deletion order, for the 30-day scrub without a full scan;
        # entries whose ticket was restored or purged since are skipped.
        self._deletions = deque()
        self._next_ticket = 1

    def _settle(self) -> None:
        super()._settle()
        due = self.clock.now() - DELETED_TICKET_RETENTION
        while self._deletions and self._deletions[0][0] <= due:
            deleted_at, ticket_id = self._deletions.popleft()
            ticket = self.tickets.get(ticket_id)
            if ticket is not None and ticket.deleted_at == deleted_at:
                self._purge_ticket(ticket_id)

    # ------------------------------------------------------------------ rendering

    def ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        collaborators = list(dict.fromkeys([*ticket.email_cc_ids, *ticket.follower_ids]))
        return {
            "id": ticket.id,
            "url": f"{self.base_url}/api/v2/tickets/{ticket.id}.json",
            "external_id": None,
            "type": None,
            "subject": ticket.subject,
            "raw_subject": ticket.subject,
            "description": self._description(ticket),
            "priority": None,
            "status": ticket.status,
            "recipient": None,
            "requester_id": ticket.requester_id,
            "submitter_id": ticket.submitter_id,
            "assignee_id": ticket.assignee_id,
            "organization_id": ticket.organization_id,
            "group_id": None,
            "collaborator_ids": collaborators,
            "follower_ids": list(ticket.follower_ids),
            "email_cc_ids": list(ticket.email_cc_ids),
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": list(ticket.tags),
            "custom_fields": [
                {"id": fid, "value": value} for fid, value in sorted(ticket.custom_fields.items())
            ],
            "satisfaction_rating": None
            if ticket.satisfaction_rating is None
            else dict(ticket.satisfaction_rating),
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
            "allow_attachments": True,
            "from_messaging_channel": False,
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
        }

    def deleted_ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        actor = self.users.get(ticket.deleted_by or 0)
        return {
            "id": ticket.id,
            "subject": ticket.subject,
            "description": self._description(ticket),
            "actor": {"id": ticket.deleted_by, "name": actor.name if actor else None},
            "previous_state": ticket.status,
            "deleted_at": self.clock.iso(ticket.deleted_at),
        }

    # ------------------------------------------------------------------ lookups

    def _ticket(self, ticket_id: int, *, deleted: bool = False) -> Ticket:
        """A live ticket (or, with ``deleted``, a soft-deleted one); else 404."""
        ticket = self.tickets.get(ticket_id)
        if ticket is None or (ticket.deleted_at is not None) != deleted:
            raise record_not_found()
        return ticket

    def _live(self) -> Iterable[Ticket]:
        return (t for t in self.tickets.values() if t.deleted_at is None)

    def show_ticket(self, ticket_id: int) -> dict[str, Any]:
        with self.lock:
            return self.ticket_json(self._ticket(ticket_id))

    def show_many_tickets(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """``GET /api/v2/tickets/show_many?ids=``: unknown and deleted ids are left out."""
        with self.lock:
            return [
                self.ticket_json(self.tickets[t])
                for t in ids
                if t in self.tickets and self.tickets[t].deleted_at is None
            ]

    def user_ticket_ids(self, user_id: int, which: str) -> list[int]:
        """``GET /api/v2/users/{id}/tickets/requested|ccd|followed|assigned``."""
        if which not in TICKET_LISTS:
            raise record_not_found()
        with self.lock:
            self._user(user_id)
            test: Callable[[Ticket], bool] = {
                "requested": lambda t: t.requester_id == user_id,
                "ccd": lambda t: user_id in t.email_cc_ids,
                "followed": lambda t: user_id in t.follower_ids,
                "assigned": lambda t: t.assignee_id == user_id,
            }[which]
            return sorted(t.id for t in self._live() if test(t))

    def requested_ticket_ids(self, user_id: int) -> list[int]:
        return self.user_ticket_ids(user_id, "requested")

    def render_tickets(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.ticket_json(self.tickets[t]) for t in ids if t in self.tickets]

    def related(self, user_id: int) -> dict[str, Any]:
        with self.lock:
            self._user(user_id)
            live = list(self._live())
            return {
                "assigned_tickets": sum(1 for t in live if t.assignee_id == user_id),
                "requested_tickets": sum(1 for t in live if t.requester_id == user_id),
                "ccd_tickets": sum(1 for t in live if user_id in t.email_cc_ids),
                "organization_subscriptions": 0,
            }

    # ------------------------------------------------------------------ creating

    def _new_ticket(
        self,
        requester_id: int,
        status: str,
        subject: str | None,
        *,
        submitter_id: int | None = None,
        assignee_id: int | None = None,
        organization_id: int | None = None,
        ccs: Iterable[int] = (),
        followers: Iterable[int] = (),
        tags: Iterable[str] = (),
        custom_fields: Mapping[int, Any] | None = None,
    ) -> Ticket:
        if status not in TICKET_STATUSES:
            raise invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
        self._user(requester_id)
        for other in (submitter_id, assignee_id, *ccs, *followers):
            if other is not None:
                self._user(other)
        now = self._now()
        ticket = Ticket(
            self._next_ticket,
            requester_id,
            submitter_id or requester_id,
            status,
            subject or f"Request {self._next_ticket}",
            now,
            now,
            assignee_id=assignee_id,
            organization_id=organization_id,
            email_cc_ids=list(dict.fromkeys(ccs)),
            follower_ids=list(dict.fromkeys(followers)),
            tags=[str(t) for t in tags],
            custom_fields=dict(custom_fields or {}),
        )
        self._next_ticket += 1
        self.tickets[ticket.id] = ticket
        return ticket

    def set_ticket_status(self, ticket_id: int, status: str) -> dict[str, Any]:
        """Seed helper: set any status (closed included) without the API's rules."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            if status not in TICKET_STATUSES:
                raise invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
            ticket.status = status
            ticket.updated_at = self._now()
            return self.ticket_json(ticket)

    def require_ticket_field(self, field_id: int) -> None:
        """Seed helper: custom field ``field_id`` must have a value before a ticket can
        be solved or closed (documented: required fields can make the update fail)."""
        with self.lock:
            self.required_ticket_fields.add(int(field_id))

    # ------------------------------------------------------------------ updating

    def update_ticket(self, ticket_id: int, body: Any, author_id: int) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{id}`` with ``{"ticket": {...}}``: status (closing
        included), subject, tags, assignee, requester, custom fields and a new
        ``comment``."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
                raise ApiError(
                    400, {"error": "InvalidValue", "description": "a 'ticket' object is required"}
                )
            changes = body["ticket"]
            if ticket.status == "closed":
                raise ticket_closed()
            status = changes.get("status", ticket.status)
            if status not in TICKET_STATUSES or (status == "new" and ticket.status != "new"):
                raise invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
            fields = dict(ticket.custom_fields)
            for item in changes.get("custom_fields") or []:
                if isinstance(item, dict) and "id" in item:
                    fields[int(item["id"])] = item.get("value")
            if status in ("solved", "closed"):
                missing = sorted(
                    f for f in self.required_ticket_fields if fields.get(f) in (None, "")
                )
                if missing:
                    raise record_invalid(
                        {
                            "base": [
                                {
                                    "description": f"Field {fid} is required to solve",
                                    "error": "FieldRequired",
                                    "field_id": fid,
                                }
                                for fid in missing
                            ]
                        }
                    )
            comment = changes.get("comment")
            if comment is not None and not isinstance(comment, dict):
                raise invalid_field("comment", "Comment: must be an object", "InvalidValue")
            if "assignee_id" in changes and changes["assignee_id"] is not None:
                self._user(int(changes["assignee_id"]))
            requester = changes.get("requester_id")
            if requester is not None:
                self._user(int(requester))
            # Validated: apply.
            ticket.custom_fields = fields
            ticket.status = status
            if isinstance(changes.get("subject"), str):
                ticket.subject = changes["subject"]
            if isinstance(changes.get("tags"), list):
                ticket.tags = [str(t) for t in changes["tags"]]
            if "assignee_id" in changes:
                ticket.assignee_id = changes["assignee_id"]
            if requester is not None:
                # An agent gives the ticket to someone else (it leaves the old
                # requester's ``requested`` list).
                ticket.requester_id = int(requester)
            audit_id = self._seq()
            if comment is not None and (comment.get("body") or comment.get("html_body")):
                self._append_comment(
                    ticket,
                    int(comment.get("author_id") or author_id),
                    str(comment.get("body") or ""),
                    html_body=comment.get("html_body"),
                    public=bool(comment.get("public", True)),
                )
            ticket.updated_at = self._now()
            return {
                "ticket": self.ticket_json(ticket),
                "audit": {
                    "id": audit_id,
                    "ticket_id": ticket.id,
                    "author_id": author_id,
                    "created_at": ticket.updated_at,
                    "events": [],
                },
            }

    # ------------------------------------------------------------------ deleting

    def soft_delete_ticket(self, ticket_id: int, actor_id: int) -> None:
        """``DELETE /api/v2/tickets/{id}`` (204)."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            ticket.deleted_at = self.clock.now()
            ticket.deleted_by = actor_id
            self._deletions.append((ticket.deleted_at, ticket_id))

    def _job_step(self, action: str, ticket_id: int, apply: Callable[[], None]) -> dict[str, Any]:
        """One job item's result: Zendesk-style ``results`` entry."""
        try:
            apply()
        except ApiError as exc:
            return {
                "id": ticket_id,
                "action": action,
                "success": False,
                "status": "Failed",
                "error": exc.body.get("error", "Error"),
            }
        return {"id": ticket_id, "action": action, "success": True, "status": "Deleted"}

    def destroy_many_tickets(self, ids: list[int], actor_id: int) -> dict[str, Any]:
        """``DELETE /api/v2/tickets/destroy_many?ids=``: a job soft-deletes them."""
        with self.lock:
            steps = [
                _bind(self._job_step, "delete", tid, _bind(self.soft_delete_ticket, tid, actor_id))
                for tid in ids
            ]
            return self.job_json(self._queue_job(steps))

    def deleted_ticket_ids(self) -> list[int]:
        with self.lock:
            return sorted(t.id for t in self.tickets.values() if t.deleted_at is not None)

    def render_deleted_tickets(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.deleted_ticket_json(self.tickets[t]) for t in ids if t in self.tickets]

    def show_deleted_ticket(self, ticket_id: int) -> dict[str, Any]:
        """A soft-deleted ticket as ``deleted_tickets`` lists it; 404 otherwise."""
        with self.lock:
            return self.deleted_ticket_json(self._ticket(ticket_id, deleted=True))

    def restore_ticket(self, ticket_id: int) -> None:
        """``PUT /api/v2/deleted_tickets/{id}/restore``."""
        with self.lock:
            ticket = self._ticket(ticket_id, deleted=True)
            ticket.deleted_at = ticket.deleted_by = None

    def _purge_ticket(self, ticket_id: int) -> None:
        """Permanent deletion: the ticket, its comments, attachments and rating are gone."""
        ticket = self.tickets.pop(ticket_id, None)
        if ticket is not None:
            self._drop_comments(ticket)
        self.purged_tickets.add(ticket_id)

    def _permanently_delete(self, ticket_id: int) -> None:
        self._ticket(ticket_id, deleted=True)
        self._purge_ticket(ticket_id)

    def permanently_delete_tickets(self, ids: list[int], *, single: bool) -> dict[str, Any]:
        """``DELETE /api/v2/deleted_tickets/{id}`` (``single``: 404 unless soft-deleted)
        and ``DELETE /api/v2/deleted_tickets/destroy_many?ids=``: a job each."""
        with self.lock:
            if single:
                self._ticket(ids[0], deleted=True)
            steps = [
                _bind(self._job_step, "delete", tid, _bind(self._permanently_delete, tid))
                for tid in ids
            ]
            return self.job_json(self._queue_job(steps))

    def ticket_lifecycle(self, ticket_id: int) -> str:
        """``live`` | ``soft_deleted`` | ``permanently_deleted`` | ``unknown``."""
        with self.lock:
            self._settle()
            ticket = self.tickets.get(ticket_id)
            if ticket is not None:
                return "live" if ticket.deleted_at is None else "soft_deleted"
            return "permanently_deleted" if ticket_id in self.purged_tickets else "unknown"


def _bind(func: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: func(*args)
