"""Configuration from the environment: where Zendesk is, how to authenticate, where data lives.

Owns the parsing and validation of ``ZENDESK_*`` variables and ``PRIVACYKIT_HOME``.
Secrets are wrapped in :class:`Secret` so that a token cannot reach a log line,
an exception message or a repr by accident.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from privacykit.errors import ConfigError

__all__ = [
    "Secret",
    "ZendeskConfig",
    "describe_home",
    "home_is_default",
    "home_path",
    "make_private_dirs",
    "privacykit_home",
]

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class Secret:
    """A string that never shows itself: ``str``, ``repr`` and f-strings print ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Call only where it goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ZendeskConfig:
    """Where the Zendesk account is and how to authenticate to it."""

    base_url: str
    email: str | None = None
    api_token: Secret | None = None
    oauth_token: Secret | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ZendeskConfig:
        """Build from ``ZENDESK_SUBDOMAIN``/``ZENDESK_URL``, ``ZENDESK_EMAIL``,
        ``ZENDESK_API_TOKEN`` or ``ZENDESK_OAUTH_TOKEN``. Raises :class:`ConfigError`."""
        env = os.environ if env is None else env
        subdomain = env.get("ZENDESK_SUBDOMAIN", "").strip()
        url = env.get("ZENDESK_URL", "").strip()
        if subdomain and url:
            raise ConfigError("set ZENDESK_SUBDOMAIN or ZENDESK_URL, not both")
        if subdomain:
            if not _SUBDOMAIN.match(subdomain):
                raise ConfigError("ZENDESK_SUBDOMAIN must be a bare subdomain like 'acme'")
            base_url = f"https://{subdomain}.zendesk.com"
        elif url:
            base_url = cls._check_url(url)
        else:
            raise ConfigError("set ZENDESK_SUBDOMAIN or ZENDESK_URL to say which Zendesk to use")
        email = env.get("ZENDESK_EMAIL", "").strip() or None
        api_token = env.get("ZENDESK_API_TOKEN", "").strip()
        oauth_token = env.get("ZENDESK_OAUTH_TOKEN", "").strip()
        if api_token and oauth_token:
            raise ConfigError("set ZENDESK_API_TOKEN or ZENDESK_OAUTH_TOKEN, not both")
        if api_token:
            if not email:
                raise ConfigError("ZENDESK_API_TOKEN needs ZENDESK_EMAIL (the agent's email)")
            return cls(base_url, email=email, api_token=Secret(api_token))
        if oauth_token:
            return cls(base_url, email=email, oauth_token=Secret(oauth_token))
        raise ConfigError("set ZENDESK_API_TOKEN (with ZENDESK_EMAIL) or ZENDESK_OAUTH_TOKEN")

    @staticmethod
    def _check_url(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("ZENDESK_URL must be an http(s) URL like https://acme.zendesk.com")
        if parts.username or parts.password:
            raise ConfigError("ZENDESK_URL must not contain credentials")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            # Credentials would travel in clear text; only loopback (the sandbox) is exempt.
            raise ConfigError(
                "ZENDESK_URL must use https (plain http is allowed for loopback only)"
            )
        if parts.query or parts.fragment:
            raise ConfigError("ZENDESK_URL must not contain a query or fragment")
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

    def __repr__(self) -> str:
        auth = "api_token" if self.api_token else "oauth" if self.oauth_token else "none"
        return f"ZendeskConfig(base_url={self.base_url!r}, auth={auth})"


def privacykit_home(env: Mapping[str, str] | None = None, *, create: bool = True) -> Path:
    """The directory holding the ledger, keys and evidence (``PRIVACYKIT_HOME``, else the
    platform's user data dir).

    With ``create``, missing directories (the home and any missing parents) are created
    owner-only (0700, whatever the umask). An existing directory is never chmod'ed: it may
    be a shared mount the operator chose; what privacykit keeps inside is owner-only."""
    env = os.environ if env is None else env
    home = home_path(env)
    if home.exists() and not home.is_dir():
        raise ConfigError(f"PRIVACYKIT_HOME is not a directory: {click.format_filename(home)}")
    if create:
        try:
            make_private_dirs(home)
        except OSError as exc:
            raise ConfigError(
                f"cannot create PRIVACYKIT_HOME {click.format_filename(home)}: {exc.strerror}"
            ) from None
    return home


def home_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the home is, without touching the file system."""
    env = os.environ if env is None else env
    raw = env.get("PRIVACYKIT_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path(click.get_app_dir("privacykit"))


def home_is_default(env: Mapping[str, str] | None = None) -> bool:
    """True when ``PRIVACYKIT_HOME`` is unset and the platform default is used (commands
    that only read say so: a cron job missing the variable must not pass silently)."""
    env = os.environ if env is None else env
    return not env.get("PRIVACYKIT_HOME", "").strip()


def describe_home(home: Path, env: Mapping[str, str] | None = None) -> str:
    """``/path`` or ``/path (the default home: PRIVACYKIT_HOME is not set)``, for messages."""
    shown = click.format_filename(home)
    return (
        f"{shown} (the default home: PRIVACYKIT_HOME is not set)" if home_is_default(env) else shown
    )


def make_private_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents, each 0700 (an explicit mode, so ``umask
    000`` cannot make them world-writable). Existing directories are left exactly as they
    are. Returns the directories created, outermost first."""
    missing: list[Path] = []
    current = Path(os.path.abspath(path))
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # another process made it first: not ours to change
        # mkdir's mode is filtered by the umask, which can only remove bits; set it
        # exactly so the directory is usable by its owner whatever the umask.
        os.chmod(directory, 0o700)
        created.append(directory)
    return created
