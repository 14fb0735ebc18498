"""Small helpers for the JSON values Zendesk returns, shared by the access modules.

Owns :func:`as_int` (an id or count as ``int``, or ``None``), :func:`without` (a record
minus excluded keys) and :func:`now` (the timestamp format of the access answer).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from privacykit import clock

__all__ = ["as_int", "now", "without"]


def now() -> str:
    return clock.now_iso()


def without(record: Mapping[str, Any], excluded: Collection[str]) -> dict[str, Any]:
    """``record`` minus the ``excluded`` keys."""
    return {key: value for key, value in record.items() if key not in excluded}


def as_int(value: Any) -> int | None:
    """``value`` as an int (ids arrive as numbers or digit strings), else None. Booleans
    are not ids."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
