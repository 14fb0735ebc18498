"""The application layer: from the environment to what a command works with.

Owns the path every command takes before doing anything: the home directory
(``PRIVACYKIT_HOME``), the Zendesk configuration, the Zendesk client, the **preflight**
(one authenticated ``GET /api/v2/users/me`` before any request is opened: refused
credentials are a configuration error, exit 2, nothing recorded) and the ledger. The CLI
parses options and formats results; the library calls these.

Import cost: this package imports nothing heavy at module level (no httpx, no SQLite);
each function imports what it needs, so ``privacykit --help`` stays fast.
"""

from __future__ import annotations

from privacykit.app.context import (
    AppContext,
    Home,
    Me,
    client_bounds,
    load_config,
    make_client,
    open_app,
    open_ledger,
    preflight,
    sign_left_tail,
)

__all__ = [
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
