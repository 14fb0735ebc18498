"""Tickets.

Owns :class:`TicketsState` (see :mod:`privacykit.sandbox.core` for the layering).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from privacykit.sandbox.model import TICKET_STATUSES, Ticket, invalid_field, record_not_found
from privacykit.sandbox.profiles import ProfilesState

__all__ = ["TicketsState"]


class TicketsState(ProfilesState):
    """Tickets and the lists of a user's tickets."""

    tickets: dict[int, Ticket]

    def _clear(self) -> None:
        super()._clear()
        self.tickets = {}
        self._next_ticket = 1

    def ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        return {
            "id": ticket.id,
            "url": f"{self.base_url}/api/v2/tickets/{ticket.id}.json",
            "subject": ticket.subject,
            "status": ticket.status,
            "requester_id": ticket.requester_id,
            "submitter_id": ticket.requester_id,
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
        }

    def related(self, user_id: int) -> dict[str, Any]:
        with self.lock:
            self._user(user_id)
            requested = sum(1 for t in self.tickets.values() if t.requester_id == user_id)
            return {
                "assigned_tickets": 0,
                "requested_tickets": requested,
                "ccd_tickets": 0,
                "organization_subscriptions": 0,
            }

    def requested_ticket_ids(self, user_id: int) -> list[int]:
        with self.lock:
            self._user(user_id)
            return sorted(t.id for t in self.tickets.values() if t.requester_id == user_id)

    def render_tickets(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.ticket_json(self.tickets[t]) for t in ids if t in self.tickets]

    def add_ticket(
        self, requester_id: int, status: str = "open", subject: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            if status not in TICKET_STATUSES:
                raise invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
            self._user(requester_id)
            now = self._now()
            ticket = Ticket(
                self._next_ticket,
                requester_id,
                status,
                subject or f"Request {self._next_ticket}",
                now,
                now,
            )
            self._next_ticket += 1
            self.tickets[ticket.id] = ticket
            return self.ticket_json(ticket)

    def set_ticket_status(self, ticket_id: int, status: str) -> dict[str, Any]:
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise record_not_found()
            if status not in TICKET_STATUSES:
                raise invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
            ticket.status = status
            ticket.updated_at = self._now()
            return self.ticket_json(ticket)
