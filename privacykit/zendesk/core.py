"""The choke-point every Zendesk request goes through (the base of ``ZendeskClient``).

Owns authentication, the mapping of HTTP answers to :mod:`privacykit.errors`, retries
(tenacity), the calls into the rate-limit :class:`~privacykit.zendesk.governor.Governor`,
the bounds on every exchange, and parsing + validating answers against
:mod:`privacykit.zendesk.schemas`.

One request, :meth:`ClientCore.request`:
governor acquire -> send (streamed) -> governor observe (headers) -> body read within the
size cap and the deadline -> status mapped to an exception -> tenacity decides whether to
try again:

* 429: retried after exactly ``Retry-After``; the governor pauses the blamed scope for
  every thread in the meantime. A wait that would take the request past ``max_wait``
  (default 15 min, summed over its waits) raises
  :class:`~privacykit.errors.RateLimitWaitExceeded` at once, without sleeping.
* 5xx, read timeouts, dropped connections: retried with exponential backoff and jitter, a
  bounded number of times, only for idempotent requests (GET, PUT, one-profile and
  one-ticket DELETE). A connection that was never established is retried for any
  request (nothing was sent).
* POST, bulk jobs, user soft delete and permanent delete are not retried blindly: the
  error is raised and the caller reconciles with Zendesk's state using its ledger intent.
* Bounds: a total ``deadline`` per exchange (default 180 s; connect, send, headers and
  body together, on top of the per-read ``timeout``) raises
  :class:`~privacykit.errors.RequestDeadlineExceeded` (not retried); an answer over
  ``max_response_bytes`` (default 50 MB, counted while streaming) raises
  :class:`~privacykit.errors.ResponseTooLarge`.

Nothing secret or personal leaves this module in a message: the token lives in a
:class:`~privacykit.config.Secret` and is only revealed into the Authorization header;
paths in messages and logs have their query values redacted except for page/id params;
error bodies are never quoted (they can echo personal data), only a short error code.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import tenacity

import privacykit
from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import (
    AuthenticationError,
    ForbiddenError,
    HTTPStatusError,
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    RequestDeadlineExceeded,
    ResponseTooLarge,
    ServerError,
    UsageError,
    ValidationError,
)
from privacykit.zendesk.governor import Governor
from privacykit.zendesk.pagination import Fetch
from privacykit.zendesk.routes import (
    check_path,
    default_idempotent,
    endpoint_for,
    redact_url,
    scopes_for,
)
from privacykit.zendesk.schemas import parse_body, validate
from privacykit.zendesk.transport import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DeadlineTransport,
    Overrun,
    deadline,
    read_bounded,
)

__all__ = ["ClientCore", "ClientStats", "NotSentError", "status_error"]

log = logging.getLogger("privacykit.zendesk")

_SAFE_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_ .\-]{0,63}$")


class _RedactingFilter(logging.Filter):
    """httpx logs every request URL at INFO; URLs carry search queries (an email address
    is personal data) and attachment URLs carry access tokens in their paths, so query
    values are redacted and non-API paths hidden before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _log_url(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def _log_url(url: httpx.URL) -> str:
    if not url.path.startswith("/api/"):
        return f"{url.scheme}://{url.host}/***"
    return redact_url(str(url))


_filter_lock = threading.Lock()


def _install_log_redaction() -> None:
    with _filter_lock:
        logger = logging.getLogger("httpx")
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


class _TokenAuth(httpx.Auth):
    """Sets the Authorization header from a Secret; its repr shows nothing."""

    def __init__(self, header: Secret) -> None:
        self._header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header.reveal()
        yield request

    def __repr__(self) -> str:
        return "_TokenAuth(***)"


def _auth_for(config: ZendeskConfig) -> _TokenAuth:
    if config.api_token is not None:
        if not config.email:
            raise UsageError("an API token needs the agent's email (ZENDESK_EMAIL)")
        raw = f"{config.email}/token:{config.api_token.reveal()}".encode()
        return _TokenAuth(Secret("Basic " + base64.b64encode(raw).decode("ascii")))
    if config.oauth_token is not None:
        return _TokenAuth(Secret("Bearer " + config.oauth_token.reveal()))
    raise UsageError("no Zendesk credentials: set ZENDESK_API_TOKEN or ZENDESK_OAUTH_TOKEN")


def default_transport(base_url: str, max_connections: int) -> DeadlineTransport:
    """The transport a client uses unless given one: deadline-aware sockets, and the
    environment's proxy for ``base_url`` (httpx only reads the environment itself when
    it builds its own transport)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme)
    if proxy and parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        proxy = None
    return DeadlineTransport(
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        proxy=proxy or None,
    )


# ---------------------------------------------------------------------------------------
# Stats


class ClientStats:
    """Thread-safe counters of what the client sent and got back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0  # attempts sent (retries included)
        self.calls = 0  # request() calls
        self.by_status: Counter[int] = Counter()
        self.rate_limited = 0
        self.retries = 0
        self.network_errors = 0
        self.malformed = 0  # 2xx answers refused by their schema
        self.bounded = 0  # exchanges stopped by the deadline or the size cap

    def _add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def _status(self, status: int) -> None:
        with self._lock:
            self.requests += 1
            self.by_status[status] += 1
            if status == 429:
                self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "calls": self.calls,
                "by_status": dict(sorted(self.by_status.items())),
                "rate_limited": self.rate_limited,
                "retries": self.retries,
                "network_errors": self.network_errors,
                "malformed": self.malformed,
                "bounded": self.bounded,
            }

    def __repr__(self) -> str:
        return f"ClientStats({self.snapshot()})"


