"""The one exception tree of privacykit.

Every error the product raises on purpose is a ``PrivacykitError``. The CLI turns
``UsageError`` into exit code 2 and every other ``PrivacykitError`` into exit
code 1, each as one line on stderr; nothing else should reach the user as a
traceback.

    PrivacykitError
     ├── UsageError                 bad input: exit 2, nothing changed in Zendesk
     │    ├── ConfigError           environment / configuration is wrong
     │    ├── SubjectError          a SUBJECT argument or input file is malformed
     │    ├── PlaybookError         a playbook file is invalid (names file, line, key)
     │    └── HomeBusyError         another privacykit command is writing to PRIVACYKIT_HOME
     ├── ZendeskError               anything that went wrong talking to Zendesk
     │    ├── NetworkError          timeout, refused or dropped connection
     │    │    └── RequestDeadlineExceeded   one exchange took longer than its total deadline
     │    ├── MalformedResponseError  a 2xx answer not shaped as documented (.endpoint)
     │    ├── ResponseTooLarge      an answer bigger than the cap (.endpoint, .max_bytes)
     │    ├── RateLimitError        rate limiting stopped a request (.retry_after, seconds)
     │    │    ├── RateLimitWaitExceeded  the wait would pass max_wait (.retry_after, .resume_at)
     │    │    └── RateLimitedError  (also an HTTPStatusError, below)
     │    └── HTTPStatusError       Zendesk answered with an error status (carries .response)
     │         ├── AuthenticationError   401
     │         ├── ForbiddenError        403
     │         ├── NotFoundError         404
     │         ├── ValidationError       400 / 422 (carries Zendesk's error body)
     │         ├── RateLimitedError      429 (carries .retry_after, seconds)
     │         └── ServerError           5xx
     ├── LedgerError                the local ledger cannot do what was asked
     │    └── LedgerIntegrityError  verification failed (names the first bad entry)
     └── EvidenceError              rendering, signing or exporting evidence failed
          └── EvidenceVerificationError  a bundle or report does not verify

Messages never contain an API token or a subject's personal data: callers pass
ids, counts and keyed references, never raw identifiers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "EvidenceError",
    "EvidenceVerificationError",
    "ForbiddenError",
    "HTTPStatusError",
    "HomeBusyError",
    "LedgerError",
    "LedgerIntegrityError",
    "MalformedResponseError",
    "NetworkError",
    "NotFoundError",
    "PlaybookError",
    "PrivacykitError",
    "RateLimitError",
    "RateLimitWaitExceeded",
    "RateLimitedError",
    "RequestDeadlineExceeded",
    "ResponseTooLarge",
    "ServerError",
    "SubjectError",
    "UsageError",
    "ValidationError",
    "ZendeskError",
]


class PrivacykitError(Exception):
    """Base of every error privacykit raises on purpose."""

    exit_code = 1


class UsageError(PrivacykitError):
    """The user's input is wrong; nothing was changed."""

    exit_code = 2


class ConfigError(UsageError):
    """Configuration (environment variables, files, paths) is missing or invalid."""


class SubjectError(UsageError):
    """A SUBJECT argument or subjects file is malformed."""


class PlaybookError(UsageError):
    """A playbook file is invalid. ``file``, ``line`` and ``key`` locate the problem."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file is not None:
            where = file
            if line is not None:
                where += f":{line}"
            where += ": "
        if key is not None:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class HomeBusyError(UsageError):
    """Another privacykit command holds PRIVACYKIT_HOME for writing (exit 2, nothing done).
    ``command`` names the holder, as far as it is known."""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class ZendeskError(PrivacykitError):
    """Talking to Zendesk failed."""


class NetworkError(ZendeskError):
    """The request did not get an answer: timeout, refused or dropped connection."""


class RequestDeadlineExceeded(NetworkError):
    """One exchange (connect, send, headers and body) took longer than the client's total
    deadline, e.g. a server dripping a byte every few seconds. Whether Zendesk acted on
    the request is unknown, as for any timeout; it is not retried."""


class MalformedResponseError(ZendeskError):
    """A 2xx answer whose body is not what the endpoint documents (not JSON, a key missing,
    a list where an object belongs, an id that is not an integer...). Nothing may be
    concluded from it. ``endpoint`` is the route template, e.g.
    ``"GET /api/v2/users/{id}/identities"``; the message names it and what was wrong and
    never quotes the body (it can hold personal data)."""

    def __init__(self, message: str, *, endpoint: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class ResponseTooLarge(ZendeskError):
    """An answer (or a downloaded attachment) grew past the size cap; it was not kept."""

    def __init__(self, message: str, *, endpoint: str, max_bytes: int) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.max_bytes = max_bytes


class RateLimitError(ZendeskError):
    """Rate limiting stopped a request. ``retry_after`` is how long (seconds) Zendesk, or
    the budget as the governor knows it, said to wait."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitWaitExceeded(RateLimitError):
    """Waiting for a rate-limit budget would take longer than ``max_wait``: raised at once,
    without sleeping. ``resume_at`` (aware UTC datetime) is when Zendesk said to come
    back; the run stops cleanly and can be resumed then."""

    def __init__(self, message: str, *, retry_after: float, resume_at: datetime) -> None:
        super().__init__(message, retry_after=retry_after)
        self.resume_at = resume_at


class HTTPStatusError(ZendeskError):
    """Zendesk answered with an error status. ``response`` is the httpx response."""

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def body(self) -> Any:
        """The parsed JSON error body, or the text when it is not JSON (429s often are not)."""
        try:
            return self.response.json()
        except ValueError:
            return self.response.text


class AuthenticationError(HTTPStatusError):
    """401: the credentials were refused."""


class ForbiddenError(HTTPStatusError):
    """403: the credentials are valid but not allowed to do this."""


class NotFoundError(HTTPStatusError):
    """404: the record does not exist (or no longer does)."""


class ValidationError(HTTPStatusError):
    """400/422: Zendesk refused the request as invalid; ``body`` holds its error document."""


class RateLimitedError(HTTPStatusError, RateLimitError):
    """429: over a rate limit. ``retry_after`` is the server's wait, in seconds. Both an
    HTTP status error and a :class:`RateLimitError`."""

    def __init__(self, message: str, *, response: httpx.Response, retry_after: float) -> None:
        # Not via super(): the two bases take different keywords.
        ZendeskError.__init__(self, message)
        self.response = response
        self.retry_after = retry_after


class ServerError(HTTPStatusError):
    """5xx: Zendesk failed."""


class LedgerError(PrivacykitError):
    """The ledger cannot do what was asked."""


class LedgerIntegrityError(LedgerError):
    """Ledger verification failed; ``entry`` is the sequence number of the first bad entry."""

    def __init__(self, message: str, *, entry: int | None = None) -> None:
        super().__init__(message)
        self.entry = entry


class EvidenceError(PrivacykitError):
    """Rendering, signing or exporting evidence failed."""


class EvidenceVerificationError(EvidenceError):
    """An evidence bundle or report does not verify; the message names the first problem."""
