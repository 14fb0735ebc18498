"""The person's conversations in the erasure's evidence record.

Owns :func:`ticket_evidence`: from a job's ticket plan, the record's ``tickets`` rows
(per ticket id: how the person relates to it, what was done -- closed, soft-deleted,
permanently deleted (``None``: unknown, with why), the comment ids redacted, the
attachments redacted or retained -- and why anything was kept), the ticket counts, the
``not_done`` lines (what stays and why: kept tickets, retained attachments, what
redaction leaves, anything not finished or unknown) and the Art. 17(3) exceptions relied
on. Ids, counts and reasons only: never a subject, a comment body or a file name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from privacykit.playbooks.erasure.purge import PURGE, SOFT_DELETE
from privacykit.playbooks.erasure.tickets import TicketPlan, TicketState, ids_text
from privacykit.playbooks.ticket_policy import TicketPolicy

__all__ = ["TicketEvidence", "TicketNotDone", "TicketParts", "ticket_evidence"]


class TicketNotDone(TypedDict):
    """A ``not_done`` line (the same shape as :class:`.records.NotDone`)."""

    item: str
    why: str


class TicketEvidence(TypedDict):
    ticket_id: int
    relation: str  # requested | ccd | followed
    action: str  # deleted | redacted | kept | none (nothing of theirs in it)
    done: bool
    closed_by_erasure: bool
    #: None: unknown -- a bulk job may have done it and nothing could be read back (the
    #: ledger keeps the intent without an outcome; ``why`` says why).
    soft_deleted: bool | None
    permanently_deleted: bool | None
    comments_redacted: list[int]
    attachments_redacted: list[int]
    attachments_retained: list[int]
    why: str | None


@dataclass
class TicketParts:
    """The ticket parts of one evidence record."""

    rows: list[TicketEvidence] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    not_done: list[TicketNotDone] = field(default_factory=list)
    exceptions: list[dict[str, str]] = field(default_factory=list)


_ACTION = {"delete": "deleted", "redact": "redacted", "keep": "kept", "none": "none"}


def _row(ticket: TicketState) -> TicketEvidence:
    comments = ticket.comments.values()
    return {
        "ticket_id": ticket.ticket_id,
        "relation": ticket.relation,
        "action": _ACTION[ticket.action],
        "done": ticket.finished,
        "closed_by_erasure": ticket.closed,
        "soft_deleted": None if ticket.unknown == SOFT_DELETE else ticket.soft_deleted,
        "permanently_deleted": None if ticket.unknown == PURGE else ticket.purged,
        "comments_redacted": sorted(c.comment_id for c in comments if c.redacted),
        "attachments_redacted": sorted(a for c in comments for a in c.attachments_redacted),
        "attachments_retained": sorted(a for c in comments for a in c.attachments_retained),
        "why": ticket.why,
    }


def _counts(plan: TicketPlan) -> dict[str, int]:
    tickets = list(plan.tickets.values())
    comments = [c for t in tickets for c in t.comments.values()]
    return {
        "tickets": len(tickets),
        "tickets_closed": sum(1 for t in tickets if t.closed),
        "tickets_soft_deleted": sum(1 for t in tickets if t.soft_deleted),
        "tickets_permanently_deleted": sum(1 for t in tickets if t.purged),
        "tickets_redacted": sum(1 for t in tickets if t.action == "redact" and t.finished),
        "tickets_kept": sum(1 for t in tickets if t.action == "keep"),
        "comments_redacted": sum(1 for c in comments if c.redacted),
        "attachments_redacted": sum(len(c.attachments_redacted) for c in comments),
        "attachments_retained": sum(len(c.attachments_retained) for c in comments),
    }


def _not_done(plan: TicketPlan, halt_why: str | None) -> list[TicketNotDone]:
    policy: TicketPolicy = plan.policy
    out: list[TicketNotDone] = []
    tickets = list(plan.tickets.values())
    kept = [t.ticket_id for t in tickets if t.action == "keep" and t.relation == "requested"]
    if kept:
        out.append(
            {
                "item": f"ticket(s) {ids_text(kept)}",
                "why": f"kept with every comment ({policy.keep_reason})",
            }
        )
    kept_elsewhere = [
        t.ticket_id for t in tickets if t.action == "keep" and t.relation != "requested"
    ]
    if kept_elsewhere:
        out.append(
            {
                "item": f"the person's comments on ticket(s) {ids_text(kept_elsewhere)}",
                "why": f"kept ({policy.keep_reason})",
            }
        )
    for ticket in tickets:
        if ticket.gone or ticket.action in ("keep", "none"):
            continue
        if not ticket.finished:
            what = "soft-deleted, not permanently deleted" if ticket.soft_deleted else None
            out.append(
                {
                    "item": f"ticket {ticket.ticket_id}",
                    "why": ticket.why or what or halt_why or "not processed",
                }
            )
        for comment in ticket.comments.values():
            for aid, why in sorted(comment.attachments_retained.items()):
                out.append(
                    {
                        "item": f"attachment {aid} (comment {comment.comment_id}, "
                        f"ticket {ticket.ticket_id})",
                        "why": f"retained: {why}",
                    }
                )
            if comment.links_left:
                out.append(
                    {
                        "item": f"comment {comment.comment_id} (ticket {ticket.ticket_id})",
                        "why": f"{comment.links_left} link or image address(es) in its HTML "
                        "cannot be redacted (comment_redactions redacts text only)",
                    }
                )
    redacted_requested = [
        t.ticket_id for t in tickets if t.action == "redact" and t.relation == "requested"
    ]
    if redacted_requested:
        rated = [t.ticket_id for t in tickets if t.action == "redact" and t.rating_comment]
        rating = f"; the satisfaction rating comment on {ids_text(rated)} too" if rated else ""
        out.append(
            {
                "item": f"ticket(s) {ids_text(redacted_requested)} (redacted, not deleted)",
                "why": "the subject line and other participants' comments stay: comment "
                f"redaction removes the person's comment text only{rating}",
            }
        )
    metadata = sorted(
        t.ticket_id
        for t in tickets
        if t.action == "redact" and any(c.metadata and c.redacted for c in t.comments.values())
    )
    if metadata:
        out.append(
            {
                "item": f"comment metadata on ticket(s) {ids_text(metadata)}",
                "why": "Zendesk keeps the IP address and location an end user wrote from on "
                "each comment; redaction does not remove them (deleting the ticket does)",
            }
        )
    return out


def ticket_evidence(plan: TicketPlan | None, *, halt_why: str | None = None) -> TicketParts:
    """The ticket parts of the evidence record for ``plan`` (empty without one)."""
    if plan is None:
        return TicketParts()
    rows = [_row(t) for t in plan.tickets.values()]
    kept = {t.relation == "requested" for t in plan.tickets.values() if t.action == "keep"}
    relied = plan.policy.exceptions(requested=True in kept, elsewhere=False in kept)
    return TicketParts(rows, _counts(plan), _not_done(plan, halt_why), relied)
