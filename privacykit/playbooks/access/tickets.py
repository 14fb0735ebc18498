"""The conversation steps of the access playbook: tickets, comments, attachments (GET only).

Owns :class:`TicketCollector` with the steps ``collect_tickets`` (every ticket the person
requested, is CC'd on or follows, each with every comment, all pages, spooled to disk as
it arrives; then who took part) and ``collect_attachments`` (the files attached to those
comments, downloaded into the spool up to the playbook's caps), the :class:`TicketClient`
protocol they need, and :func:`attachment_file_name`.

Attachments are fetched through ``client.download_attachment``, which never sends
Zendesk credentials to a host other than the account's own (attachment URLs may point to
a separate file host).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from privacykit.errors import (
    NetworkError,
    NotFoundError,
    ResponseTooLarge,
    ServerError,
    UsageError,
    ZendeskError,
)
from privacykit.playbooks.access.kind import AccessPolicy
from privacykit.playbooks.access.people import People, participant_ids
from privacykit.playbooks.access.spool import Spool, spool_dir
from privacykit.playbooks.access.values import as_int, without
from privacykit.playbooks.engine import Halt
from privacykit.playbooks.loader import Step

if TYPE_CHECKING:
    from privacykit.playbooks.access.job import AccessJob
    from privacykit.zendesk.tickets import Download

#: Tries per attachment for a network error or a 5xx (GET is safe to repeat).
DOWNLOAD_ATTEMPTS = 3

__all__ = [
    "TICKET_ENDPOINTS",
    "TICKET_SYSTEMS",
    "TicketClient",
    "TicketCollector",
    "attachment_file_name",
]

TICKET_ENDPOINTS = {
    "requested": "GET /api/v2/users/{id}/tickets/requested",
    "ccd": "GET /api/v2/users/{id}/tickets/ccd",
    "followed": "GET /api/v2/users/{id}/tickets/followed",
    "comments": "GET /api/v2/tickets/{id}/comments",
    "users": "GET /api/v2/users/show_many",
    "attachments": "GET {attachment content_url}",
}
TICKET_SYSTEMS = {
    "tickets": "Zendesk Support tickets the person requested, is CC'd on or follows, "
    "with every comment and satisfaction rating",
    "attachments": "Files attached to those tickets' comments",
}


class TicketClient(Protocol):
    """The read-only ticket methods of :class:`privacykit.zendesk.ZendeskClient`."""

    def iter_user_tickets(self, uid: int, which: Any) -> Iterator[dict[str, Any]]: ...
    def iter_ticket_comments(self, ticket_id: int) -> Iterator[dict[str, Any]]: ...
    def show_many_users(self, user_ids: Sequence[int | str]) -> list[dict[str, Any]]: ...
    def download_attachment(self, url: str, dest: Path, *, max_bytes: int) -> Download: ...


# Extensions a browser would run or render as a page when the person opens the file from
# index.html; such files get ".txt" appended (content unchanged) so they open as text.
_ACTIVE_EXTENSIONS = frozenset(
    {"htm", "html", "xhtml", "xht", "shtml", "svg", "svgz", "xml", "xsl", "mht", "mhtml"}
    | {"js", "mjs", "hta", "php", "swf", "pdfx", "url", "webloc", "desktop", "lnk"}
)


_SCHEMES = ("https://", "http://")


def attachment_file_name(attachment_id: int, file_name: Any) -> str:
    """A safe file name for a downloaded attachment: ``<id>-<name>`` with only letters,
    digits, ``.``, ``_`` and ``-`` (the original name stays in data.json)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(file_name or ""))[:100].strip("._") or "file"
    extension = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if extension in _ACTIVE_EXTENSIONS:
        base += ".txt"
    return f"{attachment_id}-{base}"


