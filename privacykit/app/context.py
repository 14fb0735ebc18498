"""Environment -> home, configuration, client, preflight, ledger (see the package docstring).

The order in :func:`open_app` is the contract: everything that can be wrong with the
operator's set-up (home, variables, credentials, role) is found before the ledger is
opened, so a wrong token leaves no trace: no request, no entry, no report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacykit.errors import (
    AuthenticationError,
    ConfigError,
    ForbiddenError,
    UsageError,
    ZendeskError,
)

if TYPE_CHECKING:
    import httpx

    from privacykit.config import ZendeskConfig
    from privacykit.ledger import Ledger
    from privacykit.zendesk import ZendeskClient

__all__ = [
    "CREDENTIAL_VARIABLES",
    "AppContext",
    "Home",
    "Me",
    "client_bounds",
    "load_config",
    "make_client",
    "open_app",
    "open_ledger",
    "preflight",
    "sign_left_tail",
]

#: Named by every credentials error, so the operator knows what to fix.
CREDENTIAL_VARIABLES = "ZENDESK_EMAIL/ZENDESK_API_TOKEN or ZENDESK_OAUTH_TOKEN"
#: Roles that may run privacykit's requests. An end user (or the anonymous user Zendesk
#: answers ``/users/me`` with when it does not accept the credentials) may not.
STAFF_ROLES = frozenset({"admin", "agent"})


@dataclass(frozen=True)
class Home:
    """The directory holding the ledger, keys, artifacts and local playbooks."""

    path: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, create: bool = True) -> Home:
        """``PRIVACYKIT_HOME`` (else the platform's user data dir); :class:`ConfigError`
        when it is not usable."""
        from privacykit.config import privacykit_home

        return cls(privacykit_home(env, create=create))

    def __fspath__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class Me:
    """Who the credentials are (ids and role only; Zendesk's answer holds more)."""

    user_id: int
    role: str


def load_config(env: Mapping[str, str] | None = None) -> ZendeskConfig:
    """The Zendesk configuration from ``ZENDESK_*`` (:class:`ConfigError` when wrong)."""
    from privacykit.config import ZendeskConfig

    return ZendeskConfig.from_env(env)


def client_bounds(
    *, max_wait: float | None = None, request_deadline: float | None = None
) -> dict[str, Any]:
    """The client options for ``--max-wait`` and ``--request-deadline`` (None: the
    client's default, 15 minutes and 180 s), for ``open_app(client_options=...)``.

    A value that is not a positive number of seconds is bad input: :class:`UsageError`
    (exit 2) naming the option, raised before anything is sent. No relation between the
    deadline and the per-read timeout (30 s) is required: a deadline below it simply
    bounds the exchange first."""
    options: dict[str, Any] = {}
    for flag, key, value in (
        ("--max-wait", "max_wait", max_wait),
        ("--request-deadline", "deadline", request_deadline),
    ):
        if value is None:
            continue
        # ``not value > 0`` also refuses NaN; inf would disable the bound it sets.
        if isinstance(value, bool) or not value > 0 or value == float("inf"):
            raise UsageError(f"{flag} must be a positive number of seconds")
        options[key] = float(value)
    return options


def _read_only(transport: httpx.BaseTransport | None) -> httpx.BaseTransport:
    import importlib

    try:
        module = importlib.import_module("privacykit.zendesk.readonly")
    except ImportError:  # before the transport moves out of the audit (#11/#12)
        module = importlib.import_module("privacykit.audit.runner")
    wrapped: httpx.BaseTransport = module.ReadOnlyTransport(transport)
    return wrapped


def make_client(
    config: ZendeskConfig,
    *,
    read_only: bool = False,
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> ZendeskClient:
    """A :class:`~privacykit.zendesk.ZendeskClient` for ``config``. ``read_only`` sends
    through a transport that refuses every method but GET before it leaves the process
    (audit, dry runs that must be provably harmless). ``options`` go to the client."""
    from privacykit.zendesk import ZendeskClient

    if read_only:
        transport = _read_only(transport)
    return ZendeskClient(config, transport=transport, **options)


def _me_answer(client: Any) -> Any:
    me = getattr(client, "me", None)
    if callable(me):
        return me()
    # Until the client has ``me()`` (its endpoint schema validates the answer).
    response = client.request("GET", "/api/v2/users/me")
    try:
        body = response.json()
    except ValueError:
        body = None
    return body.get("user") if isinstance(body, Mapping) else None


def preflight(client: Any, *, roles: frozenset[str] = STAFF_ROLES) -> Me:
    """One authenticated ``GET /api/v2/users/me``: who the credentials are.

    Refused credentials (401/403), the anonymous user (Zendesk answers ``/users/me`` for
    anyone) or a role outside ``roles`` raise :class:`ConfigError` (exit 2) naming the
    variables to fix. A malformed answer is a :class:`ZendeskError` (exit 1). Never
    quotes the answer: it holds the agent's own name and email."""
    try:
        user = _me_answer(client)
    except (AuthenticationError, ForbiddenError) as exc:
        raise ConfigError(
            f"Zendesk refused the credentials ({exc.status_code}): check {CREDENTIAL_VARIABLES}"
        ) from None
    if not isinstance(user, Mapping):
        raise ZendeskError("GET /api/v2/users/me: the answer holds no user")
    uid = user.get("id")
    if uid is None:
        raise ConfigError(
            "Zendesk answered as the anonymous user: the credentials were not accepted; "
            f"check {CREDENTIAL_VARIABLES}"
        )
    if isinstance(uid, bool) or not isinstance(uid, int) or uid <= 0:
        raise ZendeskError("GET /api/v2/users/me: the user id is not a positive number")
    role = user.get("role")
    if not isinstance(role, str) or role not in roles:
        shown = role if isinstance(role, str) and role.isidentifier() else "unknown"
        raise ConfigError(
            f"the credentials belong to a user with role {shown}; privacykit needs an agent "
            f"or admin: check {CREDENTIAL_VARIABLES}"
        )
    return Me(uid, role)


def open_ledger(home: Home | Path) -> Ledger:
    """The ledger in ``home`` (created on first use)."""
    from privacykit.ledger import Ledger

    return Ledger.open(home.path if isinstance(home, Home) else home)


def sign_left_tail(ledger: Ledger) -> None:
    """Sign the entries an earlier run left without a checkpoint (it could not sign its
    last one: a full disk, a kill), before this run writes. Until signed they cannot be
    told from entries added outside privacykit, so the ledger does not verify and no
    report could be signed in this run; closing this run would sign them anyway.
    ``checkpoint()`` verifies everything (every entry, hash, replay and saved checkpoint)
    before it signs, exactly as ``privacykit ledger checkpoint`` does."""
    latest = ledger.latest_checkpoint()
    if ledger.size and (latest is None or latest.size < ledger.size):
        ledger.checkpoint()


@dataclass
class AppContext:
    """What a command works with, opened by :func:`open_app`."""

    home: Home
    config: ZendeskConfig
    client: ZendeskClient
    ledger: Ledger
    me: Me | None
    #: With ``open_app(..., keep_close_error=True)``: why closing the ledger failed (its
    #: final checkpoint could not be signed, e.g. a full disk), for the caller to report
    #: after its own results instead of losing them.
    close_error: str | None = None
    #: What ``open_app(..., prepare=fn)`` returned: ``fn(client)``, read before the ledger.
    prepared: Any = None


def _hold(stack: ExitStack, home: Home, command: str) -> None:
    """The home's writer lock (``privacykit.ledger.hold_home``), once the ledger has it."""
    from privacykit import ledger as ledger_package

    hold = getattr(ledger_package, "hold_home", None)
    if hold is not None:
        stack.enter_context(hold(home.path, command))


@contextmanager
def open_app(
    env: Mapping[str, str] | None = None,
    *,
    command: str,
    read_only: bool = False,
    check_credentials: bool = True,
    before_ledger: Callable[[Home], None] | None = None,
    client_options: Mapping[str, Any] | None = None,
    keep_close_error: bool = False,
    prepare: Callable[[ZendeskClient], Any] | None = None,
) -> Iterator[AppContext]:
    """Home, configuration, client, preflight, then (only then) the home's lock and the
    ledger (entries an earlier run left unsigned are signed first: :func:`sign_left_tail`).
    ``before_ledger(home)`` runs after the preflight and before the ledger is opened (e.g.
    the audit refuses to start a fresh, empty ledger); so does
    ``prepare(client)``, whose result is ``app.prepared`` (e.g. reading the DSAR ticket of
    ``--from-ticket``: a ticket that does not exist is bad input, and bad input must leave
    no ledger behind). Everything is closed
    on exit; with ``keep_close_error`` a ledger that cannot be closed cleanly (its final
    checkpoint not signed) sets ``app.close_error`` instead of raising."""
    env = os.environ if env is None else env
    # Resolved, not created: refused credentials must leave no trace, not even an empty
    # home (bad input changes nothing); it is created once the preflight passed.
    home = Home.from_env(env, create=False)
    config = load_config(env)
    with ExitStack() as stack:
        client = stack.enter_context(
            make_client(config, read_only=read_only, **dict(client_options or {}))
        )
        me = preflight(client) if check_credentials else None
        if before_ledger is not None:
            before_ledger(home)
        prepared = prepare(client) if prepare is not None else None
        home = Home.from_env(env)  # missing directories created 0700, existing ones kept
        _hold(stack, home, command)
        ledger = open_ledger(home)
        try:
            sign_left_tail(ledger)
        except BaseException:
            ledger.close(checkpoint=False)
            raise
        app = AppContext(home, config, client, ledger, me, prepared=prepared)
        if keep_close_error:
            stack.callback(_close_keeping_error, app)
        else:
            stack.callback(ledger.close)
        yield app


def _close_keeping_error(app: AppContext) -> None:
    from privacykit.errors import LedgerError

    try:
        app.ledger.close()
    except (LedgerError, OSError) as exc:
        app.close_error = " ".join(str(exc).split()) or type(exc).__name__
