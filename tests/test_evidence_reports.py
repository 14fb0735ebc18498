"""Evidence reports end to end with a real ledger: every kind renders (hostile input too),
is signed and stored, states what the issue asks for, and never shows the subject's
identifiers or the API token."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pypdf
import pytest

from privacykit.errors import EvidenceError, UsageError
from privacykit.evidence import (
    Report,
    load_keys,
    produce_report,
    reproduce_report,
    request_reports,
    validate_signed_pdf,
)
from privacykit.evidence.context import WITHHELD, _deadline_chart
from privacykit.evidence.render import MAX_VALUE_CHARS, markup_to_pdf, render_markup

SUBJECT_EMAIL = "jane.doe@example.com"
SUBJECT_EXT = "CRM-884412"
API_TOKEN = "zd-api-token-4f1c9b7e2a6d"

HOSTILE = [
    "<font size=90>BIG</font>",
    '<img src="http://127.0.0.1:9/track.png" width="500"/>',
    '<a href="https://evil.example/">click</a>',
    "</para><para>&amp; &lt; &#0; &unknown; ]]>",
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>&e;',
    "{{ 7*7 }} {% if true %}jinja{% endif %}",
    "nul\x00 esc\x1b[31m bell\x07 override\u202egnirts lone\ud800surrogate",
]
RTL = "שלום עולם مرحبا بالعالم"
NON_LATIN = "Ελληνικά Кириллица 数据保护 😀 e\u0301"


def _text(path: Path | bytes) -> str:
    source = path if isinstance(path, Path) else __import__("io").BytesIO(path)
    reader = pypdf.PdfReader(source)
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _new_request(ledger: Any, kind: str = "erasure", **kwargs: Any) -> tuple[str, str]:
    ref = ledger.subject_ref(f"email:{SUBJECT_EMAIL}")
    rid = ledger.create_request(
        kind,
        ref,
        received_at=kwargs.pop("received_at", "2024-05-02"),
        playbook_name=f"{kind}-default",
        playbook_sha256="ab" * 32,
        operator="dpo-office",
        **kwargs,
    )
    ledger.record(rid, "discover", "intent", {"queries": 3})
    ledger.record(rid, "discover", "outcome", {"users": 2})
    return rid, ref


def erasure_record(rid: str, ref: str, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "privacykit.erasure-evidence/1",
        "request_id": rid,
        "subject_ref": ref,
        "outcome": "erased",
        "reasons": ["agent or admin users are never erased by default: user 12 (admin)"],
        "gdpr": {
            "ground": "Art. 17(1)(a)",
            "exceptions": [
                {
                    "article": "Art. 17(3)(b)",
                    "kept": "identifier type 'member_id' on profiles",
                    "why": "membership records kept for 6 years under tax law",
                }
            ],
        },
        "searched": {
            "systems": ["Zendesk Support users", "Sunshine profiles"],
            "endpoints": ["GET /api/v2/users/search", "GET /api/v2/user_profiles"],
            "profile_sources": ["webshop:customer"],
        },
        "counts": {
            "users": 2,
            "identities": 3,
            "profiles": 2,
            "profiles_scrubbed": 1,
            "profiles_deleted": 1,
            "profiles_retained": 0,
            "users_soft_deleted": 2,
            "users_permanently_deleted": 2,
        },
        "users": [
            {
                "user_id": 9001,
                "role": "end-user",
                "identities": 2,
                "profiles": 1,
                "soft_deleted": True,
                "permanently_deleted": True,
                "blocking_tickets": [],
            }
        ],
        "profiles": [
            {
                "profile_id": "01HZXPROFILE0001",
                "source_type": "webshop:customer",
                "user_id": 9001,
                "action": "scrubbed",
                "identifiers_removed": 2,
                "identifiers_kept": 1,
                "events_remain": True,
                "why": "Art. 17(3)(b)",
            }
        ],
        "compliance": [
            {"user_id": 9001, "application": "support", "status": "complete", "at": "2024-05-03"}
        ],
        "steps": [
            {"step": "soft_delete:user:9001", "at": "2024-05-02T10:00:01Z", "outcome": "204"},
            {"step": "permanent_delete:user:9001", "at": "2024-05-02T10:00:02Z", "outcome": "200"},
        ],
        "art19_recipients": {
            "recipients": ["Payment processor (DPA 2021-07)"],
            "none_reason": None,
        },
        "playbook": {"name": "erasure-default", "sha256": "ab" * 32},
        "tool_version": "0.1.0",
        "operator": "dpo-office",
        "started_at": "2024-05-02T10:00:00Z",
        "completed_at": "2024-05-02T10:00:05Z",
    }
    record.update(overrides)
    return record


def test_erasure_report_is_signed_stored_and_complete(ledger: Any, evidence_home: Path) -> None:
    rid, ref = _new_request(ledger)
    ledger.record(rid, "evidence", "info", {"outcome": "erased"})
    report = produce_report(ledger, rid, "erasure", erasure_record(rid, ref), home=evidence_home)

    assert isinstance(report, Report)
    path, sha = report  # unpacks as (path, sha256) for callers that want a pair
    assert path.exists() and path.parent == evidence_home / "artifacts"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    artifact_entries = [e for e in ledger.entries(rid) if e.step_key == "ledger:artifact"]
    assert artifact_entries[-1].data["sha256"] == sha
    assert request_reports(ledger, rid)[0]["sha256"] == sha

    keys = load_keys(evidence_home)
    assert validate_signed_pdf(path.read_bytes(), [keys.certificate]).ok

    text = _text(path)
    checkpoint = ledger.latest_checkpoint()
    entries = ledger.entries(rid)
    evidence_seq = [e.seq for e in entries if e.step_key == "evidence"][0]
    for expected in (
        "Erasure evidence (GDPR Art. 17)",
        rid,
        ref,
        "2024-05-02",  # received
        "2024-06-02",  # due: one month later
        "Art. 17(1)(a)",
        "Art. 17(3)(b)",
        "membership records kept for 6 years under tax law",
        "GET /api/v2/users/search",
        "Sunshine profiles",
        "soft_delete:user:9001",
        "permanent_delete:user:9001",
        "Payment processor (DPA 2021-07)",
        "support",
        "complete",
        "erasure-default",
        "ab" * 32,
        "dpo-office",
        "privacykit 0.1.0",
        f"#{entries[0].seq} to #{evidence_seq} (4 entries)",
        checkpoint.root_hex,
        keys.fingerprint,
    ):
        assert expected in text.replace("\n", " ") or expected in text, expected
    # The checkpoint printed covers the request's evidence entry; the artifact entry that
    # stores the report itself necessarily comes after it.
    assert report.checkpoint_size == checkpoint.size >= evidence_seq
    assert entries[-1].step_key == "ledger:artifact" and entries[-1].seq > checkpoint.size


def test_art19_none_reason_is_stated(ledger: Any, evidence_home: Path) -> None:
    rid, ref = _new_request(ledger)
    record = erasure_record(
        rid, ref, art19_recipients={"recipients": [], "none_reason": "data never disclosed"}
    )
    text = _text(produce_report(ledger, rid, "erasure", record, home=evidence_home).path)
    assert "No recipients to notify: data never disclosed" in text.replace("\n", " ")


@pytest.mark.parametrize("kind", ["erasure", "access", "audit"])
def test_every_kind_renders_hostile_long_rtl_and_non_latin_values(
    kind: str, ledger: Any, evidence_home: Path
) -> None:
    rid, ref = _new_request(ledger, kind)
    long_token = "X" * 100_000
    many_steps = [
        {"step": f"step:{i}:" + "y" * 40, "at": "2024-05-02T10:00:00Z", "outcome": HOSTILE[i % 7]}
        for i in range(400)
    ]
    record: dict[str, Any] = {
        "schema": f"privacykit.{kind}-evidence/1",
        "request_id": rid,
        "outcome": HOSTILE[0],
        "reasons": [*HOSTILE, RTL, NON_LATIN, long_token],
        "counts": {"users": HOSTILE[1], HOSTILE[0]: 3},
        "users": [{"user_id": 1, "role": HOSTILE[1], HOSTILE[2]: RTL}],
        "steps": many_steps,
        "searched": {"systems": [NON_LATIN], "endpoints": [HOSTILE[3]]},
        "checks": [{"id": HOSTILE[0], "status": RTL, "detail": long_token}],
        "findings": [HOSTILE[4]],
        "summary": {HOSTILE[5]: long_token},
        "processing": {"controller": HOSTILE[0], "purposes": [RTL, NON_LATIN]},
        "categories": [{"category": HOSTILE[1], "records": 1, "fields": [HOSTILE[0]]}],
        "gdpr": {"ground": HOSTILE[0], "exceptions": [{"article": RTL, "kept": long_token}]},
        "art19_recipients": {"recipients": [HOSTILE[2]], "none_reason": None},
        "unknown_nested": {"deeper": [{"x": HOSTILE[6]}, [1, [2, [3, {"y": RTL}]]]]},
        HOSTILE[0]: HOSTILE[1],
    }
    report = produce_report(ledger, rid, kind, record, home=evidence_home)
    data = report.path.read_bytes()
    assert validate_signed_pdf(data, [load_keys(evidence_home).certificate]).ok
    text = _text(report.path)
    flat = text.replace("\n", "")

    # Markup printed literally: nothing was interpreted as reportlab or jinja markup.
    assert "<font size=90>BIG</font>" in flat
    assert '<img src="http://127.0.0.1:9/track.png"' in flat
    assert "{{ 7*7 }}" in flat and "{% if true %}jinja{% endif %}" in flat
    assert "&unknown;" in flat
    # Control characters and bidi overrides are shown, not obeyed.
    assert "\\u202e" in flat and "\\u0000" in flat and "\\u001b" in flat
    # Right-to-left text is present as text. It is drawn in logical order (reportlab's bidi
    # needs the optional rlbidi package), which pypdf's extraction reads back reversed.
    assert "שלום" in text or "שלום"[::-1] in text
    assert "مرحبا" in text or "مرحبا"[::-1] in text
    # A 100 000-character value is cut visibly instead of overflowing the page.
    assert "more characters not shown" in flat
    assert "X" * (MAX_VALUE_CHARS + 1) not in flat
    # Nothing that fetches or acts: no images, links, scripts, launch actions.
    for forbidden in (b"/Subtype /Image", b"/URI", b"/JavaScript", b"/Launch", b"/Link"):
        assert forbidden not in data, forbidden
    assert len(pypdf.PdfReader(report.path).pages) > 3  # 400 steps wrapped onto pages


@pytest.mark.parametrize("kind", ["erasure", "access", "audit"])
def test_empty_record_renders_with_dashes(kind: str, ledger: Any, evidence_home: Path) -> None:
    rid, _ = _new_request(ledger, kind)
    text = _text(produce_report(ledger, rid, kind, {}, home=evidence_home).path)
    assert rid in text and "—" in text


def test_unknown_fields_appear_under_further_details(ledger: Any, evidence_home: Path) -> None:
    rid, ref = _new_request(ledger)
    record = erasure_record(
        rid, ref, retention_review={"next_review": "2025-01-01", "owner": "legal"}
    )
    text = _text(produce_report(ledger, rid, "erasure", record, home=evidence_home).path)
    assert "Further details" in text
    assert "Retention review" in text and "2025-01-01" in text


def test_subject_identifiers_and_api_token_never_reach_the_pdf(
    ledger: Any, evidence_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feed the subject's email (any case), external id and the API token into every path a
    careless record could carry them: the renderer must withhold all of them."""
    monkeypatch.setenv("ZENDESK_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("ZENDESK_EMAIL", "agent@controller.example")
    ref = ledger.subject_ref(f"email:{SUBJECT_EMAIL}")
    rid = ledger.create_request("erasure", ref, received_at="2024-05-02", operator="dpo-office")
    # The ledger's second identity of the same person: an external id.
    assert ledger.subject_ref(f"ext:{SUBJECT_EXT.lower()}") != ref
    ext_ref = ledger.subject_ref(f"ext:{SUBJECT_EXT.lower()}")
    rid_ext = ledger.create_request("access", ext_ref, received_at="2024-05-02")
    leaky = {
        "operator": SUBJECT_EMAIL,
        "reasons": [f"requested by {SUBJECT_EMAIL.upper()} on the phone", f"token {API_TOKEN}"],
        "steps": [{"step": "lookup", "at": "now", "outcome": f"found <{SUBJECT_EMAIL}>"}],
        "contact": SUBJECT_EMAIL,
        "debug": {"auth": f"{'agent@controller.example'}/token:{API_TOKEN}"},
        "users": [{"user_id": 1, "role": "end-user", "email": SUBJECT_EMAIL}],
    }
    erasure = produce_report(
        ledger, rid, "erasure", erasure_record(rid, ref, **leaky), home=evidence_home
    )
    access_record = {
        "schema": "privacykit.access-evidence/1",
        "outcome": "data_found",
        "reasons": [f"external id {SUBJECT_EXT} matched", SUBJECT_EXT],
        "export": {"file": f"{SUBJECT_EXT}.json", "token": API_TOKEN},
    }
    access = produce_report(ledger, rid_ext, "access", access_record, home=evidence_home)
    for report in (erasure, access):
        raw = report.path.read_bytes()
        text = _text(report.path)
        for secret in (SUBJECT_EMAIL, SUBJECT_EMAIL.upper(), API_TOKEN, SUBJECT_EXT):
            assert secret not in text, secret
            assert secret.lower() not in text.lower(), secret
            assert secret.encode() not in raw, secret
        assert WITHHELD in text.replace("\n", " ")
    assert "***" in _text(erasure.path)


def test_audit_report_charts_open_requests_by_days_to_deadline(
    ledger: Any, evidence_home: Path
) -> None:
    today = dt.date.today()
    overdue, _ = _new_request(ledger, "erasure", received_at=today - dt.timedelta(days=45))
    soon, _ = _new_request(ledger, "access", received_at=today - dt.timedelta(days=25))
    fresh, _ = _new_request(ledger, "erasure", received_at=today)
    audit, _ = _new_request(ledger, "audit", received_at=today)
    record = {
        "schema": "privacykit.audit-evidence/1",
        "checks": [{"id": "deadline.overdue", "severity": "high", "findings": 1}],
        "findings": [{"check": "deadline.overdue", "request_id": overdue, "message": "overdue"}],
    }
    text = _text(produce_report(ledger, audit, "audit", record, home=evidence_home).path)
    flat = text.replace("\n", " ")
    assert "Open requests by days left" in flat
    for label in ("overdue", "0-7 days", "8-14 days", "22-31 days", "> 31 days"):
        assert label in flat, label
    for rid in (overdue, soon, fresh):
        assert rid in flat
    assert "deadline.overdue" in flat


def test_deadline_buckets() -> None:
    rows = [{"days_left": d} for d in (-3, -1, 0, 7, 8, 20, 31, 32, 90)] + [{"days_left": None}]
    assert _deadline_chart(rows) == [
        {"label": "overdue", "value": 2},
        {"label": "0-7 days", "value": 2},
        {"label": "8-14 days", "value": 1},
        {"label": "15-21 days", "value": 1},
        {"label": "22-31 days", "value": 1},
        {"label": "> 31 days", "value": 2},
    ]


def test_audit_record_may_bring_its_own_open_requests(ledger: Any, evidence_home: Path) -> None:
    audit, _ = _new_request(ledger, "audit")
    record = {"open_requests": [{"request_id": "req-given-1", "kind": "erasure", "days_left": -4}]}
    text = _text(produce_report(ledger, audit, "audit", record, home=evidence_home).path)
    assert "req-given-1" in text


def test_dpo_can_change_wording_with_template_override(
    ledger: Any, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "my-templates"
    override.mkdir()
    (override / "erasure.xml.j2").write_text(
        '{% extends "_base.xml.j2" %}\n'
        "{% block title %}Löschnachweis (Art. 17 DSGVO){% endblock %}\n"
        "{% block body %}<p>Gelöscht: {{ record.counts.users }} Nutzer.</p>{% endblock %}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVACYKIT_TEMPLATES", str(override))
    rid, ref = _new_request(ledger)
    text = _text(
        produce_report(ledger, rid, "erasure", erasure_record(rid, ref), home=evidence_home).path
    )
    assert "Löschnachweis (Art. 17 DSGVO)" in text
    assert "Gelöscht: 2 Nutzer." in text
    # Other kinds still come from the shipped templates.
    rid2, _ = _new_request(ledger, "access")
    assert "Access evidence" in _text(
        produce_report(ledger, rid2, "access", {}, home=evidence_home).path
    )


def test_override_directory_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRIVACYKIT_TEMPLATES", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="PRIVACYKIT_TEMPLATES"):
        render_markup("erasure.xml.j2", {})


def test_template_cannot_smuggle_entities_or_unknown_elements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EvidenceError, match="DOCTYPE"):
        markup_to_pdf('<!DOCTYPE r [<!ENTITY x "y">]><report>&x;</report>')
    with pytest.raises(EvidenceError, match="unknown element"):
        markup_to_pdf('<report><img src="x"/></report>')
    with pytest.raises(EvidenceError, match="not allowed inside text"):
        markup_to_pdf('<report><p>a <font size="90">b</font></p></report>')
    with pytest.raises(EvidenceError, match="malformed"):
        markup_to_pdf("<report><p>unclosed</report>")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "erasure.xml.j2").write_text("{% if %}", encoding="utf-8")
    monkeypatch.setenv("PRIVACYKIT_TEMPLATES", str(broken))
    with pytest.raises(EvidenceError, match="erasure.xml.j2"):
        render_markup("erasure.xml.j2", {})


