"""Conversations: seeding tickets with their comments, listing comments, redactions and
satisfaction ratings — the comment rules that depend on the ticket.

Owns :class:`ConversationsState` (see :mod:`privacykit.sandbox.core` for the layering).
Documented (``../shared/zendesk-docs/tickets-and-more.md``): ``PUT
/api/v2/comment_redactions/{id}`` replaces the ``<redact>``-marked text with ▇ and works
on closed tickets; the legacy ``PUT /tickets/{t}/comments/{c}/redact`` and the attachment
redaction (the file becomes an empty ``redacted.txt``) do not work on closed tickets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

from privacykit.sandbox.comments import redact_html, redact_text, text_from_html
from privacykit.sandbox.model import ApiError, Comment, Ticket, record_not_found, ticket_closed
from privacykit.sandbox.tickets import TicketsState

__all__ = ["SATISFACTION_SCORES", "ConversationsState"]

SATISFACTION_SCORES = ("offered", "unoffered", "good", "bad")
_REDACT_TAG = re.compile(r"<(/?)redact>", re.IGNORECASE)


def _invalid(description: str) -> ApiError:
    return ApiError(400, {"error": "InvalidValue", "description": description})


class ConversationsState(TicketsState):
    """Ticket comments as the API and the seeding helpers see them."""

    # ------------------------------------------------------------------ seeding

    def add_ticket(
        self,
        requester_id: int,
        status: str = "open",
        subject: str | None = None,
        *,
        description: str | None = None,
        ccs: Iterable[int] = (),
        followers: Iterable[int] = (),
        organization_id: int | None = None,
        assignee_id: int | None = None,
        submitter_id: int | None = None,
        tags: Iterable[str] = (),
        custom_fields: Mapping[int, Any] | None = None,
        attachments: Iterable[Any] = (),
        public: bool = True,
    ) -> dict[str, Any]:
        """Seed a ticket with its first comment (``description``, default the subject),
        written by the submitter (default the requester). Returns the ticket JSON."""
        with self.lock:
            ticket = self._new_ticket(
                requester_id,
                status,
                subject,
                submitter_id=submitter_id,
                assignee_id=assignee_id,
                organization_id=organization_id,
                ccs=ccs,
                followers=followers,
                tags=tags,
                custom_fields=custom_fields,
            )
            self._append_comment(
                ticket,
                ticket.submitter_id,
                ticket.subject if description is None else description,
                public=public,
                attachments=attachments,
                created_at=ticket.created_at,
            )
            return self.ticket_json(ticket)

    def add_comment(
        self,
        ticket_id: int,
        author_id: int,
        body: str,
        *,
        public: bool = True,
        attachments: Iterable[Any] = (),
        html_body: str | None = None,
        created_at: str | None = None,
    ) -> dict[str, Any]:
        """Seed a comment (history: allowed on a closed ticket too, unlike the API).
        ``attachments``: ``(file_name, content)`` pairs or ``{"file_name", "content",
        "content_type"}``. Returns the comment JSON."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            comment = self._append_comment(
                ticket,
                author_id,
                body,
                html_body=html_body,
                public=public,
                attachments=attachments,
                created_at=created_at,
            )
            return self.comment_json(comment)

    def set_satisfaction_rating(
        self, ticket_id: int, score: str, comment: str | None = None, *, reason: str | None = None
    ) -> dict[str, Any]:
        """Seed the ticket's ``satisfaction_rating`` (``good``/``bad`` with the
        requester's comment, or ``offered``/``unoffered``). Returns it."""
        if score not in SATISFACTION_SCORES:
            raise ValueError(f"score must be one of {', '.join(SATISFACTION_SCORES)}")
        with self.lock:
            ticket = self._ticket(ticket_id)
            rating: dict[str, Any] = {"score": score}
            if score in ("good", "bad"):
                rating = {"id": self._seq(), "score": score, "comment": comment, "reason": reason}
            ticket.satisfaction_rating = rating
            return dict(rating)

    # ------------------------------------------------------------------ reading

    def comment_ids(self, ticket_id: int) -> list[int]:
        """``GET /api/v2/tickets/{id}/comments``: oldest first; 404 unless live."""
        with self.lock:
            return list(self._ticket(ticket_id).comment_ids)

    def render_comments(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.comment_json(self.comments[c]) for c in ids if c in self.comments]

    def show_attachment(self, attachment_id: int) -> dict[str, Any]:
        with self.lock:
            attachment = self.attachments.get(attachment_id)
            if attachment is None:
                raise record_not_found()
            return self.attachment_json(attachment)

    def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """Inspection: a live or soft-deleted ticket's JSON; None once purged."""
        with self.lock:
            self._settle()
            found = self.tickets.get(ticket_id)
            return None if found is None else self.ticket_json(found)

    def comment(self, comment_id: int) -> dict[str, Any] | None:
        """Inspection: a comment's JSON; None if it no longer exists."""
        with self.lock:
            self._settle()
            found = self.comments.get(comment_id)
            return None if found is None else self.comment_json(found)

    def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]]:
        """Inspection: every comment of a live or soft-deleted ticket ([] once purged)."""
        with self.lock:
            self._settle()
            found = self.tickets.get(ticket_id)
            return [] if found is None else self.render_comments(found.comment_ids)

    # ------------------------------------------------------------------ redaction

    def _comment_of(self, ticket: Ticket, comment_id: int) -> Comment:
        comment = self.comments.get(comment_id)
        if comment is None or comment.ticket_id != ticket.id:
            raise record_not_found()
        return comment

    def redact_comment(self, comment_id: int, body: Any) -> dict[str, Any]:
        """``PUT /api/v2/comment_redactions/{id}`` with ``{"ticket_id", "html_body"}``.

        Assumption (the docs show the tags, not the check): ``html_body`` must be the
        comment's current ``html_body`` with ``<redact>…</redact>`` around what goes
        (unbalanced or nested tags, or any other difference, answer 400)."""
        with self.lock:
            data = body.get("comment", body) if isinstance(body, dict) else None
            if not isinstance(data, dict):
                raise _invalid("a JSON object with ticket_id and html_body is required")
            try:
                ticket = self._ticket(int(data["ticket_id"]))
            except (KeyError, TypeError, ValueError):
                raise _invalid("ticket_id is required") from None
            comment = self._comment_of(ticket, comment_id)
            marked = data.get("html_body")
            if not isinstance(marked, str):
                raise _invalid("html_body is required")
            parts: list[str] = []
            plain: list[str] = []
            inside = False
            position = 0
            for match in _REDACT_TAG.finditer(marked):
                closing = match.group(1) == "/"
                if closing != inside:
                    raise _invalid("<redact> tags must be balanced and not nested")
                segment = marked[position : match.start()]
                plain.append(segment)
                parts.append(redact_html(segment) if inside else segment)
                inside, position = not inside, match.end()
            if inside:
                raise _invalid("<redact> tags must be balanced and not nested")
            plain.append(marked[position:])
            parts.append(marked[position:])
            if "".join(plain) != comment.html_body:
                raise _invalid("html_body must be the comment's html_body with <redact> tags")
            comment.html_body = "".join(parts)
            comment.body = text_from_html(comment.html_body)
            ticket.updated_at = self._now()
            return self.comment_json(comment)

    def redact_comment_legacy(self, ticket_id: int, comment_id: int, body: Any) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{t}/comments/{c}/redact`` with ``{"text"}``: every
        occurrence in the comment becomes ▇; refused (422) on a closed ticket. Text that
        does not occur changes nothing (assumption)."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            comment = self._comment_of(ticket, comment_id)
            text = body.get("text") if isinstance(body, dict) else None
            if not isinstance(text, str) or not text:
                raise _invalid("text is required")
            if ticket.status == "closed":
                raise ticket_closed()
            comment.body = comment.body.replace(text, redact_text(text))
            escaped = html.escape(text, quote=False)
            comment.html_body = comment.html_body.replace(escaped, redact_text(text))
            ticket.updated_at = self._now()
            return self.comment_json(comment)

    def redact_attachment(
        self, ticket_id: int, comment_id: int, attachment_id: int
    ) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{t}/comments/{c}/attachments/{a}/redact``: the file
        becomes an empty ``redacted.txt`` (its old content_url stops serving);
        refused (422) on a closed ticket."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            comment = self._comment_of(ticket, comment_id)
            if attachment_id not in comment.attachment_ids or attachment_id not in self.attachments:
                raise record_not_found()
            if ticket.status == "closed":
                raise ticket_closed()
            attachment = self.attachments[attachment_id]
            self._attachment_tokens.pop(attachment.token, None)
            attachment.file_name, attachment.content_type = "redacted.txt", "text/plain"
            attachment.content, attachment.inline = b"", False
            attachment.token = self._new_token()
            self._attachment_tokens[attachment.token] = attachment.id
            ticket.updated_at = self._now()
            return self.attachment_json(attachment)
