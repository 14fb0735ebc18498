"""Tickets, comments, redactions, organizations and attachment downloads of the client.

Owns :class:`TicketsAPI` (mixed into :class:`~privacykit.zendesk.ZendeskClient`) and
:class:`Download`. Facts from ``tickets-and-more.md``: the person's tickets are listed per
relation (requested, CC'd, followed, assigned), comments with cursor pagination,
soft-deleted tickets go to ``deleted_tickets`` and are deleted for good by a job; bulk
deletions take up to 100 ids and hold one of the 30 queued-job slots; comment redaction
through ``comment_redactions`` works on closed tickets, the legacy endpoint does not.

Attachments may be served from another host: :meth:`TicketsAPI.download_attachment`
sends Zendesk credentials only to the account's own origin (scheme, host and port of
``ZENDESK_SUBDOMAIN``'s URL), re-decided at every redirect hop, and never logs the URL
(its path is a bearer token).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

import privacykit
from privacykit.errors import ResponseTooLarge, UsageError, ZendeskError
from privacykit.zendesk.core import default_transport, status_error
from privacykit.zendesk.headers import parse_retry_after
from privacykit.zendesk.pagination import iter_cursor
from privacykit.zendesk.routes import endpoint_for
from privacykit.zendesk.transport import Overrun, deadline, read_bounded
from privacykit.zendesk.users import UsersAPI, user_id

__all__ = ["TICKET_RELATIONS", "Download", "TicketsAPI"]

#: The lists ``GET /api/v2/users/{id}/tickets/<relation>`` offers.
TICKET_RELATIONS = ("requested", "ccd", "followed", "assigned")
TicketRelation = Literal["requested", "ccd", "followed", "assigned"]
_MAX_REDIRECTS = 5
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class Download:
    """An attachment written to ``path`` (mode 0600): ``size`` bytes with ``sha256``."""

    path: Path
    size: int
    sha256: str
    content_type: str | None
    credentials_sent: bool


def _ticket_id(value: object) -> int:
    return user_id(value, "Zendesk ticket id")


def _ids(values: Sequence[int | str], what: str, limit: int = 100) -> list[int]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise UsageError(f"{what} takes a list of ticket ids")
    ids = [_ticket_id(v) for v in values]
    if not 1 <= len(ids) <= limit:
        raise UsageError(f"{what} takes 1 to {limit} ticket ids")
    return ids


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _attachment_url(raw: object) -> httpx.URL:
    """An absolute https URL (http only to a loopback host, as the sandbox serves), no
    user info; anything else is refused before a connection is made."""
    if not isinstance(raw, str | httpx.URL):
        raise UsageError("an attachment URL must be a string")
    try:
        url = httpx.URL(str(raw))
    except (httpx.InvalidURL, ValueError):
        raise UsageError("an attachment URL is not a valid URL") from None
    if not url.host or url.userinfo:
        raise UsageError("an attachment URL must be absolute and carry no user name")
    if url.scheme == "https" or (url.scheme == "http" and _is_loopback(url.host)):
        return url
    raise UsageError("an attachment URL must use https")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host.lower(), url.port or default)


class TicketsAPI(UsersAPI):
    """Ticket, comment, redaction, organization and attachment endpoints."""

    # -- reading ------------------------------------------------------------------------

    def iter_user_tickets(self, uid: int | str, which: TicketRelation) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/users/{id}/tickets/{which}``, every page (``which``: requested,
        ccd, followed or assigned)."""
        if which not in TICKET_RELATIONS:
            raise UsageError(f"which must be one of {', '.join(TICKET_RELATIONS)}")
        path = f"/api/v2/users/{user_id(uid)}/tickets/{which}"
        return iter_cursor(self._fetcher(path), "tickets", endpoint=endpoint_for("GET", path))

    def requested_tickets(self, uid: int | str) -> list[dict[str, Any]]:
        """Every ticket the user requested (``iter_user_tickets(uid, "requested")``)."""
        return list(self.iter_user_tickets(uid, "requested"))

    def show_many_tickets(self, ticket_ids: Sequence[int | str]) -> list[dict[str, Any]]:
        """``GET /api/v2/tickets/show_many?ids=`` (100 ids a request; longer lists are
        sent in chunks). Tickets Zendesk does not return are absent (compare the ids)."""
        if isinstance(ticket_ids, str | bytes):
            raise UsageError("show_many_tickets takes a list of ticket ids")
        ids = [_ticket_id(t) for t in ticket_ids]
        tickets: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            chunk = ",".join(str(t) for t in ids[start : start + 100])
            tickets.extend(self._get("/api/v2/tickets/show_many", {"ids": chunk})["tickets"])
        return tickets

    def iter_ticket_comments(
        self, ticket_id: int | str, *, include_inline_images: bool = False
    ) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/tickets/{id}/comments`` (cursor pagination, every page)."""
        path = f"/api/v2/tickets/{_ticket_id(ticket_id)}/comments"
        params = {"include_inline_images": "true"} if include_inline_images else None
        return iter_cursor(
            self._fetcher(path), "comments", params=params, endpoint=endpoint_for("GET", path)
        )

    def iter_deleted_tickets(self) -> Iterator[dict[str, Any]]:
        """``GET /api/v2/deleted_tickets`` (soft-deleted, not yet scrubbed; 10 requests a
        minute, so pages of 100)."""
        path = "/api/v2/deleted_tickets"
        return iter_cursor(
            self._fetcher(path), "deleted_tickets", endpoint=endpoint_for("GET", path)
        )

    def user_organizations(self, uid: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/organizations``: every organization of the user."""
        return self._all(f"/api/v2/users/{user_id(uid)}/organizations", "organizations")

    def user_organization_memberships(self, uid: int | str) -> list[dict[str, Any]]:
        """``GET /api/v2/users/{id}/organization_memberships``."""
        path = f"/api/v2/users/{user_id(uid)}/organization_memberships"
        return self._all(path, "organization_memberships")

    # -- changing -----------------------------------------------------------------------

    def update_ticket(self, ticket_id: int | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{id}`` with ``{"ticket": fields}`` (e.g. ``{"status":
        "closed"}``). Idempotent, so retried on 5xx/network errors. A closed ticket cannot
        be updated (422)."""
        if not isinstance(fields, Mapping) or not fields:
            raise UsageError("update_ticket takes the fields to change as a non-empty mapping")
        path = f"/api/v2/tickets/{_ticket_id(ticket_id)}"
        return dict(self._call("PUT", path, json={"ticket": dict(fields)})["ticket"])

    def soft_delete_ticket(self, ticket_id: int | str) -> None:
        """``DELETE /api/v2/tickets/{id}`` (204; the ticket moves to ``deleted_tickets``).
        Retried like a profile deletion: a 404 after an attempt whose answer was lost means
        that attempt deleted it."""
        path = f"/api/v2/tickets/{_ticket_id(ticket_id)}"
        self._request("DELETE", path, idempotent=True, gone_ok=True)

    def soft_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        """``DELETE /api/v2/tickets/destroy_many?ids=`` (1-100): a job; its ``job_status``.
        Never retried blindly: reconcile with ``show_job_status`` / ``show_many_tickets``."""
        ids = _ids(ticket_ids, "soft_delete_tickets")
        return self._queue_job("/api/v2/tickets/destroy_many", ids)

    def permanently_delete_tickets(self, ticket_ids: Sequence[int | str]) -> dict[str, Any]:
        """``DELETE /api/v2/deleted_tickets/destroy_many?ids=`` (1-100 soft-deleted
        tickets): a job; its ``job_status``. Never retried blindly."""
        ids = _ids(ticket_ids, "permanently_delete_tickets")
        return self._queue_job("/api/v2/deleted_tickets/destroy_many", ids)

    def redact_comment(
        self, ticket_id: int | str, comment_id: int | str, html_body: str
    ) -> dict[str, Any]:
        """``PUT /api/v2/comment_redactions/{comment_id}`` with ``{"ticket_id",
        "html_body"}``: the text inside ``<redact>`` tags becomes ▇ (closed tickets too).
        Returns the comment as Zendesk now has it."""
        if not isinstance(html_body, str) or not html_body:
            raise UsageError("redact_comment takes the comment's html_body with <redact> tags")
        path = f"/api/v2/comment_redactions/{user_id(comment_id, 'comment id')}"
        body = {"ticket_id": _ticket_id(ticket_id), "html_body": html_body}
        return dict(self._call("PUT", path, json=body)["comment"])

    def redact_comment_legacy(
        self, ticket_id: int | str, comment_id: int | str, text: str
    ) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{t}/comments/{c}/redact`` with ``{"text"}`` (not on
        closed tickets; to be deprecated by Zendesk)."""
        if not isinstance(text, str) or not text:
            raise UsageError("redact_comment_legacy takes the text to redact")
        tid, cid = _ticket_id(ticket_id), user_id(comment_id, "comment id")
        path = f"/api/v2/tickets/{tid}/comments/{cid}/redact"
        return dict(self._call("PUT", path, json={"text": text})["comment"])

    def redact_attachment(
        self, ticket_id: int | str, comment_id: int | str, attachment_id: int | str
    ) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{t}/comments/{c}/attachments/{a}/redact``: the file becomes
        an empty ``redacted.txt`` (not on closed tickets). Returns the attachment."""
        tid, cid = _ticket_id(ticket_id), user_id(comment_id, "comment id")
        aid = user_id(attachment_id, "attachment id")
        path = f"/api/v2/tickets/{tid}/comments/{cid}/attachments/{aid}/redact"
        return dict(self._call("PUT", path)["attachment"])

    # -- attachments --------------------------------------------------------------------

    def download_attachment(
        self, url: str, dest: str | os.PathLike[str], *, max_bytes: int
    ) -> Download:
        """Stream an attachment's ``content_url`` into ``dest`` (created 0600, replaced
        atomically; nothing is left behind on failure). Credentials go only to the
        account's own origin; redirects (at most 5) are followed by hand so the decision
        is made again for every hop. Bounded by the client's deadline and ``max_bytes``
        (:class:`~privacykit.errors.ResponseTooLarge`). Not rate-governed (attachment
        hosts are not the API) and not retried: the caller records a failure."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise UsageError("max_bytes must be a positive integer")
        target = _attachment_url(url)
        own = _origin(httpx.URL(self.config.base_url))
        dest_path = Path(dest)
        for _ in range(_MAX_REDIRECTS + 1):
            credentials = _origin(target) == own
            client = self._http if credentials else self._plain_client()
            expires = self._clock() + self.deadline
            request = client.build_request("GET", target, headers={"Accept": "*/*"})
            try:
                with deadline(expires, self._clock):
                    response = client.send(request, stream=True)
            except httpx.RequestError as exc:
                raise self._network_error(exc, "GET attachment", expires) from exc
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise ZendeskError("GET attachment: a redirect without a Location")
                    target = _attachment_url(str(target.join(location)))
                    continue
                if not response.is_success:
                    retry = parse_retry_after(response.headers) or 0.0
                    response.read()
                    raise status_error(response, "GET attachment", retry)
                size, digest = self._write(response, dest_path, max_bytes, expires)
                return Download(
                    path=dest_path,
                    size=size,
                    sha256=digest,
                    content_type=response.headers.get("content-type"),
                    credentials_sent=credentials,
                )
            finally:
                response.close()
        raise ZendeskError(f"GET attachment: more than {_MAX_REDIRECTS} redirects")

    def _write(
        self, response: httpx.Response, dest: Path, max_bytes: int, expires: float
    ) -> tuple[int, str]:
        partial = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:

                def sink(chunk: bytes) -> None:
                    digest.update(chunk)
                    out.write(chunk)

                with deadline(expires, self._clock):
                    size = read_bounded(response, max_bytes=max_bytes, sink=sink)
            os.replace(partial, dest)
        except Overrun as exc:
            partial.unlink(missing_ok=True)
            self.stats._add(bounded=1)
            if exc.kind == "size":
                raise ResponseTooLarge(
                    f"GET attachment: larger than {max_bytes} bytes; not kept",
                    endpoint="GET attachment",
                    max_bytes=max_bytes,
                ) from None
            raise self._deadline_error("GET attachment") from None
        except httpx.RequestError as exc:
            partial.unlink(missing_ok=True)
            raise self._network_error(exc, "GET attachment", expires) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    def _plain_client(self) -> httpx.Client:
        """A client with no credentials at all, for attachment hosts that are not ours."""
        with self._plain_lock:
            if self._plain is None:
                transport = self._transport_given or default_transport(
                    "https://attachments.invalid", 4
                )
                self._plain = httpx.Client(
                    timeout=self.timeout,
                    transport=transport,
                    headers={"User-Agent": f"privacykit/{privacykit.__version__}"},
                    follow_redirects=False,
                )
            return self._plain

    def close(self) -> None:
        try:
            if self._plain is not None and self._transport_given is None:
                self._plain.close()
        finally:
            super().close()
