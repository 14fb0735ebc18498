"""Unit tests of the access conversations: ticket collection into the spool, other people
(pseudonymise / keep), attachments within caps, and the answer's files (data.json, CSVs,
index.html) with hostile bodies -- against an in-process fake of the client's ticket
methods. The same behaviour over real HTTP against the sandbox: test_access_tickets.py."""

from __future__ import annotations

import csv
import hashlib
import json
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from privacykit.errors import NetworkError, NotFoundError, ResponseTooLarge
from privacykit.playbooks.access import (
    ART15_FIELDS,
    CSV_TABLES,
    AccessJob,
    AccessPolicy,
    People,
    ProcessingFacts,
    Spool,
    TicketCollector,
    attachment_file_name,
    csv_cell,
    csv_tables,
    deliver,
    validate,
)
from privacykit.playbooks.discovery import Discovery
from privacykit.playbooks.loader import Step
from privacykit.playbooks.policy import DiscoveryPolicy
from privacykit.playbooks.subjects import parse_subject
from privacykit.zendesk.tickets import Download

JANE_ID, OTHER_ID, AGENT_ID = 7, 9, 2
JANE_SENTENCE = "My bike arrived with a bent wheel, please send a new one."
JANE_CC_SENTENCE = "Adding my own note on Olga's ticket: same problem here."
OTHER_NAME = "Olga Otherperson"
HOSTILE = '<script>alert("x")</script> <img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example","click")'
FACTS = {n: (["x"] if is_list else "x") for n, (is_list, _h) in ART15_FIELDS.items()}


