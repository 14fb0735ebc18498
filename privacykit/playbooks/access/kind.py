"""The access playbook kind: its steps, its Art. 15 facts, and the typed policy.

Owns :data:`ACCESS_KIND` (registered with the playbook loader on import, so ``playbook
validate`` knows access playbooks), :data:`ART15_FIELDS` (the facts GDPR Art. 15(1)(a)-(h)
and 15(2) require alongside the data), :class:`ProcessingFacts` and :class:`AccessPolicy`
(the playbook as typed values the other modules of this package read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacykit.errors import PlaybookError
from privacykit.playbooks.loader import (
    Bool,
    Field,
    Int,
    KindSchema,
    ListOf,
    Playbook,
    Step,
    StepSchema,
    Str,
    Struct,
    register_kind,
)
from privacykit.playbooks.policy import DISCOVERY_POLICY_FIELDS, DISCOVERY_STEPS, DiscoveryPolicy

__all__ = [
    "ACCESS_KIND",
    "ACCESS_STEPS",
    "ART15_FIELDS",
    "OTHERS_POLICIES",
    "TICKET_RELATIONS",
    "AccessPolicy",
    "ProcessingFacts",
    "default_steps",
    "engine_playbook",
]

# The facts GDPR Art. 15(1)(a)-(h) and 15(2) require alongside the data, in the order the
# report shows them. A DPO writes them once, in the playbook's ``processing`` section.
# name -> (is a list, heading)
ART15_FIELDS: dict[str, tuple[bool, str]] = {
    "controller": (False, "Controller"),
    "contact": (False, "Contact / data protection officer"),
    "purposes": (True, "Purposes of the processing (Art. 15(1)(a))"),
    "legal_bases": (True, "Legal bases (Art. 6)"),
    "recipients": (True, "Recipients or categories of recipients (Art. 15(1)(c))"),
    "retention": (False, "Retention period or criteria (Art. 15(1)(d))"),
    "source": (False, "Source of the data (Art. 15(1)(g))"),
    "rights": (True, "Your rights (Art. 15(1)(e))"),
    "complaint": (False, "Right to lodge a complaint (Art. 15(1)(f))"),
    "automated_decision_making": (False, "Automated decision-making (Art. 15(1)(h))"),
    "third_country_transfers": (False, "Transfers to third countries (Art. 15(2))"),
}


# --- the access playbook kind ------------------------------------------------------------

TICKET_RELATIONS = ("requested", "ccd", "followed")
OTHERS_POLICIES = ("pseudonymise", "keep")
MB = 1024**2

_FIELD_NAME = Str(pattern=r"[A-Za-z0-9_.-]{1,100}", pattern_help="a field name")

ACCESS_STEPS: dict[str, StepSchema] = {
    **DISCOVERY_STEPS,
    "collect_records": StepSchema(
        required=True,
        needs=("discover",),
        doc="user records, identities, profiles with identifiers and attributes, related counts",
    ),
    "collect_events": StepSchema(
        needs=("discover",),
        after=("collect_records",),
        options=Struct({"max_per_profile": Field(Int(min=1, max=10_000_000), default=1_000_000)}),
        doc="the Sunshine events of every profile (cursor-paginated)",
    ),
    "collect_tickets": StepSchema(
        needs=("discover",),
        after=("collect_records", "collect_events"),
        options=Struct(
            {
                "relations": Field(
                    ListOf(Str(choices=TICKET_RELATIONS), min_items=1, unique=True),
                    default=list(TICKET_RELATIONS),
                ),
                # Internal notes about the person are personal data Zendesk holds on them
                # (Art. 15); a DPO who withholds them under an exemption says so here, and
                # the report states it.
                "include_internal_notes": Field(Bool(), default=True),
                "max_tickets": Field(Int(min=1, max=10_000_000), default=100_000),
            }
        ),
        doc="the tickets the person requested, is CC'd on or follows, with every comment "
        "(all pages), satisfaction ratings, and who took part (agents or other customers)",
    ),
    "collect_attachments": StepSchema(
        needs=("collect_tickets",),
        after=("collect_tickets",),
        options=Struct(
            {
                "max_file_bytes": Field(Int(min=0, max=10 * 1024**3), default=50 * 1024**2),
                "max_total_bytes": Field(Int(min=0, max=1024**4), default=2 * 1024**3),
            }
        ),
        doc="the files attached to those comments, downloaded into the answer up to a size "
        "cap per file and in total (over a cap: listed, not downloaded)",
    ),
    "collect_organizations": StepSchema(
        needs=("discover",),
        after=("collect_records",),
        doc="the person's organizations and organization memberships",
    ),
    "collect_compliance": StepSchema(
        needs=("discover",),
        after=("collect_records",),
        doc="Zendesk's compliance deletion history for each user, if any",
    ),
    "export": StepSchema(
        required=True,
        needs=("collect_records",),
        after=(
            "collect_events",
            "collect_tickets",
            "collect_attachments",
            "collect_organizations",
            "collect_compliance",
        ),
        options=Struct(
            {
                # Fields that describe Zendesk's API rather than the person (the record's
                # own API URL, an inert flag); everything else Zendesk holds is exported.
                "user_exclude_fields": Field(
                    ListOf(_FIELD_NAME, unique=True), default=["url", "report_csv"]
                ),
                "ticket_exclude_fields": Field(ListOf(_FIELD_NAME, unique=True), default=["url"]),
                "identity_exclude_fields": Field(ListOf(_FIELD_NAME, unique=True), default=["url"]),
                "organization_exclude_fields": Field(
                    ListOf(_FIELD_NAME, unique=True), default=["url"]
                ),
            }
        ),
        doc="data.json, one CSV per record type and index.html (readable by the person)",
    ),
    "evidence": StepSchema(
        required=True, last=True, doc="the evidence record and the signed access report"
    ),
}

_TEXT = Str(max_length=4000)
_TEXTS = ListOf(_TEXT, min_items=1)
PROCESSING_SCHEMA = Struct(
    {
        name: Field(_TEXTS if is_list else _TEXT, required=True)
        for name, (is_list, _heading) in ART15_FIELDS.items()
    }
)

ACCESS_KIND = KindSchema(
    kind="access",
    steps=ACCESS_STEPS,
    policy=Struct(
        {
            **DISCOVERY_POLICY_FIELDS,
            # Art. 15(4): the copy must not adversely affect the rights of others. Other
            # customers in the person's conversations appear as "another customer #n"
            # (their names, addresses and ids withheld) unless the DPO decides to keep them.
            "others": Field(Str(choices=OTHERS_POLICIES), default="pseudonymise"),
        }
    ),
    extra={
        "gdpr": Field(Struct({"ground": Field(Str(), default="Art. 15 and Art. 20")})),
        "processing": Field(PROCESSING_SCHEMA, required=True),
    },
)
register_kind(ACCESS_KIND)


@dataclass(frozen=True)
class ProcessingFacts:
    """The Art. 15 facts from the playbook: field name -> text or list of texts."""

    values: Mapping[str, str | tuple[str, ...]]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "processing") -> ProcessingFacts:
        """Check and freeze the playbook's ``processing`` mapping. Raises ``ValueError``
        naming the key; the playbook loader turns that into a PlaybookError with a line."""
        values: dict[str, str | tuple[str, ...]] = {}
        unknown = set(data) - set(ART15_FIELDS)
        if unknown:
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown key")
        for name, (is_list, _heading) in ART15_FIELDS.items():
            value = data.get(name)
            if is_list:
                if not isinstance(value, list) or not value:
                    raise ValueError(f"{where}.{name}: must be a non-empty list of texts")
                if not all(isinstance(v, str) and v.strip() for v in value):
                    raise ValueError(f"{where}.{name}: every entry must be non-empty text")
                values[name] = tuple(v.strip() for v in value)
            else:
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where}.{name}: must be non-empty text")
                values[name] = value.strip()
        return cls(values)

    def as_dict(self) -> dict[str, str | list[str]]:
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.values.items()
        }


# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessPolicy:
    """The access playbook as typed values."""

    name: str
    sha256: str
    discovery: DiscoveryPolicy
    facts: ProcessingFacts
    ground: str = "Art. 15 and Art. 20"
    collect_events: bool = True
    max_events_per_profile: int = 1_000_000
    collect_tickets: bool = True
    ticket_relations: tuple[str, ...] = TICKET_RELATIONS
    include_internal_notes: bool = True
    max_tickets: int = 100_000
    collect_attachments: bool = True
    max_attachment_bytes: int = 50 * MB
    max_total_attachment_bytes: int = 2048 * MB
    collect_organizations: bool = True
    collect_compliance: bool = True
    others: str = "pseudonymise"
    user_exclude_fields: frozenset[str] = frozenset({"url", "report_csv"})
    ticket_exclude_fields: frozenset[str] = frozenset({"url"})
    identity_exclude_fields: frozenset[str] = frozenset({"url"})
    organization_exclude_fields: frozenset[str] = frozenset({"url"})
    playbook: Playbook | None = None

    @classmethod
    def from_playbook(cls, playbook: Playbook) -> AccessPolicy:
        if playbook.kind != "access":
            raise PlaybookError(
                f"not an access playbook (kind {playbook.kind!r})",
                file=str(playbook.path or playbook.name),
                key="kind",
            )
        events = playbook.step("collect_events")
        export = playbook.step("export")
        export_options: Mapping[str, Any] = export.options if export else {}
        tickets = playbook.step("collect_tickets")
        ticket_options: Mapping[str, Any] = tickets.options if tickets else {}
        attachments = playbook.step("collect_attachments")
        attachment_options: Mapping[str, Any] = attachments.options if attachments else {}
        return cls(
            name=playbook.name,
            sha256=playbook.sha256,
            discovery=DiscoveryPolicy.from_mapping(playbook.policy),
            facts=ProcessingFacts.from_mapping(playbook.data["processing"]),
            ground=(playbook.data.get("gdpr") or {}).get("ground", cls.ground),
            collect_events=events is not None,
            max_events_per_profile=int(
                events.options["max_per_profile"] if events else cls.max_events_per_profile
            ),
            collect_tickets=tickets is not None,
            ticket_relations=tuple(ticket_options.get("relations", TICKET_RELATIONS)),
            include_internal_notes=bool(ticket_options.get("include_internal_notes", True)),
            max_tickets=int(ticket_options.get("max_tickets", cls.max_tickets)),
            collect_attachments=attachments is not None,
            max_attachment_bytes=int(
                attachment_options.get("max_file_bytes", cls.max_attachment_bytes)
            ),
            max_total_attachment_bytes=int(
                attachment_options.get("max_total_bytes", cls.max_total_attachment_bytes)
            ),
            collect_organizations=playbook.has_step("collect_organizations"),
            collect_compliance=playbook.has_step("collect_compliance"),
            others=str(playbook.policy.get("others", "pseudonymise")),
            user_exclude_fields=frozenset(export_options.get("user_exclude_fields", ())),
            ticket_exclude_fields=frozenset(export_options.get("ticket_exclude_fields", ())),
            identity_exclude_fields=frozenset(export_options.get("identity_exclude_fields", ())),
            organization_exclude_fields=frozenset(
                export_options.get("organization_exclude_fields", ())
            ),
            playbook=playbook,
        )


def default_steps(policy: AccessPolicy) -> list[str]:
    """The steps a policy built in code runs, in the shipped playbook's order."""
    steps = ["resolve_subject", "discover", "collect_records"]
    if policy.collect_events:
        steps.append("collect_events")
    if policy.collect_tickets:
        steps.append("collect_tickets")
        if policy.collect_attachments:
            steps.append("collect_attachments")
    if policy.collect_organizations:
        steps.append("collect_organizations")
    if policy.collect_compliance:
        steps.append("collect_compliance")
    return [*steps, "export", "evidence"]


def engine_playbook(policy: AccessPolicy) -> Playbook:
    """The playbook whose steps the engine runs: the loaded one, or (for a policy built in
    code) the default steps the policy's switches describe."""
    if policy.playbook is not None:
        return policy.playbook
    return Playbook(
        name=policy.name,
        kind="access",
        description="",
        steps=tuple(Step(name, {}) for name in default_steps(policy)),
        policy={},
        data={},
        sha256=policy.sha256,
    )
