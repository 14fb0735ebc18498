"""What every Zendesk answer a decision depends on must look like, in one place.

Owns :data:`SCHEMAS` (one declarative spec per endpoint, keyed by the endpoint name of
:func:`privacykit.zendesk.routes.endpoint_for`), :func:`parse_body` and
:func:`validate`. A 2xx answer that is not JSON, or whose JSON does not match its spec,
raises :class:`~privacykit.errors.MalformedResponseError` naming the endpoint and where
the body went wrong (``users[2].id: expected an integer id, got a string``), never a
value from the body: the caller can then only conclude "needs review", never "no data
found". Pagination fields are checked by :mod:`privacykit.zendesk.pagination`.

The spec language is plain data, small on purpose (a hand-written checker of ~80 lines
instead of a JSON Schema dependency: the specs stay readable next to the docs, and the
messages are ours, guaranteed free of body values):

* a type name: ``"id"`` (Zendesk integer id > 0; booleans are not ints), ``"idstr"``
  (an id as int or digit string, as the Profiles API sends ``user_id``), ``"oid"``
  (opaque id: 1-128 letters, digits, ``-``, ``_``), ``"int"``, ``"count"`` (int >= 0),
  ``"str"``, ``"bool"``, ``"dict"`` (any object), ``"list"`` (any array), ``"any"``;
  a trailing ``?`` also allows ``null``;
* ``{"key": spec, "key?": spec}``: an object with these keys (``key?`` may be absent;
  other keys are allowed and not checked);
* ``[spec]``: an array whose every item matches ``spec``;
* ``Nullable(spec)``: ``spec`` or ``null`` (for objects and arrays).

Keys are required where a decision reads them (ids, roles, statuses, requester and author
ids, profile identifiers) and where Zendesk's reference shows them in every answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from privacykit.errors import MalformedResponseError

__all__ = [
    "SCHEMAS",
    "Nullable",
    "check",
    "parse_body",
    "validate",
]


@dataclass(frozen=True)
class Nullable:
    """``spec`` or JSON ``null``."""

    spec: Any


_OPAQUE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_MAX_ID = 2**63


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown type"


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MAX_ID


_SCALARS: dict[str, tuple[str, Any]] = {
    "id": ("an integer id", _is_id),
    "idstr": (
        "an integer id",
        lambda v: (
            _is_id(v)
            or (isinstance(v, str) and v.isascii() and v.isdigit() and 0 < int(v) < _MAX_ID)
        ),
    ),
    "oid": ("an id of letters and digits", lambda v: isinstance(v, str) and bool(_OPAQUE.match(v))),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "count": (
        "a count",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    ),
    "str": ("a string", lambda v: isinstance(v, str)),
    "bool": ("a boolean", lambda v: isinstance(v, bool)),
    "dict": ("an object", lambda v: isinstance(v, dict)),
    "list": ("an array", lambda v: isinstance(v, list)),
    "any": ("anything", lambda v: True),
}


def check(spec: Any, value: Any, where: str = "") -> str | None:
    """The first problem of ``value`` against ``spec`` (``"users[2].id: expected ..."``),
    or ``None``. Never mentions a value, only paths and JSON types."""
    at = where or "the body"
    if isinstance(spec, Nullable):
        return None if value is None else check(spec.spec, value, where)
    if isinstance(spec, str):
        name, nullable = (spec[:-1], True) if spec.endswith("?") else (spec, False)
        if value is None and nullable:
            return None
        what, accepts = _SCALARS[name]
        return None if accepts(value) else f"{at}: expected {what}, got {_json_type(value)}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{at}: expected an array, got {_json_type(value)}"
        for index, item in enumerate(value):
            problem = check(spec[0], item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(spec, Mapping):
        if not isinstance(value, dict):
            return f"{at}: expected an object, got {_json_type(value)}"
        for raw_key, sub in spec.items():
            key, optional = (raw_key[:-1], True) if raw_key.endswith("?") else (raw_key, False)
            path = f"{where}.{key}" if where else key
            if key not in value:
                if optional:
                    continue
                return f"{path}: missing"
            problem = check(sub, value[key], path)
            if problem:
                return problem
        return None
    raise TypeError(f"not a spec: {type(spec).__name__}")  # a bug in SCHEMAS


# ---------------------------------------------------------------------------------------
# Records

USER = {
    "id": "id",
    "role": "str",
    "active": "bool",
    "name?": "str?",
    "email?": "str?",
    "phone?": "str?",
    "external_id?": "str?",
    "organization_id?": "id?",
    "tags?": Nullable(["str"]),
    "user_fields?": "dict?",
}
DELETED_USER = {"id": "id", "name": "str?", "active?": "bool", "email?": "str?"}
IDENTITY = {"id": "id", "user_id": "id", "type": "str", "value": "str", "primary?": "bool"}
PROFILE = {
    "id": "oid",
    "source": "str",
    "type": "str",
    "user_id?": "idstr?",
    "identifiers": [{"type": "str", "value": "str"}],
    "attributes?": "dict?",
}
EVENT = {"id?": "any"}
COMPLIANCE = {"application": "str", "action": "str", "created_at?": "str?", "user_id?": "id"}
JOB_STATUS = {
    "id": "oid",
    "status": "str",
    "total?": "count?",
    "progress?": "count?",
    "results?": Nullable(["dict"]),
}
ATTACHMENT = {
    "id": "id",
    "content_url": "str",
    "file_name?": "str?",
    "content_type?": "str?",
    "size?": "count?",
    "inline?": "bool",
}
TICKET = {
    "id": "id",
    "status": "str",
    "requester_id": "id",
    "submitter_id?": "id?",
    "assignee_id?": "id?",
    "organization_id?": "id?",
    "subject?": "str?",
    "description?": "str?",
    "email_cc_ids?": Nullable(["id"]),
    "follower_ids?": Nullable(["id"]),
    "collaborator_ids?": Nullable(["id"]),
    "satisfaction_rating?": "dict?",
    "tags?": Nullable(["str"]),
    "custom_fields?": Nullable(["dict"]),
}
# author_id is an int but not always a user id (Zendesk uses -1 for some system comments).
COMMENT = {
    "id": "id",
    "author_id": "int",
    "public?": "bool",
    "body?": "str?",
    "html_body?": "str?",
    "plain_body?": "str?",
    "attachments?": Nullable([ATTACHMENT]),
}
DELETED_TICKET = {"id": "id", "subject?": "str?", "deleted_at?": "str?"}
ORGANIZATION = {"id": "id", "name?": "str?"}
MEMBERSHIP = {"id": "id", "user_id": "id", "organization_id": "id", "default?": "bool?"}

V2 = "/api/v2"

#: Endpoint name -> spec of the whole body (list endpoints: the page's records key; the
#: pagination fields are checked by the pagination module).
SCHEMAS: dict[str, Any] = {
    f"GET {V2}/users/me": {"user": USER},
    f"GET {V2}/users/{{id}}": {"user": USER},
    f"GET {V2}/users/show_many": {"users": [USER]},
    f"GET {V2}/users/search": {"users": [USER]},
    f"GET {V2}/users": {"users": [USER]},
    f"POST {V2}/users": {"user": USER},
    f"DELETE {V2}/users/{{id}}": {"user": USER},
    f"GET {V2}/users/{{id}}/identities": {"identities": [IDENTITY]},
    f"GET {V2}/users/{{id}}/related": {"user_related": "dict"},
    f"GET {V2}/users/{{id}}/compliance_deletion_statuses": {
        "compliance_deletion_statuses": [COMPLIANCE]
    },
    f"GET {V2}/deleted_users": {"deleted_users": [DELETED_USER]},
    f"GET {V2}/deleted_users/{{id}}": {"deleted_user": DELETED_USER},
    f"DELETE {V2}/deleted_users/{{id}}": {"deleted_user": DELETED_USER},
    f"DELETE {V2}/users/destroy_many": {"job_status": JOB_STATUS},
    f"GET {V2}/job_statuses/{{id}}": {"job_status": JOB_STATUS},
    f"GET {V2}/job_statuses/show_many": {"job_statuses": [JOB_STATUS]},
    # Profiles API
    f"GET {V2}/users/{{id}}/profiles": {"profiles": [PROFILE]},
    f"PUT {V2}/users/{{id}}/profiles": {"profile": PROFILE},
    f"GET {V2}/user_profiles": {"profile": PROFILE},
    f"PUT {V2}/user_profiles": {"profile": PROFILE},
    f"GET {V2}/user_profiles/{{id}}": {"profile": PROFILE},
    f"PUT {V2}/user_profiles/{{id}}": {"profile": PROFILE},
    # The events list has no documented record shape; "events" or "data" (see pagination).
    f"GET {V2}/user_profiles/{{id}}/events": {"events?": [EVENT], "data?": [EVENT]},
    # Tickets (tickets-and-more.md)
    **{
        f"GET {V2}/users/{{id}}/tickets/{which}": {"tickets": [TICKET]}
        for which in ("requested", "ccd", "followed", "assigned")
    },
    f"GET {V2}/tickets/show_many": {"tickets": [TICKET]},
    f"PUT {V2}/tickets/{{id}}": {"ticket": TICKET},
    f"GET {V2}/tickets/{{id}}/comments": {"comments": [COMMENT]},
    f"DELETE {V2}/tickets/destroy_many": {"job_status": JOB_STATUS},
    f"GET {V2}/deleted_tickets": {"deleted_tickets": [DELETED_TICKET]},
    f"DELETE {V2}/deleted_tickets/destroy_many": {"job_status": JOB_STATUS},
    f"PUT {V2}/comment_redactions/{{id}}": {"comment": COMMENT},
    f"PUT {V2}/tickets/{{id}}/comments/{{id}}/redact": {"comment": COMMENT},
    f"PUT {V2}/tickets/{{id}}/comments/{{id}}/attachments/{{id}}/redact": {
        "attachment": ATTACHMENT
    },
    f"GET {V2}/users/{{id}}/organizations": {"organizations": [ORGANIZATION]},
    f"GET {V2}/users/{{id}}/organization_memberships": {"organization_memberships": [MEMBERSHIP]},
}


def parse_body(endpoint: str, response: httpx.Response) -> Any:
    """The answer's JSON, or :class:`MalformedResponseError` when it is not JSON (an HTML
    maintenance page with status 200, an empty or truncated body)."""
    content_type = response.headers.get("content-type", "").lower()
    if "html" in content_type:
        raise MalformedResponseError(
            f"{endpoint}: malformed answer: an HTML page instead of JSON", endpoint=endpoint
        )
    try:
        return response.json()
    except ValueError:
        raise MalformedResponseError(
            f"{endpoint}: malformed answer: the body is not JSON", endpoint=endpoint
        ) from None


def validate(endpoint: str, body: Any) -> dict[str, Any]:
    """``body`` when it matches the endpoint's spec; else :class:`MalformedResponseError`.
    An endpoint without a spec is a programming error (``KeyError``): every answer the
    client parses is described here."""
    spec = SCHEMAS[endpoint]
    problem = check(spec, body)
    if problem is not None:
        raise MalformedResponseError(f"{endpoint}: malformed answer: {problem}", endpoint=endpoint)
    assert isinstance(body, dict)  # every spec is an object spec
    return body
