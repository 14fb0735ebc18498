"""Configuration from the environment: URLs, auth forms, secrets that never print."""

from __future__ import annotations

import pytest

from privacykit.config import Secret, ZendeskConfig, privacykit_home
from privacykit.errors import ConfigError

TOKEN = "tok-SECRET-1234567890"


def test_subdomain_and_api_token() -> None:
    cfg = ZendeskConfig.from_env(
        {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "dpo@acme.test", "ZENDESK_API_TOKEN": TOKEN}
    )
    assert cfg.base_url == "https://acme.zendesk.com"
    assert cfg.api_token is not None and cfg.api_token.reveal() == TOKEN
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.api_token) and TOKEN not in f"{cfg}"


def test_oauth_token() -> None:
    cfg = ZendeskConfig.from_env(
        {"ZENDESK_URL": "https://acme.zendesk.com/", "ZENDESK_OAUTH_TOKEN": TOKEN}
    )
    assert cfg.base_url == "https://acme.zendesk.com"
    assert cfg.oauth_token == Secret(TOKEN)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.1.2.3"])
def test_plain_http_allowed_for_loopback(host: str) -> None:
    cfg = ZendeskConfig.from_env(
        {"ZENDESK_URL": f"http://{host}:8080", "ZENDESK_OAUTH_TOKEN": TOKEN}
    )
    assert cfg.base_url == f"http://{host}:8080"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set ZENDESK_SUBDOMAIN or ZENDESK_URL to say which Zendesk to use"),
        (
            {"ZENDESK_URL": "http://example.com", "ZENDESK_OAUTH_TOKEN": TOKEN},
            "ZENDESK_URL must use https",
        ),
        (
            {"ZENDESK_URL": "ftp://x", "ZENDESK_OAUTH_TOKEN": TOKEN},
            "ZENDESK_URL must be an http(s) URL",
        ),
        ({"ZENDESK_SUBDOMAIN": "a.b/c", "ZENDESK_OAUTH_TOKEN": TOKEN}, "ZENDESK_SUBDOMAIN must be"),
        ({"ZENDESK_SUBDOMAIN": "acme"}, "set ZENDESK_API_TOKEN (with ZENDESK_EMAIL)"),
        (
            {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_API_TOKEN": TOKEN},
            "ZENDESK_API_TOKEN needs ZENDESK_EMAIL",
        ),
        (
            {
                "ZENDESK_SUBDOMAIN": "acme",
                "ZENDESK_URL": "https://a.zendesk.com",
                "ZENDESK_OAUTH_TOKEN": TOKEN,
            },
            "not both",
        ),
    ],
)
def test_bad_config_is_one_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ZendeskConfig.from_env(env)
    assert message in str(info.value)
    assert TOKEN not in str(info.value)
    assert info.value.exit_code == 2


def test_home_created_owner_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = privacykit_home({"PRIVACYKIT_HOME": str(tmp_path / "h")})
    assert home.is_dir() and (home.stat().st_mode & 0o777) == 0o700


def test_home_that_is_a_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        privacykit_home({"PRIVACYKIT_HOME": str(tmp_path / "f")})


def test_existing_home_is_never_chmodded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert privacykit_home({"PRIVACYKIT_HOME": str(shared)}) == shared
    assert (shared.stat().st_mode & 0o777) == 0o755
    from privacykit.ledger import Ledger

    Ledger.open(shared).close()
    assert (shared.stat().st_mode & 0o777) == 0o755
    assert ((shared / "ledger.sqlite3").stat().st_mode & 0o777) == 0o600
    assert ((shared / "artifacts").exists() is False) or (
        (shared / "artifacts").stat().st_mode & 0o777
    ) == 0o700


def test_missing_parents_are_private_even_with_umask_000(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    old = os.umask(0)
    try:
        home = privacykit_home({"PRIVACYKIT_HOME": str(tmp_path / "a" / "b" / "home")})
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b", home):
        assert (path.stat().st_mode & 0o777) == 0o700, path
