"""What an erasure does with the person's conversations: the ``tickets`` policy and steps.

Owns the ``tickets`` block of an erasure playbook's ``policy:`` (its schema, checked by the
loader like the rest of the erasure kind, and :func:`validate_ticket_policy`, the checks
that span fields), :class:`TicketPolicy` (the block as typed values), the schemas of the
three ticket steps (:data:`TICKET_STEPS`) and :func:`ticket_action`, the one decision of
what happens to a ticket found for the person. Pure: nothing here talks to Zendesk.

The block (``playbooks/erasure.yaml`` documents it for operators)::

    tickets:
      requested: delete   # delete | redact | keep -- tickets the person requested
      open: review        # review | close         -- requested tickets that are not closed
      elsewhere: redact   # redact | keep          -- their comments on others' tickets
      keep:               # required when requested or elsewhere is keep (Art. 17(3))
        article: Art. 17(3)(e)
        why: ...

Facts it rests on (``tickets-and-more.md``): deleting a user leaves their tickets and
comments in place; Zendesk refuses to delete the requester of a ticket that is not
``closed``; a ticket can be closed through the API (required fields may refuse it); a
closed ticket can no longer be updated, but ``comment_redactions`` still works on it (the
legacy and attachment redactions do not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from privacykit.playbooks.loader import StepSchema
from privacykit.playbooks.schema import Field, KeyPath, Str, Struct

__all__ = [
    "TICKETS_POLICY_FIELD",
    "TICKET_STEPS",
    "TicketAction",
    "TicketPolicy",
    "ticket_action",
    "validate_ticket_policy",
]

TicketAction = Literal["delete", "redact", "keep", "none"]

# Same form as the erasure policy's articles (kept here: policy.py imports this module).
_ARTICLE = Str(
    pattern=r"Art\. ?\d+(\(\d+\))?(\([a-z]\))?.*",
    pattern_help="a GDPR article like 'Art. 17(3)(e)'",
)

#: The ``tickets`` field of the erasure policy (defaults: delete, review, redact).
TICKETS_POLICY_FIELD = Field(
    Struct(
        {
            "requested": Field(Str(choices=("delete", "redact", "keep")), default="delete"),
            "open": Field(Str(choices=("review", "close")), default="review"),
            "elsewhere": Field(Str(choices=("redact", "keep")), default="redact"),
            "keep": Field(
                Struct(
                    {"article": Field(_ARTICLE, required=True), "why": Field(Str(), required=True)}
                ),
                default={},
            ),
        }
    ),
    doc="what happens to the tickets the person requested, CC'd on or follows",
)


#: The ticket steps of the erasure kind (merged into its step table by the erasure policy).
TICKET_STEPS = {
    "discover_tickets": StepSchema(
        needs=("discover",),
        doc="list the tickets the person requested, is CC'd on or follows, and the comments "
        "they wrote on them (GET only; part of the plan and the dry run)",
    ),
    "erase_tickets": StepSchema(
        needs=("discover_tickets", "check_safety"),
        after=("replace_profiles",),
        doc="close (open: close), soft-delete or redact per policy.tickets, before the "
        "users are soft-deleted",
    ),
    "permanently_delete_tickets": StepSchema(
        needs=("erase_tickets",),
        after=("permanently_delete_users",),
        doc="DELETE /api/v2/deleted_tickets/destroy_many (100 ids a job, across the subjects "
        "of a batch), following each job to its end",
    ),
}


def validate_ticket_policy(
    data: Mapping[str, Any], error: Callable[[KeyPath, str], Exception]
) -> None:
    """Checks across fields (the playbook's data, schema-checked): ``keep`` needs the
    article and reason the evidence repeats; ``open: close`` needs the step that closes."""
    tickets = data["policy"]["tickets"]
    if "keep" in (tickets["requested"], tickets["elsewhere"]) and not tickets["keep"]:
        which = "requested" if tickets["requested"] == "keep" else "elsewhere"
        raise error(
            ("policy", "tickets", which),
            "keep needs policy.tickets.keep {article, why} (Art. 17(3)): "
            "the evidence must say why the conversations remain",
        )
    steps = {s.get("step") if isinstance(s, dict) else s for s in data.get("steps") or []}
    if tickets["open"] == "close" and "erase_tickets" not in steps:
        raise error(
            ("policy", "tickets", "open"),
            "open: close needs the erase_tickets step (nothing else closes tickets)",
        )


@dataclass(frozen=True)
class TicketPolicy:
    """The ``tickets`` block as typed values."""

    requested: Literal["delete", "redact", "keep"] = "delete"
    open: Literal["review", "close"] = "review"
    elsewhere: Literal["redact", "keep"] = "redact"
    keep_article: str | None = None
    keep_why: str | None = None

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any] | None) -> TicketPolicy:
        block = block or {}
        keep = block.get("keep") or {}
        return cls(
            requested=block.get("requested", "delete"),
            open=block.get("open", "review"),
            elsewhere=block.get("elsewhere", "redact"),
            keep_article=keep.get("article"),
            keep_why=keep.get("why"),
        )

    @property
    def keep_reason(self) -> str:
        """How the evidence says why a ticket or comment was kept."""
        return f"{self.keep_article}: {self.keep_why}"

    def as_dict(self) -> dict[str, str]:
        """The three choices (recorded with the ticket plan, shown in the dry run)."""
        return {"requested": self.requested, "open": self.open, "elsewhere": self.elsewhere}

    def exceptions(self, *, requested: bool = True, elsewhere: bool = True) -> list[dict[str, str]]:
        """The Art. 17(3) exceptions this block relies on, for the evidence record (only
        the ones for what was actually kept, when the caller says which)."""
        out = []
        if self.requested == "keep" and requested:
            out.append(
                {
                    "article": self.keep_article or "",
                    "kept": "tickets the person requested, with every comment on them",
                    "why": self.keep_why or "",
                }
            )
        if self.elsewhere == "keep" and elsewhere:
            out.append(
                {
                    "article": self.keep_article or "",
                    "kept": "the person's comments on tickets other people requested",
                    "why": self.keep_why or "",
                }
            )
        return out


def ticket_action(policy: TicketPolicy, *, requested: bool) -> TicketAction:
    """What happens to a ticket of the person: one they requested follows ``requested``;
    any other (CC'd, followed) follows ``elsewhere`` -- never deleted, at most their
    comments on it redacted."""
    if requested:
        return policy.requested
    return "redact" if policy.elsewhere == "redact" else "keep"
