"""What a signed report states is exactly what the record and the ledger say.

Each test renders a record directly (``produce_report`` / ``reproduce_report``) and reads
the PDF's text with pypdf: the final status, the playbook actually used, "everything found
was erased" only when it is true, what was not done and why, interim and final reports,
closing reports, free texts restored from the playbook copy, and no signature at all over
a ledger that does not verify.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path
from typing import Any

import pypdf
import pytest

from privacykit.errors import EvidenceError, LedgerIntegrityError, UsageError
from privacykit.evidence import export_bundle, produce_report, reproduce_report
from privacykit.evidence.integrity import forget
from privacykit.playbooks.request import ledger_view

PLAYBOOK_SHA = "cd" * 32
DPO_CONTACT = "privacy@controller.example (data protection officer)"
EVERYTHING_ERASED = "none: everything found was erased"


def _flat(path: Path) -> str:
    reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return " ".join(text.split())


def _request(ledger: Any, kind: str = "erasure", status: str = "completed", **kw: Any) -> str:
    ref = ledger.subject_ref(f"email:{kind}-{status}@example.com")
    rid = ledger.create_request(
        kind,
        ref,
        received_at="2026-01-05",
        playbook_name=kw.pop("playbook_name", kind),
        playbook_sha256=kw.pop("playbook_sha256", PLAYBOOK_SHA),
        operator="dpo-office",
    )
    ledger.set_status(rid, "in_progress")
    ledger.record(rid, "soft_delete:user:7", "intent", {"user_id": 7})
    ledger.record(rid, "soft_delete:user:7", "outcome", {"status": 204})
    ledger.set_status(rid, status, kw.pop("reason", None))
    return rid


def _erasure(rid: str, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "privacykit.erasure-evidence/1",
        "request_id": rid,
        "status": "completed",
        "outcome": "erased",
        "reasons": [],
        "not_done": [],
        "gdpr": {"ground": "Art. 17(1)(a)", "exceptions": []},
        "searched": {"systems": ["Zendesk Support users"], "endpoints": [], "profile_sources": []},
        "counts": {"users": 1, "users_soft_deleted": 1, "users_permanently_deleted": 1},
        "users": [{"user_id": 7, "role": "end-user", "soft_deleted": True}],
        "profiles": [
            {"profile_id": "01HPROFILEAAAABBBBCCCCDDDD", "source_type": "webshop:customer"}
        ],
        "compliance": [],
        "playbook": {"name": "erasure", "sha256": PLAYBOOK_SHA},
    }
    record.update(overrides)
    return record


def _report(ledger: Any, home: Path, rid: str, kind: str, record: dict[str, Any]) -> str:
    return _flat(produce_report(ledger, rid, kind, record, home=home).path)


# --- status, playbook --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["completed", "needs_review", "pending_compliance"])
def test_the_report_states_the_final_status(ledger: Any, evidence_home: Path, status: str) -> None:
    rid = _request(ledger, status=status)
    outcome = {"completed": "erased"}.get(status, status)
    text = _report(
        ledger, evidence_home, rid, "erasure", _erasure(rid, status=status, outcome=outcome)
    )
    assert f"Status {status}" in text
    assert "in_progress" not in text


def test_a_record_whose_status_is_not_the_ledgers_is_refused(
    ledger: Any, evidence_home: Path
) -> None:
    rid = _request(ledger, status="in_progress")
    with pytest.raises(
        EvidenceError, match="says status completed but the ledger says in_progress"
    ):
        produce_report(ledger, rid, "erasure", _erasure(rid), home=evidence_home)
    assert not [a for a in ledger.artifacts(rid) if a.kind == "report"]


def test_the_playbook_actually_used_is_named_with_its_hash(
    ledger: Any, evidence_home: Path
) -> None:
    used = "ef" * 32
    rid = _request(ledger)
    text = _report(
        ledger,
        evidence_home,
        rid,
        "erasure",
        _erasure(rid, playbook={"name": "erase-agents", "sha256": used}),
    )
    assert f"Playbook erase-agents Playbook SHA-256 {used}" in text
    # The request row says otherwise: the report says so instead of silently picking one.
    assert f"Playbook the request was opened with erasure (SHA-256 {PLAYBOOK_SHA})" in text

    same = _request(ledger, status="completed", playbook_name="erase-agents", playbook_sha256=used)
    text = _report(
        ledger,
        evidence_home,
        same,
        "erasure",
        _erasure(same, playbook={"name": "erase-agents", "sha256": used}),
    )
    assert "opened with" not in text


# --- what was and was not done -----------------------------------------------------------


def test_everything_erased_only_when_nothing_is_left_undone(
    ledger: Any, evidence_home: Path
) -> None:
    rid = _request(ledger)
    text = _report(ledger, evidence_home, rid, "erasure", _erasure(rid))
    assert f"Exceptions relied on (Art. 17(3)) {EVERYTHING_ERASED}" in text
    assert "What was not done" not in text


def test_a_blocked_person_gets_a_plain_list_of_what_was_not_done_and_why(
    ledger: Any, evidence_home: Path
) -> None:
    rid = _request(ledger, status="needs_review", reason="open ticket")
    not_done = [
        {"item": "user 7: not deleted", "why": "requester of open ticket 42"},
        {"item": "profile 01HPROFILEAAAABBBBCCCCDDDD: not deleted", "why": "its user was kept"},
    ]
    record = _erasure(rid, status="needs_review", outcome="needs_review", not_done=not_done)
    text = _report(ledger, evidence_home, rid, "erasure", record)
    assert EVERYTHING_ERASED not in text
    assert "What was not done Not done Why" in text
    assert "user 7: not deleted requester of open ticket 42" in text
    assert "profile 01HPROFILEAAAABBBBCCCCDDDD: not deleted its user was kept" in text
    assert "not everything found was erased" in text


@pytest.mark.parametrize(
    ("status", "outcome"), [("needs_review", "needs_review"), ("completed", "erased")]
)
def test_no_erasure_claim_without_the_record_saying_so(
    ledger: Any, evidence_home: Path, status: str, outcome: str
) -> None:
    """A needs-review record that lists nothing, and an 'erased' record that lists
    something not done, never claim everything was erased."""
    rid = _request(ledger, status=status)
    not_done = [] if status == "needs_review" else [{"item": "profile p1", "why": "timeout"}]
    record = _erasure(rid, status=status, outcome=outcome, not_done=not_done)
    text = _report(ledger, evidence_home, rid, "erasure", record)
    assert EVERYTHING_ERASED not in text
    assert "What was not done" in text


def test_no_data_found_is_not_called_an_erasure(ledger: Any, evidence_home: Path) -> None:
    rid = _request(ledger)
    record = _erasure(rid, outcome="no_data_found", users=[], profiles=[])
    text = _report(ledger, evidence_home, rid, "erasure", record)
    assert "none: no personal data was found" in text
    assert EVERYTHING_ERASED not in text


# --- interim and final -------------------------------------------------------------------


def test_a_pending_compliance_report_is_interim(ledger: Any, evidence_home: Path) -> None:
    rid = _request(ledger, status="pending_compliance")
    record = _erasure(rid, status="pending_compliance", outcome="pending_compliance", interim=True)
    text = _report(ledger, evidence_home, rid, "erasure", record)
    assert "Interim erasure evidence (GDPR Art. 17): compliance deletion pending" in text
    assert "Interim report: the request is not finished" in text
    assert "Completed not yet (interim report)" in text
    assert EVERYTHING_ERASED not in text


def test_the_final_report_says_when_zendesk_reported_completion(
    ledger: Any, evidence_home: Path
) -> None:
    rid = _request(ledger)
    record = _erasure(
        rid,
        compliance_completed_at="2026-01-06T09:41:00Z",
        completed_at="2026-01-06T09:41:00Z",
        compliance=[
            {
                "user_id": 7,
                "application": "support",
                "status": "complete",
                "at": "2026-01-06T09:12:00Z",
            },
            {
                "user_id": 7,
                "application": "talk",
                "status": "complete",
                "at": "2026-01-06T09:41:00Z",
            },
        ],
    )
    text = _report(ledger, evidence_home, rid, "erasure", record)
    assert "Interim" not in text
    assert "Completed 2026-01-06T09:41:00Z" in text
    assert "Zendesk reported the deletion complete 2026-01-06T09:41:00Z" in text


# --- closing -----------------------------------------------------------------------------


def test_closing_report_states_ground_reason_and_date(ledger: Any, evidence_home: Path) -> None:
    rid = _request(ledger, kind="access", status="completed")
    record = {
        "schema": "privacykit.closing-evidence/1",
        "request_id": rid,
        "kind": "access",
        "ground": "withdrawn",
        "reason": "the subject withdrew the request by phone on 2026-01-06",
        "closed_at": "2026-01-06T10:00:00Z",
        "playbook": {"name": "access", "sha256": PLAYBOOK_SHA},
        "operator": "dpo-office",
    }
    text = _report(ledger, evidence_home, rid, "closing", record)
    assert "Closing report: access request withdrawn" in text
    assert "Ground withdrawn: Withdrawn by the data subject." in text
    assert "Reason recorded the subject withdrew the request by phone on 2026-01-06" in text
    assert "Closed 2026-01-06T10:00:00Z" in text
    assert f"Playbook access Playbook SHA-256 {PLAYBOOK_SHA}" in text
    assert "Art. 12(3) deadline no longer runs" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [({"ground": "bored"}, "needs a ground"), ({"reason": " "}, "needs the reason")],
)
def test_closing_records_without_ground_or_reason_are_refused(
    ledger: Any, evidence_home: Path, change: dict[str, Any], message: str
) -> None:
    rid = _request(ledger, kind="access")
    record = {"kind": "access", "ground": "mistake", "reason": "typo in the address", **change}
    with pytest.raises(EvidenceError, match=message):
        produce_report(ledger, rid, "closing", record, home=evidence_home)


# --- re-rendering restores what the ledger withheld ---------------------------------------


def _access_with_playbook(
    ledger: Any, home: Path, stored: str, used: str | None = None
) -> tuple[str, dict[str, Any]]:
    """An access request whose playbook (``used``, default ``stored``) hashes to the
    request's playbook_sha256, with ``stored`` kept as its playbook copy."""
    sha = hashlib.sha256((used or stored).encode()).hexdigest()
    rid = _request(ledger, kind="access", playbook_sha256=sha)
    copy = home / "playbook-copy.yaml"
    copy.write_text(stored)
    ledger.add_artifact(rid, copy, "playbook")
    record = {
        "schema": "privacykit.access-evidence/1",
        "request_id": rid,
        "status": "completed",
        "outcome": "data_found",
        "processing": {
            "Controller": "Controller Ltd, 1 Example Street",
            "Contact / data protection officer": DPO_CONTACT,
        },
        "playbook": {"name": "access", "sha256": sha},
    }
    ledger.record(rid, "evidence", "info", ledger_view(record))
    return rid, record


