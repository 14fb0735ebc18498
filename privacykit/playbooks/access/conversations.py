"""The person's conversations between collection and export.

Owns :class:`Conversations` (what the ticket steps gathered for one subject: the spool of
tickets with their comments, how each ticket relates to the person, who took part, what
became of each attachment) and :meth:`Conversations.present`, which turns the raw spool
into the tickets the answer shows -- the ``others`` policy applied, attachments resolved
to files -- in ticket-id order, into a second spool, counting as it goes. Exports read
the presented tickets back as often as they need (:class:`PresentedTickets`), one at a
time, so memory stays bounded however many tickets the person has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacykit.playbooks.access.people import People, present_ticket
from privacykit.playbooks.access.spool import Spool
from privacykit.playbooks.access.values import as_int

__all__ = ["TICKET_COUNT_KEYS", "Conversations", "PresentedTickets", "ticket_stats"]

TICKET_COUNT_KEYS = (
    "tickets",
    "tickets_requested",
    "tickets_ccd",
    "tickets_followed",
    "comments",
    "comments_by_person",
    "internal_notes",
    "satisfaction_ratings",
    "attachments",
    "attachments_downloaded",
    "attachments_not_downloaded",
    "attachment_bytes",
)


def ticket_stats(tickets: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts over presented tickets (see :data:`TICKET_COUNT_KEYS`)."""
    stats = dict.fromkeys(TICKET_COUNT_KEYS, 0)
    for ticket in tickets:
        stats["tickets"] += 1
        for relation in ticket.get("relations") or []:
            key = f"tickets_{relation}"
            if key in stats:
                stats[key] += 1
        if isinstance(ticket.get("satisfaction_rating"), Mapping):
            score = ticket["satisfaction_rating"].get("score")
            if score not in (None, "unoffered", "offered"):
                stats["satisfaction_ratings"] += 1
        for comment in ticket.get("comments") or []:
            stats["comments"] += 1
            if comment.get("author_kind") == "you":
                stats["comments_by_person"] += 1
            if comment.get("public") is False:
                stats["internal_notes"] += 1
            for attachment in comment.get("attachments") or []:
                stats["attachments"] += 1
                if attachment.get("downloaded"):
                    stats["attachments_downloaded"] += 1
                    stats["attachment_bytes"] += int(attachment.get("bytes") or 0)
                else:
                    stats["attachments_not_downloaded"] += 1
    return stats


class PresentedTickets:
    """The presented tickets, re-readable: every iteration reads the spool again."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _key, record in self.spool:
            yield record

    def __len__(self) -> int:
        return len(self.spool)


@dataclass
class Conversations:
    """One subject's tickets while the access request runs. Only ids, counts and short
    results live in memory; tickets and comments live in :attr:`spool`."""

    spool: Spool | None = None
    relations: dict[int, list[str]] = field(default_factory=dict)
    per_user: dict[int, dict[str, int]] = field(default_factory=dict)
    participants: set[int] = field(default_factory=set)
    people: People | None = None
    attachments: dict[int, dict[str, Any]] = field(default_factory=dict)
    internal_notes_withheld: int = 0
    presented: Spool | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def relate(self, ticket_id: int, user_id: int, relation: str) -> None:
        relations = self.relations.setdefault(ticket_id, [])
        if relation not in relations:
            relations.append(relation)
        counts = self.per_user.setdefault(user_id, {})
        counts[relation] = counts.get(relation, 0) + 1

    def ticket_ids(self) -> list[int]:
        return self.spool.keys() if self.spool is not None else []

    def present(self, work: Path) -> PresentedTickets:
        """Write the presented tickets into a second spool under ``work`` (once)."""
        if self.presented is not None:
            return PresentedTickets(self.presented)
        people = self.people or People(())
        out = Spool.create(work)
        stats = dict.fromkeys(TICKET_COUNT_KEYS, 0)
        if self.spool is not None:
            for ticket_id, record in self.spool:
                comments = [self._with_files(c, ticket_id) for c in record.get("comments") or []]
                ticket = present_ticket(
                    record.get("ticket") or {},
                    comments,
                    people,
                    relations=self.relations.get(ticket_id, []),
                )
                for key, value in ticket_stats([ticket]).items():
                    stats[key] += value
                out.put(ticket_id, ticket)
        self.presented = out
        self.stats = stats
        return PresentedTickets(out)

    def _with_files(self, comment: Mapping[str, Any], ticket_id: int) -> dict[str, Any]:
        """The comment with each attachment's fate: ``downloaded``, ``file`` (path in the
        answer), ``sha256``, ``bytes``, or ``not_downloaded_reason``."""
        item = dict(comment)
        attachments = []
        for attachment in comment.get("attachments") or []:
            entry = dict(attachment)
            result = self.attachments.get(as_int(attachment.get("id")) or -1)
            if result is None:
                result = {
                    "downloaded": False,
                    "file": None,
                    "not_downloaded_reason": "attachments were not collected "
                    "(the playbook has no collect_attachments step)",
                }
            entry.update(result)
            attachments.append(entry)
        if "attachments" in comment or attachments:
            item["attachments"] = attachments
        return item

    def close(self) -> None:
        for spool in (self.spool, self.presented):
            if spool is not None:
                spool.close()

    def remove(self) -> None:
        for spool in (self.spool, self.presented):
            if spool is not None:
                spool.remove()
