"""Unit tests of the access export: data.json v1 against its schema, CSV cells and tables,
formula-injection defence, owner-only output directory and files."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from privacykit.errors import LedgerError, UsageError
from privacykit.playbooks.access import (
    ART15_FIELDS,
    CSV_TABLES,
    Gathered,
    ProcessingFacts,
    build_export,
    csv_cell,
    csv_tables,
    folder_names,
    make_private_dir,
    prepare_output_dir,
    render_csv,
    subject_dir,
    write_private_file,
)
from privacykit.playbooks.access.schema import EXPORT_SCHEMA, SchemaViolation, validate
from privacykit.playbooks.subjects import parse_subject

FACTS = {
    name: (["first", "second"] if is_list else f"{name} text")
    for name, (is_list, _h) in ART15_FIELDS.items()
}


def _gathered() -> Gathered:
    return Gathered(
        users=[
            {
                "id": 11,
                "name": '=HYPERLINK("http://evil")',
                "email": "jane@example.com",
                "phone": "+15551234567",
                "role": "end-user",
                "organization_id": 7,
                "tags": ["vip", "eu"],
                "user_fields": {"plan": "gold"},
                "verified": True,
                "created_at": "2024-01-01T00:00:00Z",
                "related": {"requested_tickets": 2, "assigned_tickets": 0, "ccd_tickets": 1},
            },
            {"id": 12, "name": "Jane (anon)", "email": None, "related": {}},
        ],
        identities=[
            {
                "id": 101,
                "user_id": 11,
                "type": "email",
                "value": "jane@example.com",
                "primary": True,
            },
            {"id": 102, "user_id": 11, "type": "phone_number", "value": "+15551234567"},
        ],
        profiles=[
            {
                "id": "01P1",
                "user_id": "11",
                "source": "shop",
                "type": "customer",
                "name": "Jane",
                "identifiers": [
                    {"type": "email", "value": "jane@example.com"},
                    {"type": "member_id", "value": 12345},
                ],
                "attributes": {"tier": "gold", "score": -3, "nested": {"a": [1, 2]}},
            },
            {
                "id": "01P2",
                "user_id": "12",
                "source": "app",
                "type": "visitor",
                "identifiers": [{"type": "sdk", "value": "@dev-1"}],
                "attributes": {},
            },
        ],
        events=[
            {
                "id": "E1",
                "profile_id": "01P1",
                "source": "shop",
                "type": "order",
                "description": "-10 coupon",
                "properties": {"sku": "X1", "qty": 2},
                "created_at": "2024-02-01T00:00:00Z",
                "received_at": "2024-02-01T00:00:01Z",
            }
        ],
        tickets=[
            {
                "id": 5,
                "subject": "Help",
                "status": "open",
                "requester_id": 11,
                "email_cc_ids": [11, "another customer #1"],
                "relations": ["requested"],
                "comments": [
                    {
                        "id": 50,
                        "author": "you",
                        "author_kind": "you",
                        "author_id": 11,
                        "public": True,
                        "plain_body": "=1+1 is my order total",
                        "attachments": [
                            {
                                "id": 500,
                                "file_name": "a.pdf",
                                "downloaded": True,
                                "file": "attachments/5/500-a.pdf",
                                "sha256": "0" * 64,
                                "bytes": 3,
                            }
                        ],
                    },
                    {
                        "id": 51,
                        "author": "another customer #1",
                        "author_kind": "another_customer",
                        "author_id": "another customer #1",
                        "public": True,
                        "plain_body": "me too",
                    },
                ],
            }
        ],
        organizations=[{"id": 7, "name": "Jane's Bikes", "notes": "sole trader"}],
        organization_memberships=[{"id": 70, "user_id": 11, "organization_id": 7}],
        people=[
            {"shown_as": "you", "kind": "you", "user_id": 11},
            {"shown_as": "another customer #1", "kind": "another_customer", "user_id": None},
        ],
        compliance_deletion_statuses=[
            {"user_id": 11, "application": "all", "action": "request_deletion", "created_at": "x"}
        ],
        searched={
            "systems": ["Zendesk Support users", "Sunshine profiles"],
            "endpoints": ["GET /api/v2/users/search"],
            "profile_sources": ["shop:customer"],
        },
    )


def _export() -> dict[str, Any]:
    return build_export(
        request_id="req-1",
        subject=parse_subject("jane@example.com"),
        facts=ProcessingFacts.from_mapping(FACTS),
        gathered=_gathered(),
        generated_at="2024-03-01T00:00:00Z",
    )


def test_export_validates_and_counts() -> None:
    export = _export()
    validate(export)
    # Round trip through JSON: what is written is what validates.
    validate(json.loads(json.dumps(export)))
    assert export["schema"] == "privacykit.access-export/2"
    assert export["found"] is True
    assert export["counts"] == {
        "users": 2,
        "identities": 2,
        "profiles": 2,
        "profile_identifiers": 3,
        "profile_attributes": 3,
        "events": 1,
        "tickets": 1,
        "tickets_requested": 1,
        "tickets_ccd": 0,
        "tickets_followed": 0,
        "comments": 2,
        "comments_by_person": 1,
        "internal_notes": 0,
        "satisfaction_ratings": 0,
        "attachments": 1,
        "attachments_downloaded": 1,
        "attachments_not_downloaded": 0,
        "attachment_bytes": 3,
        "organizations": 1,
        "organization_memberships": 1,
        "other_customers": 1,
        "compliance_deletion_statuses": 1,
    }
    assert export["subject"] == {"form": "email", "value": "jane@example.com"}


def test_identifier_subject_keeps_whole_query() -> None:
    export = build_export(
        request_id="r",
        subject=parse_subject("shop:customer:member_id:a:b"),
        facts=ProcessingFacts.from_mapping(FACTS),
        gathered=_gathered(),
        generated_at="t",
    )
    assert export["subject"] == {"form": "identifier", "value": "shop:customer:member_id:a:b"}
    validate(export)


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda d: d.update(schema="privacykit.access-export/1"), "/schema"),
        (lambda d: d.pop("not_covered"), "/"),
        (lambda d: d["others"].update(policy="publish"), "/others/policy"),
        (lambda d: d["tickets"][0].pop("relations"), "/tickets/0"),
        (lambda d: d["tickets"][0].update(requester_id=1.5), "/tickets/0/requester_id"),
        (
            lambda d: d["tickets"][0]["comments"][0].update(author_kind="boss"),
            "/tickets/0/comments/0/author_kind",
        ),
        (
            lambda d: d["tickets"][0]["comments"][0]["attachments"][0].pop("downloaded"),
            "/tickets/0/comments/0/attachments/0",
        ),
        (lambda d: d["organizations"][0].update(id="7"), "/organizations/0/id"),
        (lambda d: d["people"][0].update(kind="stranger"), "/people/0/kind"),
        (lambda d: d.pop("events"), "/"),
        (lambda d: d.update(surprise=1), "/surprise"),
        (lambda d: d["users"][0].update(id="11"), "/users/0/id"),
        (lambda d: d["users"][0].update(id=True), "/users/0/id"),
        (lambda d: d["profiles"][1].pop("identifiers"), "/profiles/1"),
        (
            lambda d: d["profiles"][0]["identifiers"][0].update(value={"x": 1}),
            "/profiles/0/identifiers/0/value",
        ),
        (lambda d: d["counts"].update(users=-1), "/counts/users"),
        (lambda d: d["processing"].pop("complaint"), "/processing"),
        (lambda d: d["subject"].update(form="phone"), "/subject/form"),
        (lambda d: d["events"][0].pop("profile_id"), "/events/0"),
    ],
)
def test_schema_rejects_invalid(mutate: Any, pointer: str) -> None:
    export = copy.deepcopy(_export())
    mutate(export)
    with pytest.raises(SchemaViolation) as info:
        validate(export)
    assert info.value.path == ("" if pointer == "/" else pointer)


def test_validator_refuses_unknown_keywords() -> None:
    with pytest.raises(SchemaViolation, match="unsupported"):
        validate({}, {"type": "object", "patternProperties": {}})


def test_schema_is_plain_json() -> None:
    assert json.loads(json.dumps(EXPORT_SCHEMA)) == EXPORT_SCHEMA


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (-3, "-3"),
        (1.5, "1.5"),
        ("plain", "plain"),
        ("=1+1", "'=1+1"),
        ("+15551234567", "'+15551234567"),
        ("-10 coupon", "'-10 coupon"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("a=b", "a=b"),
        ({"b": 1, "a": "é"}, '{"a":"é","b":1}'),
        ([1, "x"], '[1,"x"]'),
    ],
)
def test_csv_cell(value: Any, cell: str) -> None:
    assert csv_cell(value) == cell


def _read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_tables_match_json() -> None:
    export = _export()
    tables = csv_tables(export)
    assert list(tables) == [t.name for t in CSV_TABLES]
    for name, (columns, records) in tables.items():
        rows = _read_csv(render_csv(columns, records))
        assert len(rows) == len(records), name
        for row, record in zip(rows, records, strict=True):
            assert list(row) == columns
            assert row == {c: csv_cell(record.get(c)) for c in columns}, name

    users = _read_csv(render_csv(*tables["users"]))
    assert users[0]["name"].startswith("'=")
    assert users[0]["related_requested_tickets"] == "2"
    assert users[0]["tags"] == '["vip","eu"]'
    assert "related" not in users[0]
    idents = _read_csv(render_csv(*tables["profile_identifiers"]))
    assert [(r["profile_id"], r["type"], r["value"]) for r in idents] == [
        ("01P1", "email", "jane@example.com"),
        ("01P1", "member_id", "12345"),
        ("01P2", "sdk", "'@dev-1"),
    ]
    attrs = _read_csv(render_csv(*tables["profile_attributes"]))
    assert {(r["key"], r["value"]) for r in attrs} == {
        ("tier", "gold"),
        ("score", "-3"),
        ("nested", '{"a":[1,2]}'),
    }
    profiles = _read_csv(render_csv(*tables["profiles"]))
    assert "identifiers" not in profiles[0] and "attributes" not in profiles[0]
    tickets = _read_csv(render_csv(*tables["tickets"]))
    assert tickets[0]["relations"] == '["requested"]' and "comments" not in tickets[0]
    assert tickets[0]["email_cc_ids"] == '[11,"another customer #1"]'
    comments = _read_csv(render_csv(*tables["comments"]))
    assert [(c["ticket_id"], c["id"], c["author"]) for c in comments] == [
        ("5", "50", "you"),
        ("5", "51", "another customer #1"),
    ]
    assert (
        comments[0]["plain_body"] == "'=1+1 is my order total" and "attachments" not in comments[0]
    )
    files = _read_csv(render_csv(*tables["attachments"]))
    assert [(f["ticket_id"], f["comment_id"], f["id"], f["file"]) for f in files] == [
        ("5", "50", "500", "attachments/5/500-a.pdf")
    ]
    assert _read_csv(render_csv(*tables["organizations"]))[0]["notes"] == "sole trader"


def test_empty_export_has_headers_only() -> None:
    gathered = Gathered([], [], [], [], [], [], searched={})
    export = build_export(
        request_id="r",
        subject=parse_subject("user:99"),
        facts=ProcessingFacts.from_mapping(FACTS),
        gathered=gathered,
        generated_at="t",
    )
    validate(export)
    assert export["found"] is False
    for columns, records in csv_tables(export).values():
        data = render_csv(columns, records)
        assert data.startswith(b"\xef\xbb\xbf")
        assert data.count(b"\r\n") == 1 and not records


def test_csv_survives_newlines_and_quotes() -> None:
    data = render_csv(["a", "b"], [{"a": 'say "hi"\nthere', "b": "x,y"}])
    assert _read_csv(data) == [{"a": 'say "hi"\nthere', "b": "x,y"}]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"purposes": []}, "processing.purposes"),
        ({"complaint": "  "}, "processing.complaint"),
        ({"rights": ["ok", ""]}, "processing.rights"),
        ({"controler": "typo"}, "processing.controler: unknown key"),
    ],
)
def test_processing_facts_checked(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        ProcessingFacts.from_mapping({**FACTS, **patch})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_output_dir_created_owner_only(tmp_path: Path) -> None:
    out = prepare_output_dir(tmp_path / "a" / "b")
    assert out.is_dir() and _mode(out) == 0o700
    written = write_private_file(out, "data.json", b"{}")
    assert _mode(out / "data.json") == 0o600
    assert written.sha256 == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert written.bytes == 2
    assert sorted(os.listdir(out)) == ["data.json"]  # no temporary left behind


def test_output_dir_refuses_non_empty_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o755)
    prepare_output_dir(out)  # empty: accepted, and its mode is not privacykit's to change
    assert _mode(out) == 0o755
    (out / "other.txt").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        prepare_output_dir(out)
    assert prepare_output_dir(out, force=True) == out
    assert _mode(out) == 0o755
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        prepare_output_dir(tmp_path / "file", force=True)


def test_force_into_a_shared_directory_never_changes_its_mode(tmp_path: Path) -> None:
    """A shared folder (group-writable, sticky) given with --force keeps its mode; what
    privacykit creates inside (a batch folder, files) is owner-only."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "colleague.txt").write_text("x")
    shared.chmod(0o1777)
    prepare_output_dir(shared, force=True)
    assert _mode(shared) == 0o1777
    folder = subject_dir(shared, "req-1")
    assert _mode(folder) == 0o700
    write_private_file(folder, "data.json", b"{}")
    assert _mode(folder / "data.json") == 0o600
    folder.chmod(0o750)  # a re-run writes into the folder again, without touching its mode
    assert subject_dir(shared, "req-1") == folder and _mode(folder) == 0o750
    assert _mode(shared) == 0o1777


