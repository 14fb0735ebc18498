"""Small helpers for the JSON values Zendesk returns, shared by the access modules.

Re-exports :func:`~privacykit.playbooks.discovery.as_int` (an id or count as ``int``, or
``None``; one reader for every kind). Owns :func:`without` (a record
minus excluded keys) and :func:`now` (the timestamp format of the access answer).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from privacykit import clock
from privacykit.playbooks.discovery import as_int

__all__ = ["as_int", "now", "without"]


def now() -> str:
    return clock.now_iso()


def without(record: Mapping[str, Any], excluded: Collection[str]) -> dict[str, Any]:
    """``record`` minus the ``excluded`` keys."""
    return {key: value for key, value in record.items() if key not in excluded}