PLAYBOOK = f"""name: access
kind: access
facts:
  controller: Controller Ltd, 1 Example Street
  contact: "{DPO_CONTACT}"
"""


def test_rerendering_restores_free_texts_from_the_playbook_copy(
    ledger: Any, evidence_home: Path
) -> None:
    rid, record = _access_with_playbook(ledger, evidence_home, PLAYBOOK)
    stored = [e for e in ledger.entries(rid) if e.step_key == "evidence"][-1].data
    assert DPO_CONTACT not in str(stored)  # the ledger holds only its sha256
    original = _report(ledger, evidence_home, rid, "access", record)
    again = reproduce_report(ledger, rid, home=evidence_home)
    text = _flat(again.path)
    assert DPO_CONTACT in original and DPO_CONTACT in text
    assert "not kept in the ledger" not in text
    assert (again.restored_texts, again.unrecovered_texts) == (1, 0)


def test_a_playbook_copy_that_is_not_the_requests_is_never_used(
    ledger: Any, evidence_home: Path
) -> None:
    """The stored copy holds the very text, but its hash is not the request's playbook:
    nothing is restored from it, and the raw placeholder is not printed either."""
    rid, _ = _access_with_playbook(ledger, evidence_home, PLAYBOOK + "# edited\n", PLAYBOOK)
    again = reproduce_report(ledger, rid, home=evidence_home)
    text = _flat(again.path)
    assert DPO_CONTACT not in text
    assert "[not kept in the ledger; sha256" not in text
    assert "the playbook copy that held it is not available" in text
    assert (again.restored_texts, again.unrecovered_texts) == (0, 1)