def test_missing_parents_are_owner_only_even_with_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        out = prepare_output_dir(tmp_path / "p1" / "p2" / "out")
    finally:
        os.umask(old)
    for path in (tmp_path / "p1", tmp_path / "p1" / "p2", out):
        assert _mode(path) == 0o700, path
    assert make_private_dir(out) is False  # exists: nothing created, nothing changed


def test_subject_dir_refuses_a_planted_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = prepare_output_dir(tmp_path / "out")
    (out / "req-1").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="not a plain directory"):
        subject_dir(out, "req-1")


def test_batch_folders_named_by_case_reference_when_given() -> None:
    names = folder_names([("req-1", "DSAR-17"), ("req-2", None), ("req-3", "X"), ("req-4", "X")])
    assert names == ["DSAR-17", "req-2", "X-req-3", "X-req-4"]
    for bad in ("../x", ".hidden", "a/b", "jane doe", ""):
        with pytest.raises(UsageError, match="case reference"):
            folder_names([("req-1", bad)])
    with pytest.raises(LedgerError):
        folder_names([("../req", None)])


def test_private_file_overwrites_and_ignores_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / ".data.json.tmp").symlink_to(victim)
    (tmp_path / "data.json").write_text("old")
    write_private_file(tmp_path, "data.json", b"new")
    assert (tmp_path / "data.json").read_bytes() == b"new"
    assert victim.read_text() == "keep"
    with pytest.raises(ValueError):
        write_private_file(tmp_path, "../x", b"")


