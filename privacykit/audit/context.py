"""What one audit run's phases share: the ledger, the read-only client, the budget, what
was found and counted so far.

Owns :class:`AuditContext` (built by :mod:`.runner`, read and written by :mod:`.sweep`,
:mod:`.compliance` and :mod:`.record`) and :class:`Budget` (the Zendesk requests a run may
still send, counted from the client's own statistics).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from privacykit.audit.findings import AuditResult
from privacykit.audit.options import AuditOptions

if TYPE_CHECKING:
    from privacykit.ledger import Ledger
    from privacykit.playbooks.request import RequestSession
    from privacykit.zendesk import ZendeskClient
    from privacykit.zendesk.readonly import ReadOnlyTransport

__all__ = ["AuditContext", "Budget", "one_line"]


class Budget:
    """Zendesk requests left for this run, counted from the client's own statistics."""

    def __init__(self, client: ZendeskClient, limit: int) -> None:
        self._client = client
        self._start = client.stats.calls
        self.limit = limit

    def start_at(self, calls: int) -> None:
        self._start = calls

    @property
    def used(self) -> int:
        return self._client.stats.calls - self._start

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def fits(self, cost: int, *, first: bool) -> bool:
        # The first item of a phase is always taken, so an erasure bigger than the whole
        # budget cannot block the rotation for ever (the overrun is at most that item).
        return cost <= self.remaining or (first and self.remaining > 0)


@dataclass
class AuditContext:
    """One run's shared state. ``lock`` guards ``checked`` and ``result`` while worker
    threads re-check erasures."""

    ledger: Ledger
    client: ZendeskClient
    transport: ReadOnlyTransport
    options: AuditOptions
    home: Path
    now: datetime
    result: AuditResult
    budget: Budget
    checked: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Erasures this run finished (compliance confirmed) whose reports are left owed
    #: until the audit's own final status is written: then one checkpoint, every report
    #: naming it (#13). Guarded by ``lock``.
    deferred: list[RequestSession] = field(default_factory=list)

    @property
    def today(self) -> date:
        return self.now.astimezone().date()


def one_line(exc: BaseException) -> str:
    """An exception as one line (never a traceback) for findings and errors."""
    return " ".join(str(exc).split()) or type(exc).__name__
