"""The person's conversations: ticket discovery (read-only) and the ticket plan.

Owns :func:`discover_tickets` (for every user of the person: the tickets they requested,
are CC'd on and follow, and -- where the policy redacts -- the comments they wrote on
them, every page), :class:`TicketPlan` / :class:`TicketState` / :class:`CommentState`
(ids, statuses, what is planned and what has been done; comment texts only in memory,
never recorded), the plan as the ledger keeps it (``tickets`` info entry) and as the dry
run shows it (:func:`tickets_view`), and :class:`TicketClient` (the part of the Zendesk
client the ticket steps use).

Comments are listed only where the action needs them (``redact``): a ticket that is
deleted goes with every comment on it, and a kept one keeps them all, so listing them
would cost requests without changing what happens. Only GET requests are sent here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from privacykit.errors import ZendeskError
from privacykit.playbooks.ticket_policy import TicketAction, TicketPolicy, ticket_action

__all__ = [
    "RELATIONS",
    "SEARCHED_SYSTEM",
    "TICKET_ENDPOINTS",
    "CommentState",
    "TicketGroup",
    "TicketClient",
    "TicketPlan",
    "TicketState",
    "discover_tickets",
    "ids_text",
    "zendesk_id",
    "known_blockers",
    "tickets_view",
]

#: The lists of a user's tickets the discovery reads (``assigned`` is an agent's work).
RELATIONS = ("requested", "ccd", "followed")
SEARCHED_SYSTEM = "Zendesk Support tickets and comments"
TICKET_ENDPOINTS = {
    **{r: f"GET /api/v2/users/{{id}}/tickets/{r}" for r in RELATIONS},
    "comments": "GET /api/v2/tickets/{id}/comments",
}


class TicketClient(Protocol):
    """What the ticket steps send to Zendesk (:class:`privacykit.zendesk.ZendeskClient`)."""

    def iter_user_tickets(self, uid: int, which: Any) -> Iterator[dict[str, Any]]: ...
    def show_many_tickets(self, ticket_ids: Sequence[int]) -> list[dict[str, Any]]: ...
    def iter_ticket_comments(
        self, ticket_id: int, *, include_inline_images: bool = False
    ) -> Iterator[dict[str, Any]]: ...
    def iter_deleted_tickets(self) -> Iterator[dict[str, Any]]: ...
    def update_ticket(self, ticket_id: int, fields: Mapping[str, Any]) -> dict[str, Any]: ...
    def soft_delete_ticket(self, ticket_id: int) -> None: ...
    def soft_delete_tickets(self, ticket_ids: Sequence[int]) -> dict[str, Any]: ...
    def permanently_delete_tickets(self, ticket_ids: Sequence[int]) -> dict[str, Any]: ...
    def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]: ...
    def redact_comment(self, ticket_id: int, comment_id: int, html_body: str) -> dict[str, Any]: ...
    def redact_attachment(
        self, ticket_id: int, comment_id: int, attachment_id: int
    ) -> dict[str, Any]: ...


def zendesk_id(value: Any) -> int | None:
    """A Zendesk id (int > 0), else None (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _ids(values: Any) -> list[int]:
    return sorted({v for v in (zendesk_id(x) for x in values or []) if v is not None})


@dataclass
class CommentState:
    """One comment the person wrote: its id, its attachments, and what has been done."""

    comment_id: int
    attachment_ids: list[int] = field(default_factory=list)
    #: Zendesk keeps where an end user wrote from (IP address, location) on the comment;
    #: redaction does not remove it.
    metadata: bool = False
    #: The comment's HTML as discovered (memory only: the ledger never sees it).
    html_body: str | None = field(default=None, repr=False, compare=False)
    redacted: bool = False
    links_left: int = 0
    attachments_redacted: list[int] = field(default_factory=list)
    attachments_retained: dict[int, str] = field(default_factory=dict)

    def plan_dict(self) -> dict[str, Any]:
        return {
            "comment_id": self.comment_id,
            "attachment_ids": list(self.attachment_ids),
            "metadata": self.metadata,
        }

    @classmethod
    def from_plan(cls, row: Mapping[str, Any]) -> CommentState:
        cid = zendesk_id(row.get("comment_id"))
        if cid is None:
            raise ValueError("a planned comment has no id")
        return cls(cid, _ids(row.get("attachment_ids")), bool(row.get("metadata")))

    @property
    def attachments_open(self) -> list[int]:
        """Attachments neither redacted nor retained yet."""
        done = set(self.attachments_redacted) | set(self.attachments_retained)
        return [a for a in self.attachment_ids if a not in done]


@dataclass
class TicketState:
    """One ticket of the person: how they relate to it, the action, what has been done."""

    ticket_id: int
    relation: str  # requested | ccd | followed
    status: str  # as discovered
    action: TicketAction
    close_first: bool = False
    #: A satisfaction rating with the requester's own words (stays when only redacted).
    rating_comment: bool = False
    comments: dict[int, CommentState] = field(default_factory=dict)
    closed: bool = False
    soft_deleted: bool = False
    purged: bool = False
    gone: bool = False  # deleted by someone else before the erasure reached it
    #: The kind of bulk job (``soft_delete`` | ``purge``) whose outcome for this ticket
    #: could not be told (its intent stays open in the ledger; ``why`` says why).
    unknown: str | None = None
    why: str | None = None  # kept: the Art. 17(3) reason; else what went wrong

    @property
    def is_closed(self) -> bool:
        return self.closed or self.status == "closed"

    @property
    def finished(self) -> bool:
        """Whether everything the plan says for this ticket has been done."""
        if self.gone:
            return True
        if self.close_first and not self.closed:
            return False
        if self.action == "delete":
            return self.purged
        if self.action == "redact":
            return all(c.redacted and not c.attachments_open for c in self.comments.values())
        return True

    def plan_dict(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "relation": self.relation,
            "status": self.status,
            "action": self.action,
            "close_first": self.close_first,
            "rating_comment": self.rating_comment,
            "comments": [c.plan_dict() for c in self.comments.values()],
        }

    @classmethod
    def from_plan(cls, row: Mapping[str, Any], policy: TicketPolicy) -> TicketState:
        tid = zendesk_id(row.get("ticket_id"))
        action = row.get("action")
        if tid is None or action not in ("delete", "redact", "keep", "none"):
            raise ValueError("a planned ticket has no id or action")
        state = cls(
            tid,
            str(row.get("relation") or "requested"),
            str(row.get("status") or ""),
            action,
            close_first=bool(row.get("close_first")),
            rating_comment=bool(row.get("rating_comment")),
        )
        for item in row.get("comments") or []:
            comment = CommentState.from_plan(item)
            state.comments[comment.comment_id] = comment
        if action == "keep":
            state.why = policy.keep_reason
        return state


@dataclass
class TicketGroup:
    """Tickets of one request handed to a bulk job together: the ledger step
    ``ticket:purge:<smallest id>`` (permanent deletion) or ``ticket:soft_delete_many:<smallest
    id>`` (soft deletion); a request's groups of one kind never overlap."""

    first: int
    ticket_ids: list[int]
    job_ids: list[str] = field(default_factory=list)
    #: This run handed them to the jobs (else an earlier run did: follow or reconcile).
    handed_over: bool = False
    done: bool = False


@dataclass
class TicketPlan:
    """The person's tickets and what the policy does with each (see the module doc)."""

    policy: TicketPolicy
    user_ids: list[int] = field(default_factory=list)
    tickets: dict[int, TicketState] = field(default_factory=dict)
    #: Per user: the requested tickets that were not closed when discovered.
    open_requested: dict[int, list[int]] = field(default_factory=dict)
    #: Lists read per relation (one per user) and comment lists read (one per ticket).
    lists_read: dict[str, int] = field(default_factory=dict)
    #: Purge groups not finished yet (runtime state; the ledger has them too).
    groups: list[TicketGroup] = field(default_factory=list)
    #: Soft-delete groups an earlier run left without an outcome (settled first).
    delete_groups: list[TicketGroup] = field(default_factory=list)
    #: Discovered by this run (else read back from the ledger: statuses may be stale).
    fresh: bool = False

    def blocking(self, user_id: int) -> list[int]:
        """Open requested tickets that stop the user's erasure: under ``open: review``
        all of them; under ``open: close`` none (the erasure closes them first)."""
        if self.policy.open == "close":
            return []
        return list(self.open_requested.get(user_id, []))

    def of(self, action: str) -> list[TicketState]:
        return [t for t in self.tickets.values() if t.action == action]

    def comments_to_redact(self) -> int:
        return sum(len(t.comments) for t in self.of("redact"))

    def would_change(self) -> bool:
        return any(not t.finished for t in self.tickets.values())

    def searched(self) -> dict[str, Any]:
        """What the ticket discovery searched (endpoint templates and request counts)."""
        endpoints = [TICKET_ENDPOINTS[r] for r in RELATIONS]
        if self.lists_read.get("comments"):
            endpoints.append(TICKET_ENDPOINTS["comments"])
        return {"systems": [SEARCHED_SYSTEM], "endpoints": endpoints}

    def record(self) -> dict[str, Any]:
        """The plan as the ledger keeps it (``tickets`` info): ids, statuses, actions."""
        return {
            "policy": self.policy.as_dict(),
            "user_ids": list(self.user_ids),
            "open_requested": {str(u): list(t) for u, t in sorted(self.open_requested.items())},
            "tickets": [t.plan_dict() for t in self.tickets.values()],
            "lists_read": dict(self.lists_read),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any], policy: TicketPolicy) -> TicketPlan:
        """A plan read back from the ledger. The actions are the recorded ones (a
        resumed request keeps its plan; the playbook's sha256 is the request's)."""
        plan = cls(policy, _ids(data.get("user_ids")))
        for uid, tickets in (data.get("open_requested") or {}).items():
            if str(uid).isdigit():
                plan.open_requested[int(uid)] = _ids(tickets)
        for row in data.get("tickets") or []:
            ticket = TicketState.from_plan(row, policy)
            plan.tickets[ticket.ticket_id] = ticket
        lists = data.get("lists_read")
        plan.lists_read = dict(lists) if isinstance(lists, Mapping) else {}
        return plan


