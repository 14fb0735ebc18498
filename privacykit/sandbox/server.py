"""The sandbox Zendesk: :class:`SandboxServer`, a faithful local Zendesk on loopback.

Owns the server's lifecycle, configuration (budgets, header style, faults, jobs),
authentication, the route table (assembled from the per-resource route modules) and the
request log. The data and its rules live in :mod:`privacykit.sandbox.state` (one module
per resource), the HTTP plumbing in :mod:`.wire`, budgets and the virtual clock in
:mod:`.limits`, faults in :mod:`.faults`, control endpoints in :mod:`.control`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from privacykit.sandbox import routes_profiles, routes_tickets, routes_users
from privacykit.sandbox.attachments import DEFAULT_HOST as DEFAULT_FILES_HOST
from privacykit.sandbox.attachments import AttachmentsHost
from privacykit.sandbox.faults import Faults, format_header_seconds
from privacykit.sandbox.limits import (
    ACCOUNT,
    CREATE_UPDATE_USER,
    PERMANENT_DELETE,
    PROFILES,
    RateLimiter,
    VirtualClock,
    format_seconds,
)
from privacykit.sandbox.model import APPLICATIONS
from privacykit.sandbox.routing import Call, Route
from privacykit.sandbox.state import SandboxState
from privacykit.sandbox.wire import ApiHandler, LoopbackHTTPServer

__all__ = ["LOG_CAPACITY", "MAX_CONNECTIONS", "ROUTES", "SandboxServer"]

#: Entries kept in the request log (oldest dropped first; ``seq`` keeps counting).
LOG_CAPACITY = 100_000
#: Most concurrent connections; more are closed at once (bounded threads).
MAX_CONNECTIONS = 256

#: Every API route; the first match wins.
ROUTES: list[Route] = [*routes_users.ROUTES, *routes_profiles.ROUTES, *routes_tickets.ROUTES]

_LIMIT_KEYS = {
    "account_limit": ACCOUNT,
    "rate_limit": ACCOUNT,
    "profiles_limit": PROFILES,
    "permanent_delete_limit": PERMANENT_DELETE,
    "create_update_user_limit": CREATE_UPDATE_USER,
}


class SandboxServer:
    """A faithful local Zendesk over real HTTP on loopback.

    >>> with SandboxServer(seed="none", time_scale=600.0, rng_seed=1) as sb:  # doctest: +SKIP
    ...     httpx.get(sb.url + "/api/v2/users/me.json", auth=...)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: str = "demo",
        users: int = 50,
        time_scale: float = 1.0,
        frozen: bool = False,
        fault_rate: float = 0.0,
        rng_seed: int | None = None,
        account_limit: int = 700,
        profiles_limit: int = 1000,
        permanent_delete_limit: int = 700,
        create_update_user_limit: int = 5,
        api_token: str = "sandbox-token",
        email: str = "dpo@sandbox.test",
        max_connections: int = MAX_CONNECTIONS,
        header_style: str = "2024",
        retry_after: float | None = None,
        malformed: Mapping[str, Any] | None = None,
        slow_drip: Mapping[str, Any] | None = None,
        throttle: Mapping[str, Any] | None = None,
        attachments_host: str = DEFAULT_FILES_HOST,
    ) -> None:
        self.host = host
        self.port = port
        self.email = email
        self._token = api_token
        self.rng_seed = rng_seed
        self.clock = VirtualClock(time_scale, frozen=frozen)
        self.limiter = RateLimiter(
            self.clock,
            account_limit=account_limit,
            profiles_limit=profiles_limit,
            permanent_delete_limit=permanent_delete_limit,
            create_update_user_limit=create_update_user_limit,
            header_style=header_style,
        )
        self.faults = Faults(fault_rate, rng_seed)
        self.faults.set_retry_after(retry_after)
        self.faults.set_malformed(malformed)
        self.faults.set_drip(slow_drip)
        self.faults.set_throttle(throttle)
        self.state = SandboxState(self.clock, rng_seed=rng_seed, admin_email=email)
        # Attachment content lives on a second loopback host (see .attachments).
        self.files = AttachmentsHost(self.state, attachments_host)
        # Set while stopping, so slow drips end at once.
        self.stopping = threading.Event()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_CAPACITY)
        self._log_lock = threading.Lock()
        self._log_seq = 0
        self._max_connections = max_connections
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.seed(seed, users=users)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        self.stopping.clear()
        httpd = LoopbackHTTPServer((self.host, self.port), ApiHandler, self, self._max_connections)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.files.start()
        with self.state.lock:
            self.state.base_url = self.url
            self.state.files_url = self.files.url
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-zendesk",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.files.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "ZENDESK_URL": self.url,
            "ZENDESK_EMAIL": self.email,
            "ZENDESK_API_TOKEN": self._token,
        }

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url!r})"

    # ------------------------------------------------------------------ controls

    @property
    def fault_rate(self) -> float:
        return self.faults.rate

    def seed(self, name: str = "demo", *, users: int = 50) -> dict[str, int]:
        """Reset the data and load a seed (``none`` or ``demo``); returns the counts."""
        from privacykit.sandbox.seed import seed_state

        seed_state(self.state, name, users=users, rng_seed=self.rng_seed)
        return self.state.counts()

    def request_log(self, since: int = 0) -> list[dict[str, Any]]:
        """Every ``/api/v2`` request received (seq, method, path, query, status, at,
        fault, body), oldest first; only entries with ``seq > since``."""
        with self._log_lock:
            return [dict(entry) for entry in self._log if entry["seq"] > since]

    def attachment_log(self) -> list[dict[str, Any]]:
        """Every request the attachments host received (``attachment_id``, ``status``,
        ``authorization``/``cookie``: whether such a header arrived)."""
        return self.files.log()

    def set_faults(self, rate: float) -> None:
        self.faults.set_rate(float(rate))

    def advance(self, virtual_seconds: float) -> float:
        """Move the virtual clock forward (rate-limit windows, compliance progress, jobs)."""
        now = self.clock.advance(virtual_seconds)
        self.state.settle()
        return now

    def set_stuck_applications(self, applications: Iterable[str]) -> None:
        """Applications that never report ``complete`` for compliance deletions."""
        apps = set(applications)
        unknown = apps - set(APPLICATIONS)
        if unknown:
            raise ValueError(f"unknown applications: {sorted(unknown)}")
        with self.state.lock:
            self.state.stuck_applications = apps

    def configure(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Apply settings (the same as ``POST /_sandbox/config``); returns the whole
        configuration. Unknown keys raise ``ValueError`` before anything changes."""
        known = {
            *_LIMIT_KEYS,
            "limits",
            "fault_rate",
            "stuck_applications",
            "job_delay",
            "job_ttl",
            "header_style",
            "retry_after",
            "malformed",
            "slow_drip",
            "throttle",
        }
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown setting: {', '.join(unknown)}")
        for key, value in settings.items():
            if key == "fault_rate":
                self.set_faults(float(value))
            elif key in _LIMIT_KEYS:
                self.limiter.set_limit(_LIMIT_KEYS[key], int(value))
            elif key == "limits":
                for scope, limit in dict(value).items():
                    self.limiter.set_limit(str(scope), int(limit))
            elif key == "stuck_applications":
                self.set_stuck_applications(value or [])
            elif key in ("job_delay", "job_ttl"):
                seconds = float(value)
                if not seconds > 0:
                    raise ValueError(f"{key} must be positive")
                with self.state.lock:
                    setattr(self.state, key, seconds)
            elif key == "header_style":
                self.limiter.set_header_style(str(value))
            elif key == "retry_after":
                self.faults.set_retry_after(None if value is None else float(value))
            elif key == "malformed":
                self.faults.set_malformed(value)
            elif key == "slow_drip":
                self.faults.set_drip(value)
            elif key == "throttle":
                self.faults.set_throttle(value)
        return self.config()

    def config(self) -> dict[str, Any]:
        limits = self.limiter.limits()
        return {
            "time_scale": self.clock.time_scale,
            "frozen": self.clock.frozen,
            "account_limit": limits[ACCOUNT],
            "profiles_limit": limits[PROFILES],
            "permanent_delete_limit": limits[PERMANENT_DELETE],
            "create_update_user_limit": limits[CREATE_UPDATE_USER],
            "limits": limits,
            "header_style": self.limiter.header_style,
            "stuck_applications": sorted(self.state.stuck_applications),
            "job_delay": self.state.job_delay,
            "job_ttl": self.state.job_ttl,
            **self.faults.config(),
        }

    # ------------------------------------------------------------------ per request

    def authorized(self, header: str | None) -> bool:
        """Basic ``{email}/token:{token}`` for the configured agent, or ``Bearer <token>``."""
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            return hmac.compare_digest(credentials.encode(), self._token.encode())
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return False
        user, sep, secret = decoded.partition(":")
        if not sep or not user.endswith("/token"):
            return False
        email_ok = user[: -len("/token")].lower() == self.email.lower()
        token_ok = hmac.compare_digest(secret.encode(), self._token.encode())
        return email_ok and token_ok

    def find_route(self, method: str, path: str) -> tuple[Route, Call] | None:
        """The first route matching; the call's params and body are filled in by the caller."""
        for candidate in ROUTES:
            if candidate.method != method:
                continue
            match = candidate.pattern.match(path)
            if match:
                return candidate, Call(method, path, {}, b"", match, candidate.profiles_api)
        return None

    def retry_after_header(self, fallback: float | None, computed: str | None = None) -> str:
        """The ``Retry-After`` of a 429: the configured value if any, else ``computed``
        (real seconds until the budget frees), else ``fallback`` virtual seconds."""
        configured = self.faults.retry_after
        if configured is not None:
            return format_header_seconds(configured)
        if computed is not None:
            return computed
        real = self.clock.to_real(1.0 if fallback is None else fallback)
        return format_seconds(real, self.clock.time_scale)

    def record(
        self, method: str, path: str, query: str, status: int | None, fault: str | None, body: Any
    ) -> None:
        with self._log_lock:
            self._log_seq += 1
            self._log.append(
                {
                    "seq": self._log_seq,
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "at": self.clock.iso(),
                    "fault": fault,
                    "body": body,
                }
            )
