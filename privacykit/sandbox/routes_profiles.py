"""Profiles API routes (Sunshine profiles and events): JSON:API-shaped errors and
their own ``profiles`` budget.

Owns one small function per endpoint; the rules are in :mod:`.profiles`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit.sandbox.limits import PROFILES
from privacykit.sandbox.model import profile_error
from privacykit.sandbox.routing import Call, Handler, Reply, Route, cursor_page, route, scoped

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = ["ROUTES"]


def _user_profiles(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profiles": sb.state.profiles_for_user(call.int_arg())})


def _put_user_profile(sb: SandboxServer, call: Call) -> Reply:
    profile, created = sb.state.put_profile_for_user(
        call.int_arg(), call.param("identifier"), call.json()
    )
    return Reply(201 if created else 200, {"profile": profile})


def _profile_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.profile_by_identifier(call.param("identifier"))})


def _put_profile_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    profile, created = sb.state.put_profile_by_identifier(call.param("identifier"), call.json())
    return Reply(201 if created else 200, {"profile": profile})


def _patch_profile_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    return Reply(
        200, {"profile": sb.state.patch_profile(None, call.param("identifier"), call.json())}
    )


def _profile_by_id(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.profile_by_id(call.match.group(1))})


def _replace_profile(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.replace_profile(call.match.group(1), call.json())})


def _patch_profile(sb: SandboxServer, call: Call) -> Reply:
    return Reply(200, {"profile": sb.state.patch_profile(call.match.group(1), None, call.json())})


def _delete_profile(sb: SandboxServer, call: Call) -> Reply:
    sb.state.delete_profile(call.match.group(1))
    return Reply(204)


def _events_page(sb: SandboxServer, call: Call, profile_id: str) -> Reply:
    """Sunshine events: ``{"events", "links": [{"next"}], "meta": {after_cursor, has_more}}``
    — links is an array in this API."""
    keys = sb.state.event_keys(profile_id)
    items, meta, links = cursor_page(
        sb,
        call,
        keys,
        lambda seqs: sb.state.render_events(profile_id, seqs),
        error=lambda text: profile_error(400, text),
    )
    return Reply(
        200,
        {
            "events": items,
            "links": [{"next": links["next"]}],
            "meta": {"after_cursor": meta["after_cursor"], "has_more": meta["has_more"]},
        },
    )


def _profile_events(sb: SandboxServer, call: Call) -> Reply:
    return _events_page(sb, call, call.match.group(1))


def _events_by_identifier(sb: SandboxServer, call: Call) -> Reply:
    return _events_page(sb, call, sb.state.profile_id_by_identifier(call.param("identifier")))


def _profiles_route(method: str, template: str, func: Handler) -> Route:
    return route(method, template, func, scopes=scoped(PROFILES), profiles_api=True)


ROUTES: list[Route] = [
    _profiles_route("GET", "/api/v2/users/{id:int}/profiles", _user_profiles),
    _profiles_route("PUT", "/api/v2/users/{id:int}/profiles", _put_user_profile),
    _profiles_route("GET", "/api/v2/user_profiles", _profile_by_identifier),
    _profiles_route("PUT", "/api/v2/user_profiles", _put_profile_by_identifier),
    _profiles_route("PATCH", "/api/v2/user_profiles", _patch_profile_by_identifier),
    _profiles_route("GET", "/api/v2/user_profiles/events", _events_by_identifier),
    _profiles_route("GET", "/api/v2/user_profiles/{id}/events", _profile_events),
    _profiles_route("GET", "/api/v2/user_profiles/{id}", _profile_by_id),
    _profiles_route("PUT", "/api/v2/user_profiles/{id}", _replace_profile),
    _profiles_route("PATCH", "/api/v2/user_profiles/{id}", _patch_profile),
    _profiles_route("DELETE", "/api/v2/user_profiles/{id}", _delete_profile),
]
