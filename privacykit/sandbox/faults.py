"""Injected faults: random server trouble, malformed bodies, slow drips, forced 429s and
the ``Retry-After`` value a 429 carries.

Owns :class:`Faults` (thread-safe, configured through
:meth:`~privacykit.sandbox.SandboxServer.configure`) and :func:`malform`, which bends a
well-formed answer into one of the shapes a proxy or an outage can produce:

=====================  ====================  =================================================
kind                   also accepted as      the answer (status 200)
=====================  ====================  =================================================
``null_collection``    ``users_null``        the main key is ``null`` (``{"users": null}``)
``empty_object``       ``empty``             ``{}``
``non_numeric_id``     ``bad_id``            the first record's ``id`` is ``"not-a-number"``
``object_for_list``    ``identities_object`` the main list is an object (``{"0": {...}}``);
                                             a main object becomes a one-item list
``string_for_list``    ``profiles_string``   the main value is a string (its JSON text)
``truncated_json``                           the JSON text cut in half
``html_maintenance``   ``html``              an HTML maintenance page, ``text/html``
=====================  ====================  =================================================

The "main key" is the first key of Zendesk's answer (``users``, ``user``, ``identities``,
``profiles``, ``tickets``, ``job_status`` …). Endpoints are named as
``METHOD /api/v2/path`` with ``{…}`` placeholders (``GET /api/v2/users/{id}/identities``)
or a concrete path, or ``*`` for every endpoint.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from privacykit.sandbox.routing import Reply, endpoint_key

__all__ = [
    "FAULT_KINDS",
    "MALFORMED_KINDS",
    "SLOW_FAULT_SECONDS",
    "Drip",
    "Faults",
    "format_header_seconds",
    "malform",
]

#: Real seconds a random "slow" fault delays an answer (bounded so tests stay fast).
SLOW_FAULT_SECONDS = (0.05, 0.3)
#: How the random faults split when one happens.
FAULT_KINDS = (("error", 0.4), ("slow", 0.2), ("drop_before", 0.2), ("drop_after", 0.2))
MALFORMED_KINDS = (
    "null_collection",
    "empty_object",
    "non_numeric_id",
    "object_for_list",
    "string_for_list",
    "truncated_json",
    "html_maintenance",
)
_ALIASES = {
    "users_null": "null_collection",
    "empty": "empty_object",
    "bad_id": "non_numeric_id",
    "identities_object": "object_for_list",
    "profiles_string": "string_for_list",
    "html": "html_maintenance",
}
_MAINTENANCE = (
    b"<!DOCTYPE html><html><head><title>Zendesk - Maintenance</title></head><body>"
    b"<h1>We'll be back shortly</h1><p>This help desk is undergoing scheduled maintenance."
    b"</p></body></html>"
)
#: Bounds on the slow drip (so a sandbox thread can never drip for ever).
MAX_DRIP_BYTES = 10_000


def _kind(value: Any) -> str:
    kind = _ALIASES.get(str(value), str(value))
    if kind not in MALFORMED_KINDS:
        choices = ", ".join([*MALFORMED_KINDS, *_ALIASES])
        raise ValueError(f"unknown malformed kind {value!r}; choose one of {choices}")
    return kind


def _times(value: Any) -> int | None:
    if value is None:
        return None
    times = int(value)
    if times < 1:
        raise ValueError("times must be at least 1 (or null for always)")
    return times


def _endpoints(value: Any) -> frozenset[str] | None:
    if value is None or value == "*":
        return None
    if isinstance(value, str):
        value = [value]
    keys = frozenset(endpoint_key(str(v)) for v in value)
    return None if endpoint_key("*") in keys else keys


def format_header_seconds(seconds: float) -> str:
    """A seconds header value as configured: whole seconds as an integer."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


@dataclass
class _Malformed:
    kind: str
    times: int | None  # None: every time

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "times": self.times}


@dataclass
class Drip:
    """Answer one byte every ``interval`` virtual seconds, for at most ``max_bytes``
    bytes, then the rest at once. ``part``: ``body`` (headers at once) or ``head``."""

    interval: float
    max_bytes: int
    part: str
    endpoints: frozenset[str] | None
    times: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "max_bytes": self.max_bytes,
            "part": self.part,
            "endpoints": None if self.endpoints is None else sorted(self.endpoints),
            "times": self.times,
        }


@dataclass
class _Throttle:
    endpoints: frozenset[str] | None
    times: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoints": None if self.endpoints is None else sorted(self.endpoints),
            "times": self.times,
        }