class TicketCollector:
    """The ticket steps, as the step engine calls them (``job``, ``step``).

    Comments of up to :attr:`BATCH` newly listed tickets are fetched ``comment_workers``
    at a time (the client's governor keeps every request within Zendesk's budgets), then
    spooled in listing order; at most one batch of tickets is in memory."""

    BATCH = 32

    def __init__(
        self, client: TicketClient, policy: AccessPolicy, out: Path, *, comment_workers: int = 4
    ) -> None:
        self.client = client
        self.policy = policy
        self.out = out
        self.comment_workers = max(1, comment_workers)

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {
            "collect_tickets": self.step_collect_tickets,
            "collect_attachments": self.step_collect_attachments,
        }

    def step_collect_tickets(self, job: AccessJob, step: Step) -> Halt | None:
        """Requested, CC'd and followed tickets of every user of the person, each with every
        comment, appended to the spool as they arrive; then who took part."""
        found = job.discovery
        if found is None:
            raise RuntimeError("collect_tickets needs discover first")
        talk = job.conversations
        if talk.spool is None:
            talk.spool = Spool.create(spool_dir(self.out, job.request_id))
        job.systems.append(TICKET_SYSTEMS["tickets"])
        job.endpoints.update(TICKET_ENDPOINTS[which] for which in self.policy.ticket_relations)
        job.endpoints.update((TICKET_ENDPOINTS["comments"], TICKET_ENDPOINTS["users"]))
        with ThreadPoolExecutor(max_workers=self.comment_workers) as pool:
            batch: list[tuple[int, dict[str, Any]]] = []
            listings = [(u, w) for u in found.user_ids() for w in self.policy.ticket_relations]
            for uid, which in listings:
                if not self._list(job, pool, batch, uid, which):
                    break  # the bound was reached: the answer is incomplete, say so below
            self._flush(job, pool, batch)
        people = People(found.user_ids(), others=self.policy.others)
        people.learn(talk.participants, self.client.show_many_users)
        talk.people = people
        return None

    def _list(
        self,
        job: AccessJob,
        pool: ThreadPoolExecutor,
        batch: list[tuple[int, dict[str, Any]]],
        uid: int,
        which: str,
    ) -> bool:
        """One listing (all pages); False when the ticket bound is reached."""
        talk = job.conversations
        spool = talk.spool
        assert spool is not None
        try:
            for ticket in self.client.iter_user_tickets(uid, which):
                ticket_id = as_int(ticket.get("id"))
                if ticket_id is None:
                    job.incomplete.append(
                        f"a ticket in {TICKET_ENDPOINTS[which]} has no valid id; "
                        "the export would be incomplete"
                    )
                    continue
                known = ticket_id in talk.relations
                if not known and len(talk.relations) >= self.policy.max_tickets:
                    job.incomplete.append(
                        f"the person has more than {self.policy.max_tickets} tickets "
                        "(collect_tickets.max_tickets); the export would be incomplete"
                    )
                    return False
                talk.relate(ticket_id, uid, which)
                if known:
                    continue
                batch.append((ticket_id, without(ticket, self.policy.ticket_exclude_fields)))
                if len(batch) >= self.BATCH:
                    self._flush(job, pool, batch)
        except NotFoundError:
            # The user went away since discovery, or the endpoint is not there: either way
            # nothing may be concluded about this list (fail closed).
            job.incomplete.append(
                f"{TICKET_ENDPOINTS[which]} answered 404 for user {uid}; "
                "the export would be incomplete"
            )
        return True

    def _comments(self, ticket_id: int) -> tuple[list[dict[str, Any]], int] | None:
        """Every comment of one ticket (all pages), and how many internal notes the
        playbook withholds; None when the ticket is gone (404)."""
        comments, withheld = [], 0
        try:
            listed = list(self.client.iter_ticket_comments(ticket_id))
        except NotFoundError:
            return None
        for comment in listed:
            if comment.get("public") is False and not self.policy.include_internal_notes:
                withheld += 1
                continue
            comments.append(comment)
        return comments, withheld

    def _flush(
        self, job: AccessJob, pool: ThreadPoolExecutor, batch: list[tuple[int, dict[str, Any]]]
    ) -> None:
        """Fetch the comments of the batched tickets and spool each ticket with them."""
        if not batch:
            return
        talk = job.conversations
        spool = talk.spool
        assert spool is not None
        fetched = list(pool.map(self._comments, [ticket_id for ticket_id, _ in batch]))
        for (ticket_id, ticket), found in zip(batch, fetched, strict=True):
            if found is None:
                job.incomplete.append(
                    f"the comments of ticket {ticket_id} answered 404; "
                    "the export would be incomplete"
                )
                continue
            comments, withheld = found
            spool.put(ticket_id, {"ticket": ticket, "comments": comments})
            talk.participants |= participant_ids(ticket, comments)
            talk.internal_notes_withheld += withheld
        batch.clear()

    def step_collect_attachments(self, job: AccessJob, step: Step) -> Halt | None:
        """Download each attachment into the spool, within the per-file and total caps;
        over a cap it is listed, not downloaded. A download that fails otherwise makes the
        answer incomplete (needs review)."""
        talk = job.conversations
        if talk.spool is None:
            return None
        job.systems.append(TICKET_SYSTEMS["attachments"])
        job.endpoints.add(TICKET_ENDPOINTS["attachments"])
        per_file = int(step.options.get("max_file_bytes", self.policy.max_attachment_bytes))
        total = int(step.options.get("max_total_bytes", self.policy.max_total_attachment_bytes))
        used = 0
        for ticket_id, record in talk.spool:
            for comment in record.get("comments") or []:
                for attachment in comment.get("attachments") or []:
                    used += self._attachment(job, ticket_id, attachment, per_file, total - used)
        return None

    def _attachment(
        self,
        job: AccessJob,
        ticket_id: int,
        attachment: dict[str, Any],
        per_file: int,
        remaining: int,
    ) -> int:
        """Handle one attachment; returns the bytes it added to the answer."""
        talk = job.conversations
        attachment_id = as_int(attachment.get("id"))
        url = attachment.get("content_url")
        if attachment_id is None or not isinstance(url, str) or not url.startswith(_SCHEMES):
            # Which addresses may be fetched, and with what credentials, is the client's
            # decision; a record without one at all cannot be answered completely.
            job.incomplete.append(
                f"an attachment of ticket {ticket_id} has no valid id or download "
                "address; the export would be incomplete"
            )
            return 0
        if attachment_id in talk.attachments:
            return 0
        declared = as_int(attachment.get("size"))

        def listed(reason: str) -> int:
            talk.attachments[attachment_id] = {
                "downloaded": False,
                "file": None,
                "not_downloaded_reason": reason,
            }
            return 0

        if declared is not None and declared > per_file:
            return listed(f"larger than the per-file cap ({per_file} bytes)")
        if remaining <= 0 or (declared is not None and declared > remaining):
            return listed("the total size cap for attachments was reached")
        folder = talk.spool.attachments / str(ticket_id)  # type: ignore[union-attr]
        if not folder.exists():
            os.mkdir(folder, 0o700)
            os.chmod(folder, 0o700)
        name = attachment_file_name(attachment_id, attachment.get("file_name"))
        failure: Exception | None = None
        for _attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                download = self.client.download_attachment(
                    url, folder / name, max_bytes=min(per_file, remaining)
                )
            except ResponseTooLarge:
                cap = "per-file" if per_file <= remaining else "total"
                return listed(f"larger than the {cap} size cap")
            except (NetworkError, ServerError) as exc:
                failure = exc  # GET is safe to repeat; the client does not, so we do
                continue
            except (ZendeskError, UsageError) as exc:
                failure = exc  # e.g. a 404, or an address that is not https
                break
            talk.attachments[attachment_id] = {
                "downloaded": True,
                "file": f"attachments/{ticket_id}/{name}",
                "sha256": download.sha256,
                "bytes": download.size,
            }
            return int(download.size)
        job.incomplete.append(
            f"attachment {attachment_id} of ticket {ticket_id} could not be downloaded "
            f"({type(failure).__name__}); the export would be incomplete"
        )
        return 0
