"""Organizations and organization memberships.

Owns :class:`OrganizationsState` (see :mod:`privacykit.sandbox.core` for the layering):
organizations (``name`` unique, ``details``, ``notes``, ``domain_names``, ``external_id``,
``tags``, ``organization_fields`` — a sole trader's organization is personal data) and the
memberships linking users to them; a user's default membership is their
``organization_id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from privacykit.sandbox.model import Membership, Organization, invalid_field, record_not_found
from privacykit.sandbox.users import UsersState

__all__ = ["OrganizationsState"]


class OrganizationsState(UsersState):
    """Organizations and who belongs to them."""

    organizations: dict[int, Organization]
    memberships: dict[int, Membership]

    def _clear(self) -> None:
        super()._clear()
        self.organizations = {}
        self.memberships = {}
        self._next_organization = 360001
        self._next_membership = 460001

    def organization_json(self, org: Organization) -> dict[str, Any]:
        return {
            "id": org.id,
            "url": f"{self.base_url}/api/v2/organizations/{org.id}.json",
            "name": org.name,
            "details": org.details,
            "notes": org.notes,
            "domain_names": list(org.domain_names),
            "external_id": org.external_id,
            "tags": list(org.tags),
            "organization_fields": dict(org.organization_fields),
            "group_id": None,
            "shared_tickets": False,
            "shared_comments": False,
            "created_at": org.created_at,
            "updated_at": org.updated_at,
        }

    def membership_json(self, membership: Membership) -> dict[str, Any]:
        org = self.organizations.get(membership.organization_id)
        return {
            "id": membership.id,
            "url": f"{self.base_url}/api/v2/organization_memberships/{membership.id}.json",
            "user_id": membership.user_id,
            "organization_id": membership.organization_id,
            "organization_name": org.name if org else None,
            "default": membership.default,
            "view_tickets": True,
            "created_at": membership.created_at,
            "updated_at": membership.updated_at,
        }

    def add_organization(
        self,
        name: str,
        *,
        details: str | None = None,
        notes: str | None = None,
        domain_names: Iterable[str] = (),
        external_id: str | None = None,
        tags: Iterable[str] = (),
        organization_fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Seed an organization (names are unique, as in Zendesk). Returns its JSON."""
        with self.lock:
            if not name.strip():
                raise invalid_field("name", "Name: cannot be blank", "BlankValue")
            if any(o.name.lower() == name.strip().lower() for o in self.organizations.values()):
                raise invalid_field(
                    "name", f"Name: {name} has already been taken", "DuplicateValue"
                )
            now = self._now()
            org = Organization(
                self._next_organization,
                name.strip(),
                now,
                now,
                details=details,
                notes=notes,
                domain_names=list(domain_names),
                external_id=external_id,
                tags=list(tags),
                organization_fields=dict(organization_fields or {}),
            )
            self._next_organization += 1
            self.organizations[org.id] = org
            return self.organization_json(org)

    def add_membership(
        self, user_id: int, organization_id: int, *, default: bool | None = None
    ) -> dict[str, Any]:
        """Seed a membership; the user's first one is their default (``organization_id``)
        unless ``default`` says otherwise. Returns its JSON."""
        with self.lock:
            user = self._user(user_id, active_only=True)
            if organization_id not in self.organizations:
                raise record_not_found()
            mine = [m for m in self.memberships.values() if m.user_id == user_id]
            if any(m.organization_id == organization_id for m in mine):
                raise invalid_field(
                    "user_id", "User: is already a member of this organization", "DuplicateValue"
                )
            is_default = not mine if default is None else default
            if is_default:
                for other in mine:
                    other.default = False
                user.organization_id = organization_id
            now = self._now()
            membership = Membership(
                self._next_membership, user_id, organization_id, is_default, now, now
            )
            self._next_membership += 1
            self.memberships[membership.id] = membership
            return self.membership_json(membership)

    def show_organization(self, organization_id: int) -> dict[str, Any]:
        with self.lock:
            org = self.organizations.get(organization_id)
            if org is None:
                raise record_not_found()
            return self.organization_json(org)

    def user_membership_ids(self, user_id: int) -> list[int]:
        """``GET /api/v2/users/{id}/organization_memberships``."""
        with self.lock:
            self._user(user_id)
            return sorted(m.id for m in self.memberships.values() if m.user_id == user_id)

    def render_memberships(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.membership_json(self.memberships[m]) for m in ids if m in self.memberships]

    def user_organization_ids(self, user_id: int) -> list[int]:
        """``GET /api/v2/users/{id}/organizations``."""
        with self.lock:
            return sorted(
                {self.memberships[m].organization_id for m in self.user_membership_ids(user_id)}
            )

    def render_organizations(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [
                self.organization_json(self.organizations[o])
                for o in ids
                if o in self.organizations
            ]

    def _drop_memberships(self, user_id: int) -> None:
        for mid in [m.id for m in self.memberships.values() if m.user_id == user_id]:
            del self.memberships[mid]
