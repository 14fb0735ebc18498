"""The Zendesk client: the one choke-point every Zendesk request goes through.

Owns authentication, the mapping of HTTP answers to :mod:`privacykit.errors`, retries
(tenacity) and the calls into the rate-limit :class:`~privacykit.zendesk.governor.Governor`.
Every method returns plain dicts / lists of dicts exactly as Zendesk's JSON has them.

One request, :meth:`ZendeskClient.request`:
governor acquire -> send -> governor observe -> status mapped to an exception ->
tenacity decides whether to try again:

* 429: always retried (nothing was done), after exactly ``Retry-After``; the governor
  pauses the blamed scope for every thread in the meantime.
* 5xx, timeouts, dropped connections: retried with exponential backoff and jitter, a
  bounded number of times, only for idempotent requests (GET, PUT, profile DELETE). A
  connection that was never established is retried for any request (nothing was sent).
* POST, user soft delete and permanent delete are not retried blindly: the error is
  raised and the caller reconciles with Zendesk's state using its ledger intent record.

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
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import tenacity

import privacykit
from privacykit.config import Secret, ZendeskConfig
from privacykit.errors import (
    AuthenticationError,
    ForbiddenError,
    HTTPStatusError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UsageError,
    ValidationError,
    ZendeskError,
)
from privacykit.zendesk.governor import (
    ACCOUNT,
    CREATE_UPDATE_USER,
    JOBS,
    PERMANENT_DELETE,
    PROFILES,
    USER_WRITE,
    Governor,
)
from privacykit.zendesk.pagination import iter_cursor, iter_offset

__all__ = ["ClientStats", "ZendeskClient", "redact_url", "scopes_for"]

log = logging.getLogger("privacykit.zendesk")

# Query parameters whose values are never personal and may appear in messages and logs.
_SAFE_PARAMS = frozenset(
    {
        "page",
        "per_page",
        "page[size]",
        "page[after]",
        "page[before]",
        "sort",
        "sort_by",
        "sort_order",
        "ids",
        "application",
        "include",
        "role",
        "role[]",
    }
)
_PROFILE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_APPLICATION = re.compile(r"[a-z][a-z0-9_\-/]{0,63}")
_PATH_FORBIDDEN = re.compile(r"[?#\\\x00-\x20\x7f]")
_SAFE_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_ .\-]{0,63}$")
_TERMINAL_JOB_STATES = frozenset({"completed", "failed", "killed"})


def redact_url(path_or_url: str, params: Mapping[str, Any] | None = None) -> str:
    """``path?query=***&page[size]=100``: the path, with every query value that could be
    personal (``query=``, ``identifier=``, ``external_id=``...) replaced by ``***``."""
    parts = urlsplit(path_or_url)
    pairs: list[tuple[str, str]] = []
    for chunk in parts.query.split("&") if parts.query else []:
        key, _, value = chunk.partition("=")
        pairs.append((key, value))
    for key, value in (params or {}).items():
        pairs.append((str(key), str(value)))
    shown = []
    for key, value in pairs:
        name = unquote(key)
        shown.append(f"{name}={value if name in _SAFE_PARAMS else '***'}")
    path = parts.path or "/"
    return f"{path}?{'&'.join(shown)}" if shown else path


class _RedactingFilter(logging.Filter):
    """httpx logs every request URL at INFO; URLs carry search queries (an email address
    is personal data), so their query values are redacted before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact_url(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


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


# ---------------------------------------------------------------------------------------
# Scopes and idempotency per route

_USER_PATH = re.compile(r"^/api/v2/users/(\d+)$")
_USER_PROFILES = re.compile(r"^/api/v2/users/[^/]+/profiles(/|$)")
_DELETED_USER = re.compile(r"^/api/v2/deleted_users/[^/]+$")
_BULK = re.compile(r"/(create_many|update_many|destroy_many|create_or_update_many)$")


def _route(path: str) -> str:
    path = path.split("?", 1)[0]
    return path[: -len(".json")] if path.endswith(".json") else path


def scopes_for(method: str, path: str) -> tuple[str, ...]:
    """The rate-limit scopes a request spends (see ARCHITECTURE.md, "Rate limits")."""
    route = _route(path)
    method = method.upper()
    if not route.startswith("/api/v2/"):
        return ()
    scopes = [ACCOUNT]
    if route.startswith("/api/v2/user_profiles") or _USER_PROFILES.match(route):
        scopes.append(PROFILES)
    if method == "DELETE" and _DELETED_USER.match(route):
        scopes.append(PERMANENT_DELETE)
    if _BULK.search(route):
        scopes.append(JOBS)
    elif method == "POST" and route in ("/api/v2/users", "/api/v2/users/create_or_update"):
        scopes.append(USER_WRITE)
    elif method == "PUT" and (match := _USER_PATH.match(route)):
        scopes.extend((USER_WRITE, f"{CREATE_UPDATE_USER}:{match.group(1)}"))
    return tuple(scopes)


def _default_idempotent(method: str, path: str) -> bool:
    """GET/HEAD/PUT and profile DELETE can be repeated safely; POST, PATCH and the user
    deletions cannot be retried blindly (the caller reconciles)."""
    if method in ("GET", "HEAD", "OPTIONS", "PUT"):
        return True
    if method == "DELETE":
        return _route(path).startswith("/api/v2/user_profiles/")
    return False


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
            }

    def __repr__(self) -> str:
        return f"ClientStats({self.snapshot()})"


