"""Sunshine profiles and their events.

Owns :class:`ProfilesState` (see :mod:`privacykit.sandbox.core` for the layering): the
Profiles API rules as documented in ``../shared/zendesk-docs`` (identifier queries,
create-or-replace by identifier or by user, PATCH merge rules, standard identifiers
becoming the user's identities, the anonymous user made for unmatched identifiers, the
20-profiles-per-user cap) and profile events. Errors are JSON:API shaped
(:func:`~privacykit.sandbox.model.profile_error`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from privacykit.sandbox.model import (
    IDENTITY_TYPES,
    PROFILES_PER_USER,
    STANDARD_IDENTIFIERS,
    Event,
    IdentifierQuery,
    Profile,
    copy_json,
    merge_patch,
    norm_value,
    parse_identifier_query,
    profile_error,
    stored_value,
)
from privacykit.sandbox.organizations import OrganizationsState

__all__ = ["ProfilesState"]


class ProfilesState(OrganizationsState):
    """Profiles, their identifier index and their events."""

    profiles: dict[str, Profile]
    _profile_index: dict[tuple[str, str, str, str], str]
    _user_profiles: dict[int, list[str]]
    events: dict[str, list[Event]]

    def _clear(self) -> None:
        super()._clear()
        self.profiles = {}
        self._profile_index = {}
        self._user_profiles = {}
        self.events = {}

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
            "attributes": copy_json(profile.attributes),
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
            "properties": copy_json(event.properties),
            "created_at": event.created_at,
            "received_at": event.received_at,
        }

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
            value = stored_value(kind, ident["value"])
            key = (kind, norm_value(kind, value))
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
            key = (source, ptype, ident["type"], norm_value(ident["type"], ident["value"]))
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
            elif kind in IDENTITY_TYPES:
                self._add_identity(user_id, IDENTITY_TYPES[kind], ident["value"])

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
            copy_json(data.get("attributes") or {}),
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
        profile.attributes = copy_json(data.get("attributes") or {})
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
            if (profile.source, profile.type, i["type"], norm_value(i["type"], i["value"]))
            not in set(profile.keys())
        ]
        self._check_unique_in_source(profile.source, profile.type, new, profile.id)
        owners = self._identifier_owners(new)
        if owners["strict"] - {profile.user_id}:
            raise profile_error(400, "identifiers belong to more than one user")
        if data.get("name"):
            profile.name = data["name"]
        if isinstance(data.get("attributes"), dict):
            profile.attributes = merge_patch(profile.attributes, data["attributes"])
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
                copy_json(dict(properties or {})),
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
