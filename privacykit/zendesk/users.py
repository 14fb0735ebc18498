"""The Users, deleted users, compliance, job status and Profiles endpoints of the client.

Owns :class:`UsersAPI` (mixed into :class:`~privacykit.zendesk.ZendeskClient`) and the
input checks every endpoint method shares (:func:`user_id`, :func:`opaque_id`,
:func:`identifier_query`): bad input raises ``UsageError`` before anything is sent. Every
answer is validated (:mod:`privacykit.zendesk.schemas`) before a method returns it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from privacykit.errors import UsageError
from privacykit.zendesk.core import ClientCore
from privacykit.zendesk.pagination import iter_cursor, iter_offset
from privacykit.zendesk.routes import endpoint_for as _ep

__all__ = ["TERMINAL_JOB_STATES", "UsersAPI", "identifier_query", "opaque_id", "user_id"]

_OPAQUE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_APPLICATION = re.compile(r"[a-z][a-z0-9_\-/]{0,63}")
#: Job statuses after which Zendesk does no more work on the job.
TERMINAL_JOB_STATES = frozenset({"completed", "failed", "killed"})


def user_id(value: object, what: str = "Zendesk user id") -> int:
    """A positive integer id (an int, or a digit string as the Profiles API sends)."""
    if isinstance(value, bool):
        raise UsageError(f"a {what} must be a positive integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise UsageError(f"a {what} must be a positive integer")
    if number < 1 or number >= 2**63:
        raise UsageError(f"a {what} must be a positive integer")
    return number


def opaque_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _OPAQUE_ID.match(value):
        raise UsageError(f"a {what} must be 1-128 letters, digits, '-' or '_'")
    return quote(value, safe="")


def identifier_query(value: object) -> str:
    """``source:type:identifier_type:identifier_value`` (the value may contain ':')."""
    if not isinstance(value, str):
        raise UsageError("an identifier query must be a string source:type:key:value")
    parts = value.split(":", 3)
    if len(parts) != 4 or not all(part.strip() for part in parts):
        raise UsageError("an identifier query must look like source:type:key:value")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or len(value) > 1024:
        raise UsageError("an identifier query must be printable and at most 1024 characters")
    return value


def _profile_body(profile: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(profile, Mapping):
        raise UsageError("a profile must be a mapping")
    inner = profile.get("profile") if set(profile) == {"profile"} else profile
    if not isinstance(inner, Mapping):
        raise UsageError("a profile must be a mapping")
    return {"profile": dict(inner)}


class UsersAPI(ClientCore):
    """Users, deleted users, compliance deletion statuses, job statuses and profiles."""

    # -- users --------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """``GET /api/v2/users/me``: the authenticated user (the preflight's one read)."""
        return dict(self._get("/api/v2/users/me")["user"])

    def show_user(self, uid: int | str) -> dict[str, Any]:
        """``GET /api/v2/users/{id}``."""
        return dict(self._get(f"/api/v2/users/{user_id(uid)}")["user"])

    def show_many_users(self, user_ids: Sequence[int | str]) -> list[dict[str, Any]]:
        """``GET /api/v2/users/show_many?ids=...`` in chunks of 100 (the documented maximum)."""
        ids = [user_id(u) for u in user_ids]
        users: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            chunk = ",".join(str(u) for u in ids[start : start + 100])
            users.extend(self._get("/api/v2/users/show_many", {"ids": chunk})["users"])
        return users

    def search_users(
        self, query: str | None = None, external_id: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /api/v2/users/search`` (offset pagination only, per the docs): every match."""
        params: dict[str, Any] = {}
        if query is not None:
            if not isinstance(query, str) or not query.strip():
                raise UsageError("a user search query must be a non-empty string")
            params["query"] = query
        if external_id is not None:
            if not isinstance(external_id, str) or not external_id.strip():
                raise UsageError("an external_id must be a non-empty string")
            params["external_id"] = external_id
        if not params:
            raise UsageError("search_users needs query= or external_id=")
        path = "/api/v2/users/search"
        return list(
            iter_offset(self._fetcher(path), "users", params=params, endpoint=_ep("GET", path))
        )

    def iter_users(self, role: str | None = None) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/users`` (cursor pagination), optionally one role."""
        params = {}
        if role is not None:
            if role not in ("end-user", "agent", "admin"):
                raise UsageError("role must be end-user, agent or admin")
            params["role"] = role
        path = "/api/v2/users"
        return iter_cursor(self._fetcher(path), "users", params=params, endpoint=_ep("GET", path))

    def user_identities(self, uid: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/identities`` (User Identities API; assumed cursor
        pagination as for other lists; the docs in hand do not cover it)."""
        path = f"/api/v2/users/{user_id(uid)}/identities"
        return self._all(path, "identities")

    def user_related(self, uid: int | str) -> dict[str, Any]:
        """``GET /api/v2/users/{id}/related``: ticket and subscription counts."""
        return dict(self._get(f"/api/v2/users/{user_id(uid)}/related")["user_related"])

    def create_user(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/users``. Not retried on 5xx/network errors (it could create twice)."""
        if not isinstance(user, Mapping):
            raise UsageError("create_user takes the user as a mapping")
        return dict(self._call("POST", "/api/v2/users", json={"user": dict(user)})["user"])

    def soft_delete_user(self, uid: int | str) -> dict[str, Any]:
        """``DELETE /api/v2/users/{id}``. Not retried on 5xx/network errors: the caller
        reconciles (e.g. ``show_user`` answers ``active: false`` or ``show_deleted_user``)."""
        path = f"/api/v2/users/{user_id(uid)}"
        return dict(self._call("DELETE", path, idempotent=False)["user"])

    def permanently_delete_user(self, uid: int | str) -> dict[str, Any]:
        """``DELETE /api/v2/deleted_users/{id}`` (only after a soft delete; 700 per 10 min).
        Not retried on 5xx/network errors: the caller reconciles."""
        path = f"/api/v2/deleted_users/{user_id(uid)}"
        return dict(self._call("DELETE", path, idempotent=False)["deleted_user"])

    def iter_deleted_users(self) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/deleted_users`` (cursor pagination), soft and permanently deleted."""
        path = "/api/v2/deleted_users"
        return iter_cursor(self._fetcher(path), "deleted_users", endpoint=_ep("GET", path))

    def show_deleted_user(self, uid: int | str) -> dict[str, Any]:
        """``GET /api/v2/deleted_users/{id}``."""
        return dict(self._get(f"/api/v2/deleted_users/{user_id(uid)}")["deleted_user"])

    def compliance_deletion_statuses(
        self, uid: int | str, application: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/compliance_deletion_statuses[?application=]``."""
        params = {}
        if application is not None:
            if not isinstance(application, str) or not _APPLICATION.fullmatch(application):
                raise UsageError("an application must be a short lower-case name like 'support'")
            params["application"] = application
        path = f"/api/v2/users/{user_id(uid)}/compliance_deletion_statuses"
        return self._all(path, "compliance_deletion_statuses", params)

    def destroy_many(self, user_ids: Sequence[int | str]) -> dict[str, Any]:
        """``DELETE /api/v2/users/destroy_many?ids=`` (up to 100): queues a job and returns
        its ``job_status``. Holds a queued-jobs slot until ``show_job_status`` sees it end."""
        ids = [user_id(u) for u in user_ids]
        if not 1 <= len(ids) <= 100:
            raise UsageError("destroy_many takes 1 to 100 user ids")
        return self._queue_job("/api/v2/users/destroy_many", ids)

    # -- jobs ---------------------------------------------------------------------------

    def _queue_job(self, path: str, ids: Sequence[int]) -> dict[str, Any]:
        """A bulk ``DELETE path?ids=``: never retried blindly (a second job would be
        queued); the job holds one of the 30 queued-job slots until seen to end."""
        body = self._call(
            "DELETE", path, params={"ids": ",".join(str(i) for i in ids)}, idempotent=False
        )
        job = dict(body["job_status"])
        if job["status"] not in TERMINAL_JOB_STATES:
            self.governor.job_queued(str(job["id"]))
        return job

    def _job_seen(self, job: Mapping[str, Any]) -> None:
        if job["status"] in TERMINAL_JOB_STATES:
            self.governor.job_done(str(job["id"]))

    def show_job_status(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v2/job_statuses/{id}`` (a 404 once Zendesk has expired it)."""
        jid = opaque_id(job_id, "job id")
        job = dict(self._get(f"/api/v2/job_statuses/{jid}")["job_status"])
        self._job_seen(job)
        return job

    def show_many_job_statuses(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /api/v2/job_statuses/show_many?ids=`` in chunks of 100. Jobs Zendesk no
        longer knows are simply absent from the answer (compare the ids)."""
        ids = [opaque_id(j, "job id") for j in job_ids]
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            chunk = ",".join(ids[start : start + 100])
            body = self._get("/api/v2/job_statuses/show_many", {"ids": chunk})
            for job in body["job_statuses"]:
                self._job_seen(job)
                jobs.append(dict(job))
        return jobs

    # -- profiles -----------------------------------------------------------------------

    def profiles_for_user(self, uid: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/profiles``: every profile of the user."""
        return list(self._get(f"/api/v2/users/{user_id(uid)}/profiles")["profiles"])

    def profile_by_identifier(self, query: str) -> dict[str, Any]:
        """``GET /api/v2/user_profiles?identifier=source:type:key:value``; raises
        :class:`~privacykit.errors.NotFoundError` when no profile matches."""
        params = {"identifier": identifier_query(query)}
        return dict(self._get("/api/v2/user_profiles", params)["profile"])

    def profile_by_id(self, profile_id: str) -> dict[str, Any]:
        """``GET /api/v2/user_profiles/{id}``."""
        pid = opaque_id(profile_id, "profile id")
        return dict(self._get(f"/api/v2/user_profiles/{pid}")["profile"])

    def replace_profile(self, profile_id: str, profile: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/v2/user_profiles/{id}``: replace the whole profile content."""
        pid = opaque_id(profile_id, "profile id")
        body = self._call("PUT", f"/api/v2/user_profiles/{pid}", json=_profile_body(profile))
        return dict(body["profile"])

    def replace_profile_by_identifier(
        self, query: str, profile: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``PUT /api/v2/user_profiles?identifier=``: replace (or create) by identifier query."""
        params = {"identifier": identifier_query(query)}
        body = self._call(
            "PUT", "/api/v2/user_profiles", params=params, json=_profile_body(profile)
        )
        return dict(body["profile"])

    def put_user_profile(
        self, uid: int | str, query: str, profile: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``PUT /api/v2/users/{id}/profiles?identifier=``: create or update a user's profile."""
        params = {"identifier": identifier_query(query)}
        path = f"/api/v2/users/{user_id(uid)}/profiles"
        body = self._call("PUT", path, params=params, json=_profile_body(profile))
        return dict(body["profile"])

    def delete_profile(self, profile_id: str) -> None:
        """``DELETE /api/v2/user_profiles/{id}`` (204; its events go with it). Idempotent:
        retried on 5xx/network errors, and a 404 after such a retry means our earlier
        attempt deleted it, so it counts as done."""
        pid = opaque_id(profile_id, "profile id")
        self._request("DELETE", f"/api/v2/user_profiles/{pid}", idempotent=True, gone_ok=True)

    def iter_profile_events(self, profile_id: str) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/user_profiles/{id}/events`` (assumed path; the docs in hand only
        mention events). Cursor pagination whose ``links`` is an array ``[{"next": ...}]``."""
        pid = opaque_id(profile_id, "profile id")
        path = f"/api/v2/user_profiles/{pid}/events"
        return iter_cursor(self._fetcher(path), ("events", "data"), endpoint=_ep("GET", path))

    # -- shared -------------------------------------------------------------------------

    def _all(
        self, path: str, key: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every record of a cursor-paginated list (answers in offset form are followed)."""
        return list(iter_cursor(self._fetcher(path), key, params=params, endpoint=_ep("GET", path)))
