"""The ``/_sandbox/`` control endpoints: not Zendesk's; loopback only, not authenticated,
rate-limited, faulted or logged.

Owns the control surface a test or a script in another process uses to inspect and steer
a running sandbox (the same operations :class:`~privacykit.sandbox.SandboxServer` and its
``state`` offer in-process). Every endpoint takes and answers JSON objects; a bad control
request answers 400 with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from privacykit.sandbox.model import ApiError
from privacykit.sandbox.routing import Params, Reply

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = ["control"]

Body = dict[str, Any]
Control = Callable[["SandboxServer", Params, Body, "re.Match[str]"], Reply]


def _log(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    since = int((params.get("since") or ["0"])[0])
    return Reply(200, {"entries": sb.request_log(since)})


def _attachment_log(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    return Reply(200, {"entries": sb.attachment_log()})


def _state(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    return Reply(200, {"counts": sb.state.counts(), "config": sb.config(), "clock": sb.clock.now()})


def _config(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    return Reply(200, {"config": sb.configure(body)})


def _clock(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    now = sb.advance(float(body.get("advance", 0)))
    return Reply(200, {"virtual_seconds": now, "now": sb.clock.iso()})


def _seed(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    counts = sb.seed(str(body.get("seed", "demo")), users=int(body.get("users", 50)))
    return Reply(200, {"counts": counts})


def _ints(body: Body, key: str) -> list[int]:
    return [int(v) for v in body.get(key) or []]


def _add_ticket(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    def optional(key: str) -> int | None:
        return None if body.get(key) is None else int(body[key])

    ticket = sb.state.add_ticket(
        int(body["requester_id"]),
        str(body.get("status", "open")),
        body.get("subject"),
        description=body.get("description"),
        ccs=_ints(body, "ccs"),
        followers=_ints(body, "followers"),
        organization_id=optional("organization_id"),
        assignee_id=optional("assignee_id"),
        submitter_id=optional("submitter_id"),
        tags=[str(t) for t in body.get("tags") or []],
        attachments=_attachments(body),
        public=bool(body.get("public", True)),
    )
    return Reply(201, {"ticket": ticket})


def _attachments(body: Body) -> list[dict[str, Any]]:
    """``[{"file_name", "content" (text), "content_type"?}]``."""
    return [dict(a) for a in body.get("attachments") or []]


def _add_comment(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    comment = sb.state.add_comment(
        int(body["ticket_id"]),
        int(body["author_id"]),
        str(body.get("body", "")),
        public=bool(body.get("public", True)),
        attachments=_attachments(body),
        html_body=body.get("html_body"),
    )
    return Reply(201, {"comment": comment})


def _rating(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    rating = sb.state.set_satisfaction_rating(
        int(match.group(1)), str(body["score"]), body.get("comment"), reason=body.get("reason")
    )
    return Reply(200, {"satisfaction_rating": rating})


def _add_organization(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    org = sb.state.add_organization(
        str(body["name"]),
        details=body.get("details"),
        notes=body.get("notes"),
        domain_names=[str(d) for d in body.get("domain_names") or []],
        external_id=body.get("external_id"),
        tags=[str(t) for t in body.get("tags") or []],
        organization_fields=body.get("organization_fields") or {},
    )
    return Reply(201, {"organization": org})


def _add_membership(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    membership = sb.state.add_membership(
        int(body["user_id"]), int(body["organization_id"]), default=body.get("default")
    )
    return Reply(201, {"organization_membership": membership})


def _ticket_status(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    ticket = sb.state.set_ticket_status(int(match.group(1)), str(body["status"]))
    return Reply(200, {"ticket": ticket})


def _add_event(sb: SandboxServer, params: Params, body: Body, match: re.Match[str]) -> Reply:
    event = sb.state.add_event(
        str(body["profile_id"]),
        source=body.get("source"),
        type=str(body.get("type", "page_viewed")),
        description=str(body.get("description", "")),
        properties=body.get("properties") or {},
        created_at=body.get("created_at"),
    )
    return Reply(201, {"event": event})


_CONTROLS: list[tuple[tuple[str, ...], re.Pattern[str], Control]] = [
    (("GET",), re.compile(r"^/_sandbox/log$"), _log),
    (("GET",), re.compile(r"^/_sandbox/attachments/log$"), _attachment_log),
    (("GET",), re.compile(r"^/_sandbox/state$"), _state),
    (("POST",), re.compile(r"^/_sandbox/config$"), _config),
    (("POST",), re.compile(r"^/_sandbox/clock$"), _clock),
    (("POST",), re.compile(r"^/_sandbox/seed$"), _seed),
    (("POST",), re.compile(r"^/_sandbox/tickets$"), _add_ticket),
    (("POST", "PUT"), re.compile(r"^/_sandbox/tickets/(\d+)$"), _ticket_status),
    (("POST",), re.compile(r"^/_sandbox/tickets/(\d+)/satisfaction_rating$"), _rating),
    (("POST",), re.compile(r"^/_sandbox/comments$"), _add_comment),
    (("POST",), re.compile(r"^/_sandbox/organizations$"), _add_organization),
    (("POST",), re.compile(r"^/_sandbox/memberships$"), _add_membership),
    (("POST",), re.compile(r"^/_sandbox/events$"), _add_event),
]


def control(sb: SandboxServer, method: str, path: str, params: Params, raw: bytes) -> Reply:
    """Answer one ``/_sandbox/...`` request."""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return Reply(400, {"error": "body is not valid JSON"})
    if not isinstance(body, dict):
        return Reply(400, {"error": "body must be a JSON object"})
    for methods, pattern, func in _CONTROLS:
        match = pattern.match(path)
        if match and method in methods:
            try:
                return func(sb, params, body, match)
            except ApiError as exc:
                return Reply(exc.status, exc.body)
            except (KeyError, TypeError, ValueError) as exc:
                return Reply(400, {"error": f"bad control request: {type(exc).__name__}: {exc}"})
    return Reply(404, {"error": "unknown control endpoint"})
