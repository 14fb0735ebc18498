"""The engine's foundations: the one clock, the application layer's preflight, and the
request session (open, record, finish; the playbook kept as an artifact)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from privacykit import clock
from privacykit.app import Home, load_config, make_client, open_app, preflight
from privacykit.errors import ConfigError, LedgerError, UsageError
from privacykit.ledger import Ledger
from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook
from privacykit.playbooks.request import (
    RequestSession,
    ledger_view,
    parse_received,
    restore_withheld,
    settle_owed_reports,
)

MOMENT = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)


def test_clock_is_replaceable_for_every_thread() -> None:
    seen: list[str] = []
    with clock.frozen(MOMENT):
        worker = threading.Thread(target=lambda: seen.append(clock.now_iso()))
        worker.start()
        worker.join()
        assert clock.now() == MOMENT
        assert clock.today() == date(2026, 3, 1)
    assert seen == ["2026-03-01T12:30:05Z"]
    assert clock.now() != MOMENT and clock.now().tzinfo is not None
    ticks = iter([MOMENT, MOMENT + timedelta(days=1)])
    with clock.use(lambda: next(ticks)):
        assert clock.now_iso() == "2026-03-01T12:30:05Z"
        assert clock.today() == date(2026, 3, 2)


def test_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        clock.iso(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        with clock.frozen(datetime(2026, 1, 1)):
            pass
    assert clock.parse_iso("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.parse_iso("2026-01-01T00:00:00") is None
    assert clock.parse_iso("not a time") is None


def test_the_ledger_stamps_entries_with_the_clock(ledger: Ledger) -> None:
    with clock.frozen(MOMENT):
        ref = ledger.subject_ref("user:1")
        rid = ledger.create_request("erasure", ref, received_at="2026-03-01")
    assert ledger.entries(rid)[0].ts.startswith("2026-03-01T12:30:05")


def test_preflight_names_the_credentials(sandbox: Any) -> None:
    env = sandbox.env()
    with make_client(load_config(env)) as client:
        me = preflight(client)
    assert me.role == "admin" and me.user_id > 0
    wrong = {**env, "ZENDESK_API_TOKEN": "not-the-token"}
    with make_client(load_config(wrong)) as client, pytest.raises(ConfigError) as caught:
        preflight(client)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "401" in message and "ZENDESK_API_TOKEN" in message and "ZENDESK_OAUTH_TOKEN" in message
    assert "ZENDESK_EMAIL" in message and "not-the-token" not in message
    assert [e["path"] for e in sandbox.request_log()] == ["/api/v2/users/me"] * 2


def test_preflight_refuses_end_users_and_the_anonymous_user() -> None:
    class Fake:
        def __init__(self, user: Any) -> None:
            self.user = user

        def me(self) -> Any:
            return self.user

    for user in ({"id": None, "role": "end-user"}, {"id": 7, "role": "end-user"}):
        with pytest.raises(ConfigError, match="ZENDESK_API_TOKEN"):
            preflight(Fake(user))
    assert preflight(Fake({"id": 7, "role": "agent"})).user_id == 7


def test_open_app_checks_credentials_before_the_ledger_exists(sandbox: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**sandbox.env(), "ZENDESK_API_TOKEN": "wrong", "PRIVACYKIT_HOME": str(home)}
    with pytest.raises(ConfigError):
        with open_app(env, command="test"):
            raise AssertionError("not reached")
    assert not home.exists()  # refused credentials leave no trace, not even an empty home
    env["ZENDESK_API_TOKEN"] = sandbox.env()["ZENDESK_API_TOKEN"]
    with open_app(env, command="test") as app:
        assert app.me is not None and app.home == Home(home)
        assert app.ledger.size == 0


def test_parse_received() -> None:
    with clock.frozen(MOMENT):
        assert parse_received("2026-03-01") == date(2026, 3, 1)
        assert parse_received(None) is None
        with pytest.raises(UsageError, match="future"):
            parse_received("2026-03-02")
        with pytest.raises(UsageError, match="--received must be a date"):
            parse_received("yesterday")


def test_ledger_view_withholds_and_the_playbook_restores() -> None:
    record = {"art19": ["dpo@acme.example", "Acme Analytics"], "n": 3, "why": "kept"}
    view = ledger_view(record)
    assert view["art19"][0].startswith("[not kept in the ledger; sha256 ")
    assert view["art19"][1] == "Acme Analytics" and view["n"] == 3
    playbook_data = {"policy": {"recipients": ["dpo@acme.example"]}}
    assert restore_withheld(view, playbook_data) == record


def test_session_opens_once_records_and_finishes(ledger: Ledger, monkeypatch: Any) -> None:
    monkeypatch.setenv("PRIVACYKIT_OPERATOR", "Dana DPO")
    book = load_playbook(builtin_playbook_dir() / "erasure.yaml")
    session = RequestSession.for_subject(ledger, "erasure", book, "user:5")
    session.info("discovery", {"users": 1})  # buffered: nothing is open yet
    assert session.request_id is None and ledger.size == 0
    rid = session.open()
    request = ledger.get_request(rid)
    assert (request.operator, request.status, request.playbook_name) == (
        "Dana DPO",
        "in_progress",
        "erasure",
    )
    (artifact,) = ledger.artifacts(rid)
    assert artifact.kind == "playbook" and artifact.sha256 == book.sha256
    session.record("soft_delete:user:5", "intent", {"user_id": 5})
    assert session.step_state(rid, "soft_delete:user:5") == "intent"
    session.record("soft_delete:user:5", "outcome", {"user_id": 5})
    assert session.step_state(rid, "soft_delete:user:5") == ledger.step_state(
        rid, "soft_delete:user:5"
    )
    assert session.step_outcome(rid, "soft_delete:user:5") == {"user_id": 5, "result": "ok"}
    done = session.finish("completed", {"outcome": "erased"}, produce_report=False)
    assert ledger.get_request(rid).status == "completed"
    evidence = [e for e in ledger.entries(rid) if e.step_key == "evidence"]
    assert evidence[-1].data == {"outcome": "erased", "status": "completed"}
    assert done.evidence_seq == evidence[-1].seq
    # A resumed session continues the same request (open statuses only).
    again = RequestSession.for_subject(ledger, "erasure", book, "user:5")
    assert again.request_id is None and not again.resumed
    assert settle_owed_reports(ledger) == []


def test_a_final_status_is_always_written_its_reason_in_the_ledgers_shape(
    ledger: Ledger,
) -> None:
    """A reason the guard would refuse (free text from anywhere) is withheld, not a final
    status that cannot be written: the request would stay in_progress on every run."""
    book = load_playbook(builtin_playbook_dir() / "erasure.yaml")
    session = RequestSession.for_subject(ledger, "erasure", book, "user:6")
    rid = session.open()
    session.finish("needs_review", {}, reason="asked by jane@example.com", produce_report=False)
    request = ledger.get_request(rid)
    assert request.status == "needs_review"
    assert (request.status_reason or "").startswith("[not kept in the ledger; sha256 ")


def test_report_follows_the_final_status_and_a_killed_run_is_settled(
    evidence_home: Path, monkeypatch: Any
) -> None:
    from privacykit import evidence

    book = load_playbook(builtin_playbook_dir() / "erasure.yaml")
    statuses: list[str] = []
    real = evidence.produce_report

    def spy(led: Any, rid: str, *args: Any, **kwargs: Any) -> Any:
        statuses.append(led.get_request(rid).status)
        return real(led, rid, *args, **kwargs)

    monkeypatch.setattr(evidence, "produce_report", spy)
    with Ledger.open(evidence_home) as led:
        session = RequestSession.for_subject(led, "erasure", book, "user:9", home=evidence_home)
        rid = session.open()
        done = session.finish("needs_review", {"outcome": "needs_review"}, reason="why")
        assert statuses == ["needs_review"]
        assert done.report_sha256 in {a.sha256 for a in led.artifacts(rid) if a.kind == "report"}
        assert not (evidence_home / "reports-owed" / rid).exists()

        # A run killed after the final status, before its report: the marker remains.
        other = RequestSession.for_subject(led, "erasure", book, "user:10", home=evidence_home)
        rid2 = other.open()
        monkeypatch.setattr(evidence, "produce_report", _killed)
        with pytest.raises(KeyboardInterrupt):
            other.finish("completed", {"outcome": "erased"})
        assert led.get_request(rid2).status == "completed"
        assert not [a for a in led.artifacts(rid2) if a.kind == "report"]
        monkeypatch.setattr(evidence, "produce_report", spy)
        assert settle_owed_reports(led) == [rid2]
        assert [a for a in led.artifacts(rid2) if a.kind == "report"]
        assert settle_owed_reports(led) == []


def test_a_deferred_report_stays_owed_until_signed_with_the_batchs_checkpoint(
    evidence_home: Path,
) -> None:
    """A batch defers its reports until every final status is written, then signs one
    checkpoint that each report names; until then the report is owed (intent, marker)."""
    book = load_playbook(builtin_playbook_dir() / "erasure.yaml")
    with Ledger.open(evidence_home) as led:
        sessions = [
            RequestSession.for_subject(led, "erasure", book, f"user:{n}", home=evidence_home)
            for n in (21, 22)
        ]
        rids = [session.open() for session in sessions]
        for session in sessions:
            done = session.finish("completed", {"outcome": "erased"}, defer_report=True)
            assert done.report_path is None and session.report_deferred
        for rid in rids:
            assert led.get_request(rid).status == "completed"
            assert (evidence_home / "reports-owed" / rid).exists()
            assert not [a for a in led.artifacts(rid) if a.kind == "report"]
        checkpoint = led.checkpoint()  # after every final status
        for session, rid in zip(sessions, rids, strict=True):
            signed = session.sign_report(checkpoint)
            assert not session.report_deferred
            assert not (evidence_home / "reports-owed" / rid).exists()
            outcome = [
                e for e in led.entries(rid) if (e.step_key, e.phase) == ("report", "outcome")
            ]
            assert [e.data["sha256"] for e in outcome] == [signed.report_sha256]
        assert len(led.checkpoints()) == 1  # both reports named the one checkpoint
        with pytest.raises(LedgerError):
            sessions[0].sign_report(checkpoint)  # nothing owed any more


def _killed(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt
