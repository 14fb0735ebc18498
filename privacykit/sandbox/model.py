"""The sandbox's data model: error answers, identifier normalisation and the records every
resource module shares (users, identities, profiles, events, tickets, compliance rows, jobs).

Owns the shapes, not the rules: the rules live in the resource modules that
:class:`privacykit.sandbox.state.SandboxState` is assembled from. Rule violations raise
:class:`ApiError` carrying the status and error body Zendesk would send, so the HTTP
layer stays a thin translation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "APPLICATIONS",
    "IDENTITY_TYPES",
    "MAX_QUEUED_JOBS",
    "PERMANENTLY_DELETED_NAME",
    "PROFILES_PER_USER",
    "ROLES",
    "STANDARD_IDENTIFIERS",
    "TICKET_STATUSES",
    "ApiError",
    "Attachment",
    "Comment",
    "ComplianceRow",
    "Event",
    "IdentifierQuery",
    "Identity",
    "Membership",
    "Organization",
    "Profile",
    "Ticket",
    "User",
    "copy_json",
    "identities_from_body",
    "invalid_field",
    "merge_patch",
    "norm_value",
    "parse_identifier_query",
    "profile_error",
    "record_invalid",
    "record_not_found",
    "stored_value",
    "ticket_closed",
]


#: Areas of compliance that report deletion progress after a permanent deletion.
APPLICATIONS = ("support", "chat", "explore", "talk", "sell")
#: Documented: "When creating a new profile for a user exceeds the maximum number of
#: profiles, the request will fail." The maximum is 20 per user.
PROFILES_PER_USER = 20
#: Profile identifier types Zendesk treats as standard (matched against user identities).
STANDARD_IDENTIFIERS = ("email", "phone_number", "twitter", "facebook", "sdk", "external_id")
#: Documented: only a certain number of bulk jobs can be queued or running at once.
MAX_QUEUED_JOBS = 30
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
ROLES = ("end-user", "agent", "admin")
#: Profile identifier type -> user identity type. external_id is a user attribute, not an identity.
IDENTITY_TYPES = {
    "email": "email",
    "phone_number": "phone_number",
    "twitter": "twitter",
    "facebook": "facebook",
    "sdk": "sdk",
}
_LOWERCASED = ("email", "twitter")
PERMANENTLY_DELETED_NAME = "Permanently Deleted User"


class ApiError(Exception):
    """A refusal with the status and JSON body Zendesk would answer."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def record_not_found() -> ApiError:
    return ApiError(404, {"error": "RecordNotFound", "description": "Not found"})


def record_invalid(details: dict[str, Any]) -> ApiError:
    return ApiError(
        422,
        {"error": "RecordInvalid", "description": "Record validation errors", "details": details},
    )


def invalid_field(name: str, description: str, error: str) -> ApiError:
    return record_invalid({name: [{"description": description, "error": error}]})


def ticket_closed() -> ApiError:
    """Documented: a closed ticket can no longer be updated. Assumption: the 422 body
    names the status, as Zendesk's validation errors do."""
    return record_invalid(
        {
            "status": [
                {"description": "Status: closed prevents ticket update", "error": "InvalidValue"}
            ]
        }
    )


def profile_error(status: int, title: str, code: str = "ClientError") -> ApiError:
    """Profiles API errors are JSON:API shaped: ``{"errors": [{code, id, title}]}``."""
    return ApiError(status, {"errors": [{"code": code, "id": str(10000 + status), "title": title}]})


def norm_value(id_type: str, value: Any) -> str:
    """How identifier values compare: email and twitter are case-insensitive (Zendesk
    lower-cases them), phone numbers ignore formatting, everything else is exact."""
    text = str(value).strip()
    if id_type in _LOWERCASED:
        return text.lower()
    if id_type in ("phone_number", "phone"):
        return re.sub(r"[^\d+]", "", text)
    if id_type == "external_id":
        # Documented: "The API treats the id as case insensitive."
        return text.lower()
    return text


def stored_value(id_type: str, value: Any) -> Any:
    if id_type in _LOWERCASED and isinstance(value, str):
        return value.strip().lower()
    return value


@dataclass(frozen=True)
class IdentifierQuery:
    """``<profile_source>:<profile_type>:<identifier_type>:<identifier_value>``."""

    source: str
    type: str
    identifier_type: str
    value: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (
            self.source,
            self.type,
            self.identifier_type,
            norm_value(self.identifier_type, self.value),
        )


