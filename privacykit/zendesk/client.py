"""The Zendesk client: the one choke-point every Zendesk request goes through.

Owns :class:`ZendeskClient`, assembled from the choke-point
(:mod:`privacykit.zendesk.core`: auth, retries, governor, deadline, size cap, schema
validation) and the endpoint groups (:mod:`~privacykit.zendesk.users`,
:mod:`~privacykit.zendesk.tickets`). Every endpoint method returns plain dicts / lists
of dicts exactly as Zendesk's JSON has them, after checking them against
:mod:`privacykit.zendesk.schemas`.
"""

from __future__ import annotations

from privacykit.zendesk.core import ClientStats
from privacykit.zendesk.routes import redact_url, scopes_for
from privacykit.zendesk.tickets import Download, TicketsAPI

__all__ = ["ClientStats", "Download", "ZendeskClient", "redact_url", "scopes_for"]


class ZendeskClient(TicketsAPI):
    """A thread-safe Zendesk client (Users, Profiles, Tickets and related APIs).

    ``ZendeskClient(config, *, governor=None, timeout=30.0, max_attempts=5,
    transport=None, max_connections=32, max_rate_limited=20, backoff_initial=0.25,
    backoff_max=8.0, sleep=time.sleep, deadline=180.0, max_response_bytes=50 MB,
    max_wait=None, clock=time.monotonic)``:

    * ``timeout``: per socket operation; ``deadline``: total seconds per exchange
      (connect, send, headers and body); ``max_response_bytes``: the largest answer kept.
    * ``max_wait``: seconds a request may wait for rate-limit budget (sets the
      governor's; default 15 min); past it ``RateLimitWaitExceeded``, raised at once when
      the server announced the longer wait.
    * ``sleep`` is what retries wait with and ``clock`` what deadlines are measured on
      (tests inject both). ``backoff_initial``/``backoff_max`` shape the exponential
      backoff for 5xx and network errors; ``max_attempts`` bounds those attempts and
      ``max_rate_limited`` the 429 ones.
    """

    def __enter__(self) -> ZendeskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
