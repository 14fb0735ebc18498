"""Sandbox Zendesk, Tickets over real HTTP: statuses and closing, a user's ticket lists,
show_many, comments, soft and permanent deletion, jobs on the virtual clock (progress,
expiry, the last 100, the 30-job cap), redactions, tickets outliving their requester,
ticket budgets in both header styles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from privacykit.sandbox import SandboxServer
from privacykit.sandbox.comments import REDACTED

CLOSED = {
    "status": [{"description": "Status: closed prevents ticket update", "error": "InvalidValue"}]
}


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    """Uncompressed time: jobs and budgets move only through advance()."""
    with SandboxServer(seed="none", time_scale=1.0, frozen=True, rng_seed=7) as server:
        yield server


@pytest.fixture
def http(sb: SandboxServer) -> Iterator[httpx.Client]:
    env = sb.env()
    auth = (env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"])
    with httpx.Client(base_url=sb.url, auth=auth, timeout=10.0) as client:
        yield client


def _person(sb: SandboxServer, name: str = "Tess Ticket") -> int:
    email = name.lower().replace(" ", ".") + "@example.com"
    return int(sb.state.add_user(name, email=email, verified=True)["id"])


def _job(http: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = http.get(f"/api/v2/job_statuses/{job_id}.json")
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()["job_status"]
    return job


# ---------------------------------------------------------------- tickets and statuses


def test_ticket_shape_and_status_changes(sb: SandboxServer, http: httpx.Client) -> None:
    tess, cc, follower = _person(sb), _person(sb, "Cee Cee"), _person(sb, "Fol Lower")
    agent = sb.state.add_user("Agent Ann", email="ann@example.org", role="agent")["id"]
    org = sb.state.add_organization("Tess Trading")["id"]
    created = sb.state.add_ticket(
        tess,
        "new",
        "Broken pedal",
        description="My pedal broke on Main Street 12.",
        ccs=[cc],
        followers=[follower],
        organization_id=org,
        assignee_id=agent,
        tags=["bike"],
    )
    ticket = http.get(f"/api/v2/tickets/{created['id']}.json").json()["ticket"]
    assert ticket["description"] == "My pedal broke on Main Street 12."
    assert (ticket["requester_id"], ticket["submitter_id"], ticket["assignee_id"]) == (
        tess,
        tess,
        agent,
    )
    assert ticket["email_cc_ids"] == [cc] and ticket["follower_ids"] == [follower]
    assert ticket["collaborator_ids"] == [cc, follower]
    assert ticket["organization_id"] == org and ticket["tags"] == ["bike"]
    assert ticket["satisfaction_rating"] is None and ticket["status"] == "new"
    for status in ("open", "pending", "hold", "solved"):
        answer = http.put(f"/api/v2/tickets/{created['id']}", json={"ticket": {"status": status}})
        assert answer.status_code == 200 and answer.json()["ticket"]["status"] == status
        assert answer.json()["audit"]["ticket_id"] == created["id"]
    bad = http.put(f"/api/v2/tickets/{created['id']}", json={"ticket": {"status": "weird"}})
    assert bad.status_code == 422
    reopen_new = http.put(f"/api/v2/tickets/{created['id']}", json={"ticket": {"status": "new"}})
    assert reopen_new.status_code == 422
    # A comment through the update, then closing.
    update = {"ticket": {"comment": {"body": "Fixed, closing.", "public": False}}}
    assert http.put(f"/api/v2/tickets/{created['id']}", json=update).status_code == 200
    closed = http.put(f"/api/v2/tickets/{created['id']}", json={"ticket": {"status": "closed"}})
    assert closed.status_code == 200 and closed.json()["ticket"]["status"] == "closed"
    # A closed ticket can no longer be updated or reopened.
    for change in ({"status": "open"}, {"subject": "new subject"}, {"tags": []}):
        refused = http.put(f"/api/v2/tickets/{created['id']}", json={"ticket": change})
        assert refused.status_code == 422
        assert refused.json() == {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": CLOSED,
        }
    after = sb.state.ticket(created["id"])
    assert after is not None and after["subject"] == "Broken pedal"
    assert http.get("/api/v2/tickets/999999").status_code == 404
    assert http.put("/api/v2/tickets/999999", json={"ticket": {}}).status_code == 404
    assert http.put(f"/api/v2/tickets/{created['id']}", json={"nope": 1}).status_code == 400


def test_required_field_blocks_solving_and_closing(sb: SandboxServer, http: httpx.Client) -> None:
    tid = sb.state.add_ticket(_person(sb), "open", "Needs a reason")["id"]
    sb.state.require_ticket_field(360001)
    for status in ("solved", "closed"):
        refused = http.put(f"/api/v2/tickets/{tid}", json={"ticket": {"status": status}})
        assert refused.status_code == 422
        assert refused.json()["details"]["base"][0]["field_id"] == 360001
    assert sb.state.ticket(tid)["status"] == "open"  # type: ignore[index]
    filled = {"status": "closed", "custom_fields": [{"id": 360001, "value": "done"}]}
    assert http.put(f"/api/v2/tickets/{tid}", json={"ticket": filled}).status_code == 200


def test_an_agent_gives_a_ticket_to_another_requester(
    sb: SandboxServer, http: httpx.Client
) -> None:
    tess, other = _person(sb), _person(sb, "Otto Other")
    tid = sb.state.add_ticket(tess, "solved", "Refund")["id"]
    answer = http.put(f"/api/v2/tickets/{tid}.json", json={"ticket": {"requester_id": other}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["ticket"]["requester_id"] == other
    mine = http.get(f"/api/v2/users/{tess}/tickets/requested.json").json()["tickets"]
    theirs = http.get(f"/api/v2/users/{other}/tickets/requested.json").json()["tickets"]
    assert [t["id"] for t in mine] == [] and [t["id"] for t in theirs] == [tid]
    unknown = http.put(f"/api/v2/tickets/{tid}.json", json={"ticket": {"requester_id": 999999}})
    assert unknown.status_code == 404
    assert http.get(f"/api/v2/tickets/{tid}.json").json()["ticket"]["requester_id"] == other


def test_user_ticket_lists_paginate(sb: SandboxServer, http: httpx.Client) -> None:
    tess, other = _person(sb), _person(sb, "Otto Other")
    requested = [sb.state.add_ticket(tess, "closed", f"Mine {n}")["id"] for n in range(150)]
    ccd = sb.state.add_ticket(other, "open", "CC", ccs=[tess])["id"]
    followed = sb.state.add_ticket(other, "open", "Follow", followers=[tess])["id"]
    assigned = sb.state.add_ticket(other, "open", "Assigned", assignee_id=tess)["id"]
    # Offset: 100 per page, next_page until the end.
    first = http.get(f"/api/v2/users/{tess}/tickets/requested.json").json()
    assert len(first["tickets"]) == 100 and first["count"] == 150
    second = http.get(first["next_page"]).json()
    assert second["next_page"] is None
    assert [t["id"] for t in first["tickets"] + second["tickets"]] == requested
    # Cursor.
    seen: list[int] = []
    url: str | None = f"/api/v2/users/{tess}/tickets/requested?page[size]=64"
    for _ in range(10):
        if url is None:
            break
        page = http.get(url).json()
        seen += [t["id"] for t in page["tickets"]]
        url = page["links"]["next"] if page["meta"]["has_more"] else None
    assert seen == requested
    for which, expected in (("ccd", [ccd]), ("followed", [followed]), ("assigned", [assigned])):
        listed = http.get(f"/api/v2/users/{tess}/tickets/{which}").json()["tickets"]
        assert [t["id"] for t in listed] == expected
    related = http.get(f"/api/v2/users/{tess}/related").json()["user_related"]
    assert related["requested_tickets"] == 150 and related["ccd_tickets"] == 1
    assert http.get(f"/api/v2/users/{tess}/tickets/elsewhere").status_code == 404
    assert http.get("/api/v2/users/999999/tickets/requested").status_code == 404


def test_show_many(sb: SandboxServer, http: httpx.Client) -> None:
    tess = _person(sb)
    ids = [sb.state.add_ticket(tess, "open", f"T{n}")["id"] for n in range(3)]
    assert http.delete(f"/api/v2/tickets/{ids[1]}").status_code == 204
    shown = http.get(
        "/api/v2/tickets/show_many.json", params={"ids": f"{ids[0]},{ids[1]},{ids[2]},99999"}
    )
    assert [t["id"] for t in shown.json()["tickets"]] == [ids[0], ids[2]]
    many = ",".join(str(n) for n in range(1, 102))
    assert http.get("/api/v2/tickets/show_many", params={"ids": many}).status_code == 400
    assert http.get("/api/v2/tickets/show_many").status_code == 400


# ---------------------------------------------------------------- comments


def test_comments_shape_and_cursor_pagination(sb: SandboxServer, http: httpx.Client) -> None:
    tess, agent = _person(sb), sb.state.admin_id
    tid = sb.state.add_ticket(tess, "open", "Question", description="First <b>words</b> & more")[
        "id"
    ]
    for n in range(130):
        sb.state.add_comment(tid, agent if n % 2 else tess, f"Reply {n}", public=n % 3 != 0)
    sb.state.add_comment(tid, tess, "Here is my receipt", attachments=[("receipt.pdf", b"%PDF-1")])
    page = http.get(f"/api/v2/tickets/{tid}/comments.json", params={"page[size]": 100}).json()
    assert len(page["comments"]) == 100 and page["meta"]["has_more"] is True
    first = page["comments"][0]
    assert set(first) >= {
        "id",
        "author_id",
        "body",
        "html_body",
        "plain_body",
        "public",
        "attachments",
        "created_at",
    }
    assert first["author_id"] == tess and first["body"] == "First <b>words</b> & more"
    assert first["html_body"] == (
        '<div class="zd-comment" dir="auto"><p>First &lt;b&gt;words&lt;/b&gt; &amp; more</p></div>'
    )
    assert first["metadata"]["system"]["ip_address"].startswith("192.0.2.")
    rest = http.get(page["links"]["next"]).json()
    assert rest["meta"]["has_more"] is False and rest["links"]["next"] is None
    comments = page["comments"] + rest["comments"]
    assert len(comments) == 132
    assert [c["public"] for c in comments[1:4]] == [False, True, True]
    (attachment,) = comments[-1]["attachments"]
    assert attachment["file_name"] == "receipt.pdf" and attachment["size"] == 6
    assert attachment["content_type"] == "application/pdf"
    assert attachment["content_url"].startswith(sb.files.url + "/attachments/token/")
    assert httpx.URL(attachment["content_url"]).host != httpx.URL(sb.url).host
    offset = http.get(f"/api/v2/tickets/{tid}/comments").json()
    assert len(offset["comments"]) == 100 and offset["next_page"]
    shown = http.get(f"/api/v2/attachments/{attachment['id']}").json()["attachment"]
    assert shown == attachment
    assert http.get("/api/v2/tickets/999999/comments").status_code == 404


def test_attachment_host_records_whether_credentials_arrived(
    sb: SandboxServer, http: httpx.Client
) -> None:
    tess = _person(sb)
    tid = sb.state.add_ticket(tess, "open", "Photo", attachments=[("photo.jpg", b"\xff\xd8jpeg")])[
        "id"
    ]
    (comment,) = http.get(f"/api/v2/tickets/{tid}/comments").json()["comments"]
    (attachment,) = comment["attachments"]
    plain = httpx.get(attachment["content_url"])
    assert plain.status_code == 200 and plain.content == b"\xff\xd8jpeg"
    assert plain.headers["content-type"] == "image/jpeg"
    leaky = httpx.get(attachment["content_url"], auth=("dpo@sandbox.test/token", "sandbox-token"))
    assert leaky.status_code == 200
    missing = httpx.get(sb.files.url + "/attachments/token/nosuchtoken/")
    assert missing.status_code == 404
    log = sb.attachment_log()
    assert [(e["attachment_id"], e["status"], e["authorization"]) for e in log] == [
        (attachment["id"], 200, False),
        (attachment["id"], 200, True),
        (None, 404, False),
    ]
    assert "sandbox-token" not in repr(log)
    assert httpx.get(f"{sb.url}/_sandbox/attachments/log").json()["entries"] == log


# ---------------------------------------------------------------- deletion and jobs


def test_soft_delete_then_permanent_deletion_as_a_job(
    sb: SandboxServer, http: httpx.Client
) -> None:
    tess = _person(sb)
    tid = sb.state.add_ticket(tess, "open", "Delete me", attachments=[("a.txt", "secret")])["id"]
    (comment,) = sb.state.ticket_comments(tid)
    content_url = comment["attachments"][0]["content_url"]
    assert http.delete(f"/api/v2/tickets/{tid}.json").status_code == 204
    assert http.get(f"/api/v2/tickets/{tid}").status_code == 404
    assert http.get(f"/api/v2/tickets/{tid}/comments").status_code == 404
    assert http.get(f"/api/v2/users/{tess}/tickets/requested").json()["tickets"] == []
    assert http.delete(f"/api/v2/tickets/{tid}").status_code == 404  # already deleted
    listed = http.get("/api/v2/deleted_tickets.json").json()
    (deleted,) = listed["deleted_tickets"]
    assert deleted["id"] == tid and deleted["previous_state"] == "open"
    assert deleted["subject"] == "Delete me" and deleted["actor"]["id"] == sb.state.admin_id
    assert deleted["description"] == "Delete me" and deleted["deleted_at"].endswith("Z")
    assert sb.state.ticket_lifecycle(tid) == "soft_deleted"
    # Permanent deletion runs as a job on the virtual clock.
    sb.configure({"job_delay": 40})
    job = http.delete(f"/api/v2/deleted_tickets/{tid}").json()["job_status"]
    assert (job["status"], job["total"], job["progress"]) == ("queued", 1, 0)
    assert sb.state.ticket_lifecycle(tid) == "soft_deleted"
    sb.advance(15)
    assert _job(http, job["id"])["status"] == "working"
    assert sb.state.ticket_lifecycle(tid) == "soft_deleted"
    sb.advance(30)
    done = _job(http, job["id"])
    assert (done["status"], done["progress"]) == ("completed", 1)
    assert done["results"] == [
        {"id": tid, "action": "delete", "success": True, "status": "Deleted"}
    ]
    assert done["message"].startswith("Completed at ")
    assert sb.state.ticket_lifecycle(tid) == "permanently_deleted"
    assert http.get("/api/v2/deleted_tickets").json()["deleted_tickets"] == []
    assert httpx.get(content_url).status_code == 404
    assert sb.state.find_text("secret") == []
    assert http.delete(f"/api/v2/deleted_tickets/{tid}").status_code == 404
    assert (
        http.delete(f"/api/v2/deleted_tickets/{sb.state.add_ticket(tess)['id']}").status_code == 404
    )


def test_bulk_soft_and_permanent_deletion(sb: SandboxServer, http: httpx.Client) -> None:
    tess = _person(sb)
    ids = [sb.state.add_ticket(tess, "closed", f"T{n}")["id"] for n in range(5)]
    joined = ",".join(str(t) for t in ids)
    job = http.delete("/api/v2/tickets/destroy_many.json", params={"ids": joined}).json()[
        "job_status"
    ]
    assert job["total"] == 5 and sb.state.ticket_lifecycle(ids[0]) == "live"
    sb.advance(60)
    assert _job(http, job["id"])["status"] == "completed"
    assert [sb.state.ticket_lifecycle(t) for t in ids] == ["soft_deleted"] * 5
    # Permanent: one live ticket in the batch fails, the rest go.
    live = sb.state.add_ticket(tess, "open", "Still here")["id"]
    batch = ",".join(str(t) for t in [*ids, live])
    perm = http.delete("/api/v2/deleted_tickets/destroy_many", params={"ids": batch})
    assert perm.status_code == 200
    sb.advance(60)
    results = _job(http, perm.json()["job_status"]["id"])["results"]
    assert [(r["id"], r["success"]) for r in results] == [(t, True) for t in ids] + [(live, False)]
    assert results[-1]["error"] == "RecordNotFound"
    assert sb.state.ticket_lifecycle(live) == "live"
    too_many = ",".join(str(n) for n in range(1, 102))
    for path in ("/api/v2/deleted_tickets/destroy_many", "/api/v2/tickets/destroy_many"):
        assert http.delete(path, params={"ids": too_many}).status_code == 400
        assert http.delete(path).status_code == 400


def test_restore_a_deleted_ticket(sb: SandboxServer, http: httpx.Client) -> None:
    tid = sb.state.add_ticket(_person(sb), "pending", "Oops")["id"]
    assert http.delete(f"/api/v2/tickets/{tid}").status_code == 204
    assert http.put(f"/api/v2/deleted_tickets/{tid}/restore").status_code == 200
    assert http.get(f"/api/v2/tickets/{tid}").json()["ticket"]["status"] == "pending"


def test_deleted_tickets_are_scrubbed_after_30_days(sb: SandboxServer, http: httpx.Client) -> None:
    tid = sb.state.add_ticket(_person(sb), "solved", "Old")["id"]
    assert http.delete(f"/api/v2/tickets/{tid}").status_code == 204
    sb.advance(29 * 86400)
    assert [t["id"] for t in http.get("/api/v2/deleted_tickets").json()["deleted_tickets"]] == [tid]
    sb.advance(2 * 86400)
    assert http.get("/api/v2/deleted_tickets").json()["deleted_tickets"] == []
    assert sb.state.ticket_lifecycle(tid) == "permanently_deleted"


def test_job_statuses_expire_and_only_the_last_100_are_kept(
    sb: SandboxServer, http: httpx.Client
) -> None:
    tess = _person(sb)
    first = http.delete("/api/v2/tickets/destroy_many", params={"ids": "424242"}).json()
    job_id = first["job_status"]["id"]
    sb.advance(60)
    assert _job(http, job_id)["results"][0]["success"] is False
    sb.advance(3500)
    assert _job(http, job_id)["status"] == "completed"  # within the hour after completion
    sb.advance(120)
    assert http.get(f"/api/v2/job_statuses/{job_id}").status_code == 404
    # 101 more jobs (30 at a time): the oldest status is evicted.
    jobs: list[str] = []
    for n in range(101):
        tid = sb.state.add_ticket(tess, "closed", f"J{n}")["id"]
        answer = http.delete("/api/v2/tickets/destroy_many", params={"ids": tid})
        assert answer.status_code == 200, answer.text
        jobs.append(answer.json()["job_status"]["id"])
        if n % 25 == 24:
            sb.advance(10)
    sb.advance(10)
    assert http.get(f"/api/v2/job_statuses/{jobs[0]}").status_code == 404
    assert _job(http, jobs[1])["status"] == "completed"
    many = http.get(
        "/api/v2/job_statuses/show_many.json", params={"ids": ",".join([jobs[0], *jobs[-3:]])}
    )
    assert [j["id"] for j in many.json()["job_statuses"]] == jobs[-3:]
    # The evicted job still did its work.
    assert sb.state.ticket_lifecycle(sb.state.add_ticket(tess)["id"] - 101) == "soft_deleted"


def test_thirty_job_cap_on_ticket_endpoints(sb: SandboxServer, http: httpx.Client) -> None:
    sb.configure({"job_delay": 600})
    tess = _person(sb)
    deleted = [sb.state.add_ticket(tess, "closed", f"D{n}")["id"] for n in range(31)]
    for tid in deleted:
        assert http.delete(f"/api/v2/tickets/{tid}").status_code == 204
    for tid in deleted[:30]:
        assert http.delete(f"/api/v2/deleted_tickets/{tid}").status_code == 200
    for method_path in (
        f"/api/v2/deleted_tickets/{deleted[30]}",
        f"/api/v2/deleted_tickets/destroy_many?ids={deleted[30]}",
        f"/api/v2/tickets/destroy_many?ids={sb.state.add_ticket(tess)['id']}",
    ):
        refused = http.delete(method_path)
        assert refused.status_code == 429, method_path
        assert refused.headers["content-type"].startswith("text/plain")
        assert 0 < float(refused.headers["Retry-After"]) <= 600
    sb.advance(600)
    assert http.delete(f"/api/v2/deleted_tickets/{deleted[30]}").status_code == 200


# ---------------------------------------------------------------- redaction


def _conversation(sb: SandboxServer) -> tuple[int, int, dict[str, Any]]:
    tess = _person(sb)
    tid = sb.state.add_ticket(tess, "open", "Order", description="Order 4411 for Tess")["id"]
    comment = sb.state.add_comment(
        tid, tess, "Call me on 555-0100 please", attachments=[("id-card.png", b"PNG")]
    )
    return tess, tid, comment


def test_comment_redactions_work_on_closed_tickets(sb: SandboxServer, http: httpx.Client) -> None:
    _, tid, comment = _conversation(sb)
    sb.state.set_ticket_status(tid, "closed")
    marked = comment["html_body"].replace("555-0100", "<redact>555-0100</redact>")
    answer = http.put(
        f"/api/v2/comment_redactions/{comment['id']}.json",
        json={"ticket_id": tid, "html_body": marked},
    )
    assert answer.status_code == 200, answer.text
    redacted = answer.json()["comment"]
    assert redacted["body"] == f"Call me on {REDACTED * 8} please"
    assert redacted["plain_body"] == redacted["body"]
    assert "555-0100" not in redacted["html_body"] and REDACTED * 8 in redacted["html_body"]
    # The whole first comment: tags stay, every character goes.
    first = sb.state.ticket_comments(tid)[0]
    whole = f"<redact>{first['html_body']}</redact>"
    again = http.put(
        f"/api/v2/comment_redactions/{first['id']}", json={"ticket_id": tid, "html_body": whole}
    ).json()["comment"]
    assert set(again["body"]) <= {REDACTED, " "}
    assert again["html_body"].startswith('<div class="zd-comment" dir="auto"><p>')
    ticket = http.get(f"/api/v2/tickets/{tid}").json()["ticket"]
    assert "4411" not in ticket["description"]
    assert ticket["subject"] == "Order"  # subjects are not comments
    assert sb.state.find_text("555-0100") == [] and sb.state.find_text("4411") == []


def test_comment_redaction_refusals(sb: SandboxServer, http: httpx.Client) -> None:
    tess, tid, comment = _conversation(sb)
    other = sb.state.add_ticket(tess, "open", "Other")["id"]
    url = f"/api/v2/comment_redactions/{comment['id']}"
    html_body = comment["html_body"]
    cases = [
        ({"ticket_id": tid, "html_body": html_body.replace("Call", "<redact>Kall</redact>")}, 400),
        ({"ticket_id": tid, "html_body": "<redact>" + html_body}, 400),
        ({"ticket_id": tid, "html_body": "<redact><redact>x</redact></redact>"}, 400),
        ({"ticket_id": tid}, 400),
        ({"html_body": html_body}, 400),
        ({"ticket_id": other, "html_body": html_body}, 404),
        ({"ticket_id": 999999, "html_body": html_body}, 404),
    ]
    for body, status in cases:
        assert http.put(url, json=body).status_code == status, body
    assert (
        http.put(
            "/api/v2/comment_redactions/1", json={"ticket_id": tid, "html_body": ""}
        ).status_code
        == 404
    )
    assert sb.state.comment(comment["id"])["body"] == "Call me on 555-0100 please"  # type: ignore[index]
    # Nothing marked: nothing changes.
    same = http.put(url, json={"ticket_id": tid, "html_body": html_body})
    assert same.status_code == 200 and same.json()["comment"]["body"] == comment["body"]


def test_legacy_and_attachment_redaction_refused_on_closed_tickets(
    sb: SandboxServer, http: httpx.Client
) -> None:
    _, tid, comment = _conversation(sb)
    (attachment,) = comment["attachments"]
    legacy = f"/api/v2/tickets/{tid}/comments/{comment['id']}/redact.json"
    file_url = (
        f"/api/v2/tickets/{tid}/comments/{comment['id']}/attachments/{attachment['id']}/redact"
    )
    # Open ticket: both work.
    answer = http.put(legacy, json={"text": "555-0100"})
    assert answer.status_code == 200
    assert answer.json()["comment"]["body"] == f"Call me on {REDACTED * 8} please"
    assert "555-0100" not in answer.json()["comment"]["html_body"]
    assert http.put(legacy, json={}).status_code == 400
    redacted = http.put(file_url)
    assert redacted.status_code == 200
    replaced = redacted.json()["attachment"]
    assert (replaced["id"], replaced["file_name"], replaced["size"]) == (
        attachment["id"],
        "redacted.txt",
        0,
    )
    assert httpx.get(attachment["content_url"]).status_code == 404
    assert httpx.get(replaced["content_url"]).content == b""
    # Closed ticket: both refused, nothing changed.
    second = sb.state.add_comment(
        tid, sb.state.admin_id, "Agent note 4411", attachments=[("b.txt", "B")]
    )
    sb.state.set_ticket_status(tid, "closed")
    refused = http.put(
        f"/api/v2/tickets/{tid}/comments/{second['id']}/redact", json={"text": "4411"}
    )
    assert refused.status_code == 422 and refused.json()["details"] == CLOSED
    file_refused = http.put(
        f"/api/v2/tickets/{tid}/comments/{second['id']}/attachments/{second['attachments'][0]['id']}/redact"
    )
    assert file_refused.status_code == 422
    assert httpx.get(second["attachments"][0]["content_url"]).content == b"B"
    wrong = f"/api/v2/tickets/{tid}/comments/{second['id']}/attachments/{attachment['id']}/redact"
    assert http.put(wrong).status_code == 404


# ---------------------------------------------------------------- requesters


def test_open_tickets_block_soft_deletion_and_tickets_outlive_the_requester(
    sb: SandboxServer, http: httpx.Client
) -> None:
    tess = _person(sb)
    solved = sb.state.add_ticket(tess, "solved", "Solved is not enough")["id"]
    words = sb.state.add_comment(solved, tess, "My address is Elm Road 3")["id"]
    refused = http.delete(f"/api/v2/users/{tess}")
    assert refused.status_code == 422
    assert refused.json()["details"]["base"][0]["ticket_ids"] == [solved]
    # A deleted ticket no longer blocks; a closed one never did.
    spare = sb.state.add_ticket(tess, "open", "Spare")["id"]
    assert http.delete(f"/api/v2/tickets/{spare}").status_code == 204
    assert (
        http.put(f"/api/v2/tickets/{solved}", json={"ticket": {"status": "closed"}}).status_code
        == 200
    )
    assert http.delete(f"/api/v2/users/{tess}").status_code == 200
    assert http.delete(f"/api/v2/deleted_users/{tess}").status_code == 200
    # The ticket and the person's words survive the permanent deletion.
    ticket = http.get(f"/api/v2/tickets/{solved}").json()["ticket"]
    assert ticket["requester_id"] == tess
    comments = http.get(f"/api/v2/tickets/{solved}/comments").json()["comments"]
    assert [c["body"] for c in comments if c["id"] == words] == ["My address is Elm Road 3"]
    assert sb.state.find_text("Elm Road 3") == [f"comments[{words}]"]


# ---------------------------------------------------------------- budgets and auth


@pytest.mark.parametrize("style", ["2023", "2024"])
def test_ticket_budgets_in_both_header_styles(style: str) -> None:
    with SandboxServer(seed="none", time_scale=1.0, frozen=True, header_style=style) as sb:
        sb.configure({"limits": {"deleted-tickets-destroy": 2, "tickets-delete": 3}})
        env = sb.env()
        auth = (env["ZENDESK_EMAIL"] + "/token", env["ZENDESK_API_TOKEN"])
        prefix = "zendesk-rate-limit-" if style == "2023" else "zendesk-ratelimit-"
        tess = _person(sb)
        ids = [sb.state.add_ticket(tess, "closed", f"B{n}")["id"] for n in range(3)]
        with httpx.Client(base_url=sb.url, auth=auth) as client:
            soft = client.delete(f"/api/v2/tickets/{ids[0]}")
            assert soft.headers[prefix + "tickets-delete"].startswith("total=3; remaining=2;")
            for tid in ids[1:]:
                client.delete(f"/api/v2/tickets/{tid}")
            perm = client.delete(f"/api/v2/deleted_tickets/{ids[0]}")
            assert perm.headers[prefix + "deleted-tickets-destroy"].startswith(
                "total=2; remaining=1; resets="
            )
            assert client.delete(f"/api/v2/deleted_tickets/{ids[1]}").status_code == 200
            over = client.delete(f"/api/v2/deleted_tickets/{ids[2]}")
            assert over.status_code == 429 and 1 <= int(over.headers["Retry-After"]) <= 60
            listing = client.get("/api/v2/deleted_tickets")
            assert listing.headers[prefix + "deleted-tickets-index"].startswith("total=10;")
            update = client.put(
                f"/api/v2/tickets/{sb.state.add_ticket(tess)['id']}",
                json={"ticket": {"status": "pending"}},
            )
            assert update.headers[prefix + "tickets-update"].startswith("total=100;")
            assert update.headers[prefix + "ticket-update"].startswith("total=30;")
            many = client.delete("/api/v2/deleted_tickets/destroy_many", params={"ids": ids[2]})
            assert many.headers[prefix + "deleted-tickets-destroy-many"].startswith("total=300;")


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v2/users/me"),
        ("GET", "/api/v2/tickets/1"),
        ("GET", "/api/v2/tickets/1/comments"),
        ("PUT", "/api/v2/comment_redactions/1"),
        ("DELETE", "/api/v2/deleted_tickets/destroy_many?ids=1"),
        ("GET", "/api/v2/job_statuses/abc"),
        ("GET", "/api/v2/users/1/organizations"),
    ],
)
def test_wrong_token_is_401_everywhere(sb: SandboxServer, method: str, path: str) -> None:
    answer = httpx.request(method, sb.url + path, auth=(sb.email + "/token", "wrong"))
    assert answer.status_code == 401 and answer.json() == {"error": "Couldn't authenticate you"}