def test_ledger_view_withholds_addresses_but_keeps_the_rest() -> None:
    from privacykit.ledger.guard import PrivacyGuard
    from privacykit.playbooks.access import ledger_view

    record = {
        "schema": "privacykit.access-evidence/1",
        "processing": {
            "contact": "dpo@example.com",
            "purposes": ["support", "call +49 30 1234567 for details"],
            "controller": "Example Ltd",
        },
        "categories": [{"category": "x", "fields": ["attribute:lastOrder2024TotalValue", "tier"]}],
        "counts": {"users": 2},
    }
    view = ledger_view(record)
    PrivacyGuard().check(view)  # what the ledger's guard would refuse is gone
    assert view["processing"]["controller"] == "Example Ltd"
    assert view["processing"]["purposes"][0] == "support"
    assert view["processing"]["contact"].startswith("[not kept in the ledger; sha256 ")
    assert view["categories"][0]["fields"][1] == "tier"
    assert view["counts"] == {"users": 2}
    assert record["processing"]["contact"] == "dpo@example.com"  # the report's copy is intact


def test_shipped_playbook_loads_and_bad_copies_name_line_and_key(tmp_path: Path) -> None:
    from privacykit.errors import PlaybookError
    from privacykit.playbooks.access import AccessPolicy
    from privacykit.playbooks.loader import load_playbook

    shipped = Path(__file__).resolve().parent.parent / "playbooks" / "access.yaml"
    policy = AccessPolicy.from_playbook(load_playbook(shipped))
    assert policy.collect_events and policy.collect_tickets and policy.collect_compliance
    assert "url" in policy.user_exclude_fields
    assert set(policy.facts.values) == set(ART15_FIELDS)

    text = shipped.read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("  complaint: >-", "  complaint_typo: >-"), encoding="utf-8")
    with pytest.raises(PlaybookError) as info:
        load_playbook(broken)
    assert "processing.complaint_typo" in str(info.value) and "broken.yaml:" in str(info.value)

    no_events = tmp_path / "no-events.yaml"
    no_events.write_text(
        text.replace("  - collect_events ", "  # - collect_events ").replace(
            "name: access", "name: access-lite"
        ),
        encoding="utf-8",
    )
    assert not AccessPolicy.from_playbook(load_playbook(no_events)).collect_events

    erasure = Path(__file__).resolve().parent.parent / "playbooks" / "erasure.yaml"
    with pytest.raises(PlaybookError, match="not an access playbook"):
        AccessPolicy.from_playbook(load_playbook(erasure))