class FakeTickets:
    """The client's ticket methods over in-memory data; records every call."""

    def __init__(self) -> None:
        self.tickets: dict[int, dict[str, Any]] = {}
        self.lists: dict[tuple[int, str], list[int]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.broken: set[str] = set()
        self.missing: set[str] = set()
        self.calls: list[tuple[str, Any]] = []

    def iter_user_tickets(self, user_id: int, which: str) -> Iterator[dict[str, Any]]:
        self.calls.append(("tickets", (user_id, which)))
        for tid in self.lists.get((user_id, which), []):
            yield dict(self.tickets[tid])

    def iter_ticket_comments(self, ticket_id: int) -> Iterator[dict[str, Any]]:
        self.calls.append(("comments", ticket_id))
        yield from (dict(c) for c in self.comments.get(ticket_id, []))

    def show_many_users(self, user_ids: Sequence[int | str]) -> list[dict[str, Any]]:
        self.calls.append(("users", tuple(user_ids)))
        assert len(user_ids) <= 100
        return [dict(self.users[int(u)]) for u in user_ids if int(u) in self.users]

    def download_attachment(self, url: str, dest: Path, *, max_bytes: int) -> Download:
        self.calls.append(("download", url))
        if url in self.broken:
            raise NetworkError("GET attachment: connection reset")
        if url in self.missing:
            raise NotFoundError("GET attachment: 404", response=None)  # type: ignore[arg-type]
        data = self.files[url]
        if len(data) > max_bytes:
            raise ResponseTooLarge("too large", endpoint="GET attachment", max_bytes=max_bytes)
        dest.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        return Download(dest, len(data), digest, None, credentials_sent=False)


def policy(**kw: Any) -> AccessPolicy:
    return AccessPolicy(
        name="access",
        sha256="0" * 64,
        discovery=DiscoveryPolicy(),
        facts=ProcessingFacts.from_mapping(FACTS),
        **kw,
    )


def comment(cid: int, author: int, body: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "author_id": author,
        "body": body,
        "plain_body": body,
        "html_body": f"<p>{body}</p>",
        "public": True,
        "created_at": "2024-03-01T10:00:00Z",
        "attachments": [],
        **kw,
    }


def seed(fake: FakeTickets) -> None:
    """Jane's ticket 101 (with the agent), Olga's ticket 102 that Jane is CC'd on and
    follows, and ticket 103 of Olga's that Jane has nothing to do with."""
    fake.users = {
        AGENT_ID: {"id": AGENT_ID, "role": "agent", "name": "Samuel Agent", "alias": "Sam"},
        OTHER_ID: {"id": OTHER_ID, "role": "end-user", "name": OTHER_NAME},
    }
    fake.tickets = {
        101: {
            "id": 101,
            "subject": "Bent wheel",
            "status": "solved",
            "requester_id": JANE_ID,
            "submitter_id": JANE_ID,
            "assignee_id": AGENT_ID,
            "email_cc_ids": [],
            "follower_ids": [AGENT_ID],
            "via": {"channel": "email", "source": {"from": {"address": "jane@example.com"}}},
            "satisfaction_rating": {"score": "good", "comment": "Quick and kind"},
            "url": "https://x.zendesk.com/api/v2/tickets/101.json",
        },
        102: {
            "id": 102,
            "subject": FORMULA,
            "status": "open",
            "requester_id": OTHER_ID,
            "submitter_id": OTHER_ID,
            "assignee_id": AGENT_ID,
            "email_cc_ids": [JANE_ID, OTHER_ID],
            "collaborator_ids": [JANE_ID],
            "via": {
                "channel": "email",
                "source": {
                    "from": {"address": "olga@example.com", "name": OTHER_NAME},
                    "to": {"address": "support@shop.example"},
                },
            },
            "satisfaction_rating": {"score": "bad", "comment": "Olga was unhappy"},
        },
        103: {"id": 103, "subject": "Not Jane's", "requester_id": OTHER_ID},
    }
    fake.lists = {
        (JANE_ID, "requested"): [101],
        (JANE_ID, "ccd"): [102],
        (JANE_ID, "followed"): [102],
    }
    fake.comments = {
        101: [
            comment(1, JANE_ID, JANE_SENTENCE, metadata={"system": {"ip_address": "192.0.2.1"}}),
            comment(2, AGENT_ID, "Sorry to hear that, a new wheel is on its way."),
            comment(3, AGENT_ID, "Internal: customer is a VIP", public=False),
        ],
        102: [
            comment(
                4,
                OTHER_ID,
                HOSTILE,
                metadata={"system": {"ip_address": "198.51.100.9"}},
                via={"channel": "email", "source": {"from": {"name": OTHER_NAME}}},
            ),
            comment(5, JANE_ID, JANE_CC_SENTENCE),
            comment(6, AGENT_ID, FORMULA),
        ],
    }


def job_for(fake: FakeTickets) -> AccessJob:
    subject = parse_subject(f"user:{JANE_ID}")
    job = AccessJob(subject, request_id="req-test")
    job.discovery = Discovery(subject=subject, users={JANE_ID: {"id": JANE_ID, "name": "Jane"}})
    job.users = [{"id": JANE_ID, "name": "Jane Doe", "related": {}}]
    return job


_OPEN: list[AccessJob] = []


@pytest.fixture(autouse=True)
def _close_spools() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().conversations.remove()


def collected(tmp_path: Path, fake: FakeTickets, pol: AccessPolicy, **options: Any) -> AccessJob:
    job = job_for(fake)
    _OPEN.append(job)
    tmp_path.mkdir(mode=0o700, exist_ok=True)
    collector = TicketCollector(fake, pol, tmp_path)
    collector.step_collect_tickets(job, Step("collect_tickets", {}))
    if pol.collect_attachments:
        collector.step_collect_attachments(job, Step("collect_attachments", options))
    job.conversations.present(job.conversations.spool.directory / "presented")  # type: ignore[union-attr]
    return job


def presented(job: AccessJob) -> list[dict[str, Any]]:
    return list(job.collected(policy()).gathered.tickets)


# --- collection ----------------------------------------------------------------------


def test_requested_ccd_and_followed_tickets_with_every_comment(tmp_path: Path) -> None:
    fake = FakeTickets()
    seed(fake)
    job = collected(tmp_path, fake, policy())
    talk = job.conversations
    assert talk.ticket_ids() == [101, 102]  # 103 is not Jane's
    assert talk.relations == {101: ["requested"], 102: ["ccd", "followed"]}
    assert talk.per_user[JANE_ID] == {"requested": 1, "ccd": 1, "followed": 1}
    # One comments listing per ticket (not per relation), one user lookup for everyone.
    assert [c for c in fake.calls if c[0] == "comments"] == [("comments", 101), ("comments", 102)]
    assert [c for c in fake.calls if c[0] == "users"] == [("users", (AGENT_ID, OTHER_ID))]
    tickets = presented(job)
    assert [t["id"] for t in tickets] == [101, 102]
    assert [c["id"] for c in tickets[0]["comments"]] == [1, 2, 3]
    assert tickets[0]["comments"][2]["public"] is False  # internal notes included
    stats = job.collected(policy()).gathered.counts()
    assert stats["tickets"] == 2 and stats["comments"] == 6 and stats["comments_by_person"] == 2
    assert stats["internal_notes"] == 1 and stats["satisfaction_ratings"] == 1
    assert stats["tickets_ccd"] == 1 and stats["other_customers"] == 1
    assert "url" not in tickets[0]  # the playbook's ticket_exclude_fields


def test_other_customers_are_pseudonymised_by_default(tmp_path: Path) -> None:
    fake = FakeTickets()
    seed(fake)
    first, second = presented(collected(tmp_path, fake, policy()))
    dump = json.dumps([first, second])
    assert OTHER_NAME not in dump and "olga@example.com" not in dump
    assert "198.51.100.9" not in dump  # the other customer's IP address
    assert str(OTHER_ID) not in json.dumps([second["requester_id"], second["email_cc_ids"]])
    assert second["requester_id"] == "another customer #1"
    assert second["email_cc_ids"] == [JANE_ID, "another customer #1"]
    assert second["via"] == {"channel": "email", "source": {"rel": None}}
    assert second["satisfaction_rating"] is None
    assert second["satisfaction_rating_withheld"] == "given by another customer"
    olga, jane, _agent = second["comments"]
    assert (olga["author"], olga["author_kind"], olga["author_id"]) == (
        "another customer #1",
        "another_customer",
        "another customer #1",
    )
    assert "metadata" not in olga and olga["body"] == HOSTILE  # bodies are not rewritten
    assert (jane["author"], jane["author_kind"]) == ("you", "you")
    # The person's own channel details and metadata stay; agents appear by their alias.
    assert first["via"]["source"]["from"] == {"address": "jane@example.com"}
    assert first["comments"][0]["metadata"] == {"system": {"ip_address": "192.0.2.1"}}
    assert first["comments"][1]["author"] == "Sam" and first["assignee_id"] == AGENT_ID
    assert first["satisfaction_rating"]["comment"] == "Quick and kind"


def test_keep_policy_shows_other_people_by_name(tmp_path: Path) -> None:
    fake = FakeTickets()
    seed(fake)
    _first, second = presented(collected(tmp_path, fake, policy(others="keep")))
    assert second["requester_id"] == OTHER_ID
    assert second["comments"][0]["author"] == OTHER_NAME
    assert second["comments"][0]["metadata"]["system"]["ip_address"] == "198.51.100.9"


def test_internal_notes_can_be_withheld_by_the_playbook(tmp_path: Path) -> None:
    fake = FakeTickets()
    seed(fake)
    job = collected(tmp_path, fake, policy(include_internal_notes=False))
    assert job.conversations.internal_notes_withheld == 1
    assert [c["id"] for c in presented(job)[0]["comments"]] == [1, 2]
    assert any(
        "Internal notes" in item
        for item in job.collected(policy(include_internal_notes=False)).gathered.not_covered
    )


def test_ticket_bound_makes_the_answer_incomplete(tmp_path: Path) -> None:
    fake = FakeTickets()
    seed(fake)
    job = collected(tmp_path, fake, policy(max_tickets=1))
    assert job.conversations.ticket_ids() == [101]
    assert any("max_tickets" in reason for reason in job.incomplete)


def test_people_are_looked_up_in_batches_of_100() -> None:
    calls: list[int] = []

    def show_many(ids: Sequence[int]) -> list[dict[str, Any]]:
        calls.append(len(ids))
        return [{"id": i, "role": "end-user", "name": f"n{i}"} for i in ids]

    people = People([1])
    people.learn(range(1, 252), show_many)
    assert calls == [100, 100, 50]
    assert people.participant(1).kind == "you"
    assert people.participant(200).shown_as == "another customer #1"
    assert people.participant(5).shown_as == "another customer #2"
    assert people.participant(200).shown_as == "another customer #1"  # stable


# --- attachments ------------------------------------------------------------------------


def with_attachments(fake: FakeTickets) -> None:
    seed(fake)
    host = "https://files.example-cdn.test"
    items = [
        (11, "receipt.pdf", b"%PDF-1.4 small receipt", None),
        (12, "huge video.mov", b"x" * 5000, None),
        (13, "page.html", b"<script>alert(1)</script>", None),
        (14, "flaky.png", b"png", "broken"),
        (15, "liar.bin", b"y" * 3000, "declares 10 bytes"),
    ]
    fake.comments[101][0]["attachments"] = []
    for aid, name, data, trait in items:
        url = f"{host}/{aid}/{name}"
        fake.files[url] = data
        if trait == "broken":
            fake.broken.add(url)
        size = 10 if trait == "declares 10 bytes" else len(data)
        fake.comments[101][0]["attachments"].append(
            {"id": aid, "file_name": name, "content_url": url, "size": size}
        )


def test_attachments_downloaded_within_caps_listed_over_them(tmp_path: Path) -> None:
    fake = FakeTickets()
    with_attachments(fake)
    pol = policy(max_attachment_bytes=1000, max_total_attachment_bytes=10_000)
    job = collected(tmp_path, fake, pol)
    results = job.conversations.attachments
    assert results[11]["downloaded"] and results[11]["file"] == "attachments/101/11-receipt.pdf"
    assert results[12] == {
        "downloaded": False,
        "file": None,
        "not_downloaded_reason": "larger than the per-file cap (1000 bytes)",
    }
    # A page a browser would run opens as text; its content is unchanged.
    assert results[13]["file"] == "attachments/101/13-page.html.txt"
    # Bigger than it said: the client's size cap stops it; listed, not kept.
    assert results[15]["downloaded"] is False and "cap" in results[15]["not_downloaded_reason"]
    spooled = job.conversations.spool.attachments / "101"  # type: ignore[union-attr]
    assert sorted(p.name for p in spooled.iterdir()) == ["11-receipt.pdf", "13-page.html.txt"]
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o700
    # A download that keeps failing (tried 3 times): the answer would be incomplete.
    assert any("attachment 14 of ticket 101" in r for r in job.incomplete)
    downloads = [c[1] for c in fake.calls if c[0] == "download"]
    assert sum(1 for url in downloads if "/14/" in url) == 3
    assert not any("/12/" in url for url in downloads)  # over the cap: never fetched


def test_total_attachment_cap(tmp_path: Path) -> None:
    fake = FakeTickets()
    with_attachments(fake)
    fake.broken.clear()
    job = collected(tmp_path, fake, policy(max_total_attachment_bytes=30))
    results = job.conversations.attachments
    assert results[11]["downloaded"] is True
    assert results[13]["not_downloaded_reason"] == (
        "the total size cap for attachments was reached"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "5-report.pdf"),
        ("../../etc/passwd", "5-etc_passwd"),
        (".hidden", "5-hidden"),
        ("", "5-file"),
        (None, "5-file"),
        ("Résumé 2024.docx", "5-R_sum_2024.docx"),
        ("x.SVG", "5-x.SVG.txt"),
        ("a" * 300 + ".txt", "5-" + "a" * 100),
    ],
)
def test_attachment_file_names_are_safe(name: Any, expected: str) -> None:
    assert attachment_file_name(5, name) == expected


