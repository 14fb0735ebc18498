"""One subject's access request while it runs, and what a run returns.

Owns the per-subject state the steps share (:class:`AccessJob`: what discovery and the
collection steps found, in memory only), the gathered records in export order
(:class:`Gathered`, :class:`Collected`), and the results handed back to the CLI
(:class:`SubjectResult`, :class:`AccessRun`). No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from privacykit import clock
from privacykit.errors import ZendeskError
from privacykit.playbooks.access.files import DeliveredFile
from privacykit.playbooks.access.kind import AccessPolicy
from privacykit.playbooks.discovery import Discovery, DiscoveryRun
from privacykit.playbooks.engine import RunContext
from privacykit.playbooks.subjects import Subject

__all__ = [
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


def now() -> str:
    return clock.now_iso()


def without(record: Mapping[str, Any], excluded: frozenset[str]) -> dict[str, Any]:
    """``record`` minus the ``excluded`` keys."""
    return {key: value for key, value in record.items() if key not in excluded}


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Gathered:
    """Everything found for one person, as Zendesk returned it (plus the link fields we add:
    ``users[].related``, ``events[].profile_id``, ``tickets[].user_id``)."""

    users: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    profiles: list[dict[str, Any]]
    events: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    compliance_deletion_statuses: list[dict[str, Any]]
    searched: dict[str, list[str]]

    @property
    def found(self) -> bool:
        return bool(self.users or self.profiles)

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "identities": len(self.identities),
            "profiles": len(self.profiles),
            "profile_identifiers": sum(len(p.get("identifiers") or []) for p in self.profiles),
            "profile_attributes": sum(len(p.get("attributes") or {}) for p in self.profiles),
            "events": len(self.events),
            "tickets": len(self.tickets),
            "compliance_deletion_statuses": len(self.compliance_deletion_statuses),
        }


@dataclass
class Collected:
    """One subject's discovery and what was gathered on top of it. ``incomplete`` says why
    the export would miss records (a discovery bound, an event bound): such an export is
    never delivered. Ambiguities (``discovery.ambiguities``) may be waived by an operator
    who checked that every user found is the same person."""

    discovery: Discovery
    gathered: Gathered
    incomplete: list[str]
    events_per_profile: dict[str, int]


class AccessJob(RunContext):
    """One subject's access request as the step engine runs it: what the collection steps
    found (in memory only) and, once delivered, what went out."""

    def __init__(
        self,
        subject: Subject,
        *,
        position: int = 1,
        request_id: str = "",
        subject_ref: str = "",
    ) -> None:
        super().__init__()
        self.subject = subject
        self.position = position
        self.request_id = request_id
        self.subject_ref = subject_ref
        # The batch folder this subject's answer goes to (case reference or request id).
        self.folder = request_id
        self.started_at = now()
        self.run: DiscoveryRun | None = None
        self.discovery: Discovery | None = None
        self.users: list[dict[str, Any]] = []
        self.tickets: list[dict[str, Any]] = []
        self.compliance: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.events_per_profile: dict[str, int] = {}
        self.systems: list[str] = []
        self.endpoints: set[str] = set()
        self.incomplete: list[str] = []
        self.error: ZendeskError | None = None
        self.result = SubjectResult(position, subject_ref, request_id, "failed")

    def collected(self, policy: AccessPolicy) -> Collected:
        """Everything gathered so far, in the export's order."""
        found = self.discovery
        if found is None:
            raise RuntimeError("discovery has not run")
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
            tickets=sorted(self.tickets, key=lambda t: (t["user_id"], as_int(t.get("id")) or 0)),
            compliance_deletion_statuses=sorted(
                self.compliance, key=lambda c: (c["user_id"], str(c.get("created_at") or ""))
            ),
            searched={
                "systems": [*found.searched()["systems"], *self.systems],
                "endpoints": sorted(set(found.searched()["endpoints"]) | self.endpoints),
                "profile_sources": list(found.profile_sources),
            },
        )
        return Collected(found, gathered, list(self.incomplete), dict(self.events_per_profile))


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
