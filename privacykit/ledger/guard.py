"""The privacy guard: refuse to write anything that looks personal or secret to the ledger.

The ledger is kept for years and shown to regulators; a subject who asked to be erased
must not live on in it. Callers are meant to pass only Zendesk ids, counts, statuses,
sha256 hashes, keyed subject references (``sr1:…``) and ISO dates. This guard is the
defensive second line: it rejects strings that look like an email address (also
URL-encoded, as in a search query), a phone number, an HTTP credential, or a
high-entropy token (mixed-case letters and digits, like a Zendesk API token), plus any
exact secret registered with :meth:`PrivacyGuard.forbid` (the process's API token).

Errors name the path of the offending value (``data.user.note``) and never the value.
Known limits: names and free-text profile contents cannot be recognised by form; the
rule for callers stays "ids only". Lower-case hex strings (sha256, job ids) and ULIDs
(Sunshine profile ids) pass, so a 64-hex OAuth token cannot be told apart from a hash by
its form alone; register it with ``forbid``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from privacykit.errors import LedgerError

__all__ = ["PrivacyGuard", "looks_personal"]

# An email is found from its "@" (or URL-encoded "%40") outwards, in bounded windows, so
# the check stays linear on long strings (a plain regex backtracks quadratically).
_EMAIL_MARKERS = ("@", "%40", "(at)")
_LOCAL_PART_END = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]$")
_DOMAIN_START = re.compile(r"[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:^|[^\w+])(?:\+|tel:)\s?\d(?:[\s().-]?\d){6,}")
_CREDENTIAL = re.compile(
    r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}|/token:|\bauthorization\s*:|"
    r"\b(?:api[_-]?token|password|secret|access[_-]?token)\s*[=:]\s*\S"
)
_RUN = re.compile(r"[A-Za-z0-9+/=]{16,}")
# One part of an API path: a lower-case word, digits, lower-case hex or a Sunshine ULID.
_PATH_PART = re.compile(r"[a-z]+|[0-9a-f]+|[0-9A-HJKMNP-TV-Z]{26}")


def _looks_like_token(run: str) -> bool:
    # A Zendesk API token is 40 mixed-case alphanumerics; base64 secrets look alike. Ids we
    # do record are digits, lower-case hex (sha256, job ids) or upper-case ULIDs.
    core = run.strip("=")
    if "/" in core and all(_PATH_PART.fullmatch(p) for p in core.split("/") if p):
        # A path of words and ids, as error reasons name them ("DELETE
        # /api/v2/user_profiles/01E0...": the run "profiles/01E0..." mixes cases only
        # because a word meets a ULID). A base64 secret split at its slashes is not made
        # of such parts (a random part of 8 characters is all lower-case 1 time in 1,000).
        return False
    has_lower = any("a" <= c <= "z" for c in core)
    has_upper = any("A" <= c <= "Z" for c in core)
    has_digit = any(c.isdigit() for c in core)
    return has_lower and has_upper and has_digit


def _has_email(text: str) -> bool:
    for marker in _EMAIL_MARKERS:
        start = 0
        while (at := text.find(marker, start)) != -1:
            after = at + len(marker)
            if _LOCAL_PART_END.search(text[max(0, at - 1) : at]) and _DOMAIN_START.match(
                text[after : after + 255]
            ):
                return True
            start = at + 1
    return False


def looks_personal(text: str) -> str | None:
    """What ``text`` looks like (``"an email address"``, …) if it must not be recorded."""
    if _has_email(text):
        return "an email address"
    if _PHONE.search(text):
        return "a phone number"
    if _CREDENTIAL.search(text):
        return "a credential"
    if any(_looks_like_token(m.group()) for m in _RUN.finditer(text)):
        return "a secret token"
    return None


class PrivacyGuard:
    """Checks every string (keys included) of a value before it is written."""

    def __init__(self, forbidden: Iterable[str] = ()) -> None:
        self._forbidden: set[str] = set()
        self.forbid(*forbidden)

    def forbid(self, *values: str | None) -> None:
        """Refuse any string containing one of ``values`` (kept in memory only). Values
        shorter than 8 characters are ignored: too likely to occur by chance."""
        for value in values:
            if value and len(value.strip()) >= 8:
                self._forbidden.add(value.strip())

    def check(self, value: Any, where: str = "data") -> None:
        """Raise :class:`LedgerError` naming ``where`` if anything in ``value`` looks personal."""
        if isinstance(value, str):
            self._check_text(value, where)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self._check_text(str(key), f"{where} (a key)")
                self.check(item, f"{where}.{key}" if _plain(key) else f"{where}[?]")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                self.check(item, f"{where}[{index}]")

    def _check_text(self, text: str, where: str) -> None:
        what = looks_personal(text)
        if what is None and any(secret in text for secret in self._forbidden):
            what = "a registered secret"
        if what is not None:
            raise LedgerError(
                f"refusing to record {where}: it looks like {what}; the ledger keeps ids, "
                "counts, statuses, hashes and keyed subject references only"
            )


def _plain(key: object) -> bool:
    # Only echo a key into the error path when the key itself is harmless.
    return isinstance(key, str) and len(key) <= 64 and looks_personal(key) is None
