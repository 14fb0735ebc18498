"""The erasure's calls on tickets and comments, each with the check that tells whether it
happened (for :func:`~privacykit.playbooks.engine.perform`), and the redaction markup.

Owns, per destructive call, the action (returns outcome data: ids and states) and its
reconciliation (reads Zendesk's state: outcome data when the effect is there, else
None): closing a ticket, soft-deleting it, redacting a comment (``comment_redactions``)
and an attachment. Also :func:`mark_everything` (a comment's HTML with every piece of
text inside ``<redact>`` tags -- the form ``comment_redactions`` takes) and
:func:`text_left` (what an answer still shows unredacted).

Comment texts pass through memory only: they are read from Zendesk, marked and sent
back; nothing here returns, logs or raises with them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from privacykit.errors import NotFoundError, ValidationError, ZendeskError
from privacykit.playbooks.erasure.tickets import TicketClient

__all__ = [
    "REDACTED",
    "close_ticket",
    "comment_now",
    "links_left",
    "mark_everything",
    "reconcile_attachment",
    "reconcile_close",
    "reconcile_redaction",
    "reconcile_soft_delete",
    "redact_attachment",
    "redact_comment",
    "soft_delete_ticket",
    "text_left",
    "ticket_status",
]

#: Documented: redacted text becomes this character.
REDACTED = "\u2587"
#: Documented: a redacted attachment becomes an empty file of this name.
REDACTED_FILE = "redacted.txt"
_TAG = re.compile(r"(<[^>]*>)")
# Link targets and image sources are attributes, not text: comment_redactions cannot mark
# them (assumption: it redacts text only, as its <redact> tags wrap text).
_ADDRESS = re.compile(r"""\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def _words(text: str) -> bool:
    """Whether ``text`` (HTML text, entities allowed) still holds anything but
    whitespace and ▇."""
    return any(not ch.isspace() and ch != REDACTED for ch in html.unescape(text))


def mark_everything(markup: str) -> str | None:
    """``markup`` with every run of text between tags wrapped in ``<redact>`` tags (tags
    themselves untouched, so the text outside the tags is exactly the comment's HTML, as
    ``comment_redactions`` requires); None when no text is left to redact."""
    out: list[str] = []
    changed = False
    for part in _TAG.split(markup):
        if part.startswith("<") and part.endswith(">"):
            out.append(part)
        elif _words(part):
            out.append(f"<redact>{part}</redact>")
            changed = True
        else:
            out.append(part)
    return "".join(out) if changed else None


def text_left(comment: Mapping[str, Any]) -> bool:
    """Whether a comment as Zendesk returns it still shows text that is not ▇."""
    for key in ("body", "plain_body"):
        value = comment.get(key)
        if isinstance(value, str) and _words(value):
            return True
    markup = comment.get("html_body")
    if isinstance(markup, str):
        return any(
            _words(part)
            for part in _TAG.split(markup)
            if not (part.startswith("<") and part.endswith(">"))
        )
    return False


def links_left(comment: Mapping[str, Any]) -> int:
    """Link targets and image sources still in the comment's HTML (not redactable)."""
    markup = comment.get("html_body")
    if not isinstance(markup, str):
        return 0
    return sum(1 for m in _ADDRESS.finditer(markup) if (m.group(1) or m.group(2) or "").strip())


# -- reading --------------------------------------------------------------------------------


def ticket_status(client: TicketClient, ticket_id: int) -> str | None:
    """The live ticket's status, or None when ``show_many`` does not return it (deleted)."""
    for ticket in client.show_many_tickets([ticket_id]):
        if ticket.get("id") == ticket_id:
            status = ticket.get("status")
            return status if isinstance(status, str) else None
    return None


def comment_now(client: TicketClient, ticket_id: int, comment_id: int) -> dict[str, Any] | None:
    """The comment as Zendesk has it now (every page), or None when it or its ticket is
    gone."""
    try:
        for comment in client.iter_ticket_comments(ticket_id, include_inline_images=True):
            if comment.get("id") == comment_id:
                return dict(comment)
    except NotFoundError:
        return None
    return None


# -- closing --------------------------------------------------------------------------------


def close_ticket(client: TicketClient, ticket_id: int) -> dict[str, Any]:
    """``PUT /tickets/{id}`` ``{"status": "closed"}``; a ticket closed meanwhile (422)
    counts as closed, any other refusal is raised (e.g. required fields)."""
    try:
        client.update_ticket(ticket_id, {"status": "closed"})
    except ValidationError:
        if ticket_status(client, ticket_id) == "closed":
            return {"ticket_id": ticket_id, "state": "closed", "already": True}
        raise
    return {"ticket_id": ticket_id, "status": 200, "state": "closed"}