# --- the answer's files -----------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_answer_holds_the_persons_sentences_and_keeps_hostile_text_inert(
    tmp_path: Path,
) -> None:
    fake = FakeTickets()
    with_attachments(fake)
    fake.broken.clear()
    pol = policy(max_attachment_bytes=4000)
    job = collected(tmp_path / "work", fake, pol)
    target = tmp_path / "answer"
    target.mkdir(mode=0o700)
    files = deliver(
        job.collected(pol), subject=job.subject, request_id="req-test", target=target, policy=pol
    )  # type: ignore[arg-type]
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted(
        ["attachments", "data.json", "index.html", *(f"{t.name}.csv" for t in CSV_TABLES)]
    )
    assert {f.name for f in files} == set(names) - {"attachments"}
    assert (target / "attachments/101/11-receipt.pdf").read_bytes() == b"%PDF-1.4 small receipt"

    data = (target / "data.json").read_text(encoding="utf-8")
    export = json.loads(data)
    validate(export)
    assert export["schema"] == "privacykit.access-export/2"
    assert JANE_SENTENCE in data and JANE_CC_SENTENCE in data
    assert OTHER_NAME not in data
    assert export["others"]["policy"] == "pseudonymise"
    assert any("Help Center" in item for item in export["not_covered"])
    assert export["people"] == [
        {"shown_as": "you", "kind": "you", "user_id": JANE_ID},
        {"shown_as": "Sam", "kind": "agent", "user_id": AGENT_ID},
        {"shown_as": "another customer #1", "kind": "another_customer", "user_id": None},
    ]
    receipt = export["tickets"][0]["comments"][0]["attachments"][0]
    assert receipt["sha256"] and receipt["bytes"] == 22 and receipt["downloaded"] is True

    # Every CSV equals the JSON; comments.csv holds the sentences, formulas stay text.
    for name, (columns, records) in csv_tables(export).items():
        rows = read_csv(target / f"{name}.csv")
        assert rows == [{c: csv_cell(r.get(c)) for c in columns} for r in records], name
    comments = read_csv(target / "comments.csv")
    assert JANE_SENTENCE in {row["plain_body"] for row in comments}
    subjects = {row["subject"] for row in read_csv(target / "tickets.csv")}
    assert "'" + FORMULA in subjects and FORMULA not in subjects
    assert "'" + FORMULA in {row["plain_body"] for row in comments}
    assert HOSTILE in {row["plain_body"] for row in comments}  # text in a CSV is inert
    for name in (f"{t.name}.csv" for t in CSV_TABLES):
        for row in read_csv(target / name):
            assert not any(cell.startswith(("=", "+", "@")) for cell in row.values()), name
    attachments = read_csv(target / "attachments.csv")
    assert {row["id"]: row["downloaded"] for row in attachments}["12"] == "false"

    page = (target / "index.html").read_text(encoding="utf-8")
    assert JANE_SENTENCE in page and JANE_CC_SENTENCE.replace("'", "&#39;") in page
    assert OTHER_NAME not in page
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page.lower()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for active in ("<link", "@import", "<iframe", "<object", "<embed", "javascript:", "<form"):
        assert active not in page.lower()
    # The only links: anchors on the page and attachments privacykit saved next to it.
    import re

    hrefs = set(re.findall(r'href="([^"]*)"', page))
    assert all(h.startswith(("#", "attachments/101/")) for h in hrefs), hrefs
    assert 'href="attachments/101/11-receipt.pdf"' in page
    assert "not included (larger than the per-file cap (4000 bytes))" in page
    assert "another customer #1" in page and "Internal note by our staff" in page