# --- never sign over a ledger that does not verify ----------------------------------------


def _tamper_status(home: Path, rid: str) -> None:
    """What an attacker with file access does: drop the append-only triggers, edit the
    status, put the triggers back."""
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    try:
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'")
        saved = triggers.fetchall()
        for name, _ in saved:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE requests SET status = 'completed' WHERE request_id = ?", (rid,))
        for _, sql in saved:
            conn.execute(sql)
    finally:
        conn.close()


def test_nothing_is_signed_over_a_ledger_that_does_not_verify(
    ledger: Any, evidence_home: Path, tmp_path: Path
) -> None:
    rid = _request(ledger, status="needs_review")
    ledger.record(rid, "evidence", "info", {"outcome": "needs_review"})
    checkpoints = len(ledger.checkpoints())
    _tamper_status(evidence_home, rid)
    forget(ledger)
    record = _erasure(rid, status="completed")
    with pytest.raises(LedgerIntegrityError, match="refusing to sign evidence"):
        produce_report(ledger, rid, "erasure", record, home=evidence_home)
    with pytest.raises(LedgerIntegrityError, match="refusing to sign evidence"):
        reproduce_report(ledger, rid, home=evidence_home)
    with pytest.raises(LedgerIntegrityError, match="refusing to sign evidence"):
        export_bundle(ledger, tmp_path / "b.zip", request_ids=[rid], home=evidence_home)
    assert len(ledger.checkpoints()) == checkpoints  # no checkpoint signed either
    assert not [a for a in ledger.artifacts(rid) if a.kind == "report"]
    assert not (tmp_path / "b.zip").exists()


