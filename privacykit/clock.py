"""The one clock of privacykit: what "now" and "today" are, and how "now" is written.

Owns :func:`now` (aware UTC), :func:`now_iso` / :func:`iso` (the product's one text form,
``2026-01-31T12:00:00Z``: second precision, ``Z``), :func:`today` (the UTC date) and the
test hooks :func:`frozen` / :func:`use`, which replace the source of time for every caller
at once (threads included), so deadlines, grace periods and timestamps can be tested
without sleeping or patching modules one by one.

Only wall-clock time lives here. Pacing (rate-limit windows, timeouts) uses
``time.monotonic`` on purpose: a wall clock that jumps must not make the governor wait.
The ledger keeps its own microsecond-precision entry timestamps (a storage format), but
takes the moment from here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

__all__ = ["ISO_FORMAT", "frozen", "iso", "now", "now_iso", "parse_iso", "today", "use"]

#: The one text form of a moment in privacykit's records, reports and output.
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _system() -> datetime:
    return datetime.now(UTC)


_lock = threading.Lock()
_source: Callable[[], datetime] = _system


def now() -> datetime:
    """The current moment, timezone-aware, in UTC."""
    moment = _source()
    if moment.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """``moment`` in the product's one text form (``2026-01-31T12:00:00Z``)."""
    if moment.tzinfo is None:
        raise ValueError("only timezone-aware datetimes have a text form")
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def now_iso() -> str:
    """:func:`now` as text (:func:`iso`)."""
    return iso(now())


def today() -> date:
    """Today's date in UTC (deadlines are counted in UTC days)."""
    return now().date()


def parse_iso(text: object) -> datetime | None:
    """A timestamp written by privacykit, Zendesk or the ledger as an aware datetime;
    None when absent, unreadable or without a timezone."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


@contextmanager
def use(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, every caller's "now" comes from ``source`` (tests)."""
    global _source
    with _lock:
        previous = _source
        _source = source
    try:
        yield
    finally:
        with _lock:
            _source = previous


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    """Within the block, "now" is ``moment`` (aware) for every caller (tests)."""
    if moment.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    with use(lambda: moment):
        yield