def reconcile_close(client: TicketClient, ticket_id: int) -> dict[str, Any] | None:
    status = ticket_status(client, ticket_id)
    if status == "closed":
        return {"ticket_id": ticket_id, "state": "closed"}
    if status is None:
        return {"ticket_id": ticket_id, "state": "gone"}
    return None


# -- soft deletion --------------------------------------------------------------------------


def soft_delete_ticket(client: TicketClient, ticket_id: int) -> dict[str, Any]:
    """``DELETE /tickets/{id}`` (the client counts a 404 after a lost answer as done)."""
    client.soft_delete_ticket(ticket_id)
    return {"ticket_id": ticket_id, "status": 204, "state": "soft_deleted"}


def reconcile_soft_delete(client: TicketClient, ticket_id: int) -> dict[str, Any] | None:
    if ticket_status(client, ticket_id) is None:
        return {"ticket_id": ticket_id, "state": "soft_deleted"}
    return None


# -- comment redaction ----------------------------------------------------------------------


def _redacted(ticket_id: int, comment_id: int, answer: Mapping[str, Any]) -> dict[str, Any]:
    if text_left(answer):
        raise ZendeskError(
            f"PUT /api/v2/comment_redactions/{{id}}: comment {comment_id} of ticket "
            f"{ticket_id} still shows text after the redaction"
        )
    return {
        "ticket_id": ticket_id,
        "comment_id": comment_id,
        "status": 200,
        "state": "redacted",
        "links_left": links_left(answer),
    }


def redact_comment(
    client: TicketClient, ticket_id: int, comment_id: int, markup: str | None
) -> dict[str, Any]:
    """Redact every piece of text of one comment through ``comment_redactions`` (closed
    tickets too). ``markup`` is the comment's HTML as discovered (None: read it now); if
    Zendesk refuses it because the comment changed since (400), it is read again once."""
    for attempt in range(2):
        if markup is None or attempt:
            current = comment_now(client, ticket_id, comment_id)
            if current is None:
                return {"ticket_id": ticket_id, "comment_id": comment_id, "state": "gone"}
            if not text_left(current):
                return {**_redacted(ticket_id, comment_id, current), "status": None}
            found = current.get("html_body")
            markup = found if isinstance(found, str) else ""
        marked = mark_everything(markup)
        if marked is None:
            if attempt:
                # Text left in body but none in the HTML: nothing comment_redactions can mark.
                raise ZendeskError(
                    f"GET /api/v2/tickets/{{id}}/comments: comment {comment_id} of ticket "
                    f"{ticket_id} has text outside its HTML; it cannot be redacted"
                )
            continue
        try:
            answer = client.redact_comment(ticket_id, comment_id, marked)
        except ValidationError as exc:
            if attempt or exc.status_code != 400:
                raise
            continue
        return _redacted(ticket_id, comment_id, answer)
    raise ZendeskError(f"comment {comment_id} of ticket {ticket_id} could not be redacted")


def reconcile_redaction(
    client: TicketClient, ticket_id: int, comment_id: int
) -> dict[str, Any] | None:
    current = comment_now(client, ticket_id, comment_id)
    if current is None:
        return {"ticket_id": ticket_id, "comment_id": comment_id, "state": "gone"}
    if text_left(current):
        return None
    return {
        "ticket_id": ticket_id,
        "comment_id": comment_id,
        "state": "redacted",
        "links_left": links_left(current),
    }


# -- attachment redaction -------------------------------------------------------------------


def redact_attachment(
    client: TicketClient, ticket_id: int, comment_id: int, attachment_id: int
) -> dict[str, Any]:
    """``PUT .../attachments/{id}/redact``: the file becomes an empty ``redacted.txt``
    (refused on a closed ticket: 422, raised for the caller to report as retained)."""
    answer = client.redact_attachment(ticket_id, comment_id, attachment_id)
    if answer.get("file_name") != REDACTED_FILE and answer.get("size") != 0:
        raise ZendeskError(
            f"PUT .../attachments/{{id}}/redact: attachment {attachment_id} still has content"
        )
    return {
        "ticket_id": ticket_id,
        "comment_id": comment_id,
        "attachment_id": attachment_id,
        "status": 200,
        "state": "redacted",
    }


def reconcile_attachment(
    client: TicketClient, ticket_id: int, comment_id: int, attachment_id: int
) -> dict[str, Any] | None:
    current = comment_now(client, ticket_id, comment_id)
    base = {"ticket_id": ticket_id, "comment_id": comment_id, "attachment_id": attachment_id}
    if current is None:
        return {**base, "state": "gone"}
    for item in current.get("attachments") or []:
        if isinstance(item, Mapping) and item.get("id") == attachment_id:
            if item.get("file_name") == REDACTED_FILE and item.get("size") in (0, None):
                return {**base, "state": "redacted"}
            return None
    return {**base, "state": "gone"}