def parse_identifier_query(text: str | None) -> IdentifierQuery:
    """Split an identifier query. The value may itself contain colons (URLs, IPv6,
    ``tel:``…), so only the first three colons separate. Raises a 400 if malformed."""
    if not text:
        raise profile_error(400, "identifier query is required: source:type:identifier_type:value")
    parts = text.split(":", 3)
    if len(parts) != 4 or not all(part.strip() for part in parts):
        raise profile_error(
            400, "identifier query must be source:type:identifier_type:identifier_value"
        )
    source, profile_type, id_type, value = parts
    return IdentifierQuery(source, profile_type, id_type, value)


@dataclass
class User:
    id: int
    name: str
    role: str
    created_at: str
    updated_at: str
    external_id: str | None = None
    phone: str | None = None
    shared_phone_number: bool | None = None
    alias: str | None = None
    signature: str | None = None
    notes: str | None = None
    details: str | None = None
    tags: list[str] = field(default_factory=list)
    user_fields: dict[str, Any] = field(default_factory=dict)
    organization_id: int | None = None
    locale: str = "en-US"
    time_zone: str = "Copenhagen"
    iana_time_zone: str = "Europe/Copenhagen"
    custom_role_id: int | None = None
    suspended: bool = False
    owner: bool = False
    # "active" | "soft_deleted" | "permanently_deleted"
    status: str = "active"
    # Primary email at the moment of soft deletion, for the deleted_users view.
    deleted_email: str | None = None
    deleted_verified: bool = False

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass
class Identity:
    id: int
    user_id: int
    type: str
    value: str
    verified: bool
    primary: bool
    created_at: str
    updated_at: str

    @property
    def match_key(self) -> tuple[str, str]:
        # Documented: a "google" identity is matched as an "email" identifier.
        kind = "email" if self.type == "google" else self.type
        return (kind, norm_value(kind, self.value))


@dataclass
class Profile:
    id: str
    seq: int
    user_id: int
    source: str
    type: str
    name: str
    identifiers: list[dict[str, Any]]
    attributes: dict[str, Any]
    created_at: str
    updated_at: str

    def keys(self) -> list[tuple[str, str, str, str]]:
        return [
            (self.source, self.type, ident["type"], norm_value(ident["type"], ident["value"]))
            for ident in self.identifiers
        ]


@dataclass
class Event:
    seq: int
    id: str
    profile_id: str
    source: str
    type: str
    description: str
    properties: dict[str, Any]
    created_at: str
    received_at: str


@dataclass
class Attachment:
    id: int
    comment_id: int
    file_name: str
    content_type: str
    content: bytes
    token: str  # the secret part of its content_url
    inline: bool = False


@dataclass
class Comment:
    id: int
    ticket_id: int
    author_id: int
    body: str  # plain text, derived from html_body after a redaction
    html_body: str
    public: bool
    created_at: str
    audit_id: int
    attachment_ids: list[int] = field(default_factory=list)


@dataclass
class Ticket:
    id: int
    requester_id: int
    submitter_id: int
    status: str
    subject: str
    created_at: str
    updated_at: str
    assignee_id: int | None = None
    organization_id: int | None = None
    comment_ids: list[int] = field(default_factory=list)
    email_cc_ids: list[int] = field(default_factory=list)
    follower_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[int, Any] = field(default_factory=dict)
    satisfaction_rating: dict[str, Any] | None = None
    # Soft deletion: virtual instant, who, and the status before (deleted_tickets view).
    deleted_at: float | None = None
    deleted_by: int | None = None


@dataclass
class Organization:
    id: int
    name: str
    created_at: str
    updated_at: str
    details: str | None = None
    notes: str | None = None
    domain_names: list[str] = field(default_factory=list)
    external_id: str | None = None
    tags: list[str] = field(default_factory=list)
    organization_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Membership:
    id: int
    user_id: int
    organization_id: int
    default: bool
    created_at: str
    updated_at: str


@dataclass
class ComplianceRow:
    at: float  # virtual seconds
    action: str
    application: str
    executer_id: int | None


def identities_from_body(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    idents: list[tuple[str, str]] = []
    if body.get("email"):
        idents.append(("email", str(body["email"])))
    for ident in body.get("identities") or []:
        if isinstance(ident, Mapping) and ident.get("type") and ident.get("value"):
            kind = "phone_number" if ident["type"] == "phone" else str(ident["type"])
            if (kind, str(ident["value"])) not in idents:
                idents.append((kind, str(ident["value"])))
    return idents


def copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
