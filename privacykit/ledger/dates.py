"""Due-date rules for data subject requests (GDPR Art. 12(3)).

A controller answers "without undue delay and in any event within one month of receipt";
the period "may be extended by two further months where necessary", with the reasons
given to the subject. Periods in months follow Regulation (EEC, Euratom) No 1182/71
Art. 3(2)(c): the period ends on the same calendar date in the last month, or on that
month's last day when the date does not exist there (31 January → 28/29 February).

Assumption (the issue is silent): the whole period, extension included, is counted from
the date of receipt, so 31 January + 1 + 2 months is 30 April (not 28 April, which
chaining month by month from 28 February would give). The clock starts at receipt,
not at identity verification, which is recorded separately.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

from privacykit.errors import UsageError

__all__ = [
    "BASE_PERIOD_MONTHS",
    "MAX_EXTENSION_MONTHS",
    "add_months",
    "days_remaining",
    "due_date",
    "parse_date",
]

BASE_PERIOD_MONTHS = 1
MAX_EXTENSION_MONTHS = 2


def add_months(start: date, months: int) -> date:
    """The same calendar date ``months`` later, clamped to the last day of that month."""
    if months < 0:
        raise ValueError("months must not be negative")
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_date(received: date, extension_months: int = 0) -> date:
    """The last day to answer a request received on ``received``."""
    if not 0 <= extension_months <= MAX_EXTENSION_MONTHS:
        raise UsageError(f"an extension is 0 to {MAX_EXTENSION_MONTHS} months (Art. 12(3))")
    return add_months(received, BASE_PERIOD_MONTHS + extension_months)


def days_remaining(due: date, today: date) -> int:
    """Whole days from ``today`` to ``due``: 0 on the due date, negative once overdue."""
    return (due - today).days


def parse_date(value: date | str, what: str = "date") -> date:
    """A ``date`` from a date or an ISO ``YYYY-MM-DD`` string (a datetime keeps its date)."""
    if isinstance(value, date):
        return value if type(value) is date else date(value.year, value.month, value.day)
    text = str(value).strip()
    try:
        if len(text) > 10:
            return datetime.fromisoformat(text).date()
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} must be an ISO date like 2026-01-31") from None