def known_blockers(plan: TicketPlan | None, user_id: int) -> list[int] | None:
    """The open requested tickets that stop ``user_id``'s erasure as the ticket discovery
    knows them, or None when only a live look can tell (no discovery, or a plan read back
    from the ledger: tickets get closed between runs). Under ``open: close`` nothing
    blocks: the erasure closes them first."""
    if plan is None or not (plan.fresh or plan.policy.open == "close"):
        return None
    return plan.blocking(user_id)


def _malformed(what: str) -> ZendeskError:
    # The client validated the shapes; this catches what its schemas leave optional.
    return ZendeskError(f"{what}: an answer had no usable ticket id, status or requester")


def _has_metadata(comment: Mapping[str, Any]) -> bool:
    metadata = comment.get("metadata")
    system = metadata.get("system") if isinstance(metadata, Mapping) else None
    if not isinstance(system, Mapping):
        return False
    return bool(system.get("ip_address") or system.get("location"))


def _rating_comment(ticket: Mapping[str, Any]) -> bool:
    rating = ticket.get("satisfaction_rating")
    return isinstance(rating, Mapping) and bool(str(rating.get("comment") or "").strip())


def discover_tickets(
    client: TicketClient,
    user_ids: Iterable[int],
    policy: TicketPolicy,
    *,
    check: Callable[[], None] = lambda: None,
) -> TicketPlan:
    """Every ticket the users requested, are CC'd on or follow, every page, and the
    comments they wrote where the policy redacts. GET only. Raises
    :class:`~privacykit.errors.ZendeskError` when an answer cannot be trusted (the
    caller then cannot conclude anything about the person's conversations)."""
    person = sorted(set(user_ids))
    plan = TicketPlan(policy, person)
    found: dict[int, Mapping[str, Any]] = {}
    relations: dict[int, set[str]] = {}
    lists = {r: 0 for r in RELATIONS}
    for uid in person:
        for which in RELATIONS:
            check()
            for ticket in client.iter_user_tickets(uid, which):
                tid = zendesk_id(ticket.get("id")) if isinstance(ticket, Mapping) else None
                if tid is None or not isinstance(ticket.get("status"), str):
                    raise _malformed(TICKET_ENDPOINTS[which])
                if zendesk_id(ticket.get("requester_id")) is None:
                    raise _malformed(TICKET_ENDPOINTS[which])
                found[tid] = ticket
                relations.setdefault(tid, set()).add(which)
                if which == "requested" and ticket["status"] != "closed":
                    plan.open_requested.setdefault(uid, []).append(tid)
            lists[which] += 1
    members = set(person)
    comment_lists = 0
    for tid, row in sorted(found.items()):
        check()
        requested = "requested" in relations[tid] or row["requester_id"] in members
        relation = "requested" if requested else ("ccd" if "ccd" in relations[tid] else "followed")
        action = ticket_action(policy, requested=requested)
        state = TicketState(
            tid,
            relation,
            str(row["status"]),
            action,
            close_first=requested and policy.open == "close" and row["status"] != "closed",
            rating_comment=requested and _rating_comment(row),
        )
        if action == "keep":
            state.why = policy.keep_reason
        if action == "redact":
            comment_lists += 1
            for comment in client.iter_ticket_comments(tid, include_inline_images=True):
                cid = zendesk_id(comment.get("id")) if isinstance(comment, Mapping) else None
                if cid is None:
                    raise ZendeskError(f"{TICKET_ENDPOINTS['comments']}: a comment has no id")
                if comment.get("author_id") not in members:
                    continue
                attachments = [
                    a.get("id") for a in comment.get("attachments") or [] if isinstance(a, Mapping)
                ]
                html = comment.get("html_body")
                state.comments[cid] = CommentState(
                    cid,
                    _ids(attachments),
                    _has_metadata(comment),
                    html_body=html if isinstance(html, str) else None,
                )
            if not requested and not state.comments:
                # CC'd or following, and never wrote: nothing of theirs to redact.
                state.action = "none"
        plan.tickets[tid] = state
    for uid in plan.open_requested:
        plan.open_requested[uid] = sorted(set(plan.open_requested[uid]))
    plan.lists_read = {**lists, "comments": comment_lists}
    plan.fresh = True
    return plan


