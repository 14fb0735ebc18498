"""The one exception tree of privacykit.

Every error the product raises on purpose is a ``PrivacykitError``. The CLI turns
``UsageError`` into exit code 2 and every other ``PrivacykitError`` into exit
code 1, each as one line on stderr; nothing else should reach the user as a
traceback.

    PrivacykitError
     ├── UsageError                 bad input: exit 2, nothing changed in Zendesk
     │    ├── ConfigError           environment / configuration is wrong
     │    ├── SubjectError          a SUBJECT argument or input file is malformed
     │    └── PlaybookError         a playbook file is invalid (names file, line, key)
     ├── ZendeskError               anything that went wrong talking to Zendesk
     │    ├── NetworkError          timeout, refused or dropped connection
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
    import httpx

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "EvidenceError",
    "EvidenceVerificationError",
    "ForbiddenError",
    "HTTPStatusError",
    "LedgerError",
    "LedgerIntegrityError",
    "NetworkError",
    "NotFoundError",
    "PlaybookError",
    "PrivacykitError",
    "RateLimitedError",
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


class ZendeskError(PrivacykitError):
    """Talking to Zendesk failed."""


class NetworkError(ZendeskError):
    """The request did not get an answer: timeout, refused or dropped connection."""


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


class RateLimitedError(HTTPStatusError):
    """429: over a rate limit. ``retry_after`` is the server's wait, in seconds."""

    def __init__(self, message: str, *, response: httpx.Response, retry_after: float) -> None:
        super().__init__(message, response=response)
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
