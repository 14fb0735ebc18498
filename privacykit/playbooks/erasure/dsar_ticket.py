"""The DSAR ticket of ``erase --from-ticket`` inside an erasure (see :mod:`..intake`).

Owns :func:`close_dsar_ticket` (before the person's tickets are handled per policy and the
requester is deleted: one update adding the internal note and closing the ticket, a
recorded step ``intake:close_ticket:<id>``) and :func:`note_dsar_ticket` (an outcome
reached without deleting the requester: a note, ``intake:note_ticket:<id>``, the ticket
left open for the DPO).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from privacykit.errors import ZendeskError
from privacykit.playbooks.engine import perform
from privacykit.playbooks.erasure.actions import why
from privacykit.playbooks.erasure.state import ErasureJob
from privacykit.playbooks.intake import (
    TicketIntake,
    add_note,
    close_with_note,
    note_text,
    reconcile_closed,
    reconcile_note,
)

__all__ = ["close_dsar_ticket", "closing_first", "note_dsar_ticket"]


def close_dsar_ticket(client: Any, job: ErasureJob, intake: TicketIntake) -> None:
    """Close the DSAR ticket with the note, before the person's tickets are handled and
    the requester is deleted (a recorded step, reconciled on resume)."""
    session = job.session
    if job.subject is None or session is None:
        return
    if intake.requester_id not in job.users or intake.status == "closed":
        return
    assert session.request_id is not None
    body = note_text(
        "erasure", session.request_id, "erased", counts=job.counts_found(), closing=True
    )
    try:
        perform(
            session.steps,
            session.request_id,
            intake.close_step,
            {"ticket_id": intake.ticket_id},
            action=lambda: close_with_note(client, intake.ticket_id, body),
            reconcile=lambda: reconcile_closed(client, intake.ticket_id),
        )
        ticket = job.tickets.tickets.get(intake.ticket_id) if job.tickets else None
        if ticket is not None:
            ticket.closed = True  # the ticket policy goes on from a closed ticket
    except ZendeskError as exc:
        # The requester's soft deletion is then refused (an open ticket): review.
        job.failures.append(
            f"the DSAR ticket {intake.ticket_id} could not be closed ({why(exc)}); "
            "close it in Zendesk and erase again"
        )


def note_dsar_ticket(client: Any, job: ErasureJob, intake: TicketIntake) -> None:
    """The outcome as an internal note, when the ticket is still open (the requester was
    not deleted: review needed, no data, failure)."""
    session = job.session
    if job.subject is None or session is None or not session.opened:
        return
    if session.step_state(session.request_id or "", intake.close_step) == "done":
        return  # closed with its note before the requester was deleted
    if session.step_state(session.request_id or "", intake.note_step) == "done":
        return
    if intake.status == "closed" or job.outcome in (None, "erased", "pending_compliance"):
        return
    assert session.request_id is not None
    rid = session.request_id
    body = note_text("erasure", rid, job.outcome, counts=job.counts_found())
    try:
        perform(
            session.steps,
            session.request_id,
            intake.note_step,
            {"ticket_id": intake.ticket_id},
            action=lambda: add_note(client, intake.ticket_id, body),
            reconcile=lambda: reconcile_note(client, intake.ticket_id, "erasure", rid),
        )
    except ZendeskError as exc:
        job.notes.append(f"the DSAR ticket {intake.ticket_id} got no note ({why(exc)})")


def closing_first(
    functions: Mapping[str, Callable[..., Any]], close: Callable[[ErasureJob], None]
) -> dict[str, Callable[..., Any]]:
    """The ticket step functions with ``erase_tickets`` preceded by ``close(job)``."""
    out = dict(functions)
    inner = out.get("erase_tickets")
    if inner is not None:

        def erase_tickets(job: ErasureJob, step: Any) -> Any:
            close(job)
            return inner(job, step)

        out["erase_tickets"] = erase_tickets
    return out
