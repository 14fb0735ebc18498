"""What an erasure request's ledger entries say was done to the person's conversations.

Owns :class:`TicketHistory` (:meth:`TicketHistory.from_entries`): the recorded ticket plan
(``tickets`` info) and, per ticket, comment and attachment, whether the close, the soft
deletion (one ``DELETE`` per ticket, or groups handed to ``tickets/destroy_many`` jobs),
the redactions and the permanent deletion (groups handed to bulk jobs) are done, with the
job ids Zendesk gave; both forms of soft deletion are read, so older ledgers replay. The
engine resumes a request from it (:meth:`TicketHistory.apply`) and the audit re-checks the
recorded ids from it (:attr:`TicketHistory.purged`, :attr:`TicketHistory.redacted`). Read
by the ledger's rules: the last intent or outcome of a step decides, ``ok`` is done,
``failed`` is not, anything else is unknown (reconciled with Zendesk before anything is
repeated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privacykit.playbooks.erasure import keys
from privacykit.playbooks.erasure.history import EntryLike
from privacykit.playbooks.erasure.keys import StepKey, StepKind
from privacykit.playbooks.erasure.tickets import TicketGroup, TicketPlan

__all__ = ["StepRecord", "TicketHistory"]


@dataclass
class StepRecord:
    """The ledger's view of one intent/outcome step (plus its ``info`` notes)."""

    state: str = "none"  # none | intent | done
    intent: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, phase: str, data: Mapping[str, Any]) -> None:
        if phase == "intent":
            self.state, self.intent, self.outcome = "intent", dict(data), {}
        elif phase == "outcome":
            result = str(data.get("result", "ok"))
            self.state = {"ok": "done", "failed": "none"}.get(result, "intent")
            self.outcome = dict(data)
        else:
            self.notes.append(dict(data))

    @property
    def done(self) -> bool:
        return self.state == "done"


def _ids(values: Any) -> list[int]:
    return sorted(
        {v for v in values or [] if isinstance(v, int) and not isinstance(v, bool) and v > 0}
    )


@dataclass
class TicketHistory:
    """A request's conversation entries, folded (see the module docstring)."""

    plan: dict[str, Any] | None = None
    closes: dict[int, StepRecord] = field(default_factory=dict)
    deletes: dict[int, StepRecord] = field(default_factory=dict)
    delete_groups: dict[int, StepRecord] = field(default_factory=dict)
    purges: dict[int, StepRecord] = field(default_factory=dict)
    comments: dict[int, StepRecord] = field(default_factory=dict)
    attachments: dict[int, StepRecord] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[EntryLike]) -> TicketHistory:
        history = cls()
        tables = {
            StepKind.TICKET_CLOSE: history.closes,
            StepKind.TICKET_DELETE: history.deletes,
            StepKind.TICKET_DELETE_MANY: history.delete_groups,
            StepKind.TICKET_PURGE: history.purges,
            StepKind.COMMENT_REDACT: history.comments,
            StepKind.ATTACHMENT_REDACT: history.attachments,
        }
        for entry in entries:
            if entry.step_key == keys.TICKETS and entry.phase == "info":
                history.plan = dict(entry.data)
                continue
            parsed = StepKey.parse(entry.step_key)
            table = tables.get(parsed.kind) if parsed is not None else None
            if table is None or parsed is None:
                continue
            table.setdefault(parsed.zendesk_id, StepRecord()).apply(entry.phase, entry.data)
        return history

    # -- for the audit -------------------------------------------------------------------

    @property
    def soft_deleted(self) -> list[int]:
        """Tickets this erasure soft-deleted (one by one, or in ``destroy_many`` groups)."""
        out = {t for t, r in self.deletes.items() if r.done}
        return sorted(out | set(_done(self.delete_groups, "soft_deleted")))

    @property
    def purged(self) -> list[int]:
        """Tickets recorded as permanently deleted."""
        return _done(self.purges, "purged")

    @property
    def redacted(self) -> list[tuple[int, int]]:
        """``(ticket_id, comment_id)`` of every comment recorded as redacted."""
        out = []
        for cid, record in sorted(self.comments.items()):
            if record.done and record.outcome.get("state") == "redacted":
                tid = record.intent.get("ticket_id") or record.outcome.get("ticket_id")
                if isinstance(tid, int) and not isinstance(tid, bool):
                    out.append((tid, cid))
        return out

    # -- for the engine ------------------------------------------------------------------

    def groups(self) -> list[TicketGroup]:
        """The permanent deletion groups (``ticket:purge:*``)."""
        return _groups(self.purges)

    def open_delete_groups(self) -> list[TicketGroup]:
        """Soft-delete groups (``ticket:soft_delete_many:*``) with an intent and no
        outcome: the next run follows their job or reads the tickets' state."""
        return [g for g in _groups(self.delete_groups) if not g.done]

    def apply(self, plan: TicketPlan) -> list[TicketGroup]:
        """Mark in ``plan`` what the ledger says was done; returns the purge groups still
        open (intent recorded, no outcome: the next step follows or reconciles them)."""
        for tid, ticket in plan.tickets.items():
            close = self.closes.get(tid)
            if close is not None and close.done:
                ticket.closed = True
                ticket.gone = ticket.gone or close.outcome.get("state") == "gone"
            delete = self.deletes.get(tid)
            if delete is not None and delete.done:
                ticket.soft_deleted = True
            for cid, comment in ticket.comments.items():
                record = self.comments.get(cid)
                if record is not None and record.done:
                    comment.redacted = True
                    links = record.outcome.get("links_left")
                    comment.links_left = links if isinstance(links, int) else 0
                for aid in comment.attachment_ids:
                    attachment = self.attachments.get(aid)
                    if attachment is None:
                        continue
                    if attachment.done:
                        comment.attachments_redacted.append(aid)
                        continue
                    for note in attachment.notes:
                        kept = note.get("retained")
                        if isinstance(kept, str) and kept:
                            comment.attachments_retained[aid] = kept
        for tid in _done(self.delete_groups, "soft_deleted"):
            if tid in plan.tickets:
                plan.tickets[tid].soft_deleted = True
        purged = set(self.purged)
        for tid in purged:
            if tid in plan.tickets:
                plan.tickets[tid].purged = True
                plan.tickets[tid].soft_deleted = True
        return [g for g in self.groups() if not g.done]


def _done(table: Mapping[int, StepRecord], key: str) -> list[int]:
    """The ticket ids the finished groups of ``table`` list under ``key``."""
    out: set[int] = set()
    for record in table.values():
        if record.done:
            out.update(_ids(record.outcome.get(key)))
    return sorted(out)


def _groups(table: Mapping[int, StepRecord]) -> list[TicketGroup]:
    """The groups of ``table`` with an intent, their job ids and whether they ended."""
    out = []
    for first, record in sorted(table.items()):
        if record.state == "none":
            continue
        jobs = [n["job_id"] for n in record.notes if isinstance(n.get("job_id"), str)]
        out.append(
            TicketGroup(
                first,
                _ids(record.intent.get("ticket_ids")),
                job_ids=list(dict.fromkeys(jobs)),
                done=record.done,
            )
        )
    return out