# ---------------------------------------------------------------------------------------
# Errors


class _NotSentError(NetworkError):
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


def _status_error(response: httpx.Response, label: str, retry_after: float) -> HTTPStatusError:
    status = response.status_code
    message = f"{label} -> {status}"
    code = _error_code(response)
    if status == 429:
        return RateLimitedError(
            f"{message} rate limited, retry after {retry_after:g}s",
            response=response,
            retry_after=retry_after,
        )
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
# Input checks (bad input must not build odd URLs)


def _user_id(value: object) -> int:
    if isinstance(value, bool):
        raise UsageError("a Zendesk user id must be a positive integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)  # the Profiles API reports user_id as a string
    else:
        raise UsageError("a Zendesk user id must be a positive integer")
    if number < 1 or number >= 2**63:
        raise UsageError("a Zendesk user id must be a positive integer")
    return number


def _opaque_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _PROFILE_ID.match(value):
        raise UsageError(f"a {what} must be 1-128 letters, digits, '-' or '_'")
    return quote(value, safe="")


def _identifier_query(value: object) -> str:
    """``source:type:identifier_type:identifier_value`` (the value may contain ':')."""
    if not isinstance(value, str):
        raise UsageError("an identifier query must be a string source:type:key:value")
    parts = value.split(":", 3)
    if len(parts) != 4 or not all(part.strip() for part in parts):
        raise UsageError("an identifier query must look like source:type:key:value")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or len(value) > 1024:
        raise UsageError("an identifier query must be printable and at most 1024 characters")
    return value


def _check_path(path: str) -> None:
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise UsageError("a request path must start with a single '/'")
    if _PATH_FORBIDDEN.search(path):
        raise UsageError("a request path must not contain a query, fragment or spaces")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise UsageError("a request path must not contain '.' or '..' segments")


# ---------------------------------------------------------------------------------------
# The client


class ZendeskClient:
    """A thread-safe Zendesk client for the Users and Profiles APIs.

    ``sleep`` is what retries wait with (tests inject one that records and returns).
    ``backoff_initial``/``backoff_max`` shape the exponential backoff for 5xx and network
    errors; ``max_attempts`` bounds those attempts and ``max_rate_limited`` the 429 ones.
    """

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
    ) -> None:
        if max_attempts < 1 or max_rate_limited < 0:
            raise UsageError("max_attempts must be >= 1 and max_rate_limited >= 0")
        self.config = config
        self.governor = governor if governor is not None else Governor()
        self.stats = ClientStats()
        self.max_attempts = max_attempts
        self.max_rate_limited = max_rate_limited
        self._sleep = sleep
        # initial * 2**n capped at backoff_max, plus up to `initial` of random jitter.
        self._backoff = tenacity.wait_exponential(
            multiplier=backoff_initial, max=backoff_max
        ) + tenacity.wait_random(0, backoff_initial)
        _install_log_redaction()
        self._http = httpx.Client(
            base_url=config.base_url,
            auth=_auth_for(config),
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={
                "Accept": "application/json",
                "User-Agent": f"privacykit/{privacykit.__version__}",
            },
            # A redirect could carry the credentials elsewhere; Zendesk's API does not
            # redirect, so a 3xx is an error.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ZendeskClient(base_url={self.config.base_url!r})"

    def __enter__(self) -> ZendeskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        answer, or raise the matching :class:`~privacykit.errors.ZendeskError`."""
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
        _check_path(path)
        if idempotent is None:
            idempotent = _default_idempotent(method, path)
        spent = tuple(scopes) if scopes is not None else scopes_for(method, path)
        label = f"{method} {redact_url(path, params)}"
        self.stats._add(calls=1)
        failures = {"rate_limited": 0, "other": 0, "unknown_outcome": 0}

        def should_retry(exc: BaseException) -> bool:
            if isinstance(exc, RateLimitedError):
                failures["rate_limited"] += 1
                return failures["rate_limited"] <= self.max_rate_limited
            if isinstance(exc, _NotSentError) or (
                idempotent and isinstance(exc, (ServerError, NetworkError))
            ):
                failures["other"] += 1
                if not isinstance(exc, _NotSentError):
                    failures["unknown_outcome"] += 1
                return failures["other"] < self.max_attempts
            return False

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, RateLimitedError):
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
            try:
                return self._attempt(method, path, params, json, spent, label)
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
    ) -> httpx.Response:
        reservation = self.governor.acquire(scopes)
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.RequestError as exc:
            self.governor.release(reservation)
            self.stats._add(requests=1, network_errors=1)
            kind = type(exc).__name__
            log.debug("%s -> %s", label, kind)
            if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
                raise _NotSentError(f"{label}: no connection ({kind})") from exc
            raise NetworkError(f"{label}: no answer ({kind})") from exc
        except BaseException:
            self.governor.release(reservation)
            raise
        self.stats._status(response.status_code)
        self.governor.observe(response, reservation)
        log.debug("%s -> %d", label, response.status_code)
        if response.is_success:
            return response
        retry_after = (
            self.governor.retry_after_for(response) if response.status_code == 429 else 0.0
        )
        raise _status_error(response, label, retry_after)

    # -- helpers ------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise ZendeskError(
                f"{method} {redact_url(path, kwargs.get('params'))}: the answer is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise ZendeskError(f"{method} {redact_url(path)}: the answer is not a JSON object")
        return body

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._json("GET", path, params=params)

    def _fetcher(self, path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda params: self._get(path, params)

    @staticmethod
    def _field(body: Mapping[str, Any], key: str) -> Any:
        if key not in body:
            raise ZendeskError(f"the answer has no '{key}'")
        return body[key]

    # -- users --------------------------------------------------------------------------

    def show_user(self, user_id: int | str) -> dict[str, Any]:
        """``GET /api/v2/users/{id}``."""
        uid = _user_id(user_id)
        return dict(self._field(self._get(f"/api/v2/users/{uid}"), "user"))

    def show_many_users(self, user_ids: Sequence[int | str]) -> list[dict[str, Any]]:
        """``GET /api/v2/users/show_many?ids=...`` in chunks of 100 (the documented maximum)."""
        ids = [_user_id(u) for u in user_ids]
        users: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            chunk = ",".join(str(u) for u in ids[start : start + 100])
            body = self._get("/api/v2/users/show_many", {"ids": chunk})
            users.extend(u for u in body.get("users", []) if isinstance(u, dict))
        return users

    def search_users(
        self, query: str | None = None, external_id: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /api/v2/users/search`` (offset pagination only, per the docs): every match."""
        params: dict[str, Any] = {}
        if query is not None:
            if not isinstance(query, str) or not query.strip():
                raise UsageError("a user search query must be a non-empty string")
            params["query"] = query
        if external_id is not None:
            if not isinstance(external_id, str) or not external_id.strip():
                raise UsageError("an external_id must be a non-empty string")
            params["external_id"] = external_id
        if not params:
            raise UsageError("search_users needs query= or external_id=")
        return list(iter_offset(self._fetcher("/api/v2/users/search"), "users", params=params))

    def iter_users(self, role: str | None = None) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/users`` (cursor pagination), optionally one role."""
        params = {}
        if role is not None:
            if role not in ("end-user", "agent", "admin"):
                raise UsageError("role must be end-user, agent or admin")
            params["role"] = role
        return iter_cursor(self._fetcher("/api/v2/users"), "users", params=params)

    def user_identities(self, user_id: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/identities`` (User Identities API; assumed cursor
        pagination as for other lists; the docs in hand do not cover it)."""
        uid = _user_id(user_id)
        return list(iter_cursor(self._fetcher(f"/api/v2/users/{uid}/identities"), "identities"))

    def user_related(self, user_id: int | str) -> dict[str, Any]:
        """``GET /api/v2/users/{id}/related``: ticket and subscription counts."""
        uid = _user_id(user_id)
        return dict(self._field(self._get(f"/api/v2/users/{uid}/related"), "user_related"))

    def requested_tickets(self, user_id: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/tickets/requested`` (Tickets API; assumed, see
        ARCHITECTURE.md): every ticket the user requested."""
        uid = _user_id(user_id)
        path = f"/api/v2/users/{uid}/tickets/requested"
        return list(iter_cursor(self._fetcher(path), "tickets"))

    def create_user(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/users``. Not retried on 5xx/network errors (it could create twice)."""
        if not isinstance(user, Mapping):
            raise UsageError("create_user takes the user as a mapping")
        body = self._json("POST", "/api/v2/users", json={"user": dict(user)})
        return dict(self._field(body, "user"))

    def soft_delete_user(self, user_id: int | str) -> dict[str, Any]:
        """``DELETE /api/v2/users/{id}``. Not retried on 5xx/network errors: the caller
        reconciles (e.g. ``show_user`` answers ``active: false`` or ``show_deleted_user``)."""
        uid = _user_id(user_id)
        body = self._json("DELETE", f"/api/v2/users/{uid}", idempotent=False)
        return dict(self._field(body, "user"))

    def permanently_delete_user(self, user_id: int | str) -> dict[str, Any]:
        """``DELETE /api/v2/deleted_users/{id}`` (only after a soft delete; 700 per 10 min).
        Not retried on 5xx/network errors: the caller reconciles."""
        uid = _user_id(user_id)
        body = self._json("DELETE", f"/api/v2/deleted_users/{uid}", idempotent=False)
        return dict(self._field(body, "deleted_user"))

    def iter_deleted_users(self) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/deleted_users`` (cursor pagination), soft and permanently deleted."""
        return iter_cursor(self._fetcher("/api/v2/deleted_users"), "deleted_users")

    def show_deleted_user(self, user_id: int | str) -> dict[str, Any]:
        """``GET /api/v2/deleted_users/{id}``."""
        uid = _user_id(user_id)
        return dict(self._field(self._get(f"/api/v2/deleted_users/{uid}"), "deleted_user"))

    def compliance_deletion_statuses(
        self, user_id: int | str, application: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/compliance_deletion_statuses[?application=]``."""
        uid = _user_id(user_id)
        params = {}
        if application is not None:
            if not isinstance(application, str) or not _APPLICATION.fullmatch(application):
                raise UsageError("an application must be a short lower-case name like 'support'")
            params["application"] = application
        path = f"/api/v2/users/{uid}/compliance_deletion_statuses"
        return list(iter_cursor(self._fetcher(path), "compliance_deletion_statuses", params=params))

    def destroy_many(self, user_ids: Sequence[int | str]) -> dict[str, Any]:
        """``DELETE /api/v2/users/destroy_many?ids=`` (up to 100): queues a job and returns
        its ``job_status``. Holds a queued-jobs slot until ``show_job_status`` sees it end."""
        ids = [_user_id(u) for u in user_ids]
        if not 1 <= len(ids) <= 100:
            raise UsageError("destroy_many takes 1 to 100 user ids")
        body = self._json(
            "DELETE",
            "/api/v2/users/destroy_many",
            params={"ids": ",".join(str(u) for u in ids)},
            idempotent=False,
        )
        job = dict(self._field(body, "job_status"))
        if job.get("id") is not None and job.get("status") not in _TERMINAL_JOB_STATES:
            self.governor.job_queued(str(job["id"]))
        return job

    def show_job_status(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v2/job_statuses/{id}``."""
        jid = _opaque_id(job_id, "job id")
        job = dict(self._field(self._get(f"/api/v2/job_statuses/{jid}"), "job_status"))
        if job.get("status") in _TERMINAL_JOB_STATES:
            self.governor.job_done(job_id)
        return job

    # -- profiles -----------------------------------------------------------------------

    def profiles_for_user(self, user_id: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/profiles``: every profile of the user."""
        uid = _user_id(user_id)
        body = self._get(f"/api/v2/users/{uid}/profiles")
        return [p for p in body.get("profiles", []) if isinstance(p, dict)]

    def profile_by_identifier(self, query: str) -> dict[str, Any]:
        """``GET /api/v2/user_profiles?identifier=source:type:key:value``; raises
        :class:`~privacykit.errors.NotFoundError` when no profile matches."""
        params = {"identifier": _identifier_query(query)}
        return dict(self._field(self._get("/api/v2/user_profiles", params), "profile"))

    def profile_by_id(self, profile_id: str) -> dict[str, Any]:
        """``GET /api/v2/user_profiles/{id}``."""
        pid = _opaque_id(profile_id, "profile id")
        return dict(self._field(self._get(f"/api/v2/user_profiles/{pid}"), "profile"))

    def replace_profile(self, profile_id: str, profile: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/v2/user_profiles/{id}``: replace the whole profile content."""
        pid = _opaque_id(profile_id, "profile id")
        body = self._json("PUT", f"/api/v2/user_profiles/{pid}", json=_profile_body(profile))
        return dict(self._field(body, "profile"))

    def replace_profile_by_identifier(
        self, query: str, profile: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``PUT /api/v2/user_profiles?identifier=``: replace (or create) by identifier query."""
        params = {"identifier": _identifier_query(query)}
        body = self._json(
            "PUT", "/api/v2/user_profiles", params=params, json=_profile_body(profile)
        )
        return dict(self._field(body, "profile"))

    def put_user_profile(
        self, user_id: int | str, query: str, profile: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``PUT /api/v2/users/{id}/profiles?identifier=``: create or update a user's profile."""
        uid = _user_id(user_id)
        params = {"identifier": _identifier_query(query)}
        body = self._json(
            "PUT", f"/api/v2/users/{uid}/profiles", params=params, json=_profile_body(profile)
        )
        return dict(self._field(body, "profile"))

    def delete_profile(self, profile_id: str) -> None:
        """``DELETE /api/v2/user_profiles/{id}`` (204; its events go with it). Idempotent:
        retried on 5xx/network errors, and a 404 after such a retry means our earlier
        attempt deleted it, so it counts as done."""
        pid = _opaque_id(profile_id, "profile id")
        self._request("DELETE", f"/api/v2/user_profiles/{pid}", idempotent=True, gone_ok=True)

    def iter_profile_events(self, profile_id: str) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/user_profiles/{id}/events`` (assumed path; the docs in hand only
        mention events). Cursor pagination whose ``links`` is an array ``[{"next": ...}]``."""
        pid = _opaque_id(profile_id, "profile id")
        path = f"/api/v2/user_profiles/{pid}/events"
        return iter_cursor(self._fetcher(path), ("events", "data"))


def _profile_body(profile: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(profile, Mapping):
        raise UsageError("a profile must be a mapping")
    inner = profile.get("profile") if set(profile) == {"profile"} else profile
    if not isinstance(inner, Mapping):
        raise UsageError("a profile must be a mapping")
    return {"profile": dict(inner)}