def test_layout_is_deterministic_for_the_same_markup() -> None:
    markup = (
        '<report title="t"><h1>Title</h1><p>Body</p><table><tr><td>x</td></tr></table></report>'
    )
    assert markup_to_pdf(markup) == markup_to_pdf(markup)


def test_kind_must_match_the_request(ledger: Any, evidence_home: Path) -> None:
    rid, ref = _new_request(ledger, "erasure")
    with pytest.raises(UsageError, match="erasure request"):
        produce_report(ledger, rid, "access", {}, home=evidence_home)
    with pytest.raises(UsageError):
        produce_report(ledger, "req-20240101-deadbeef", "erasure", {}, home=evidence_home)
    with pytest.raises(UsageError):
        produce_report(ledger, rid, "invoice", {}, home=evidence_home)


def test_first_report_creates_keys_when_none_exist(ledger: Any, home: Path) -> None:
    rid, ref = _new_request(ledger)
    report = produce_report(ledger, rid, "erasure", erasure_record(rid, ref), home=home)
    keys = load_keys(home)
    assert report.signer_fingerprint == keys.fingerprint


def test_reproduce_from_the_ledgers_evidence_entry(ledger: Any, evidence_home: Path) -> None:
    rid, ref = _new_request(ledger)
    with pytest.raises(EvidenceError, match="no evidence record"):
        reproduce_report(ledger, rid, home=evidence_home)
    ledger.record(rid, "evidence", "info", {"outcome": "no_data_found", "counts": {"users": 0}})
    report = reproduce_report(ledger, rid, home=evidence_home)
    assert "no_data_found" in _text(report.path)
    assert len(request_reports(ledger, rid)) == 1


def test_reports_from_concurrent_worker_threads_are_all_valid(
    ledger: Any, evidence_home: Path
) -> None:
    """The erasure engine produces reports from worker threads."""
    from concurrent.futures import ThreadPoolExecutor

    requests = [_new_request(ledger) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(
            pool.map(
                lambda pair: produce_report(
                    ledger, pair[0], "erasure", erasure_record(*pair), home=evidence_home
                ),
                requests,
            )
        )
    cert = load_keys(evidence_home).certificate
    for (rid, _), report in zip(requests, reports, strict=True):
        assert validate_signed_pdf(report.path.read_bytes(), [cert]).ok
        assert rid in _text(report.path)
