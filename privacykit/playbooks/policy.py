"""The erasure policy: its playbook schema, its data model, and the pure planning logic.

Owns the ``erasure`` playbook kind (steps and policy schema, registered with the loader),
:class:`DiscoveryPolicy` (what discovery searches; reused by access), :class:`ErasurePolicy`,
and the decisions that need no network: what to do with one Sunshine profile
(:func:`plan_profile`) and whether a user may be erased (:func:`protected_reason`).

Nothing here talks to Zendesk; everything is unit-testable with plain dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from privacykit.playbooks.loader import (
    Bool,
    Field,
    Int,
    KindSchema,
    ListOf,
    OneOf,
    Playbook,
    StepSchema,
    Str,
    Struct,
    register_kind,
)
from privacykit.playbooks.ticket_policy import (
    TICKET_STEPS,
    TICKETS_POLICY_FIELD,
    TicketPolicy,
    validate_ticket_policy,
)

__all__ = [
    "DISCOVERY_POLICY_FIELDS",
    "DISCOVERY_STEPS",
    "ERASURE_KIND",
    "ERASURE_STEPS",
    "DiscoveryPolicy",
    "ErasurePolicy",
    "ProfileAction",
    "ProfilePlan",
    "Retention",
    "plan_profile",
    "protected_reason",
]

SOURCE_TYPE_PATTERN = r"[A-Za-z0-9_.-]{1,100}:[A-Za-z0-9_.-]{1,100}"
_TYPE_NAME = Str(pattern=r"[A-Za-z0-9_.-]{1,100}", pattern_help="an identifier type name")
_ARTICLE = Str(
    pattern=r"Art\. ?\d+(\(\d+\))?(\([a-z]\))?.*",
    pattern_help="a GDPR article like 'Art. 17(3)(b)'",
)

# Reused by the access playbook: what discovery searches and how far it may go.
DISCOVERY_POLICY_FIELDS: dict[str, Field] = {
    "profile_sources": Field(
        ListOf(
            Str(pattern=SOURCE_TYPE_PATTERN, pattern_help="a Sunshine profile 'source:type' pair"),
            unique=True,
        ),
        default=[],
        doc="Sunshine profile source:type pairs searched with identifier queries",
    ),
    "discovery": Field(
        Struct(
            {
                "max_rounds": Field(Int(min=1, max=50), default=8),
                "max_users": Field(Int(min=1, max=1000), default=25),
                "max_profiles": Field(Int(min=1, max=5000), default=200),
                "max_identifier_queries": Field(Int(min=1, max=20000), default=1000),
            }
        )
    ),
}

_RETAINED_IDENTIFIER = Struct(
    {
        "type": Field(_TYPE_NAME, required=True),
        "article": Field(_ARTICLE, required=True),
        "why": Field(Str(), required=True),
    }
)
_RETAINED_ATTRIBUTE = Struct(
    {
        "key": Field(
            Str(pattern=r"[A-Za-z0-9_.-]{1,200}", pattern_help="an attribute key"), required=True
        ),
        "article": Field(_ARTICLE, required=True),
        "why": Field(Str(), required=True),
    }
)
_ALL_OR_LIST = OneOf((Str(choices=("all",)), ListOf(_TYPE_NAME, min_items=1, unique=True)))

ERASURE_POLICY = Struct(
    {
        **DISCOVERY_POLICY_FIELDS,
        "personal": Field(
            Struct(
                {
                    "identifier_types": Field(_ALL_OR_LIST, default="all"),
                    "attribute_keys": Field(_ALL_OR_LIST, default="all"),
                }
            )
        ),
        "retain": Field(
            Struct(
                {
                    "identifiers": Field(
                        ListOf(_RETAINED_IDENTIFIER, unique_by="type"), default=[]
                    ),
                    "attributes": Field(ListOf(_RETAINED_ATTRIBUTE, unique_by="key"), default=[]),
                }
            )
        ),
        "profiles": Field(Str(choices=("delete", "keep_scrubbed")), default="delete"),
        "keep_profiles": Field(
            Struct({"article": Field(_ARTICLE, required=True), "why": Field(Str(), required=True)}),
            default={},
        ),
        "scrubbed_profile_name": Field(Str(), default="Erased person"),
        "protected_roles": Field(
            ListOf(Str(choices=("end-user", "agent", "admin")), unique=True),
            default=["agent", "admin"],
        ),
        "compliance": Field(
            Struct(
                {
                    "wait_days": Field(Int(min=1, max=365), default=30),
                    "applications": Field(
                        ListOf(
                            Str(pattern=r"[a-z][a-z0-9_/-]{0,40}", pattern_help="an application"),
                            unique=True,
                        ),
                        default=["support"],
                    ),
                }
            )
        ),
        "confirm_ambiguous": Field(Bool(), default=False),
        "tickets": TICKETS_POLICY_FIELD,
    }
)

# The first two steps of every playbook kind that works on a person (erasure, access).
DISCOVERY_STEPS: dict[str, StepSchema] = {
    "resolve_subject": StepSchema(required=True, doc="find the users the subject names directly"),
    "discover": StepSchema(
        required=True,
        needs=("resolve_subject",),
        doc="every user, identity and profile, to a fixed point (shared by erasure and access)",
    ),
}

ERASURE_STEPS: dict[str, StepSchema] = {
    **DISCOVERY_STEPS,
    "check_safety": StepSchema(
        required=True,
        needs=("discover",),
        after=("discover_tickets",),
        doc="refuse protected roles and unconfirmed ambiguous subjects",
    ),
    "replace_profiles": StepSchema(
        needs=("check_safety",), doc="PUT profiles without personal data; delete per policy"
    ),
    **TICKET_STEPS,
    "soft_delete_users": StepSchema(
        needs=("check_safety",), after=("replace_profiles", "erase_tickets")
    ),
    "permanently_delete_users": StepSchema(needs=("soft_delete_users",)),
    "poll_compliance": StepSchema(needs=("permanently_delete_users",)),
    "evidence": StepSchema(
        required=True, last=True, doc="record the evidence and produce the report"
    ),
}


def _validate_erasure(data: dict[str, Any], error: Any) -> None:
    policy = data["policy"]
    art19 = data["art19_recipients"]
    if not art19["recipients"] and not art19["none_reason"].strip():
        raise error(
            ("art19_recipients",),
            "list the recipients to notify (Art. 19) or say in none_reason why there are none",
        )
    if policy["profiles"] == "keep_scrubbed" and not policy["keep_profiles"]:
        raise error(
            ("policy", "profiles"),
            "keep_scrubbed needs policy.keep_profiles {article, why}: "
            "the evidence must say why events remain",
        )
    validate_ticket_policy(data, error)
    personal = policy["personal"]["identifier_types"]
    if personal != "all":
        for i, item in enumerate(policy["retain"]["identifiers"]):
            if item["type"].lower() not in {t.lower() for t in personal}:
                raise error(
                    ("policy", "retain", "identifiers", i, "type"),
                    "retains an identifier type that is not listed as personal (it is kept anyway)",
                )


ERASURE_KIND = KindSchema(
    kind="erasure",
    steps=ERASURE_STEPS,
    policy=ERASURE_POLICY,
    extra={
        "gdpr": Field(Struct({"ground": Field(_ARTICLE, default="Art. 17(1)")})),
        "art19_recipients": Field(
            Struct(
                {
                    "recipients": Field(ListOf(Str(), unique=True), default=[]),
                    "none_reason": Field(Str(allow_empty=True), default=""),
                }
            )
        ),
    },
    validate=_validate_erasure,
)
register_kind(ERASURE_KIND)


@dataclass(frozen=True)
class DiscoveryPolicy:
    """What discovery searches and its bounds (so a loop over linked records always ends)."""

    profile_sources: tuple[str, ...] = ()
    max_rounds: int = 8
    max_users: int = 25
    max_profiles: int = 200
    max_identifier_queries: int = 1000

    @classmethod
    def from_mapping(cls, policy: Mapping[str, Any]) -> DiscoveryPolicy:
        """From a validated policy mapping holding ``profile_sources`` and ``discovery``."""
        bounds = policy.get("discovery") or {}
        return cls(
            profile_sources=tuple(policy.get("profile_sources") or ()),
            max_rounds=int(bounds.get("max_rounds", cls.max_rounds)),
            max_users=int(bounds.get("max_users", cls.max_users)),
            max_profiles=int(bounds.get("max_profiles", cls.max_profiles)),
            max_identifier_queries=int(
                bounds.get("max_identifier_queries", cls.max_identifier_queries)
            ),
        )


@dataclass(frozen=True)
class Retention:
    """Something kept on legal grounds: an identifier type or an attribute key."""

    name: str
    article: str
    why: str


@dataclass(frozen=True)
class ErasurePolicy:
    """The erasure policy of a playbook, as typed values."""

    discovery: DiscoveryPolicy = field(default_factory=DiscoveryPolicy)
    personal_identifier_types: frozenset[str] | None = None  # None: every type is personal
    personal_attribute_keys: frozenset[str] | None = None
    retain_identifiers: tuple[Retention, ...] = ()
    retain_attributes: tuple[Retention, ...] = ()
    profiles: Literal["delete", "keep_scrubbed"] = "delete"
    keep_profiles_article: str | None = None
    keep_profiles_why: str | None = None
    scrubbed_profile_name: str = "Erased person"
    protected_roles: frozenset[str] = frozenset({"agent", "admin"})
    compliance_wait_days: int = 30
    compliance_applications: tuple[str, ...] = ("support",)
    ground: str = "Art. 17(1)"
    art19_recipients: tuple[str, ...] = ()
    art19_none_reason: str | None = None
    tickets: TicketPolicy = field(default_factory=TicketPolicy)

    @property
    def profile_sources(self) -> tuple[str, ...]:
        return self.discovery.profile_sources

    @classmethod
    def from_playbook(cls, playbook: Playbook) -> ErasurePolicy:
        if playbook.kind != "erasure":
            raise ValueError(f"not an erasure playbook: {playbook.kind}")
        policy = playbook.policy
        personal = policy["personal"]
        retain = policy["retain"]
        keep = policy["keep_profiles"] or {}
        art19 = playbook.data.get("art19_recipients") or {}

        def types(value: Any) -> frozenset[str] | None:
            return None if value == "all" else frozenset(str(v).lower() for v in value)

        return cls(
            discovery=DiscoveryPolicy.from_mapping(policy),
            personal_identifier_types=types(personal["identifier_types"]),
            personal_attribute_keys=(
                None
                if personal["attribute_keys"] == "all"
                else frozenset(personal["attribute_keys"])
            ),
            retain_identifiers=tuple(
                Retention(r["type"].lower(), r["article"], r["why"]) for r in retain["identifiers"]
            ),
            retain_attributes=tuple(
                Retention(r["key"], r["article"], r["why"]) for r in retain["attributes"]
            ),
            profiles=policy["profiles"],
            keep_profiles_article=keep.get("article"),
            keep_profiles_why=keep.get("why"),
            scrubbed_profile_name=policy["scrubbed_profile_name"],
            protected_roles=frozenset(policy["protected_roles"]),
            compliance_wait_days=policy["compliance"]["wait_days"],
            compliance_applications=tuple(policy["compliance"]["applications"]),
            ground=(playbook.data.get("gdpr") or {}).get("ground", "Art. 17(1)"),
            art19_recipients=tuple(art19.get("recipients") or ()),
            art19_none_reason=art19.get("none_reason") or None,
            tickets=TicketPolicy.from_mapping(policy.get("tickets")),
        )

    # --- decisions ---------------------------------------------------------------------

    def identifier_is_personal(self, identifier_type: str) -> bool:
        types = self.personal_identifier_types
        return types is None or identifier_type.lower() in types

    def retained_identifier(self, identifier_type: str) -> Retention | None:
        wanted = identifier_type.lower()
        return next((r for r in self.retain_identifiers if r.name == wanted), None)

    def attribute_is_personal(self, key: str) -> bool:
        keys = self.personal_attribute_keys
        return keys is None or key in keys

    def retained_attribute(self, key: str) -> Retention | None:
        return next((r for r in self.retain_attributes if r.name == key), None)

    def exceptions(self) -> list[dict[str, str]]:
        """The Art. 17(3) exceptions this policy relies on, for the evidence record."""
        out = [
            {"article": r.article, "kept": f"identifier type '{r.name}' on profiles", "why": r.why}
            for r in self.retain_identifiers
        ]
        out += [
            {"article": r.article, "kept": f"attribute '{r.name}' on profiles", "why": r.why}
            for r in self.retain_attributes
        ]
        if self.profiles == "keep_scrubbed":
            out.append(
                {
                    "article": self.keep_profiles_article or "",
                    "kept": "scrubbed Sunshine profiles and their events",
                    "why": self.keep_profiles_why or "",
                }
            )
        return out


ProfileAction = Literal["delete", "scrub_then_delete", "scrub", "retain"]


@dataclass(frozen=True)
class ProfilePlan:
    """What erasure does with one profile. ``replacement`` (the PUT body) holds only retained
    values; it lives in memory and is never recorded."""

    profile_id: str
    source_type: str
    user_id: int | None
    action: ProfileAction
    replacement: dict[str, Any] | None = field(default=None, repr=False)
    identifiers_removed: int = 0
    identifiers_kept: int = 0
    attributes_removed: int = 0
    attributes_kept: int = 0
    why: str | None = None

    @property
    def evidence_action(self) -> str:
        """``deleted``, ``scrubbed`` or ``retained`` (the evidence vocabulary)."""
        if self.action in ("delete", "scrub_then_delete"):
            return "deleted"
        return "scrubbed" if self.action == "scrub" else "retained"

    @property
    def events_remain(self) -> bool:
        """Sunshine events go only with their profile (Zendesk's privacy guidance)."""
        return self.action in ("scrub", "retain")

    @property
    def needs_put(self) -> bool:
        return self.action in ("scrub", "scrub_then_delete")

    @property
    def needs_delete(self) -> bool:
        return self.action in ("delete", "scrub_then_delete")

    def summary(self) -> dict[str, Any]:
        """Ids and counts only: safe for the ledger and the evidence."""
        return {
            "profile_id": self.profile_id,
            "source_type": self.source_type,
            "user_id": self.user_id,
            "action": self.action,
            "identifiers_removed": self.identifiers_removed,
            "identifiers_kept": self.identifiers_kept,
            "attributes_removed": self.attributes_removed,
            "attributes_kept": self.attributes_kept,
        }


def _user_id(value: Any) -> int | None:
    # Profiles carry user_id as a string ("81123613"); users as integers.
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def plan_profile(profile: Mapping[str, Any], policy: ErasurePolicy) -> ProfilePlan:
    """Decide what to do with one profile of the person.

    Identifiers and attributes the policy marks personal are removed unless a retention rule
    keeps them. With nothing left to identify the profile it is deleted (identifiers are
    mandatory). With something left, the profile is replaced (PUT) without the rest; the
    default policy then deletes it too, because its events can only go with it."""
    identifiers = [i for i in profile.get("identifiers") or [] if isinstance(i, Mapping)]
    attributes = profile.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        attributes = {}

    kept_ids = [
        {"type": i.get("type"), "value": i.get("value")}
        for i in identifiers
        if not policy.identifier_is_personal(str(i.get("type", "")))
        or policy.retained_identifier(str(i.get("type", ""))) is not None
    ]
    kept_attrs = {
        k: v
        for k, v in attributes.items()
        if not policy.attribute_is_personal(str(k)) or policy.retained_attribute(str(k)) is not None
    }
    removed_ids = len(identifiers) - len(kept_ids)
    removed_attrs = len(attributes) - len(kept_attrs)
    # The name is personal by nature; a kept profile gets the neutral name (without one,
    # Zendesk would derive a name from an identifier value).
    name_changes = profile.get("name") not in (None, policy.scrubbed_profile_name)
    changes = removed_ids > 0 or removed_attrs > 0 or name_changes

    source_type = f"{profile.get('source', '')}:{profile.get('type', '')}"
    common = {
        "profile_id": str(profile.get("id", "")),
        "source_type": source_type,
        "user_id": _user_id(profile.get("user_id")),
        "identifiers_removed": removed_ids,
        "identifiers_kept": len(kept_ids),
        "attributes_removed": removed_attrs,
        "attributes_kept": len(kept_attrs),
    }
    replacement = {
        "source": profile.get("source"),
        "type": profile.get("type"),
        "name": policy.scrubbed_profile_name,
        "identifiers": kept_ids,
        "attributes": kept_attrs,
    }
    if not kept_ids:
        return ProfilePlan(action="delete", **common)  # type: ignore[arg-type]
    # ``replacement`` is filled whenever something may be kept, even when nothing changes:
    # a resumed run compares it with the profile to tell whether an earlier PUT happened.
    if policy.profiles == "delete":
        action: ProfileAction = "scrub_then_delete" if changes else "delete"
        return ProfilePlan(action=action, replacement=replacement, **common)  # type: ignore[arg-type]
    why = f"{policy.keep_profiles_article}: {policy.keep_profiles_why}"
    if changes:
        return ProfilePlan(action="scrub", replacement=replacement, why=why, **common)  # type: ignore[arg-type]
    return ProfilePlan(action="retain", replacement=replacement, why=why, **common)  # type: ignore[arg-type]


_OWNER_FLAGS = ("is_owner", "owner")


def protected_reason(user: Mapping[str, Any], policy: ErasurePolicy) -> str | None:
    """Why this user must not be erased under the policy, or None. The account owner is
    never erasable; agents and admins only when the playbook explicitly allows it."""
    uid = user.get("id")
    role = str(user.get("role") or "end-user")
    # The Users API has no owner flag in its documented JSON; Zendesk refuses to delete the
    # owner anyway. We honour an explicit flag where an account (or the sandbox) shows one.
    if any(user.get(flag) is True for flag in _OWNER_FLAGS):
        return f"the account owner is never erased: user {uid} (owner)"
    if role in policy.protected_roles:
        return f"agent or admin users are never erased by default: user {uid} ({role})"
    return None


def is_valid_source_type(text: str) -> bool:
    return re.fullmatch(SOURCE_TYPE_PATTERN, text) is not None
