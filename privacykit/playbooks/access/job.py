"""One subject's access request while it runs, and what a run returns.

Owns the per-subject state the steps share (:class:`AccessJob`: what discovery and the
collection steps found, in memory only), the gathered records in export order
(:class:`Gathered`, :class:`Collected`), and the results handed back to the CLI
(:class:`SubjectResult`, :class:`AccessRun`). No I/O here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from privacykit.errors import ZendeskError
from privacykit.playbooks.access.conversations import (
    TICKET_COUNT_KEYS,
    Conversations,
    PresentedTickets,
    ticket_stats,
)
from privacykit.playbooks.access.files import DeliveredFile
from privacykit.playbooks.access.kind import AccessPolicy
from privacykit.playbooks.access.values import as_int, now, without
from privacykit.playbooks.discovery import Discovery, DiscoveryRun
from privacykit.playbooks.engine import RunContext
from privacykit.playbooks.subjects import Subject

if TYPE_CHECKING:
    from privacykit.playbooks.request import RequestSession

__all__ = [
    "NOT_COVERED",
    "not_covered",
    "SEARCHED_KEYS",
    "AccessJob",
    "AccessRun",
    "Collected",
    "Gathered",
    "Outcome",
    "SubjectResult",
    "as_int",
    "now",
    "without",
]

Outcome = Literal["data_found", "no_data_found", "needs_review", "failed"]

SEARCHED_KEYS = ("systems", "endpoints", "profile_sources")
# The counts a terminal line shows.
SUMMARY_COUNTS = ("users", "profiles", "events", "tickets", "comments", "attachments")

# What an access answer never covers, said plainly in data.json, index.html and the report.
NOT_COVERED = (
    "Help Center (Guide): articles, posts and comments the person wrote",
    "Chat and messaging transcripts held outside Support tickets (Zendesk Chat, Messaging)",
    "Talk call recordings and voicemails",
    "Tickets the person commented on without being their requester, CC or follower",
    "Tickets assigned to the person as an agent",
    "Zendesk audit logs",
    "Other applications connected to Zendesk (Sell, Explore, apps and integrations)",
)


@dataclass
class Gathered:
    """Everything found for one person, as Zendesk returned it (plus the link fields we add:
    ``users[].related``, ``events[].profile_id``). ``tickets`` must be re-iterable (a list,
    or the spool-backed presented tickets): exports read it more than once."""

    users: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    profiles: list[dict[str, Any]]
    events: list[dict[str, Any]]
    tickets: Iterable[dict[str, Any]]
    compliance_deletion_statuses: list[dict[str, Any]]
    searched: dict[str, list[str]]
    organizations: list[dict[str, Any]] = field(default_factory=list)
    organization_memberships: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=lambda: list(NOT_COVERED))
    others: str = "pseudonymise"
    ticket_counts: dict[str, int] | None = None

    @property
    def found(self) -> bool:
        return bool(self.users or self.profiles)

    def counts(self) -> dict[str, int]:
        if self.ticket_counts is None:
            self.ticket_counts = ticket_stats(self.tickets)
        return {
            "users": len(self.users),
            "identities": len(self.identities),
            "profiles": len(self.profiles),
            "profile_identifiers": sum(len(p.get("identifiers") or []) for p in self.profiles),
            "profile_attributes": sum(len(p.get("attributes") or {}) for p in self.profiles),
            "events": len(self.events),
            **{key: self.ticket_counts.get(key, 0) for key in TICKET_COUNT_KEYS},
            "organizations": len(self.organizations),
            "organization_memberships": len(self.organization_memberships),
            "other_customers": sum(1 for p in self.people if p.get("kind") == "another_customer"),
            "compliance_deletion_statuses": len(self.compliance_deletion_statuses),
        }


@dataclass
class Collected:
    """One subject's discovery and what was gathered on top of it. ``incomplete`` says why
    the export would miss records (a discovery bound, an event or ticket bound, a failed
    download): such an export is never delivered. Ambiguities (``discovery.ambiguities``)
    may be waived by an operator who checked that every user found is the same person."""

    discovery: Discovery
    gathered: Gathered
    incomplete: list[str]
    events_per_profile: dict[str, int]
    conversations: Conversations | None = None


class AccessJob(RunContext):
    """One subject's access request as the step engine runs it: what the collection steps
    found (in memory only) and, once delivered, what went out."""

    def __init__(
        self,
        subject: Subject,
        *,
        position: int = 1,
        session: RequestSession | None = None,
        request_id: str = "",
        subject_ref: str = "",
    ) -> None:
        super().__init__()
        self.subject: Subject | None = subject
        self.position = position
        self._session = session
        if session is not None:
            request_id = session.request_id or request_id
            subject_ref = session.subject_ref
        self.request_id = request_id
        self.subject_ref = subject_ref
        # The batch folder this subject's answer goes to (case reference or request id).
        self.folder = request_id
        self.started_at = now()
        self.run: DiscoveryRun | None = None
        self.discovery: Discovery | None = None
        self.users: list[dict[str, Any]] = []
        self.conversations = Conversations()
        self.organizations: dict[int, dict[str, Any]] = {}
        self.memberships: dict[int, dict[str, Any]] = {}
        self.compliance: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.events_per_profile: dict[str, int] = {}
        self.systems: list[str] = []
        self.endpoints: set[str] = set()
        self.incomplete: list[str] = []
        self.error: ZendeskError | None = None
        self.result = SubjectResult(position, subject_ref, request_id, "failed")

    @property
    def session(self) -> RequestSession:
        """The request in the ledger (a job run by :func:`collect` alone has none)."""
        if self._session is None:
            raise RuntimeError("this job records nothing: it has no request session")
        return self._session

    def needs_discovery(self) -> bool:
        """Access always discovers afresh: an answer is about what Zendesk holds now."""
        return True

    def collected(self, policy: AccessPolicy) -> Collected:
        """Everything gathered so far, in the export's order (tickets as presented by
        :meth:`Conversations.present`, read from the spool)."""
        found = self.discovery
        if found is None:
            raise RuntimeError("discovery has not run")
        talk = self.conversations
        identities = [
            without(identity, policy.identity_exclude_fields)
            for uid in found.user_ids()
            for identity in sorted(
                found.identities.get(uid, []), key=lambda i: as_int(i.get("id")) or 0
            )
        ]
        gathered = Gathered(
            users=list(self.users),
            identities=identities,
            profiles=[dict(found.profiles[pid]) for pid in sorted(found.profiles)],
            events=list(self.events),
            tickets=PresentedTickets(talk.presented) if talk.presented is not None else [],
            compliance_deletion_statuses=sorted(
                self.compliance, key=lambda c: (c["user_id"], str(c.get("created_at") or ""))
            ),
            searched={
                "systems": [*found.searched()["systems"], *self.systems],
                "endpoints": sorted(set(found.searched()["endpoints"]) | self.endpoints),
                "profile_sources": list(found.profile_sources),
            },
            organizations=[self.organizations[k] for k in sorted(self.organizations)],
            organization_memberships=[self.memberships[k] for k in sorted(self.memberships)],
            people=talk.people.legend() if talk.people is not None else [],
            not_covered=not_covered(policy),
            others=policy.others,
            ticket_counts=talk.stats if talk.presented is not None else None,
        )
        return Collected(
            found,
            gathered,
            list(self.incomplete),
            dict(self.events_per_profile),
            conversations=talk,
        )


def _counted(number: int, plural: str) -> str:
    """``1 user``, ``2 users``, ``0 events``."""
    return f"{number} {plural[:-1] if number == 1 else plural}"


def not_covered(policy: AccessPolicy) -> list[str]:
    """What this answer does not cover: :data:`NOT_COVERED`, plus what the playbook left
    out."""
    skipped = []
    if not policy.collect_tickets:
        skipped.append("Support tickets and their comments (not in this playbook)")
    elif policy.collect_tickets and not policy.collect_attachments:
        skipped.append("Files attached to ticket comments (listed, not downloaded)")
    if policy.collect_tickets and not policy.include_internal_notes:
        skipped.append("Internal notes by agents (withheld by the controller's playbook)")
    if not policy.collect_events:
        skipped.append("Sunshine profile events (not in this playbook)")
    if not policy.collect_organizations:
        skipped.append("Organizations and memberships (not in this playbook)")
    return [*skipped, *NOT_COVERED]


@dataclass
class SubjectResult:
    """How one subject's access request ended. No personal data: the subject is named by
    its position in the input and its keyed reference."""

    position: int
    subject_ref: str
    request_id: str
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    out_dir: Path | None = None
    files: list[DeliveredFile] = field(default_factory=list)
    report_path: Path | None = None
    report_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("data_found", "no_data_found")

    def line(self) -> str:
        """One line for the terminal: position, request, outcome, what was found and where
        the answer was prepared, or why not (ids and counts only, no personal data)."""
        counts = self.counts
        found = ", ".join(_counted(counts.get(key, 0), key) for key in SUMMARY_COUNTS)
        head = f"#{self.position} {self.request_id}: {self.outcome.replace('_', ' ')}"
        if self.ok:
            where = os.fsdecode(self.out_dir) if self.out_dir else "-"
            return f"{head} ({found}) -> prepared in {where}"
        return f"{head}: " + "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "subject_ref": self.subject_ref,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "counts": dict(self.counts),
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "files": [f.as_dict() for f in self.files],
            "report": str(self.report_path) if self.report_path else None,
            "report_sha256": self.report_sha256,
        }


@dataclass
class AccessRun:
    """The result of one ``privacykit access`` invocation."""

    out: Path
    results: list[SubjectResult]
    checkpoint_size: int | None = None

    @property
    def exit_code(self) -> int:
        """0 when every subject got an answer (data or "nothing found"), else 1."""
        return 0 if all(r.ok for r in self.results) else 1

    def lines(self) -> list[str]:
        """What the terminal shows: one line per request, then the totals."""
        totals = self.as_dict()["outcomes"]
        summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(totals.items()))
        return [*(r.line() for r in self.results), f"{len(self.results)} request(s): {summary}"]

    def as_dict(self) -> dict[str, Any]:
        totals: dict[str, int] = {}
        for result in self.results:
            totals[result.outcome] = totals.get(result.outcome, 0) + 1
        return {
            "out": str(self.out),
            "outcomes": totals,
            "requests": [r.as_dict() for r in self.results],
            "checkpoint_tree_size": self.checkpoint_size,
            "exit_code": self.exit_code,
        }
