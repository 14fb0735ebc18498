"""The check that no request waits for a person unseen: ``request.needs_review``.

A request the engine stopped for review (ambiguous users, a protected account, an
unexpected answer from Zendesk) cannot finish until someone acts, whatever its deadline.
Before this check the audit only saw such a request a week before its due date; now every
``needs_review`` request is a finding from the day it stopped, with the reason the engine
recorded and how long it has waited. Reads the ledger only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from privacykit import clock
from privacykit.audit.findings import Finding
from privacykit.ledger import Ledger, RequestRecord

__all__ = ["check_needs_review", "review_since"]

_STATUS_KEY = "ledger:status"
_REVIEW = "needs_review"


def review_since(ledger: Ledger, request: RequestRecord) -> date:
    """The day the request last entered ``needs_review`` (its status entries say when);
    the day it was received when the ledger holds no such entry (created in that status)."""
    since: date | None = None
    previous: str | None = None
    for entry in ledger.entries(request.request_id):
        if entry.step_key != _STATUS_KEY:
            continue
        status = entry.data.get("status")
        if status == _REVIEW and previous != _REVIEW:
            moment = clock.parse_iso(entry.ts)
            since = moment.date() if moment is not None else None
        previous = status if isinstance(status, str) else previous
    return since or request.received_at


def check_needs_review(
    ledger: Ledger, requests: Iterable[RequestRecord], *, today: date
) -> list[Finding]:
    """``request.needs_review``: one finding per request of a data subject (not audit runs)
    whose status is ``needs_review``, naming its reason, since when it waits and its age
    since receipt (ids, dates and the engine's recorded reason: nothing personal)."""
    findings: list[Finding] = []
    for request in requests:
        if request.kind == "audit" or request.status != _REVIEW:
            continue
        since = review_since(ledger, request)
        waiting = max(0, (today - since).days)
        age = max(0, (today - request.received_at).days)
        reason = " ".join((request.status_reason or "no reason recorded").split())
        details: dict[str, Any] = {
            "request_id": request.request_id,
            "kind": request.kind,
            "reason": reason,
            "review_since": since.isoformat(),
            "days_in_review": waiting,
            "received_at": request.received_at.isoformat(),
            "age_days": age,
            "due_date": request.due_date.isoformat(),
        }
        findings.append(
            Finding(
                "request.needs_review",
                f"{request.kind} request needs review for {_days(waiting)} (since "
                f"{since.isoformat()}; received {_days(age)} ago, due "
                f"{request.due_date.isoformat()}): {reason}",
                request.request_id,
                details,
            )
        )
    return findings


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"