def test_a_status_edited_during_a_run_is_caught_without_a_second_full_verify(
    ledger: Any, evidence_home: Path
) -> None:
    first = _request(ledger)
    produce_report(ledger, first, "erasure", _erasure(first), home=evidence_home)
    calls = []
    real = ledger.verify
    ledger.verify = lambda **kw: calls.append(1) or real(**kw)  # type: ignore[method-assign]
    second = _request(ledger, status="needs_review")
    _tamper_status(evidence_home, second)
    with pytest.raises(LedgerIntegrityError, match="requests table says status 'completed'"):
        produce_report(ledger, second, "erasure", _erasure(second), home=evidence_home)
    assert calls == []  # caught by the per-request replay, not a full verification


def test_a_batch_verifies_the_ledger_once(ledger: Any, evidence_home: Path) -> None:
    calls = []
    real = ledger.verify
    ledger.verify = lambda **kw: calls.append(1) or real(**kw)  # type: ignore[method-assign]
    for _ in range(3):
        rid = _request(ledger)
        produce_report(ledger, rid, "erasure", _erasure(rid), home=evidence_home)
    assert calls == [1]


def test_unknown_request_is_a_usage_error(ledger: Any, evidence_home: Path) -> None:
    with pytest.raises(UsageError):
        produce_report(ledger, "req-20260101-00000000", "erasure", {}, home=evidence_home)


# --- tables ------------------------------------------------------------------------------


