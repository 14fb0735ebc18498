"""Art. 12(3) due dates: one month after receipt (clamped to month end), plus extensions."""

from __future__ import annotations

from datetime import date

import pytest

from privacykit.errors import UsageError
from privacykit.ledger.dates import add_months, days_remaining, due_date, parse_date


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 3, 5), date(2026, 4, 5)),
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),  # leap year
        (date(2028, 1, 29), date(2028, 2, 29)),
        (date(2026, 1, 29), date(2026, 2, 28)),
        (date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 12, 15), date(2027, 1, 15)),
        (date(2026, 12, 31), date(2027, 1, 31)),
        (date(2026, 2, 28), date(2026, 3, 28)),
    ],
)
def test_one_month_after_receipt(received: date, due: date) -> None:
    assert due_date(received) == due


@pytest.mark.parametrize(
    ("received", "extension", "due"),
    [
        (date(2026, 3, 5), 1, date(2026, 5, 5)),
        (date(2026, 3, 5), 2, date(2026, 6, 5)),
        # The whole period counts from receipt: 31 Jan + 3 months is 30 Apr.
        (date(2026, 1, 31), 2, date(2026, 4, 30)),
        (date(2026, 1, 31), 1, date(2026, 3, 31)),
        (date(2026, 11, 30), 2, date(2027, 2, 28)),
    ],
)
def test_extensions(received: date, extension: int, due: date) -> None:
    assert due_date(received, extension) == due


def test_at_most_two_extra_months() -> None:
    with pytest.raises(UsageError, match="Art. 12"):
        due_date(date(2026, 1, 1), 3)


def test_add_months_across_years() -> None:
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 5, 31), 0) == date(2026, 5, 31)
    with pytest.raises(ValueError):
        add_months(date(2026, 5, 31), -1)


def test_days_remaining() -> None:
    due = date(2026, 2, 28)
    assert days_remaining(due, date(2026, 2, 1)) == 27
    assert days_remaining(due, due) == 0
    assert days_remaining(due, date(2026, 3, 2)) == -2


def test_parse_date() -> None:
    assert parse_date("2026-01-31") == date(2026, 1, 31)
    assert parse_date("2026-01-31T23:00:00+00:00") == date(2026, 1, 31)
    with pytest.raises(UsageError):
        parse_date("31/01/2026")
    with pytest.raises(UsageError):
        parse_date("2026-02-30")