class Faults:
    """Every configured fault, behind one lock."""

    def __init__(self, rate: float = 0.0, rng_seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self.rate = 0.0
        self.set_rate(rate)
        # A separate stream, so whether faults happen does not change generated data.
        self._rng = random.Random(None if rng_seed is None else f"faults-{rng_seed}")
        self._malformed: dict[str, _Malformed] = {}
        self._drip: Drip | None = None
        self._throttle: _Throttle | None = None
        self.retry_after: float | None = None

    # ------------------------------------------------------------------ configuration

    def set_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        with self._lock:
            self.rate = float(rate)

    def set_malformed(self, mapping: Mapping[str, Any] | None) -> None:
        """Replace the malformed-body table: endpoint -> kind or ``{"kind", "times"}``."""
        table: dict[str, _Malformed] = {}
        for endpoint, spec in (mapping or {}).items():
            if spec is None:
                continue
            if isinstance(spec, Mapping):
                rule = _Malformed(_kind(spec.get("kind")), _times(spec.get("times")))
            else:
                rule = _Malformed(_kind(spec), None)
            table[endpoint_key(endpoint)] = rule
        with self._lock:
            self._malformed = table

    def set_drip(self, spec: Mapping[str, Any] | None) -> None:
        """``{"interval": virtual seconds, "max_bytes": N, "part": "body"|"head",
        "endpoints": [...], "times": N}``; None switches it off."""
        drip = None
        if spec is not None:
            interval = float(spec.get("interval", 1.0))
            max_bytes = int(spec.get("max_bytes", 100))
            part = str(spec.get("part", "body"))
            if not interval > 0:
                raise ValueError("slow_drip interval must be positive")
            if not 1 <= max_bytes <= MAX_DRIP_BYTES:
                raise ValueError(f"slow_drip max_bytes must be 1 to {MAX_DRIP_BYTES}")
            if part not in ("body", "head"):
                raise ValueError("slow_drip part must be 'body' or 'head'")
            drip = Drip(
                interval,
                max_bytes,
                part,
                _endpoints(spec.get("endpoints")),
                _times(spec.get("times")),
            )
        with self._lock:
            self._drip = drip

    def set_throttle(self, spec: Mapping[str, Any] | None) -> None:
        """``{"endpoints": [...], "times": N}``: answer 429 regardless of the budget."""
        rule = None
        if spec is not None:
            rule = _Throttle(_endpoints(spec.get("endpoints")), _times(spec.get("times", 1)))
        with self._lock:
            self._throttle = rule

    def set_retry_after(self, seconds: float | None) -> None:
        """The ``Retry-After`` every 429 carries (seconds as sent, not scaled by the
        virtual clock); None: the real wait until the budget frees, as Zendesk does."""
        if seconds is not None and not float(seconds) >= 0:
            raise ValueError("retry_after must be zero or more seconds")
        with self._lock:
            self.retry_after = None if seconds is None else float(seconds)

    def config(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fault_rate": self.rate,
                "malformed": {k: v.to_json() for k, v in sorted(self._malformed.items())},
                "slow_drip": None if self._drip is None else self._drip.to_json(),
                "throttle": None if self._throttle is None else self._throttle.to_json(),
                "retry_after": self.retry_after,
            }

    # ------------------------------------------------------------------ per request

    def pick_random(self) -> tuple[str | None, float]:
        """A random fault for this request (or None) and a roll in [0, 1) to vary it."""
        with self._lock:
            if self.rate <= 0 or self._rng.random() >= self.rate:
                return None, 0.0
            roll = self._rng.random()
            kind = FAULT_KINDS[-1][0]
            for name, weight in FAULT_KINDS:
                if roll < weight:
                    kind = name
                    break
                roll -= weight
            return kind, self._rng.random()

    def malformed_for(self, endpoints: Iterable[str]) -> str | None:
        """The malformed kind configured for this request's endpoint (spends a use)."""
        with self._lock:
            for key in [*endpoints, endpoint_key("*")]:
                rule = self._malformed.get(key)
                if rule is None:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._malformed[key]
                return rule.kind
            return None

    def drip_for(self, endpoints: Iterable[str]) -> Drip | None:
        with self._lock:
            drip = self._drip
            if drip is None or not _applies(drip.endpoints, endpoints):
                return None
            if drip.times is not None:
                drip.times -= 1
                if drip.times <= 0:
                    self._drip = None
            return drip

    def throttled(self, endpoints: Iterable[str]) -> bool:
        with self._lock:
            rule = self._throttle
            if rule is None or not _applies(rule.endpoints, endpoints):
                return False
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self._throttle = None
            return True


def _applies(wanted: frozenset[str] | None, endpoints: Iterable[str]) -> bool:
    return wanted is None or any(key in wanted for key in endpoints)


def malform(kind: str, reply: Reply) -> Reply:
    """The answer bent into ``kind`` (see the module docstring); status 200."""
    if kind == "html_maintenance":
        return Reply(
            200, headers=reply.headers, text=_MAINTENANCE, content_type="text/html; charset=utf-8"
        )
    body = reply.body if isinstance(reply.body, dict) else {}
    if kind == "empty_object" or not body:
        return Reply(200, {}, reply.headers)
    if kind == "truncated_json":
        text = json.dumps(body).encode()
        return Reply(
            200,
            headers=reply.headers,
            text=text[: len(text) // 2],
            content_type="application/json; charset=utf-8",
        )
    main = next(iter(body))
    value = body[main]
    bent = dict(body)
    if kind == "null_collection":
        bent[main] = None
    elif kind == "string_for_list":
        bent[main] = json.dumps(value)
    elif kind == "object_for_list":
        if isinstance(value, list):
            bent[main] = {str(index): item for index, item in enumerate(value)}
        else:
            bent[main] = [value]
    elif kind == "non_numeric_id":
        if isinstance(value, list):
            items = [dict(i) if isinstance(i, dict) else i for i in value] or [{}]
            if isinstance(items[0], dict):
                items[0]["id"] = "not-a-number"
            bent[main] = items
        elif isinstance(value, dict):
            bent[main] = {**value, "id": "not-a-number"}
    return Reply(200, bent, reply.headers)
