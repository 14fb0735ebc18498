"""The sandbox's data model: users, identities, Sunshine profiles and events, tickets,
deleted users, compliance deletion statuses and bulk jobs.

Owns every rule Zendesk applies to that data (as documented in
``../shared/zendesk-docs``; where the docs are silent the assumption is written next to
the code). All access goes through :class:`SandboxState`, whose public methods are
thread-safe (one re-entrant lock) and return plain JSON-ready dicts shaped like
Zendesk's. Rule violations raise :class:`ApiError` carrying the status and error body
Zendesk would send, so the HTTP layer stays a thin translation.
"""

from __future__ import annotations

import fnmatch
import random
import re
import shlex
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privacykit.sandbox.limits import VirtualClock

__all__ = [
    "APPLICATIONS",
    "MAX_QUEUED_JOBS",
    "PROFILES_PER_USER",
    "STANDARD_IDENTIFIERS",
    "TICKET_STATUSES",
    "ApiError",
    "IdentifierQuery",
    "SandboxState",
    "parse_identifier_query",
    "profile_error",
    "record_invalid",
    "record_not_found",
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
_IDENTITY_TYPE = {
    "email": "email",
    "phone_number": "phone_number",
    "twitter": "twitter",
    "facebook": "facebook",
    "sdk": "sdk",
}
_LOWERCASED = ("email", "twitter")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PERMANENTLY_DELETED_NAME = "Permanently Deleted User"


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


def _invalid_field(name: str, description: str, error: str) -> ApiError:
    return record_invalid({name: [{"description": description, "error": error}]})


def profile_error(status: int, title: str, code: str = "ClientError") -> ApiError:
    """Profiles API errors are JSON:API shaped: ``{"errors": [{code, id, title}]}``."""
    return ApiError(status, {"errors": [{"code": code, "id": str(10000 + status), "title": title}]})


def _norm_value(id_type: str, value: Any) -> str:
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


def _stored_value(id_type: str, value: Any) -> Any:
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
            _norm_value(self.identifier_type, self.value),
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
        return (kind, _norm_value(kind, self.value))


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
            (self.source, self.type, ident["type"], _norm_value(ident["type"], ident["value"]))
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
class Ticket:
    id: int
    requester_id: int
    status: str
    subject: str
    created_at: str
    updated_at: str


@dataclass
class ComplianceRow:
    at: float  # virtual seconds
    action: str
    application: str
    executer_id: int | None


@dataclass
class Job:
    id: str
    created_at: float
    done_at: float
    results: list[dict[str, Any]]


class SandboxState:
    """All sandbox data behind one lock. Public methods return Zendesk-shaped dicts."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        rng_seed: int | None = None,
        admin_email: str = "dpo@sandbox.test",
        subdomain: str = "sandbox",
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"
        self.subdomain = subdomain
        self.admin_email = admin_email
        self._rng = random.Random(rng_seed)
        self.stuck_applications: set[str] = set()
        self.job_delay = 2.0  # virtual seconds a bulk job takes
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget everything, then create the authenticating admin and the account owner."""
        with self.lock:
            self.users: dict[int, User] = {}
            self.identities: dict[int, Identity] = {}
            self._identity_index: dict[tuple[str, str], int] = {}
            self._identities_by_user: dict[int, list[int]] = {}
            self._external_index: dict[str, int] = {}
            self.profiles: dict[str, Profile] = {}
            self._profile_index: dict[tuple[str, str, str, str], str] = {}
            self._user_profiles: dict[int, list[str]] = {}
            self.events: dict[str, list[Event]] = {}
            self.tickets: dict[int, Ticket] = {}
            self.compliance: dict[int, list[ComplianceRow]] = {}
            self.jobs: dict[str, Job] = {}
            self._next_user = 10001
            self._next_identity = 50001
            self._next_ticket = 1
            self._next_seq = 1
            owner = self.add_user("Sandbox Account Owner", email="owner@example.org", role="admin")
            self.users[owner["id"]].owner = True
            admin = self.add_user(
                "Sandbox DPO", email=self.admin_email, role="admin", verified=True
            )
            self.admin_id: int = admin["id"]
            self.owner_id: int = owner["id"]

    # ------------------------------------------------------------------ helpers

    def _now(self) -> str:
        return self.clock.iso()

    def _seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _ulid(self) -> str:
        """A ULID-like id: 48-bit millisecond timestamp + 80 random bits, Crockford base32."""
        millis = int(self.clock.epoch() * 1000) & ((1 << 48) - 1)
        number = (millis << 80) | self._rng.getrandbits(80)
        chars = []
        for _ in range(26):
            chars.append(_CROCKFORD[number & 31])
            number >>= 5
        return "".join(reversed(chars))

    def _user(self, user_id: int, *, active_only: bool = False) -> User:
        user = self.users.get(user_id)
        if user is None or user.status == "permanently_deleted":
            raise record_not_found()
        if active_only and not user.active:
            raise record_not_found()
        return user

    def _user_identities(self, user_id: int) -> list[Identity]:
        return [self.identities[i] for i in self._identities_by_user.get(user_id, ())]

    def _primary_email(self, user_id: int) -> Identity | None:
        emails = [i for i in self._user_identities(user_id) if i.type in ("email", "google")]
        for ident in emails:
            if ident.primary:
                return ident
        return emails[0] if emails else None

    def _owner_of(self, kind: str, value: Any) -> int | None:
        """The active user whose identity (or external_id) matches a standard identifier."""
        if kind == "external_id":
            return self._external_index.get(_norm_value("external_id", value))
        ident_id = self._identity_index.get((kind, _norm_value(kind, value)))
        return None if ident_id is None else self.identities[ident_id].user_id

    def _add_identity(
        self,
        user_id: int,
        kind: str,
        value: Any,
        *,
        verified: bool = False,
        primary: bool | None = None,
    ) -> Identity:
        kind = "phone_number" if kind == "phone" else kind
        key = (kind if kind != "google" else "email", _norm_value(kind, value))
        existing = self._identity_index.get(key)
        if existing is not None:
            ident = self.identities[existing]
            if ident.user_id != user_id:
                raise _invalid_field(
                    "value",
                    f"Value: {value} is already being used by another user",
                    "DuplicateValue",
                )
            return ident
        if primary is None:
            primary = kind in ("email", "google") and self._primary_email(user_id) is None
        now = self._now()
        ident = Identity(
            self._next_identity,
            user_id,
            kind,
            str(_stored_value(kind, value)),
            verified,
            primary,
            now,
            now,
        )
        self._next_identity += 1
        self.identities[ident.id] = ident
        self._identity_index[ident.match_key] = ident.id
        self._identities_by_user.setdefault(user_id, []).append(ident.id)
        return ident

    def _release_identities(self, user_id: int) -> None:
        for ident in self._user_identities(user_id):
            self._identity_index.pop(ident.match_key, None)
            del self.identities[ident.id]
        self._identities_by_user.pop(user_id, None)

    def _set_external_id(self, user: User, external_id: Any) -> None:
        if external_id in (None, ""):
            if user.external_id is not None:
                self._external_index.pop(_norm_value("external_id", user.external_id), None)
            user.external_id = None
            return
        key = _norm_value("external_id", external_id)
        owner = self._external_index.get(key)
        if owner is not None and owner != user.id:
            raise _invalid_field(
                "external_id",
                f"External: {external_id} has already been taken",
                "DuplicateValue",
            )
        if user.external_id is not None:
            self._external_index.pop(_norm_value("external_id", user.external_id), None)
        user.external_id = str(external_id)
        self._external_index[key] = user.id

    def _set_phone(self, user: User, phone: Any) -> None:
        """Documented: a unique number becomes a direct line and an identity; a number
        already used by another user is added as a shared number without an identity."""
        if phone in (None, ""):
            return
        owner = self._owner_of("phone_number", phone)
        if owner is None or owner == user.id:
            self._add_identity(user.id, "phone_number", phone)
            if user.phone is None or user.shared_phone_number:
                user.phone = str(phone)
                user.shared_phone_number = False
        elif user.phone is None:
            user.phone = str(phone)
            user.shared_phone_number = True

    # ------------------------------------------------------------------ rendering

    def user_json(self, user: User) -> dict[str, Any]:
        if user.status == "active":
            email_ident = self._primary_email(user.id)
            email = email_ident.value if email_ident else None
            verified = any(i.verified for i in self._user_identities(user.id))
        else:
            email, verified = user.deleted_email, user.deleted_verified
        role_type = 4 if user.role == "admin" else (0 if user.custom_role_id else None)
        return {
            "id": user.id,
            "url": f"{self.base_url}/api/v2/users/{user.id}.json",
            "name": user.name,
            "email": email,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "time_zone": user.time_zone,
            "iana_time_zone": user.iana_time_zone,
            "phone": user.phone,
            "shared_phone_number": user.shared_phone_number,
            "photo": None,
            "locale_id": 1,
            "locale": user.locale,
            "organization_id": user.organization_id,
            "role": user.role,
            "verified": verified,
            "external_id": user.external_id,
            "tags": list(user.tags),
            "alias": user.alias,
            "active": user.active,
            "shared": False,
            "shared_agent": False,
            "last_login_at": None,
            "two_factor_auth_enabled": False,
            "signature": None,
            "details": user.details,
            "notes": user.notes,
            "role_type": role_type,
            "custom_role_id": user.custom_role_id,
            "moderator": user.role != "end-user",
            "ticket_restriction": "requested" if user.role == "end-user" else None,
            "only_private_comments": False,
            "restricted_agent": user.role == "agent",
            "suspended": user.suspended,
            "default_group_id": None,
            "report_csv": False,
            "user_fields": dict(user.user_fields),
        }

    def deleted_user_json(self, user: User) -> dict[str, Any]:
        """The deleted_users view. Documented: permanently deleted users keep appearing,
        with the name "Permanently Deleted User" and personal fields null."""
        scrubbed = user.status == "permanently_deleted"
        return {
            "id": user.id,
            "url": f"{self.base_url}/api/v2/deleted_users/{user.id}.json",
            "name": _PERMANENTLY_DELETED_NAME if scrubbed else user.name,
            "email": None if scrubbed else user.deleted_email,
            "phone": None if scrubbed else user.phone,
            "shared_phone_number": None if scrubbed else user.shared_phone_number,
            "photo": None,
            "active": False,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "locale": user.locale,
            "locale_id": 1,
            "organization_id": None if scrubbed else user.organization_id,
            "role": user.role,
            "time_zone": user.time_zone,
        }

    def identity_json(self, ident: Identity) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": ident.id,
            "url": f"{self.base_url}/api/v2/users/{ident.user_id}/identities/{ident.id}.json",
            "user_id": ident.user_id,
            "type": ident.type,
            "value": ident.value,
            "verified": ident.verified,
            "primary": ident.primary,
            "created_at": ident.created_at,
            "updated_at": ident.updated_at,
            "undeliverable_count": 0,
        }
        if ident.type == "email":
            data["deliverable_state"] = "deliverable"
        return data

    @staticmethod
    def profile_json(profile: Profile) -> dict[str, Any]:
        return {
            "id": profile.id,
            # Documented as a string ("user_id": "123456").
            "user_id": str(profile.user_id),
            "source": profile.source,
            "type": profile.type,
            "name": profile.name,
            "identifiers": [dict(ident) for ident in profile.identifiers],
            "attributes": _copy_json(profile.attributes),
            "created_at": profile.created_at,
            "updated_at": profile.updated_at,
        }

    @staticmethod
    def event_json(event: Event) -> dict[str, Any]:
        return {
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "description": event.description,
            "properties": _copy_json(event.properties),
            "created_at": event.created_at,
            "received_at": event.received_at,
        }

    def ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        return {
            "id": ticket.id,
            "url": f"{self.base_url}/api/v2/tickets/{ticket.id}.json",
            "subject": ticket.subject,
            "status": ticket.status,
            "requester_id": ticket.requester_id,
            "submitter_id": ticket.requester_id,
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
        }

    # ------------------------------------------------------------------ users

    def add_user(
        self,
        name: str,
        *,
        email: str | None = None,
        role: str = "end-user",
        phone: str | None = None,
        external_id: str | None = None,
        identities: Iterable[Mapping[str, Any]] = (),
        verified: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a user (what ``POST /api/v2/users`` does). Returns the user JSON."""
        body: dict[str, Any] = {"name": name, "role": role, "verified": verified, **fields}
        if email is not None:
            body["email"] = email
        if phone is not None:
            body["phone"] = phone
        if external_id is not None:
            body["external_id"] = external_id
        if identities:
            body["identities"] = [dict(i) for i in identities]
        return self.create_user(body)

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise _invalid_field(
                    "name", "Name:  is too short (minimum one character)", "BlankValue"
                )
            role = body.get("role") or "end-user"
            if body.get("custom_role_id") and role == "end-user":
                role = "agent"  # documented
            if role not in ROLES:
                raise _invalid_field("role", f"Role: {role} is not a valid role", "InvalidValue")
            idents = _identities_from_body(body)
            # Validate uniqueness before changing anything.
            for kind, value in idents:
                if self._owner_of(kind if kind != "google" else "email", value) is not None:
                    raise _invalid_field(
                        kind if kind == "email" else "value",
                        f"{kind.capitalize()}: {value} is already being used by another user",
                        "DuplicateValue",
                    )
            ext = body.get("external_id")
            if ext not in (None, "") and self._owner_of("external_id", ext) is not None:
                raise _invalid_field(
                    "external_id", f"External: {ext} has already been taken", "DuplicateValue"
                )
            now = self._now()
            user = User(self._next_user, name.strip(), role, now, now)
            self._next_user += 1
            self._apply_fields(user, body)
            self.users[user.id] = user
            verified = bool(body.get("verified", False))
            for kind, value in idents:
                self._add_identity(user.id, kind, value, verified=verified and kind == "email")
            if ext not in (None, ""):
                self._set_external_id(user, ext)
            self._set_phone(user, body.get("phone"))
            return self.user_json(user)

    @staticmethod
    def _apply_fields(user: User, body: Mapping[str, Any]) -> None:
        for key in ("alias", "notes", "details", "locale", "time_zone", "organization_id"):
            if key in body:
                setattr(user, key, body[key])
        if "tags" in body and isinstance(body["tags"], list):
            user.tags = [str(t) for t in body["tags"]]
        if "user_fields" in body and isinstance(body["user_fields"], dict):
            user.user_fields.update(body["user_fields"])
        if "suspended" in body:
            user.suspended = bool(body["suspended"])
        if "custom_role_id" in body:
            user.custom_role_id = body["custom_role_id"]

    def update_user(self, user_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            user = self._user(user_id, active_only=True)
            if "name" in body:
                name = body["name"]
                if not isinstance(name, str) or not name.strip():
                    raise _invalid_field(
                        "name", "Name:  is too short (minimum one character)", "BlankValue"
                    )
            if "role" in body and body["role"] not in ROLES:
                raise _invalid_field(
                    "role", f"Role: {body['role']} is not a valid role", "InvalidValue"
                )
            if "email" in body and body["email"]:
                owner = self._owner_of("email", body["email"])
                if owner is not None and owner != user.id:
                    raise _invalid_field(
                        "email",
                        f"Email: {body['email']} is already being used by another user",
                        "DuplicateValue",
                    )
            if "external_id" in body:
                self._set_external_id(user, body["external_id"])
            if "name" in body:
                user.name = body["name"].strip()
            if "role" in body:
                user.role = body["role"]
            self._apply_fields(user, body)
            if body.get("email"):
                # Documented: on update the email is added as a secondary identity,
                # verified only if "verified" says so; the primary email stays.
                self._add_identity(
                    user.id, "email", body["email"], verified=bool(body.get("verified", False))
                )
            elif "verified" in body:
                primary = self._primary_email(user.id)
                if primary is not None:
                    primary.verified = bool(body["verified"])
            if "phone" in body:
                self._set_phone(user, body["phone"])
            user.updated_at = self._now()
            return self.user_json(user)

    def show_user(self, user_id: int) -> dict[str, Any]:
        # Assumption (docs silent): a soft-deleted user still shows, with active false,
        # as Zendesk does; a permanently deleted one is gone (404).
        with self.lock:
            return self.user_json(self._user(user_id))

    def show_many(self, ids: list[int], external_ids: list[str]) -> list[dict[str, Any]]:
        with self.lock:
            found: list[dict[str, Any]] = []
            for uid in ids:
                user = self.users.get(uid)
                if user is not None and user.status != "permanently_deleted":
                    found.append(self.user_json(user))
            for ext in external_ids:
                owner = self._owner_of("external_id", ext)
                if owner is not None:
                    found.append(self.user_json(self.users[owner]))
            return found

    def list_user_ids(
        self, *, roles: list[str] | None = None, external_id: str | None = None
    ) -> list[int]:
        with self.lock:
            ids = [u.id for u in self.users.values() if u.active and (not roles or u.role in roles)]
            if external_id is not None:
                owner = self._owner_of("external_id", external_id)
                ids = [uid for uid in ids if uid == owner]
            return sorted(ids)

    def render_users(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.user_json(self.users[uid]) for uid in ids if uid in self.users]

    def search_user_ids(self, query: str | None, external_id: str | None) -> list[int]:
        """Users search. Supports ``email:``, ``external_id:``, ``phone:``, ``name:``,
        ``role:``, ``type:user`` and free text (all terms must match); ``*`` wildcards in
        values. Soft-deleted users are not found (their identities are released)."""
        with self.lock:
            if external_id is not None:
                owner = self._owner_of("external_id", external_id)
                return [] if owner is None or not self.users[owner].active else [owner]
            if not query or not query.strip():
                return []
            try:
                terms = shlex.split(query)
            except ValueError:
                terms = query.split()
            candidates: set[int] | None = None
            checks: list[tuple[str, str]] = []
            for term in terms:
                key, sep, value = term.partition(":")
                if not sep:
                    key, value = "", term
                key = key.lower()
                if key == "type":
                    continue
                if key in ("email", "external_id", "phone") and "*" not in value:
                    kind = {"email": "email", "phone": "phone_number"}.get(key, "external_id")
                    owner = self._owner_of(kind, value)
                    hit: set[int] = set() if owner is None else {owner}
                    if kind == "phone_number":
                        norm = _norm_value("phone_number", value)
                        hit |= {
                            u.id
                            for u in self.users.values()
                            if u.phone and _norm_value("phone_number", u.phone) == norm
                        }
                    candidates = hit if candidates is None else candidates & hit
                else:
                    checks.append((key, value))
            pool = candidates if candidates is not None else set(self.users)
            result = []
            for uid in pool:
                user = self.users[uid]
                if user.active and all(self._term_matches(user, k, v) for k, v in checks):
                    result.append(uid)
            return sorted(result)

    def _term_matches(self, user: User, key: str, value: str) -> bool:
        pattern = value.lower()
        if "*" not in pattern:
            exact = key in ("email", "external_id", "phone", "role")
            pattern = pattern if exact else f"*{pattern}*"

        def match(text: Any) -> bool:
            return text is not None and fnmatch.fnmatchcase(str(text).lower(), pattern)

        idents = self._user_identities(user.id)
        if key == "email":
            return any(match(i.value) for i in idents if i.type in ("email", "google"))
        if key == "external_id":
            return match(user.external_id)
        if key == "phone":
            return match(user.phone) or any(
                match(i.value) for i in idents if i.type == "phone_number"
            )
        if key == "name":
            return match(user.name)
        if key == "role":
            return match(user.role)
        fields = [user.name, user.notes, user.details, user.external_id, user.phone, user.alias]
        return any(match(f) for f in fields) or any(match(i.value) for i in idents)

    def identities_of(self, user_id: int) -> list[dict[str, Any]]:
        # Assumption (docs silent): a soft-deleted user's identities are released
        # (Zendesk frees the email for reuse), so the list is empty.
        with self.lock:
            self._user(user_id)
            return [self.identity_json(i) for i in self._user_identities(user_id)]

    def add_identity(
        self, user_id: int, kind: str, value: str, *, verified: bool = False, primary: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            self._user(user_id, active_only=True)
            if primary:
                for ident in self._user_identities(user_id):
                    if ident.type == kind:
                        ident.primary = False
            ident = self._add_identity(
                user_id, kind, value, verified=verified, primary=primary or None
            )
            if kind in ("phone", "phone_number"):
                user = self.users[user_id]
                if user.phone is None:
                    user.phone, user.shared_phone_number = ident.value, False
            return self.identity_json(ident)

    def related(self, user_id: int) -> dict[str, Any]:
        with self.lock:
            self._user(user_id)
            requested = sum(1 for t in self.tickets.values() if t.requester_id == user_id)
            return {
                "assigned_tickets": 0,
                "requested_tickets": requested,
                "ccd_tickets": 0,
                "organization_subscriptions": 0,
            }

    def requested_ticket_ids(self, user_id: int) -> list[int]:
        with self.lock:
            self._user(user_id)
            return sorted(t.id for t in self.tickets.values() if t.requester_id == user_id)

    def render_tickets(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.ticket_json(self.tickets[t]) for t in ids if t in self.tickets]

    def add_ticket(
        self, requester_id: int, status: str = "open", subject: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            if status not in TICKET_STATUSES:
                raise _invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
            self._user(requester_id)
            now = self._now()
            ticket = Ticket(
                self._next_ticket,
                requester_id,
                status,
                subject or f"Request {self._next_ticket}",
                now,
                now,
            )
            self._next_ticket += 1
            self.tickets[ticket.id] = ticket
            return self.ticket_json(ticket)

    def set_ticket_status(self, ticket_id: int, status: str) -> dict[str, Any]:
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise record_not_found()
            if status not in TICKET_STATUSES:
                raise _invalid_field("status", f"Status: {status} is not valid", "InvalidValue")
            ticket.status = status
            ticket.updated_at = self._now()
            return self.ticket_json(ticket)

    # ------------------------------------------------------------------ deletion

    def soft_delete_user(self, user_id: int) -> dict[str, Any]:
        """``DELETE /api/v2/users/{id}``: the user becomes inactive and appears in
        deleted_users; identities are released. Refused for the account owner and for
        the requester of any ticket that is not closed."""
        with self.lock:
            # Assumption: deleting an already soft-deleted user answers 404, like any
            # other request for a user that is no longer in the users collection.
            user = self._user(user_id, active_only=True)
            if user.owner:
                # Documented: administrators can delete all users except the account
                # owner. Assumption: Zendesk's standard 403 body.
                raise ApiError(
                    403,
                    {
                        "error": "Forbidden",
                        "description": "You do not have access to this page. Please contact "
                        "the account owner of this help desk for further help.",
                    },
                )
            blocking = [
                t.id
                for t in self.tickets.values()
                if t.requester_id == user_id and t.status != "closed"
            ]
            if blocking:
                raise record_invalid(
                    {
                        "base": [
                            {
                                "description": "User is requester on "
                                f"{len(blocking)} ticket(s) that are not closed.",
                                "error": "UserWithOpenTickets",
                                "ticket_ids": blocking,
                            }
                        ]
                    }
                )
            email = self._primary_email(user_id)
            user.deleted_email = email.value if email else None
            user.deleted_verified = bool(email and email.verified)
            self._release_identities(user_id)
            if user.external_id is not None:
                self._external_index.pop(_norm_value("external_id", user.external_id), None)
            user.status = "soft_deleted"
            user.updated_at = self._now()
            return self.user_json(user)

    def job_slot_wait(self) -> float | None:
        """None if a bulk job may be queued now, else virtual seconds until a slot frees."""
        with self.lock:
            now = self.clock.now()
            running = sorted(job.done_at for job in self.jobs.values() if job.done_at > now)
            if len(running) < MAX_QUEUED_JOBS:
                return None
            return running[len(running) - MAX_QUEUED_JOBS] - now

    def destroy_many(self, ids: list[int]) -> dict[str, Any]:
        """``DELETE /api/v2/users/destroy_many``: soft-deletes now, reports through a job."""
        with self.lock:
            results = []
            for uid in ids:
                try:
                    self.soft_delete_user(uid)
                    results.append(
                        {"action": "delete", "id": uid, "status": "Deleted", "success": True}
                    )
                except ApiError as exc:
                    results.append(
                        {
                            "action": "delete",
                            "id": uid,
                            "status": "Failed",
                            "success": False,
                            "error": exc.body.get("error", "Error"),
                        }
                    )
            job_id = f"{self._rng.getrandbits(128):032x}"
            now = self.clock.now()
            self.jobs[job_id] = Job(job_id, now, now + self.job_delay, results)
            return self.job_json(self.jobs[job_id])

    def job_json(self, job: Job) -> dict[str, Any]:
        done = self.clock.now() >= job.done_at
        return {
            "id": job.id,
            "url": f"{self.base_url}/api/v2/job_statuses/{job.id}.json",
            "status": "completed" if done else "queued",
            "total": len(job.results),
            "progress": len(job.results) if done else 0,
            "message": f"Completed at {self.clock.iso(job.done_at)}" if done else None,
            "results": [dict(r) for r in job.results] if done else None,
        }

    def show_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise record_not_found()
            return self.job_json(job)

    def deleted_user_ids(self) -> list[int]:
        with self.lock:
            return sorted(u.id for u in self.users.values() if not u.active)

    def render_deleted_users(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.deleted_user_json(self.users[uid]) for uid in ids if uid in self.users]

    def show_deleted_user(self, user_id: int) -> dict[str, Any]:
        # The docs describe this endpoint as returning users "deleted but not
        # permanently yet", but list the permanently deleted ones (scrubbed) in the
        # same collection. Assumption: show answers the scrubbed record too, so a
        # client can tell "permanently deleted" from "never soft-deleted" (404).
        with self.lock:
            user = self.users.get(user_id)
            if user is None or user.active:
                raise record_not_found()
            return self.deleted_user_json(user)

    def permanently_delete_user(
        self, user_id: int, executer_id: int | None = None
    ) -> dict[str, Any]:
        """``DELETE /api/v2/deleted_users/{id}``. Only a soft-deleted user can be
        permanently deleted: an active user is not in the deleted_users collection, so
        the answer is 404 RecordNotFound (assumption: the docs only say "you must delete
        the user first"). A second permanent deletion also answers 404: the scrubbed
        tombstone stays visible to GET but there is nothing left to delete."""
        with self.lock:
            user = self.users.get(user_id)
            if user is None or user.status != "soft_deleted":
                raise record_not_found()
            answer = self.deleted_user_json(user)
            user.status = "permanently_deleted"
            user.name = _PERMANENTLY_DELETED_NAME
            user.deleted_email = None
            user.phone = None
            user.shared_phone_number = None
            user.external_id = None
            user.alias = user.notes = user.details = None
            user.tags = []
            user.user_fields = {}
            user.organization_id = None
            user.updated_at = self._now()
            # Assumption: "Permanently deleting a user deletes all of their information",
            # including Sunshine profiles (and so their events) still attached to them.
            for pid in list(self._user_profiles.get(user_id, [])):
                self._delete_profile(pid)
            self._schedule_compliance(user_id, executer_id or self.admin_id)
            return answer

    def deleted_users_count(self) -> dict[str, Any]:
        with self.lock:
            value = sum(1 for u in self.users.values() if not u.active)
            return {"value": value, "refreshed_at": self._now()}

    # ------------------------------------------------------------------ compliance

    def _schedule_compliance(self, user_id: int, executer_id: int) -> None:
        """One ``all``/``request_deletion`` row at once, then per application ``started``
        and ``complete`` after random virtual delays of minutes (together under an hour)."""
        now = self.clock.now()
        rows = [ComplianceRow(now, "request_deletion", "all", executer_id)]
        for app in APPLICATIONS:
            started = now + self._rng.uniform(60.0, 1800.0)
            rows.append(ComplianceRow(started, "started", app, None))
            rows.append(
                ComplianceRow(started + self._rng.uniform(60.0, 1800.0), "complete", app, None)
            )
        rows.sort(key=lambda r: r.at)
        self.compliance[user_id] = rows

    def compliance_rows(self, user_id: int, application: str | None = None) -> list[dict[str, Any]]:
        """Rows visible now; 404 for a user id that never existed. Applications marked
        stuck (``stuck_applications``) never report ``complete``."""
        with self.lock:
            if user_id not in self.users:
                raise record_not_found()
            now = self.clock.now()
            rows = []
            for row in self.compliance.get(user_id, []):
                if row.at > now:
                    continue
                if row.action == "complete" and row.application in self.stuck_applications:
                    continue
                if application is not None and row.application != application:
                    continue
                rows.append(
                    {
                        "account_subdomain": self.subdomain,
                        "action": row.action,
                        "application": row.application,
                        "created_at": self.clock.iso(row.at),
                        "executer_id": row.executer_id,
                        "user_id": user_id,
                    }
                )
            return rows

    # ------------------------------------------------------------------ profiles

    def _check_profile_body(self, body: Any, *, need_identifiers: bool) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("profile"), dict):
            raise profile_error(400, "request body must be an object with a 'profile' object")
        profile = body["profile"]
        if "identifiers" in profile or need_identifiers:
            idents = profile.get("identifiers")
            if not isinstance(idents, list) or (need_identifiers and not idents):
                raise profile_error(400, "identifiers must be a non-empty array")
            for ident in idents:
                if (
                    not isinstance(ident, dict)
                    or not isinstance(ident.get("type"), str)
                    or not ident["type"].strip()
                    or ident.get("value") in (None, "")
                    or isinstance(ident.get("value"), (dict, list, bool))
                ):
                    raise profile_error(400, "each identifier needs a string type and a value")
        if "attributes" in profile and not isinstance(profile["attributes"], dict):
            raise profile_error(400, "attributes must be an object")
        if (
            "name" in profile
            and profile["name"] is not None
            and not isinstance(profile["name"], str)
        ):
            raise profile_error(400, "name must be a string")
        return profile

    @staticmethod
    def _clean_identifiers(idents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Email and twitter values are lower-cased (documented); duplicates dropped."""
        seen: set[tuple[str, str]] = set()
        out = []
        for ident in idents:
            kind = str(ident["type"]).strip()
            value = _stored_value(kind, ident["value"])
            key = (kind, _norm_value(kind, value))
            if key not in seen:
                seen.add(key)
                out.append({"type": kind, "value": value})
        return out

    @staticmethod
    def _default_profile_name(idents: list[dict[str, Any]]) -> str:
        """Documented name rules when a profile has no name."""
        by_type = {i["type"]: i["value"] for i in reversed(idents)}
        if "email" in by_type:
            return str(by_type["email"])
        for kind, prefix in (
            ("external_id", "User "),
            ("phone_number", "User "),
            ("twitter", "Twitter user "),
            ("facebook", "Facebook user "),
            ("sdk", "SDK user "),
        ):
            if kind in by_type:
                return f"{prefix}{by_type[kind]}"
        first = idents[0]
        return f"{first['type']} user {first['value']}"

    def _identifier_owners(self, idents: list[dict[str, Any]]) -> dict[str, set[int]]:
        """Which active users the standard identifiers already belong to, split into
        phone owners (a phone can be shared) and the rest."""
        owners: dict[str, set[int]] = {"strict": set(), "phone": set()}
        for ident in idents:
            kind = ident["type"]
            if kind not in STANDARD_IDENTIFIERS:
                continue
            owner = self._owner_of(kind, ident["value"])
            if owner is not None and self.users[owner].active:
                owners["phone" if kind == "phone_number" else "strict"].add(owner)
        return owners

    def _check_unique_in_source(
        self, source: str, ptype: str, idents: list[dict[str, Any]], profile_id: str | None
    ) -> None:
        # Assumption (docs silent): within one source:type an identifier names at most
        # one profile, otherwise an identifier query could not return "a profile".
        for ident in idents:
            key = (source, ptype, ident["type"], _norm_value(ident["type"], ident["value"]))
            other = self._profile_index.get(key)
            if other is not None and other != profile_id:
                raise profile_error(
                    400, "an identifier already identifies another profile of this source and type"
                )

    def _attach_identifiers(self, user_id: int, idents: list[dict[str, Any]]) -> None:
        """Documented: email, phone, Facebook, SDK and Twitter identifiers become
        identities of the user; an external ID becomes the user's external_id."""
        user = self.users[user_id]
        if not user.active:
            return
        for ident in idents:
            kind = ident["type"]
            if kind == "external_id":
                self._set_external_id(user, ident["value"])
            elif kind == "phone_number":
                self._set_phone(user, ident["value"])
            elif kind in _IDENTITY_TYPE:
                self._add_identity(user_id, _IDENTITY_TYPE[kind], ident["value"])

    def _index_profile(self, profile: Profile) -> None:
        for key in profile.keys():
            self._profile_index[key] = profile.id

    def _unindex_profile(self, profile: Profile) -> None:
        for key in profile.keys():
            if self._profile_index.get(key) == profile.id:
                del self._profile_index[key]

    def _create_profile(
        self,
        source: str,
        ptype: str,
        data: Mapping[str, Any],
        idents: list[dict[str, Any]],
        user_id: int | None,
    ) -> Profile:
        if source.strip().lower() == "zendesk":
            raise profile_error(400, "the source 'zendesk' is reserved")
        self._check_unique_in_source(source, ptype, idents, None)
        owners = self._identifier_owners(idents)
        if user_id is None:
            matched = owners["strict"] | owners["phone"]
            if len(matched) > 1:
                # Documented: "When identifiers for multiple users are provided, the
                # request will fail."
                raise profile_error(400, "identifiers belong to more than one user")
        else:
            if owners["strict"] - {user_id}:
                raise profile_error(400, "identifiers belong to more than one user")
            matched = {user_id}
        name = data.get("name") or self._default_profile_name(idents)
        if matched:
            owner_id = next(iter(matched))
            if len(self._user_profiles.get(owner_id, [])) >= PROFILES_PER_USER:
                raise profile_error(400, f"a user can have at most {PROFILES_PER_USER} profiles")
        else:
            # Documented: no user matches a standard identifier -> an anonymous user.
            owner_id = self.create_user({"name": name})["id"]
        now = self._now()
        profile = Profile(
            self._ulid(),
            self._seq(),
            owner_id,
            source,
            ptype,
            name,
            idents,
            _copy_json(data.get("attributes") or {}),
            now,
            now,
        )
        self.profiles[profile.id] = profile
        self._user_profiles.setdefault(owner_id, []).append(profile.id)
        self._index_profile(profile)
        self._attach_identifiers(owner_id, idents)
        return profile

    def _replace_profile(self, profile: Profile, data: Mapping[str, Any]) -> Profile:
        """Replace content but not the record: id, created_at, user and events stay."""
        idents = self._clean_identifiers(data["identifiers"])
        self._check_unique_in_source(profile.source, profile.type, idents, profile.id)
        owners = self._identifier_owners(idents)
        if owners["strict"] - {profile.user_id}:
            raise profile_error(400, "identifiers belong to more than one user")
        self._unindex_profile(profile)
        profile.identifiers = idents
        profile.name = data.get("name") or self._default_profile_name(idents)
        profile.attributes = _copy_json(data.get("attributes") or {})
        profile.updated_at = self._now()
        self._index_profile(profile)
        self._attach_identifiers(profile.user_id, idents)
        return profile

    def _patch_profile(self, profile: Profile, data: Mapping[str, Any]) -> Profile:
        """Documented PATCH: name and attributes merge (JSON merge patch: null removes
        an attribute); identifiers can only be added; source, type, user_id ignored."""
        new = [
            i
            for i in self._clean_identifiers(data.get("identifiers") or [])
            if (profile.source, profile.type, i["type"], _norm_value(i["type"], i["value"]))
            not in set(profile.keys())
        ]
        self._check_unique_in_source(profile.source, profile.type, new, profile.id)
        owners = self._identifier_owners(new)
        if owners["strict"] - {profile.user_id}:
            raise profile_error(400, "identifiers belong to more than one user")
        if data.get("name"):
            profile.name = data["name"]
        if isinstance(data.get("attributes"), dict):
            profile.attributes = _merge_patch(profile.attributes, data["attributes"])
        if new:
            profile.identifiers = profile.identifiers + new
            self._index_profile(profile)
            self._attach_identifiers(profile.user_id, new)
        profile.updated_at = self._now()
        return profile

    def _profile_by_query(self, query: IdentifierQuery) -> Profile | None:
        pid = self._profile_index.get(query.key)
        return None if pid is None else self.profiles[pid]

    def _profile(self, profile_id: str) -> Profile:
        profile = self.profiles.get(profile_id)
        if profile is None:
            raise profile_error(404, "profile not found", code="NotFound")
        return profile

    def profiles_for_user(self, user_id: int) -> list[dict[str, Any]]:
        with self.lock:
            user = self.users.get(user_id)
            if user is None or user.status == "permanently_deleted":
                raise profile_error(404, "user not found", code="NotFound")
            return [
                self.profile_json(self.profiles[p]) for p in self._user_profiles.get(user_id, [])
            ]

    def profile_by_identifier(self, query: str | None) -> dict[str, Any]:
        with self.lock:
            profile = self._profile_by_query(parse_identifier_query(query))
            if profile is None:
                raise profile_error(404, "profile not found", code="NotFound")
            return self.profile_json(profile)

    def profile_by_id(self, profile_id: str) -> dict[str, Any]:
        with self.lock:
            return self.profile_json(self._profile(profile_id))

    def put_profile_by_identifier(
        self, query: str | None, body: Any
    ) -> tuple[dict[str, Any], bool]:
        """``PUT /api/v2/user_profiles?identifier=``: replace the matching profile or
        create one. Returns (profile, created)."""
        with self.lock:
            parsed = parse_identifier_query(query)
            existing = self._profile_by_query(parsed)
            data = self._check_profile_body(body, need_identifiers=existing is not None)
            if existing is not None:
                return self.profile_json(self._replace_profile(existing, data)), False
            # user_id is a writable profile property (documented; the curl examples send
            # it). Assumption: on creation it names the user, like the by-user endpoint.
            owner: int | None = None
            if data.get("user_id") not in (None, ""):
                try:
                    owner = int(data["user_id"])
                except (TypeError, ValueError):
                    raise profile_error(400, "user_id must be a Zendesk user id") from None
                user = self.users.get(owner)
                if user is None or not user.active:
                    raise profile_error(404, "user not found", code="NotFound")
            return self.profile_json(self._create_from_query(parsed, data, owner)), True

    def put_profile_for_user(
        self, user_id: int, query: str | None, body: Any
    ) -> tuple[dict[str, Any], bool]:
        """``PUT /api/v2/users/{user_id}/profiles?identifier=``."""
        with self.lock:
            parsed = parse_identifier_query(query)
            user = self.users.get(user_id)
            if user is None or not user.active:
                raise profile_error(404, "user not found", code="NotFound")
            existing = self._profile_by_query(parsed)
            data = self._check_profile_body(body, need_identifiers=existing is not None)
            if existing is not None:
                if existing.user_id != user_id:
                    raise profile_error(400, "the profile belongs to another user")
                return self.profile_json(self._replace_profile(existing, data)), False
            return self.profile_json(self._create_from_query(parsed, data, user_id)), True

    def _create_from_query(
        self, query: IdentifierQuery, data: Mapping[str, Any], user_id: int | None
    ) -> Profile:
        # Assumption: on creation the query's own identifier is part of the profile
        # (it is how the profile will be found again); source and type come from the query.
        raw = list(data.get("identifiers") or [])
        raw.append({"type": query.identifier_type, "value": query.value})
        idents = self._clean_identifiers(raw)
        return self._create_profile(query.source, query.type, data, idents, user_id)

    def replace_profile(self, profile_id: str, body: Any) -> dict[str, Any]:
        """``PUT /api/v2/user_profiles/{id}``: replace content; source/type/user_id are
        not changed by this endpoint (assumption: they identify the record)."""
        with self.lock:
            profile = self._profile(profile_id)
            data = self._check_profile_body(body, need_identifiers=True)
            return self.profile_json(self._replace_profile(profile, data))

    def patch_profile(self, profile_id: str | None, query: str | None, body: Any) -> dict[str, Any]:
        with self.lock:
            if profile_id is not None:
                profile = self._profile(profile_id)
            else:
                found = self._profile_by_query(parse_identifier_query(query))
                if found is None:
                    raise profile_error(404, "profile not found", code="NotFound")
                profile = found
            data = self._check_profile_body(body, need_identifiers=False)
            return self.profile_json(self._patch_profile(profile, data))

    def _delete_profile(self, profile_id: str) -> None:
        profile = self.profiles.pop(profile_id)
        self._unindex_profile(profile)
        owned = self._user_profiles.get(profile.user_id, [])
        if profile_id in owned:
            owned.remove(profile_id)
        # Deleting a profile deletes its events: there is no other way to delete them.
        self.events.pop(profile_id, None)

    def delete_profile(self, profile_id: str) -> None:
        with self.lock:
            self._profile(profile_id)
            self._delete_profile(profile_id)

    def put_profile(
        self,
        source: str,
        profile_type: str,
        identifiers: Iterable[Mapping[str, Any] | tuple[str, Any]],
        *,
        user_id: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Seed helper: create or replace a profile with the same rules as the API
        (identified by its first identifier). Returns the profile JSON."""
        idents = [
            dict(i) if isinstance(i, Mapping) else {"type": i[0], "value": i[1]}
            for i in identifiers
        ]
        if not idents:
            raise ValueError("a profile needs at least one identifier")
        first = idents[0]
        query = f"{source}:{profile_type}:{first['type']}:{first['value']}"
        body: dict[str, Any] = {
            "profile": {"identifiers": idents, "attributes": dict(attributes or {})}
        }
        if name is not None:
            body["profile"]["name"] = name
        if user_id is None:
            profile, _ = self.put_profile_by_identifier(query, body)
        else:
            profile, _ = self.put_profile_for_user(user_id, query, body)
        return profile

    # ------------------------------------------------------------------ events

    def add_event(
        self,
        profile_id: str,
        *,
        source: str | None = None,
        type: str = "page_viewed",  # noqa: A002 - Zendesk's field name
        description: str = "",
        properties: Mapping[str, Any] | None = None,
        created_at: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            profile = self._profile(profile_id)
            now = self._now()
            event = Event(
                self._seq(),
                self._ulid(),
                profile_id,
                source or profile.source,
                type,
                description,
                _copy_json(dict(properties or {})),
                created_at or now,
                now,
            )
            self.events.setdefault(profile_id, []).append(event)
            return self.event_json(event)

    def event_keys(self, profile_id: str) -> list[int]:
        with self.lock:
            self._profile(profile_id)
            return [e.seq for e in self.events.get(profile_id, [])]

    def render_events(self, profile_id: str, seqs: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            wanted = set(seqs)
            return [self.event_json(e) for e in self.events.get(profile_id, []) if e.seq in wanted]

    def profile_id_by_identifier(self, query: str | None) -> str:
        with self.lock:
            profile = self._profile_by_query(parse_identifier_query(query))
            if profile is None:
                raise profile_error(404, "profile not found", code="NotFound")
            return profile.id

    # ------------------------------------------------------------------ inspection

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            owner = self._owner_of("email", email)
            return None if owner is None else self.user_json(self.users[owner])

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "users": sum(1 for u in self.users.values() if u.active),
                "soft_deleted_users": sum(
                    1 for u in self.users.values() if u.status == "soft_deleted"
                ),
                "permanently_deleted_users": sum(
                    1 for u in self.users.values() if u.status == "permanently_deleted"
                ),
                "identities": len(self.identities),
                "profiles": len(self.profiles),
                "events": sum(len(v) for v in self.events.values()),
                "tickets": len(self.tickets),
                "open_tickets": sum(1 for t in self.tickets.values() if t.status != "closed"),
                "jobs": len(self.jobs),
            }


def _identities_from_body(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    idents: list[tuple[str, str]] = []
    if body.get("email"):
        idents.append(("email", str(body["email"])))
    for ident in body.get("identities") or []:
        if isinstance(ident, Mapping) and ident.get("type") and ident.get("value"):
            kind = "phone_number" if ident["type"] == "phone" else str(ident["type"])
            if (kind, str(ident["value"])) not in idents:
                idents.append((kind, str(ident["value"])))
    return idents


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return _copy_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result
