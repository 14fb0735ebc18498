"""Ticket comments and their attachments: storage, the wire shapes, and the text/HTML
forms a comment's words take.

Owns :class:`CommentsState` (see :mod:`privacykit.sandbox.core` for the layering; it sits
below tickets so a ticket can render its ``description`` and drop its comments, while the
endpoints that need a ticket's rules live above, in :mod:`.conversations`). Attachment
``content_url``\\ s point at the sandbox's second loopback host (``files_url``,
:mod:`.attachments`), as real accounts' files live on another host.
"""

from __future__ import annotations

import html
import mimetypes
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from privacykit.sandbox.model import Attachment, Comment, Ticket
from privacykit.sandbox.profiles import ProfilesState

__all__ = ["REDACTED", "CommentsState", "html_from_text", "redact_html", "text_from_html"]

#: Documented: redacted text is replaced with this character.
REDACTED = "\u2587"
_TAG_OR_ENTITY = re.compile(r"<[^>]*>|&#?\w+;")


def html_from_text(text: str) -> str:
    """A plain comment as Zendesk renders it: escaped, lines joined by ``<br>``."""
    lines = [html.escape(line, quote=False) for line in text.split("\n")]
    return f'<div class="zd-comment" dir="auto"><p>{"<br>".join(lines)}</p></div>'


def text_from_html(markup: str) -> str:
    """The plain text of an html body (``body``/``plain_body`` after a redaction)."""
    text = re.sub(r"<br\s*/?>", "\n", markup, flags=re.IGNORECASE)
    text = re.sub(r"</p\s*>", "\n\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]*>", "", text)
    return html.unescape(text).strip()


def redact_text(text: str) -> str:
    """Every character but whitespace becomes ▇ (assumption: the docs say the text is
    replaced with ▇, one per character in their example; spaces kept for layout)."""
    return "".join(ch if ch.isspace() else REDACTED for ch in text)


def redact_html(markup: str) -> str:
    """Redact the text of an HTML fragment: tags stay, each entity or character (but
    whitespace) becomes one ▇."""
    out: list[str] = []
    position = 0
    for match in _TAG_OR_ENTITY.finditer(markup):
        out.append(redact_text(markup[position : match.start()]))
        token = match.group(0)
        out.append(token if token.startswith("<") else REDACTED)
        position = match.end()
    out.append(redact_text(markup[position:]))
    return "".join(out)


class CommentsState(ProfilesState):
    """Comments and attachments (rules needing a ticket are in the layers above)."""

    comments: dict[int, Comment]
    attachments: dict[int, Attachment]
    _attachment_tokens: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Where attachment content is served (the second loopback host; set on start).
        self.files_url = "http://127.0.0.2"
        super().__init__(*args, **kwargs)

    def _clear(self) -> None:
        super()._clear()
        self.comments = {}
        self.attachments = {}
        self._attachment_tokens = {}
        self._next_comment = 100001
        self._next_attachment = 300001

    # ------------------------------------------------------------------ rendering

    def attachment_json(self, attachment: Attachment) -> dict[str, Any]:
        content_url = (
            f"{self.files_url}/attachments/token/{attachment.token}/"
            f"?name={quote(attachment.file_name)}"
        )
        return {
            "id": attachment.id,
            "url": f"{self.base_url}/api/v2/attachments/{attachment.id}.json",
            "file_name": attachment.file_name,
            "content_url": content_url,
            "mapped_content_url": content_url,
            "content_type": attachment.content_type,
            "size": len(attachment.content),
            "width": None,
            "height": None,
            "inline": attachment.inline,
            "deleted": False,
            "malware_access_override": False,
            "malware_scan_result": "malware_not_found",
            "thumbnails": [],
        }

    def comment_json(self, comment: Comment) -> dict[str, Any]:
        author = self.users.get(comment.author_id)
        system: dict[str, Any] = {"client": "Mozilla/5.0 (sandbox)"}
        if author is not None and author.role == "end-user":
            # Zendesk records where an end user wrote from: personal data an access
            # export must show and comment redaction does not remove (TEST-NET address).
            system.update(
                ip_address=f"192.0.2.{comment.author_id % 250 + 1}",
                location="Copenhagen, 84, Denmark",
            )
        return {
            "id": comment.id,
            "type": "Comment",
            "author_id": comment.author_id,
            "body": comment.body,
            "html_body": comment.html_body,
            "plain_body": comment.body,
            "public": comment.public,
            "attachments": [
                self.attachment_json(self.attachments[a])
                for a in comment.attachment_ids
                if a in self.attachments
            ],
            "audit_id": comment.audit_id,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
            "metadata": {"system": system, "custom": {}},
            "created_at": comment.created_at,
        }

    def _description(self, ticket: Ticket) -> str:
        """Zendesk's ``description`` is the first comment's text (as it is now)."""
        first = self.comments.get(ticket.comment_ids[0]) if ticket.comment_ids else None
        return "" if first is None else first.body

    # ------------------------------------------------------------------ storage

    def _append_comment(
        self,
        ticket: Ticket,
        author_id: int,
        body: str,
        *,
        html_body: str | None = None,
        public: bool = True,
        attachments: Iterable[Any] = (),
        created_at: str | None = None,
    ) -> Comment:
        self._user(author_id)
        if html_body is not None and not body:
            body = text_from_html(html_body)
        comment = Comment(
            self._next_comment,
            ticket.id,
            author_id,
            body,
            html_body if html_body is not None else html_from_text(body),
            public,
            created_at or self._now(),
            self._seq(),
        )
        self._next_comment += 1
        for spec in attachments:
            comment.attachment_ids.append(self._add_attachment(comment.id, spec).id)
        self.comments[comment.id] = comment
        ticket.comment_ids.append(comment.id)
        return comment

    def _add_attachment(self, comment_id: int, spec: Any) -> Attachment:
        """``spec``: ``(file_name, content)`` or ``{"file_name", "content",
        "content_type"?, "inline"?}``; content is bytes or text (UTF-8)."""
        if isinstance(spec, Mapping):
            name, content = spec["file_name"], spec.get("content", b"")
            ctype, inline = spec.get("content_type"), bool(spec.get("inline", False))
        else:
            name, content = spec
            ctype, inline = None, False
        data = content.encode() if isinstance(content, str) else bytes(content)
        guessed = mimetypes.guess_type(str(name))[0] or "application/octet-stream"
        attachment = Attachment(
            self._next_attachment,
            comment_id,
            str(name),
            ctype or guessed,
            data,
            self._new_token(),
            inline,
        )
        self._next_attachment += 1
        self.attachments[attachment.id] = attachment
        self._attachment_tokens[attachment.token] = attachment.id
        return attachment

    def _new_token(self) -> str:
        return "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(25))

    def _drop_comments(self, ticket: Ticket) -> None:
        for cid in ticket.comment_ids:
            comment = self.comments.pop(cid, None)
            for aid in comment.attachment_ids if comment else ():
                self._drop_attachment(aid)
        ticket.comment_ids = []

    def _drop_attachment(self, attachment_id: int) -> None:
        attachment = self.attachments.pop(attachment_id, None)
        if attachment is not None:
            self._attachment_tokens.pop(attachment.token, None)

    def attachment_by_token(self, token: str) -> tuple[int, str, str, bytes] | None:
        """(id, file name, content type, content) served at a ``content_url``, or None."""
        with self.lock:
            aid = self._attachment_tokens.get(token)
            if aid is None:
                return None
            attachment = self.attachments[aid]
            return aid, attachment.file_name, attachment.content_type, attachment.content