def ids_text(ids: Sequence[int], limit: int = 20) -> str:
    """Ticket ids for a reason or a report line: ``#1, #2`` and ``(+N more)`` past
    ``limit``."""
    text = ", ".join(f"#{t}" for t in ids[:limit])
    return text + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def tickets_view(plan: TicketPlan | None) -> dict[str, Any] | None:
    """The ticket part of a subject's plan (``--dry-run``, the confirmation): ids and
    counts per action, the comments to redact, what the policy keeps and why."""
    if plan is None:
        return None

    def ids(action: str) -> list[int]:
        return [t.ticket_id for t in plan.of(action)]

    blockers = sorted({t for uid in plan.user_ids for t in plan.blocking(uid)})
    return {
        "policy": plan.policy.as_dict(),
        "found": len(plan.tickets),
        "to_close": [t.ticket_id for t in plan.tickets.values() if t.close_first and not t.closed],
        "to_delete": ids("delete"),
        "to_redact": ids("redact"),
        "kept": ids("keep"),
        "untouched": ids("none"),
        "comments_to_redact": plan.comments_to_redact(),
        "attachments_to_redact": sum(
            len(c.attachment_ids) for t in plan.of("redact") for c in t.comments.values()
        ),
        "kept_why": plan.policy.keep_reason if ids("keep") else None,
        "blocking": blockers,
        "summary": _summary_line(plan, blockers),
    }


def _summary_line(plan: TicketPlan, blockers: list[int]) -> str:
    parts = []
    close = [t.ticket_id for t in plan.tickets.values() if t.close_first and not t.closed]
    if close:
        parts.append(f"close {ids_text(close)} first")
    for action, label in (("delete", "delete"), ("redact", "redact"), ("keep", "keep")):
        ids = [t.ticket_id for t in plan.of(action)]
        if ids:
            parts.append(f"{label} {ids_text(ids)}")
    comments = plan.comments_to_redact()
    if comments:
        parts.append(f"{comments} comment(s) of theirs to redact")
    if blockers:
        parts.append(f"blocked by open ticket(s) {ids_text(blockers)}")
    found = len(plan.tickets)
    return f"{found} ticket(s)" + (": " + "; ".join(parts) if parts else "")