# ---------------------------------------------------------------------------------------
# Errors


class NotSentError(NetworkError):
    """The connection was never established: nothing reached Zendesk, so any request,
    idempotent or not, may be tried again."""


def _error_code(response: httpx.Response) -> str | None:
    """A short machine code from an error body (``RecordInvalid``, ``ClientError``), never
    free text: descriptions can echo personal data back."""
    try:
        body = response.json()
    except ValueError:
        return None
    candidates: list[Any] = []
    if isinstance(body, dict):
        candidates.append(body.get("error"))
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            candidates.append(errors[0].get("code"))
    for code in candidates:
        if isinstance(code, str) and _SAFE_CODE.match(code):
            return code
    return None


def status_error(response: httpx.Response, label: str, retry_after: float) -> HTTPStatusError:
    """The :class:`~privacykit.errors.HTTPStatusError` subclass for a non-2xx answer."""
    status = response.status_code
    message = f"{label} -> {status}"
    if status == 429:
        return RateLimitedError(
            f"{message} rate limited, retry after {retry_after:g}s",
            response=response,
            retry_after=retry_after,
        )
    code = _error_code(response)
    if code:
        message += f" ({code})"
    if status == 401:
        return AuthenticationError(f"{message}: credentials refused", response=response)
    if status == 403:
        return ForbiddenError(f"{message}: not allowed", response=response)
    if status == 404:
        return NotFoundError(f"{message}: not found", response=response)
    if status in (400, 422):
        return ValidationError(f"{message}: refused as invalid", response=response)
    if status >= 500:
        return ServerError(f"{message}: Zendesk failed", response=response)
    return HTTPStatusError(f"{message}: unexpected answer", response=response)


# ---------------------------------------------------------------------------------------
# The choke-point


