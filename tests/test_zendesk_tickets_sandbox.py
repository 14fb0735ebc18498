"""The ticket, comment, redaction, organization and attachment methods against the
sandbox over real loopback HTTP: every answer passes its schema, pagination reaches the
end, bulk jobs hold and free job slots, redactions change what Zendesk holds, and an
attachment on the second loopback host is fetched without credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privacykit.config import ZendeskConfig
from privacykit.errors import NotFoundError, ResponseTooLarge, ValidationError
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import Governor, RateLimits, ZendeskClient

SECRET_WORDS = "my flat is 12 Rose Lane"


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=5) as server:
        yield server


@pytest.fixture
def client(sb: SandboxServer) -> Iterator[ZendeskClient]:
    governor = Governor(RateLimits().compressed(sb.clock.time_scale))
    config = ZendeskConfig.from_env(sb.env())
    with ZendeskClient(config, governor=governor, backoff_initial=0.001, backoff_max=0.01) as c:
        yield c


def people(sb: SandboxServer) -> tuple[int, int, int]:
    person = sb.state.add_user("Robin Subject", email="robin@example.org")["id"]
    other = sb.state.add_user("Other Customer", email="other@example.org")["id"]
    agent = sb.state.add_user("Ada Agent", email="ada@acme.test", role="agent")["id"]
    return person, other, agent


def test_user_ticket_lists_reach_the_end(sb: SandboxServer, client: ZendeskClient) -> None:
    person, other, agent = people(sb)
    requested = [sb.state.add_ticket(person, "closed")["id"] for _ in range(150)]
    ccd = sb.state.add_ticket(other, "open", ccs=[person])["id"]
    followed = sb.state.add_ticket(other, "pending", followers=[person])["id"]
    assigned = sb.state.add_ticket(other, "open", assignee_id=agent)["id"]
    assert [t["id"] for t in client.iter_user_tickets(person, "requested")] == requested
    assert [t["id"] for t in client.iter_user_tickets(person, "ccd")] == [ccd]
    assert [t["id"] for t in client.iter_user_tickets(person, "followed")] == [followed]
    assert [t["id"] for t in client.iter_user_tickets(agent, "assigned")] == [assigned]
    shown = client.show_many_tickets([ccd, followed, 999_999])
    assert sorted(t["id"] for t in shown) == sorted([ccd, followed])


def test_comments_organizations_and_memberships(sb: SandboxServer, client: ZendeskClient) -> None:
    person, other, agent = people(sb)
    ticket = sb.state.add_ticket(other, "open", description="Hello")["id"]
    for i in range(120):
        sb.state.add_comment(ticket, person if i % 2 else agent, f"comment {i}")
    comments = list(client.iter_ticket_comments(ticket))
    assert len(comments) == 121  # the description is the first comment
    assert {c["author_id"] for c in comments} == {other, person, agent}
    org = sb.state.add_organization("Robin's Bikes")["id"]
    sb.state.add_membership(person, org)
    assert [o["id"] for o in client.user_organizations(person)] == [org]
    (membership,) = client.user_organization_memberships(person)
    assert membership["organization_id"] == org and membership["user_id"] == person
    assert client.me()["role"] == "admin"


def test_close_then_delete_then_purge(sb: SandboxServer, client: ZendeskClient) -> None:
    person, _, _ = people(sb)
    ids = [sb.state.add_ticket(person, "open")["id"] for _ in range(3)]
    assert client.update_ticket(ids[0], {"status": "closed"})["status"] == "closed"
    with pytest.raises(ValidationError):
        client.update_ticket(ids[0], {"status": "open"})  # closed is final
    client.soft_delete_ticket(ids[0])
    job = client.soft_delete_tickets(ids[1:])
    assert client.governor.snapshot()["jobs"]["queued"] == 1
    sb.advance(600)
    assert client.show_job_status(job["id"])["status"] == "completed"
    assert client.governor.snapshot()["jobs"]["queued"] == 0
    assert sorted(t["id"] for t in client.iter_deleted_tickets()) == sorted(ids)
    purge = client.permanently_delete_tickets(ids)
    sb.advance(600)
    (done,) = client.show_many_job_statuses([purge["id"]])
    assert done["status"] == "completed"
    assert {sb.state.ticket_lifecycle(t) for t in ids} == {"permanently_deleted"}
    with pytest.raises(NotFoundError):
        client.soft_delete_ticket(ids[0])


def test_redactions_change_what_zendesk_holds(sb: SandboxServer, client: ZendeskClient) -> None:
    person, other, _ = people(sb)
    closed = sb.state.add_ticket(other, "open")["id"]
    said = sb.state.add_comment(closed, person, f"Hi, {SECRET_WORDS}.")["id"]
    sb.state.set_ticket_status(closed, "closed")
    (current,) = [c for c in client.iter_ticket_comments(closed) if c["id"] == said]
    html = current["html_body"].replace(SECRET_WORDS, f"<redact>{SECRET_WORDS}</redact>")
    redacted = client.redact_comment(closed, said, html)
    assert SECRET_WORDS not in str(redacted)
    open_ticket = sb.state.add_ticket(other, "open")["id"]
    again = sb.state.add_comment(open_ticket, person, f"Again: {SECRET_WORDS}")["id"]
    client.redact_comment_legacy(open_ticket, again, SECRET_WORDS)
    assert sb.state.find_text(SECRET_WORDS) == []


def test_attachment_from_the_second_host_without_credentials(
    sb: SandboxServer, client: ZendeskClient, tmp_path: Path
) -> None:
    person, _, _ = people(sb)
    ticket = sb.state.add_ticket(person, "open")["id"]
    sb.state.add_comment(ticket, person, "see file", attachments=[("scan.txt", b"x" * 300)])
    comment: dict[str, Any] = list(client.iter_ticket_comments(ticket))[-1]
    (attachment,) = comment["attachments"]
    got = client.download_attachment(attachment["content_url"], tmp_path / "scan", max_bytes=1000)
    assert got.size == 300 and (tmp_path / "scan").read_bytes() == b"x" * 300
    with pytest.raises(ResponseTooLarge):
        client.download_attachment(attachment["content_url"], tmp_path / "big", max_bytes=100)
    assert not (tmp_path / "big").exists()
    assert got.credentials_sent is False  # another origin than the API's
    log = sb.attachment_log()
    assert log and not any(e["authorization"] or e["cookie"] for e in log)