def test_export_that_breaks_its_schema_is_never_written(tmp_path: Path) -> None:
    from privacykit.errors import EvidenceError
    from privacykit.playbooks.access import AccessPolicy, Collected, deliver
    from privacykit.playbooks.discovery import Discovery
    from privacykit.playbooks.policy import DiscoveryPolicy

    gathered = _gathered()
    gathered.users[0]["id"] = "not-an-integer"
    subject = parse_subject("jane@example.com")
    policy = AccessPolicy(
        name="access",
        sha256="0" * 64,
        discovery=DiscoveryPolicy(),
        facts=ProcessingFacts.from_mapping(FACTS),
    )
    collected = Collected(Discovery(subject=subject), gathered, [], {})
    with pytest.raises(EvidenceError, match="/users/0/id"):
        deliver(collected, subject=subject, request_id="r", target=tmp_path, policy=policy)
    assert list(tmp_path.iterdir()) == []


def test_terminal_lines_count_in_words_and_name_no_person(tmp_path: Path) -> None:
    from privacykit.playbooks.access import AccessRun, SubjectResult

    done = SubjectResult(1, "sr1:x", "req-1", "data_found", out_dir=tmp_path / "a")
    done.counts = {"users": 1, "profiles": 2, "events": 0, "tickets": 1, "comments": 5}
    review = SubjectResult(2, "sr1:y", "req-2", "needs_review", reasons=["ambiguous"])
    lines = AccessRun(tmp_path, [done, review]).lines()
    assert lines == [
        f"#1 req-1: data found (1 user, 2 profiles, 0 events, 1 ticket, 5 comments, "
        f"0 attachments) -> prepared in {tmp_path / 'a'}",
        "#2 req-2: needs review: ambiguous",
        "2 request(s): 1 data found, 1 needs review",
    ]