class ClientCore:
    """Everything but the endpoint methods of :class:`~privacykit.zendesk.ZendeskClient`
    (its docstring lists the constructor arguments)."""

    def __init__(
        self,
        config: ZendeskConfig,
        *,
        governor: Governor | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
        max_rate_limited: int = 20,
        backoff_initial: float = 0.25,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_wait: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1 or max_rate_limited < 0:
            raise UsageError("max_attempts must be >= 1 and max_rate_limited >= 0")
        if not deadline > 0 or max_response_bytes < 1:
            raise UsageError("deadline and max_response_bytes must be positive")
        self.config = config
        self.governor = governor if governor is not None else Governor()
        if max_wait is not None:
            try:
                self.governor.max_wait = max_wait
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        self.stats = ClientStats()
        self.max_attempts = max_attempts
        self.max_rate_limited = max_rate_limited
        self.deadline = float(deadline)
        self.max_response_bytes = int(max_response_bytes)
        self.timeout = float(timeout)
        self._sleep = sleep
        self._clock = clock
        self._transport_given = transport
        # The credential-less client for attachment hosts (made on first use).
        self._plain: httpx.Client | None = None
        self._plain_lock = threading.Lock()
        # initial * 2**n capped at backoff_max, plus up to `initial` of random jitter.
        self._backoff = tenacity.wait_exponential(
            multiplier=backoff_initial, max=backoff_max
        ) + tenacity.wait_random(0, backoff_initial)
        _install_log_redaction()
        self._http = httpx.Client(
            base_url=config.base_url,
            auth=_auth_for(config),
            timeout=timeout,
            transport=transport or default_transport(config.base_url, max_connections),
            headers={
                "Accept": "application/json",
                "User-Agent": f"privacykit/{privacykit.__version__}",
            },
            # A redirect could carry the credentials elsewhere; Zendesk's API does not
            # redirect, so a 3xx is an error.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- the choke-point ----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        scopes: Iterable[str] | None = None,
    ) -> httpx.Response:
        """Send one request (retrying as the module docstring says) and return the 2xx
        answer (body read), or raise the matching :class:`~privacykit.errors.ZendeskError`.
        The answer is not validated: endpoint methods do that."""
        return self._request(
            method, path, params=params, json=json, idempotent=idempotent, scopes=scopes
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        scopes: Iterable[str] | None = None,
        gone_ok: bool = False,
    ) -> httpx.Response:
        """``gone_ok``: a 404 on a retry (after an attempt whose outcome we did not learn)
        means that attempt did the deletion; it is returned as the answer, not raised."""
        method = method.upper()
        check_path(path)
        if idempotent is None:
            idempotent = default_idempotent(method, path)
        spent = tuple(scopes) if scopes is not None else scopes_for(method, path)
        endpoint = endpoint_for(method, path)
        label = f"{method} {redact_url(path, params)}"
        self.stats._add(calls=1)
        failures = {"rate_limited": 0, "other": 0, "unknown_outcome": 0}
        waited = [0.0]  # seconds this request has spent waiting for rate-limit budget

        def should_retry(exc: BaseException) -> bool:
            if isinstance(exc, RateLimitedError):
                failures["rate_limited"] += 1
                return failures["rate_limited"] <= self.max_rate_limited
            if isinstance(exc, RequestDeadlineExceeded):
                return False  # a server this slow will be as slow again
            if isinstance(exc, NotSentError) or (
                idempotent and isinstance(exc, (ServerError, NetworkError))
            ):
                failures["other"] += 1
                if not isinstance(exc, NotSentError):
                    failures["unknown_outcome"] += 1
                return failures["other"] < self.max_attempts
            return False

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, RateLimitedError):
                waited[0] += exc.retry_after
                return exc.retry_after  # exactly what the server asked for
            return float(self._backoff(state))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.stats._add(retries=1)
            exc = state.outcome.exception() if state.outcome is not None else None
            log.debug("retrying %s after %s", label, type(exc).__name__)

        retrying = tenacity.Retrying(
            sleep=self._sleep,
            retry=tenacity.retry_if_exception(should_retry),
            wait=wait,
            stop=tenacity.stop_never,  # bounded by should_retry's counters
            before_sleep=before_sleep,
            reraise=True,
        )

        def attempt() -> httpx.Response:
            allowance = self.governor.max_wait - waited[0]
            try:
                return self._attempt(
                    method, path, params, json, spent, label, endpoint, allowance, waited
                )
            except RateLimitedError as exc:
                if (
                    failures["rate_limited"] < self.max_rate_limited
                    and waited[0] + exc.retry_after > self.governor.max_wait
                ):
                    # Sleeping that long would pass max_wait: stop now, resumable.
                    raise self.governor.wait_exceeded(exc.retry_after, label) from None
                raise
            except NotFoundError as exc:
                if gone_ok and failures["unknown_outcome"]:
                    return exc.response
                raise

        response: httpx.Response = retrying(attempt)
        return response

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        scopes: tuple[str, ...],
        label: str,
        endpoint: str,
        allowance: float,
        waited: list[float],
    ) -> httpx.Response:
        before = self.governor.now()
        reservation = self.governor.acquire(scopes, route=endpoint, max_wait=allowance)
        waited[0] += max(reservation.acquired_at - before, 0.0)
        expires = self._clock() + self.deadline
        try:
            with deadline(expires, self._clock):
                request = self._http.build_request(method, path, params=params, json=body)
                response = self._http.send(request, stream=True)
        except httpx.RequestError as exc:
            self.governor.release(reservation)
            raise self._network_error(exc, label, expires) from exc
        except BaseException:
            self.governor.release(reservation)
            raise
        try:
            self.stats._status(response.status_code)
            self.governor.observe(response, reservation)
            with deadline(expires, self._clock):
                read_bounded(response, max_bytes=self.max_response_bytes)
        except Overrun as exc:
            self.stats._add(bounded=1)
            if exc.kind == "size":
                raise ResponseTooLarge(
                    f"{label}: the answer is larger than {self.max_response_bytes} bytes",
                    endpoint=endpoint,
                    max_bytes=self.max_response_bytes,
                ) from None
            raise self._deadline_error(label) from None
        except httpx.RequestError as exc:
            raise self._network_error(exc, label, expires) from exc
        finally:
            response.close()
        log.debug("%s -> %d", label, response.status_code)
        if response.is_success:
            return response
        retry_after = (
            self.governor.retry_after_for(response) if response.status_code == 429 else 0.0
        )
        raise status_error(response, label, retry_after)

    def _deadline_error(self, label: str) -> RequestDeadlineExceeded:
        return RequestDeadlineExceeded(
            f"{label}: no complete answer within the {self.deadline:g}s request deadline"
        )

    def _network_error(self, exc: httpx.RequestError, label: str, expires: float) -> NetworkError:
        self.stats._add(network_errors=1)
        kind = type(exc).__name__
        log.debug("%s -> %s", label, kind)
        if self._clock() >= expires:
            self.stats._add(bounded=1)
            return self._deadline_error(label)
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return NotSentError(f"{label}: no connection ({kind})")
        return NetworkError(f"{label}: no answer ({kind})")

    # -- answers ------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """One request whose 2xx answer is parsed and validated against its endpoint's
        schema (:mod:`privacykit.zendesk.schemas`)."""
        response = self._request(method, path, params=params, json=json, idempotent=idempotent)
        endpoint = endpoint_for(method, path)
        try:
            return validate(endpoint, parse_body(endpoint, response))
        except MalformedResponseError:
            self.stats._add(malformed=1)
            raise

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def _fetcher(self, path: str) -> Fetch:
        return lambda params: self._get(path, params)
