"""Organizations and organization memberships.

Owns :class:`OrganizationsState` (see :mod:`privacykit.sandbox.core` for the layering).
"""

from __future__ import annotations

from privacykit.sandbox.users import UsersState

__all__ = ["OrganizationsState"]


class OrganizationsState(UsersState):
    """Organizations a user belongs to (filled in by a later step)."""
