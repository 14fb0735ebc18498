"""`privacykit erase`: placeholder until its issue lands (the owning helper replaces this module)."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
