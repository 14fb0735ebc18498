"""Users and identities: create, update, show, list, search.

Owns :class:`UsersState` (see :mod:`privacykit.sandbox.core` for the layering): user
records, their identities and the indexes that make emails, phone numbers, twitter
handles and external ids unique; the documented rules for phones (a number already used
by another user is kept as a shared number without an identity) and email updates (added
as a secondary identity); the users search grammar.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from privacykit.sandbox.jobs import JobsState
from privacykit.sandbox.model import (
    PERMANENTLY_DELETED_NAME,
    ROLES,
    Identity,
    User,
    identities_from_body,
    invalid_field,
    norm_value,
    record_not_found,
    stored_value,
)

__all__ = ["UsersState"]


class UsersState(JobsState):
    """Users and identities (the account owner and the authenticating admin included)."""

    users: dict[int, User]
    identities: dict[int, Identity]
    _identity_index: dict[tuple[str, str], int]
    _identities_by_user: dict[int, list[int]]
    _external_index: dict[str, int]
    # Set by SandboxState once every layer's records exist.
    admin_id: int
    owner_id: int

    def _clear(self) -> None:
        super()._clear()
        self.users = {}
        self.identities = {}
        self._identity_index = {}
        self._identities_by_user = {}
        self._external_index = {}
        self._next_user = 10001
        self._next_identity = 50001

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
            return self._external_index.get(norm_value("external_id", value))
        ident_id = self._identity_index.get((kind, norm_value(kind, value)))
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
        key = (kind if kind != "google" else "email", norm_value(kind, value))
        existing = self._identity_index.get(key)
        if existing is not None:
            ident = self.identities[existing]
            if ident.user_id != user_id:
                raise invalid_field(
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
            str(stored_value(kind, value)),
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
                self._external_index.pop(norm_value("external_id", user.external_id), None)
            user.external_id = None
            return
        key = norm_value("external_id", external_id)
        owner = self._external_index.get(key)
        if owner is not None and owner != user.id:
            raise invalid_field(
                "external_id",
                f"External: {external_id} has already been taken",
                "DuplicateValue",
            )
        if user.external_id is not None:
            self._external_index.pop(norm_value("external_id", user.external_id), None)
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
            "signature": user.signature,
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
            "name": PERMANENTLY_DELETED_NAME if scrubbed else user.name,
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
                raise invalid_field(
                    "name", "Name:  is too short (minimum one character)", "BlankValue"
                )
            role = body.get("role") or "end-user"
            if body.get("custom_role_id") and role == "end-user":
                role = "agent"  # documented
            if role not in ROLES:
                raise invalid_field("role", f"Role: {role} is not a valid role", "InvalidValue")
            idents = identities_from_body(body)
            # Validate uniqueness before changing anything.
            for kind, value in idents:
                if self._owner_of(kind if kind != "google" else "email", value) is not None:
                    raise invalid_field(
                        kind if kind == "email" else "value",
                        f"{kind.capitalize()}: {value} is already being used by another user",
                        "DuplicateValue",
                    )
            ext = body.get("external_id")
            if ext not in (None, "") and self._owner_of("external_id", ext) is not None:
                raise invalid_field(
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
        for key in (
            "alias",
            "signature",
            "notes",
            "details",
            "locale",
            "time_zone",
            "organization_id",
        ):
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
                    raise invalid_field(
                        "name", "Name:  is too short (minimum one character)", "BlankValue"
                    )
            if "role" in body and body["role"] not in ROLES:
                raise invalid_field(
                    "role", f"Role: {body['role']} is not a valid role", "InvalidValue"
                )
            if "email" in body and body["email"]:
                owner = self._owner_of("email", body["email"])
                if owner is not None and owner != user.id:
                    raise invalid_field(
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
            self._settle()
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
                        norm = norm_value("phone_number", value)
                        hit |= {
                            u.id
                            for u in self.users.values()
                            if u.phone and norm_value("phone_number", u.phone) == norm
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