def test_data_json_is_streamed_ticket_by_ticket(tmp_path: Path) -> None:
    """A spool of many tickets goes to data.json without building the document: what is in
    memory is one ticket at a time (the spool's index holds offsets only)."""
    fake = FakeTickets()
    fake.lists[(JANE_ID, "requested")] = list(range(1, 301))
    for tid in range(1, 301):
        fake.tickets[tid] = {"id": tid, "subject": f"t{tid}", "requester_id": JANE_ID}
        fake.comments[tid] = [comment(tid * 10 + i, JANE_ID, f"line {tid}/{i}") for i in range(5)]
    pol = policy()
    job = collected(tmp_path / "work", fake, pol)
    target = tmp_path / "answer"
    target.mkdir()
    deliver(
        job.collected(pol), subject=job.subject, request_id="req-test", target=target, policy=pol
    )  # type: ignore[arg-type]
    export = json.loads((target / "data.json").read_text(encoding="utf-8"))
    validate(export)
    assert [t["id"] for t in export["tickets"]] == list(range(1, 301))
    assert export["counts"]["comments"] == 1500
    assert len(read_csv(target / "comments.csv")) == 1500


def test_spool_is_private_ordered_and_replaces_a_stale_one(tmp_path: Path) -> None:
    directory = tmp_path / ".privacykit-req-1.partial"
    directory.mkdir()
    (directory / "left-over").write_text("from a crash")
    spool = Spool.create(directory)
    try:
        assert not (directory / "left-over").exists()
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / Spool.FILE).stat().st_mode) == 0o600
        for key in (30, 10, 20):
            spool.put(key, {"id": key, "text": "é" * key})
        spool.put(10, {"id": 10, "text": "replaced"})
        assert [k for k, _ in spool] == [10, 20, 30]
        assert spool.get(10)["text"] == "replaced" and spool.get(30)["text"] == "é" * 30
        assert len(spool) == 3 and 20 in spool and 40 not in spool
    finally:
        spool.remove()
    assert not directory.exists()
    link = tmp_path / ".privacykit-req-2.partial"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link.symlink_to(elsewhere)
    from privacykit.errors import UsageError

    with pytest.raises(UsageError, match="symbolic link"):
        Spool.create(link)
    assert elsewhere.exists()


