"""How the request engine words a failure: one safe line per error, for any kind.

Owns :func:`why` (an error as a short reason for the ledger, the evidence and the
terminal: its public class, HTTP status, the endpoint it came from and the client's
redacted message, or for an ``OSError`` the system's wording of its errno -- never a
response body or a path), :func:`is_transient` (an error a later run
may not meet again), :func:`stops_the_run` (an error that stops a whole batch cleanly)
and :func:`clip`.
"""

from __future__ import annotations

import errno
import os

from privacykit.errors import (
    LedgerError,
    NetworkError,
    PrivacykitError,
    RateLimitedError,
    RateLimitError,
    RateLimitWaitExceeded,
    ServerError,
)

__all__ = ["clip", "is_transient", "stops_the_run", "why"]


def is_transient(exc: BaseException) -> bool:
    """Zendesk did not answer, failed (5xx) or was over a budget: nothing was learned about
    the person, and the same request may succeed later."""
    return isinstance(exc, NetworkError | ServerError | RateLimitedError | RateLimitError)


def stops_the_run(exc: BaseException) -> bool:
    """An error no subject can get past in this run, so the whole batch stops cleanly at
    step boundaries (everything recorded, resumable) instead of failing subject by subject:
    Zendesk asking to wait longer than ``--max-wait``, a ledger that cannot record (a step
    without its intent must never run), a disk that cannot be written."""
    return isinstance(exc, RateLimitWaitExceeded | LedgerError | OSError)


def why(exc: BaseException) -> str:
    """A short, safe description of an error. Our own errors' messages carry ids, codes
    and endpoint templates only (errors.py contract; the client redacts query values);
    anything else is named by its type."""
    status = getattr(exc, "status_code", None)
    # Private subclasses (the client's "never sent" marker) are named by their public parent.
    public = next(c.__name__ for c in type(exc).__mro__ if not c.__name__.startswith("_"))
    name = f"{public} {status}" if status else public
    message = str(exc).replace("\n", " ").strip() if isinstance(exc, PrivacykitError) else ""
    code = exc.errno if isinstance(exc, OSError) else None
    if code is not None and code in errno.errorcode:
        # The system's own wording for the errno ("No space left on device"), never the
        # exception's text, which names the file (paths may hold anything).
        message = os.strerror(code)
    endpoint = getattr(exc, "endpoint", None)
    if isinstance(endpoint, str) and endpoint and endpoint not in message:
        name = f"{name} from {endpoint}"
    if message and message not in name:
        return f"{name}: {clip(message, 200)}"
    return name


def clip(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