def test_ids_are_never_broken_inside_a_word(ledger: Any, evidence_home: Path) -> None:
    rid = _request(ledger)
    record = _erasure(
        rid,
        profiles=[
            {
                "profile_id": f"01HPROFILE{i:016d}",
                "source_type": "webshop:customer",
                "user_id": 7,
                "action": "deleted",
                "identifiers_removed": 2,
                "identifiers_kept": 0,
                "events_remain": False,
                "why": None,
            }
            for i in range(3)
        ],
    )
    path = produce_report(ledger, rid, "erasure", record, home=evidence_home).path
    lines = "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(path).pages).splitlines()
    assert sum("webshop:customer" in line for line in lines) == 3
    for i in range(3):
        assert sum(f"01HPROFILE{i:016d}" in line for line in lines) == 1


def test_request_session_and_evidence_agree_on_withheld_texts(
    ledger: Any, evidence_home: Path
) -> None:
    """The engine's RequestSession keeps the playbook copy and withholds the DPO contact
    from the ledger; `evidence report` puts the contact back from that copy."""
    from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook
    from privacykit.playbooks.request import RequestSession

    book = load_playbook(builtin_playbook_dir() / "access.yaml")
    contact = "privacy@example.com (data protection officer)"
    assert contact in book.path.read_text()  # type: ignore[union-attr]
    session = RequestSession.for_subject(ledger, "access", book, "user:77", home=evidence_home)
    rid = session.open()
    record = {
        "schema": "privacykit.access-evidence/1",
        "request_id": rid,
        "outcome": "data_found",
        "processing": {"Contact / data protection officer": contact},
        "playbook": {"name": book.name, "sha256": book.sha256},
    }
    session.finish("completed", record)
    assert contact not in str(ledger.entries(rid))
    again = reproduce_report(ledger, rid, home=evidence_home)
    assert (again.restored_texts, again.unrecovered_texts) == (1, 0)
    assert contact in _flat(again.path)


def test_a_batch_signs_one_checkpoint_for_all_its_reports(ledger: Any, evidence_home: Path) -> None:
    rids = [_request(ledger) for _ in range(3)]
    checkpoint = ledger.checkpoint()  # the batch's one checkpoint, after every final status
    before = len(ledger.checkpoints())
    for rid in rids:
        report = produce_report(
            ledger, rid, "erasure", _erasure(rid), home=evidence_home, checkpoint=checkpoint
        )
        assert report.checkpoint_size == checkpoint.size
        assert f"Checkpoint root (SHA-256) {checkpoint.root_hex}" in _flat(report.path)
    assert len(ledger.checkpoints()) == before
    # A checkpoint that does not cover the request is never printed as if it did.
    late = _request(ledger)
    report = produce_report(
        ledger, late, "erasure", _erasure(late), home=evidence_home, checkpoint=checkpoint
    )
    assert report.checkpoint_size > checkpoint.size


def test_a_closing_record_is_rerendered_as_a_closing_report(
    ledger: Any, evidence_home: Path
) -> None:
    rid = _request(ledger, kind="erasure", status="completed")
    record = {
        "schema": "privacykit.closing-evidence/1",
        "request_id": rid,
        "kind": "erasure",
        "ground": "mistake",
        "reason": "the address was mistyped; no such request",
        "closed_at": "2026-01-06T10:00:00Z",
    }
    ledger.record(rid, "evidence", "info", ledger_view(record))
    text = _flat(reproduce_report(ledger, rid, home=evidence_home).path)
    assert "Closing report: erasure request closed as opened by mistake" in text
    assert "Reason recorded the address was mistyped; no such request" in text


def test_reports_of_a_run_reference_the_runs_checkpoint(ledger: Any, evidence_home: Path) -> None:
    """ledger.run(): the batch signs once before its reports; each report names that
    checkpoint without being told, and signs no other."""
    with ledger.run() as run:
        rids = [_request(ledger) for _ in range(3)]
        checkpoint = run.checkpoint()
        before = len(ledger.checkpoints())
        for rid in rids:
            report = produce_report(ledger, rid, "erasure", _erasure(rid), home=evidence_home)
            assert report.checkpoint_size == checkpoint.size
        assert len(ledger.checkpoints()) == before
    assert run.final is not None and run.final.size == ledger.size  # the run's close