def test_ticket_definition_of_the_schema() -> None:
    ticket = {
        "id": 1,
        "relations": ["requested"],
        "comments": [
            {
                "id": 2,
                "author": "you",
                "author_kind": "you",
                "attachments": [
                    {"id": 3, "downloaded": False, "file": None, "not_downloaded_reason": "cap"}
                ],
            }
        ],
    }
    validate(ticket, definition="ticket")
    from privacykit.playbooks.access import SchemaViolation

    for broken, pointer in [
        ({**ticket, "relations": ["assigned"]}, "/relations/0"),
        (
            {**ticket, "comments": [{"id": "x", "author": None, "author_kind": None}]},
            "/comments/0/id",
        ),
        ({**ticket, "requester_id": 1.5}, "/requester_id"),
    ]:
        with pytest.raises(SchemaViolation) as info:
            validate(broken, definition="ticket")
        assert info.value.path == pointer


def test_an_attachment_zendesk_no_longer_has_is_tried_once_and_needs_review(
    tmp_path: Path,
) -> None:
    fake = FakeTickets()
    with_attachments(fake)
    fake.broken.clear()
    gone = next(url for url in fake.files if "/11/" in url)
    fake.missing.add(gone)
    job = collected(tmp_path, fake, policy(max_attachment_bytes=4000))
    assert [c for c in fake.calls if c == ("download", gone)] == [("download", gone)]
    assert 11 not in job.conversations.attachments
    assert any("attachment 11 of ticket 101" in r and "NotFoundError" in r for r in job.incomplete)
