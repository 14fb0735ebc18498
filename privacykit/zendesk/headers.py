"""Reading the rate-limit headers of an answer, in every spelling Zendesk has sent.

Owns :func:`parse_rate_limit_headers` and :func:`parse_retry_after`. Recorded answers
from real accounts (``tickets-and-more.md``) show the names changed over time:

=========================  ==============================  ===============================
what                       2023                            2024
=========================  ==============================  ===============================
account limit              ``rate-limit``                  ``ratelimit-limit``
account remaining          ``rate-limit-remaining``        ``ratelimit-remaining``
account reset (seconds)    ``rate-limit-reset``            ``ratelimit-reset``
per endpoint               ``zendesk-rate-limit-<name>``   ``zendesk-ratelimit-<name>``
both years                 ``x-rate-limit``, ``x-rate-limit-remaining``
=========================  ==============================  ===============================

plus the IETF draft's combined ``RateLimit: limit=N, remaining=N, reset=S``. Names are
compared case-insensitively after one normalisation (a leading ``x-`` dropped and
``rate-limit`` read as ``ratelimit``), so every spelling lands on the same fields and a
new mix of them needs no new code. Values tolerate spaces, missing fields and fractional
seconds; two sources that disagree resolve to the stricter (smaller) value.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from privacykit import clock
from privacykit.zendesk.budgets import ACCOUNT

__all__ = ["RateInfo", "normalise_name", "parse_rate_limit_headers", "parse_retry_after"]


@dataclass(frozen=True)
class RateInfo:
    """What one answer said about one scope. ``reset`` is seconds until the window resets;
    ``reset_granularity`` is the precision it was sent with (1.0 for whole seconds, 0.001
    for ``0.042``): the true value may differ from it by that much either way."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    reset_granularity: float = 0.0


_SCOPE_PREFIX = "zendesk-ratelimit-"
_RATE_PREFIXES = (
    b"x-rate-limit",
    b"x-ratelimit",
    b"rate-limit",
    b"ratelimit",
    b"zendesk-rate-limit-",
    b"zendesk-ratelimit-",
    b"retry-after",
)


def normalise_name(name: str) -> str:
    """``X-Rate-Limit-Remaining`` -> ``ratelimit-remaining``; ``Zendesk-Rate-Limit-x`` ->
    ``zendesk-ratelimit-x`` (only the first ``rate-limit`` is touched: scope names keep
    their own dashes)."""
    lower = name.strip().lower()
    if lower.startswith("x-"):
        lower = lower[2:]
    return lower.replace("rate-limit", "ratelimit", 1)


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)  # tolerates surrounding spaces; "inf"/"nan" are refused below
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return max(value, 0.0)


def _count(raw: str | None) -> int | None:
    value = _number(raw)
    return None if value is None else int(value)


def _granularity(raw: str | None) -> float:
    if raw is None:
        return 0.0
    _, dot, decimals = raw.strip().partition(".")
    return 10.0 ** -len(decimals) if dot else 1.0


def _fields(value: str) -> dict[str, str]:
    """``total=10; remaining = 9 ,resets=1.5`` -> {"total": "10", ...} (keys lower-case)."""
    out: dict[str, str] = {}
    for part in re.split(r"[;,]", value):
        if "=" not in part:
            continue
        key, _, val = part.partition("=")
        out[key.strip().lower()] = val.strip().strip('"')
    return out


def _rate_headers(headers: Mapping[str, str] | httpx.Headers) -> list[tuple[str, str]]:
    """The rate-limit headers only, as (normalised name, value), in the order sent. On httpx
    headers this scans the raw bytes and decodes just the few that matter (it runs once per
    answer)."""
    if isinstance(headers, httpx.Headers):
        return [
            (normalise_name(key.decode("latin-1")), value.decode("latin-1"))
            for key, value in headers.raw
            if key.lower().startswith(_RATE_PREFIXES)
        ]
    return [(normalise_name(k), v) for k, v in headers.items()]


def parse_rate_limit_headers(headers: Mapping[str, str] | httpx.Headers) -> dict[str, RateInfo]:
    """Every scope's budget as the answer reports it, keyed by scope name
    (``"account"`` for the account-wide headers, ``"profiles"`` for
    ``Zendesk-RateLimit-profiles``...). Fields the answer omits are ``None``."""
    limits: list[int] = []
    remainings: list[int] = []
    resets: list[tuple[float, str]] = []
    scoped: dict[str, list[str]] = {}
    for name, value in _rate_headers(headers):
        if name == "ratelimit":
            if "=" in value:  # the IETF draft's structured field
                parts = _fields(value)
                _add(limits, _count(parts.get("limit")))
                _add(remainings, _count(parts.get("remaining")))
                _add_reset(resets, parts.get("reset"))
            else:  # 2023 "rate-limit: 700" and "x-rate-limit: 700"
                _add(limits, _count(value))
        elif name == "ratelimit-limit":
            _add(limits, _count(value))
        elif name == "ratelimit-remaining":
            _add(remainings, _count(value))
        elif name == "ratelimit-reset":
            _add_reset(resets, value)
        elif name.startswith(_SCOPE_PREFIX):
            scope = name[len(_SCOPE_PREFIX) :].strip()
            if scope:
                scoped.setdefault(scope, []).append(value)

    found: dict[str, RateInfo] = {}
    if limits or remainings or resets:
        # The shortest reset is the stricter reading (the window may end that soon).
        reset = min(resets) if resets else None
        found[ACCOUNT] = RateInfo(
            limit=min(limits) if limits else None,
            remaining=min(remainings) if remainings else None,
            reset=reset[0] if reset else None,
            reset_granularity=_granularity(reset[1]) if reset else 0.0,
        )
    for scope, values in scoped.items():
        infos = [i for i in (_scope_info(v) for v in values) if i is not None]
        if infos:
            found[scope] = min(infos, key=_strictness)
    return found


def _add(bucket: list[int], value: int | None) -> None:
    if value is not None:
        bucket.append(value)


def _add_reset(bucket: list[tuple[float, str]], raw: str | None) -> None:
    value = _number(raw)
    if value is not None and raw is not None:
        bucket.append((value, raw))


def _scope_info(value: str) -> RateInfo | None:
    parts = _fields(value)
    resets_raw = parts.get("resets", parts.get("reset"))
    resets = _number(resets_raw)
    info = RateInfo(
        limit=_count(parts.get("total", parts.get("limit"))),
        remaining=_count(parts.get("remaining")),
        reset=resets,
        reset_granularity=_granularity(resets_raw) if resets is not None else 0.0,
    )
    if info.limit is None and info.remaining is None and info.reset is None:
        return None
    return info


def _strictness(info: RateInfo) -> tuple[float, float]:
    """Both spellings of one scope in one answer: keep the one with less budget left."""
    remaining = info.remaining if info.remaining is not None else math.inf
    return (remaining, -(info.reset or 0.0))


def parse_retry_after(
    headers: Mapping[str, str] | httpx.Headers, *, now: Callable[[], datetime] | None = None
) -> float | None:
    """``Retry-After`` in seconds (fractions allowed, HTTP-date understood), or ``None``."""
    raw = None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value
            break
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else clock.now()
    return max((when - current).total_seconds(), 0.0)
