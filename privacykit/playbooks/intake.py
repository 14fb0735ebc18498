"""Intake from Zendesk: a DSAR ticket becomes the request (``--from-ticket ID``).

Owns :class:`TicketIntake`, :func:`read_ticket` and the internal notes privacykit leaves
on the ticket. The DSAR ticket gives the request its subject (the ticket's requester, as
``user:<id>``), its received date (the ticket's creation date, UTC) and its case reference
(the ticket id). When the request has an outcome, privacykit adds an *internal* note
(``{"comment": {"body": ..., "public": false}}``) stating it: request id, outcome and
counts only -- nothing beyond what the ticket already holds.

For an erasure the DSAR ticket is itself an open ticket of the subject, and Zendesk does
not delete the requester of a ticket that is not closed. So, just before the requester is
soft-deleted, the ticket is closed with the note (one update: a closed ticket cannot be
updated again), as a recorded step (intent before, outcome after, reconciled on resume by
reading the ticket's status). Outcomes reached without deleting the requester (review
needed, no data) get a note and the ticket stays open for the DPO.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from privacykit import clock
from privacykit.errors import MalformedResponseError, UsageError

__all__ = [
    "CLOSE_STEP_PREFIX",
    "NOTE_STEP_PREFIX",
    "TicketClient",
    "TicketIntake",
    "add_note",
    "close_with_note",
    "note_text",
    "read_ticket",
    "reconcile_closed",
    "reconcile_note",
    "ticket_id_arg",
    "ticket_option",
]

CLOSE_STEP_PREFIX = "intake:close_ticket:"
NOTE_STEP_PREFIX = "intake:note_ticket:"
_OUTCOME_TEXT = {
    "erased": "the requester's data is being erased",
    "pending_compliance": "the requester's data is being erased",
    "no_data_found": "no data was found",
    "data_found": "the data was collected and delivered to the DPO",
    "needs_review": "the request needs review by the DPO",
    "failed": "the request failed and needs the DPO",
}


class TicketClient(Protocol):
    def show_many_tickets(self, ticket_ids: Any) -> list[dict[str, Any]]: ...
    def update_ticket(self, ticket_id: int | str, fields: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TicketIntake:
    """What a DSAR ticket says about the request it carries."""

    ticket_id: int
    requester_id: int
    received_at: date
    status: str

    @property
    def case_ref(self) -> str:
        return str(self.ticket_id)

    @property
    def subject_arg(self) -> str:
        return f"user:{self.requester_id}"

    @property
    def close_step(self) -> str:
        return f"{CLOSE_STEP_PREFIX}{self.ticket_id}"

    @property
    def note_step(self) -> str:
        return f"{NOTE_STEP_PREFIX}{self.ticket_id}"


def ticket_id_arg(text: str | int) -> int:
    """``--from-ticket ID``: a positive Zendesk ticket id (:class:`UsageError` otherwise)."""
    value = str(text).strip()
    if not value.isdigit() or int(value) < 1 or len(value) > 18:
        raise UsageError("--from-ticket must be a Zendesk ticket id (a positive number)")
    return int(value)


def ticket_option(
    value: str | int | None,
    subjects: Any,
    *,
    case_ref: str | None = None,
    received: str | None = None,
) -> int | None:
    """``--from-ticket`` checked against the other options (the ticket gives the subject,
    the case reference and the received date): the ticket id, or None when not given."""
    if value is None:
        return None
    ticket_id = ticket_id_arg(value)
    if subjects:
        raise UsageError("--from-ticket takes the subject from the ticket: give no SUBJECT")
    if case_ref is not None or received is not None:
        raise UsageError("--from-ticket takes --case and --received from the ticket")
    return ticket_id


def read_ticket(client: TicketClient, ticket_id: int) -> TicketIntake:
    """The DSAR ticket's requester, creation date and status (one GET); a ticket Zendesk
    does not return is a :class:`UsageError` (exit 2, nothing changed)."""
    tickets = [t for t in client.show_many_tickets([ticket_id]) if t.get("id") == ticket_id]
    if not tickets:
        raise UsageError(f"ticket {ticket_id} was not found in Zendesk")
    ticket = tickets[0]
    requester = ticket.get("requester_id")
    created = clock.parse_iso(ticket.get("created_at"))
    status = ticket.get("status")
    if not isinstance(requester, int) or isinstance(requester, bool) or requester < 1:
        raise MalformedResponseError(
            f"ticket {ticket_id} has no requester id", endpoint="GET /api/v2/tickets/show_many"
        )
    if created is None or not isinstance(status, str):
        raise MalformedResponseError(
            f"ticket {ticket_id} has no creation time or status",
            endpoint="GET /api/v2/tickets/show_many",
        )
    return TicketIntake(ticket_id, requester, created.date(), status)


def note_text(
    kind: str,
    request_id: str,
    outcome: str,
    *,
    counts: dict[str, int] | None = None,
    closing: bool = False,
) -> str:
    """The internal note: privacykit's request id, the outcome and counts (never a
    subject's data; the ticket already holds the request)."""
    what = _OUTCOME_TEXT.get(outcome, outcome.replace("_", " "))
    lines = [f"privacykit: {kind} request {request_id} for this ticket: {what}."]
    if counts:
        shown = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in sorted(counts.items()))
        lines.append(f"Found: {shown}.")
    if closing:
        lines.append(
            "This ticket is closed now because Zendesk does not delete the requester of an "
            "open ticket; the outcome and the signed evidence are in privacykit's ledger."
        )
    else:
        lines.append("The signed evidence report is in privacykit's ledger.")
    return "\n".join(lines)


def close_with_note(client: TicketClient, ticket_id: int, body: str) -> dict[str, Any]:
    """One update: the internal note and ``status: closed``; returns ids/status only."""
    ticket = client.update_ticket(
        ticket_id, {"status": "closed", "comment": {"body": body, "public": False}}
    )
    return {"ticket_id": ticket_id, "status": ticket.get("status")}


def add_note(client: TicketClient, ticket_id: int, body: str) -> dict[str, Any]:
    """An internal note only (the ticket's status unchanged)."""
    ticket = client.update_ticket(ticket_id, {"comment": {"body": body, "public": False}})
    return {"ticket_id": ticket_id, "status": ticket.get("status")}


def reconcile_note(
    client: Any, ticket_id: int, kind: str, request_id: str
) -> dict[str, Any] | None:
    """After a note whose answer was lost (or a run killed between intent and outcome):
    the ticket holds privacykit's internal note for ``request_id`` (done) or not (None).
    Reads the ticket's comments; only their author-independent start is compared."""
    start = f"privacykit: {kind} request {request_id} for this ticket:"
    for comment in client.iter_ticket_comments(ticket_id):
        body = comment.get("body")
        if comment.get("public") is False and isinstance(body, str) and body.startswith(start):
            return {"ticket_id": ticket_id, "comment_id": comment.get("id")}
    return None


def reconcile_closed(client: TicketClient, ticket_id: int) -> dict[str, Any] | None:
    """After an update whose answer was lost: the ticket is closed (done) or not (None)."""
    for ticket in client.show_many_tickets([ticket_id]):
        if ticket.get("id") == ticket_id and ticket.get("status") == "closed":
            return {"ticket_id": ticket_id, "status": "closed"}
    return None
