"""The read-only transport: proof, not intent, that a run changes nothing in Zendesk.

Owns :class:`ReadOnlyTransport`. The audit and the access export send through it; any
method but GET or HEAD is refused before it leaves the process, so no bug in a check or
a collector can change Zendesk. (Moved here from ``privacykit.audit.runner``; still
importable from ``privacykit.audit``.)
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from privacykit.errors import PrivacykitError
from privacykit.zendesk.transport import DeadlineTransport

__all__ = ["ReadOnlyTransport"]


class ReadOnlyTransport(httpx.BaseTransport):
    """Sends GET (and HEAD) requests through ``inner`` (by default a
    :class:`~privacykit.zendesk.transport.DeadlineTransport`, so the client's total
    deadline holds); refuses anything else. ``methods`` counts what was sent."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner or DeadlineTransport(
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8)
        )
        self._lock = threading.Lock()
        self.methods: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            # Not a ZendeskError: nothing is retried or treated as a Zendesk answer.
            raise PrivacykitError(
                f"this run is read-only: refused to send {request.method} to Zendesk"
            )
        with self._lock:
            self.methods[request.method] += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
