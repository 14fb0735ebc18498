"""Other people in the person's conversations (GDPR Art. 15(4)).

Owns :class:`People` (who took part in the person's tickets: the person, the
organisation's agents, or other customers) and :func:`present_ticket` (a ticket as the
answer shows it, with the playbook's ``others`` policy applied).

Policy ``pseudonymise`` (the default): everyone who is neither the person nor one of the
organisation's agents (role ``agent`` or ``admin``) appears as "another customer #n",
numbered in order of first appearance. Their Zendesk ids are replaced by that label
wherever a ticket or comment names a person (requester, submitter, assignee, CCs,
followers, collaborators, comment author); channel details that may carry their address
(``via.source``) and comment metadata (IP address, location, client) are kept only where
the person is the author; a satisfaction rating given by another customer is withheld.
Comment **bodies are not rewritten**: what another customer wrote in the conversation,
including a name they signed with, stays as the person received it -- the report says so.

Policy ``keep``: tickets and comments exactly as Zendesk returned them; other customers
appear by name.

Agents appear by the name end users see (their ``alias`` when set, else their name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from privacykit.playbooks.access.values import as_int

__all__ = [
    "PERSON_ID_FIELDS",
    "PERSON_ID_LISTS",
    "Participant",
    "People",
    "participant_ids",
    "present_ticket",
]

Kind = Literal["you", "agent", "another_customer"]

# Ticket fields that hold one user id, and those that hold a list of them.
PERSON_ID_FIELDS = ("requester_id", "submitter_id", "assignee_id")
PERSON_ID_LISTS = ("collaborator_ids", "email_cc_ids", "follower_ids")
_AGENT_ROLES = frozenset({"agent", "admin"})
_LOOKUP_BATCH = 100  # GET /api/v2/users/show_many takes up to 100 ids


@dataclass(frozen=True)
class Participant:
    """One person in the conversations, as the answer shows them."""

    kind: Kind
    shown_as: str
    user_id: int | None  # None when withheld (another customer, pseudonymised)

    def as_dict(self) -> dict[str, Any]:
        return {"shown_as": self.shown_as, "kind": self.kind, "user_id": self.user_id}


def participant_ids(ticket: Mapping[str, Any], comments: Iterable[Mapping[str, Any]]) -> set[int]:
    """Every user id a ticket and its comments name."""
    ids: set[int] = set()
    for key in PERSON_ID_FIELDS:
        uid = as_int(ticket.get(key))
        if uid is not None:
            ids.add(uid)
    for key in PERSON_ID_LISTS:
        for item in ticket.get(key) or []:
            uid = as_int(item)
            if uid is not None:
                ids.add(uid)
    for comment in comments:
        uid = as_int(comment.get("author_id"))
        if uid is not None:
            ids.add(uid)
    return ids


class People:
    """Who is who in the person's conversations.

    ``own_ids`` are the person's user ids (from discovery). :meth:`learn` looks the other
    ids up (``show_many_users``, 100 at a time) and keeps only their role and, for agents
    (and other customers under ``keep``), the name shown; nothing else of another person
    is kept. Labels ("another customer #n") are given in the order :meth:`participant`
    is first asked about each person."""

    def __init__(self, own_ids: Iterable[int], *, others: str = "pseudonymise") -> None:
        if others not in ("pseudonymise", "keep"):
            raise ValueError(f"unknown others policy {others!r}")
        self.own_ids = frozenset(own_ids)
        self.others = others
        self._agents: dict[int, str] = {}
        self._customers: dict[int, str | None] = {}  # name kept only under "keep"
        self._labels: dict[int, Participant] = {}
        self.lookups = 0

    @property
    def pseudonymise(self) -> bool:
        return self.others == "pseudonymise"

    def learn(
        self, ids: Iterable[int], show_many: Callable[[Sequence[int]], list[dict[str, Any]]]
    ) -> None:
        """Look up the roles of ``ids`` (those not yet known and not the person's)."""
        pending = sorted(set(ids) - self.own_ids - set(self._agents) - set(self._customers))
        for start in range(0, len(pending), _LOOKUP_BATCH):
            chunk = pending[start : start + _LOOKUP_BATCH]
            self.lookups += 1
            found = {as_int(u.get("id")): u for u in show_many(chunk)}
            for uid in chunk:
                user = found.get(uid)
                if user is not None and user.get("role") in _AGENT_ROLES:
                    alias = user.get("alias")
                    name = alias if isinstance(alias, str) and alias.strip() else user.get("name")
                    self._agents[uid] = str(name) if name else f"agent {uid}"
                else:
                    # Not returned (deleted) or an end user: not one of the organisation's
                    # agents, so the conservative reading applies.
                    name = user.get("name") if user is not None else None
                    self._customers[uid] = str(name) if name and not self.pseudonymise else None

    def participant(self, user_id: int) -> Participant:
        known = self._labels.get(user_id)
        if known is not None:
            return known
        if user_id in self.own_ids:
            found = Participant("you", "you", user_id)
        elif user_id in self._agents:
            found = Participant("agent", self._agents[user_id], user_id)
        else:
            number = sum(1 for p in self._labels.values() if p.kind == "another_customer") + 1
            if self.pseudonymise:
                found = Participant("another_customer", f"another customer #{number}", None)
            else:
                name = self._customers.get(user_id) or f"another customer #{number}"
                found = Participant("another_customer", name, user_id)
        self._labels[user_id] = found
        return found

    def shown(self, user_id: Any) -> Any:
        """What the answer shows in place of ``user_id`` in an id field."""
        uid = as_int(user_id)
        if uid is None:
            return user_id
        who = self.participant(uid)
        return who.user_id if who.user_id is not None else who.shown_as

    def legend(self) -> list[dict[str, Any]]:
        """Everyone who appeared, in order of first appearance (the export's ``people``)."""
        return [p.as_dict() for p in self._labels.values()]

    def count(self, kind: Kind) -> int:
        return sum(1 for p in self._labels.values() if p.kind == kind)


def _reduced_via(via: Any, *, keep_from: bool) -> Any:
    if not isinstance(via, Mapping):
        return via
    out: dict[str, Any] = {"channel": via.get("channel")}
    source = via.get("source")
    if isinstance(source, Mapping):
        reduced: dict[str, Any] = {"rel": source.get("rel")}
        if keep_from and "from" in source:
            reduced["from"] = source.get("from")
        out["source"] = reduced
    return out


def present_ticket(
    ticket: Mapping[str, Any],
    comments: Sequence[Mapping[str, Any]],
    people: People,
    *,
    relations: Sequence[str],
) -> dict[str, Any]:
    """The ticket with its comments as the answer shows it (``others`` policy applied).
    Every comment gains ``author`` (who it was, as shown) and ``author_kind``."""
    requester = as_int(ticket.get("requester_id"))
    requester_kind = people.participant(requester).kind if requester is not None else None
    out = dict(ticket)
    if people.pseudonymise:
        for key in PERSON_ID_FIELDS:
            if key in out:
                out[key] = people.shown(out[key])
        for key in PERSON_ID_LISTS:
            if isinstance(out.get(key), list):
                out[key] = [people.shown(item) for item in out[key]]
        if "via" in out:
            out["via"] = _reduced_via(out["via"], keep_from=requester_kind == "you")
        rating = out.get("satisfaction_rating")
        if isinstance(rating, Mapping) and requester_kind == "another_customer":
            out["satisfaction_rating"] = None
            out["satisfaction_rating_withheld"] = "given by another customer"
        elif isinstance(rating, Mapping):
            out["satisfaction_rating"] = {
                key: people.shown(value) if key in ("assignee_id", "requester_id") else value
                for key, value in rating.items()
            }
    out["relations"] = list(relations)
    shown_comments = []
    for comment in comments:
        item = dict(comment)
        author_id = as_int(comment.get("author_id"))
        who = people.participant(author_id) if author_id is not None else None
        item["author"] = who.shown_as if who else None
        item["author_kind"] = who.kind if who else None
        if people.pseudonymise:
            if "author_id" in item:
                item["author_id"] = people.shown(item["author_id"])
            mine = who is not None and who.kind == "you"
            if "via" in item:
                item["via"] = _reduced_via(item["via"], keep_from=mine)
            if not mine:
                item.pop("metadata", None)
        shown_comments.append(item)
    out["comments"] = shown_comments
    return out
