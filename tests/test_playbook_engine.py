"""The step engine with a real ledger: intent/outcome, reconciliation, halts and pauses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from privacykit.errors import NetworkError, NotFoundError, ServerError, ValidationError
from privacykit.ledger import Ledger
from privacykit.playbooks.engine import Engine, Halt, RunContext, perform
from privacykit.playbooks.erasure import compliance_state
from privacykit.playbooks.loader import load_playbook_text


def _request(ledger: Ledger) -> str:
    return ledger.create_request("erasure", ledger.subject_ref("user:1"), received_at="2026-01-05")


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("DELETE", "https://x.test/api/v2/users/1"))


class Zendesk:
    """A tiny stand-in for Zendesk's state: whether the user is deleted, and the calls."""

    def __init__(
        self, *, fail_with: list[BaseException] | None = None, apply_before_fail: bool = False
    ):
        self.deleted = False
        self.calls = 0
        self.fail_with = list(fail_with or [])
        self.apply_before_fail = apply_before_fail

    def action(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail_with:
            if self.apply_before_fail:
                self.deleted = True
            raise self.fail_with.pop(0)
        self.deleted = True
        return {"user_id": 1, "status": 200}

    def reconcile(self) -> dict[str, Any] | None:
        return {"user_id": 1, "state": "deleted"} if self.deleted else None


def phases(ledger: Ledger, rid: str, key: str) -> list[tuple[str, str]]:
    return [(e.phase, e.data.get("result", "")) for e in ledger.entries(rid) if e.step_key == key]


def test_intent_then_outcome(ledger: Ledger) -> None:
    rid, zd = _request(ledger), Zendesk()
    done = perform(ledger, rid, "k", {"user_id": 1}, action=zd.action, reconcile=zd.reconcile)
    assert done.data == {"user_id": 1, "status": 200}
    assert phases(ledger, rid, "k") == [("intent", ""), ("outcome", "ok")]
    assert ledger.step_state(rid, "k") == "done"


def test_done_step_sends_nothing(ledger: Ledger) -> None:
    rid, zd = _request(ledger), Zendesk()
    perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    again = perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    assert again.already and zd.calls == 1


def test_bare_intent_is_reconciled_not_repeated(ledger: Ledger) -> None:
    rid, zd = _request(ledger), Zendesk()
    ledger.record(rid, "k", "intent", {"user_id": 1})  # the process died after sending
    zd.deleted = True
    result = perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    assert result.reconciled and zd.calls == 0
    assert ledger.step_state(rid, "k") == "done"


def test_bare_intent_without_effect_is_repeated(ledger: Ledger) -> None:
    rid, zd = _request(ledger), Zendesk()
    ledger.record(rid, "k", "intent", {"user_id": 1})  # died before sending
    perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    assert zd.calls == 1
    assert phases(ledger, rid, "k") == [
        ("intent", ""),
        ("outcome", "failed"),
        ("intent", ""),
        ("outcome", "ok"),
    ]


def test_lost_answer_after_the_effect_is_reconciled(ledger: Ledger) -> None:
    rid = _request(ledger)
    zd = Zendesk(fail_with=[NetworkError("dropped")], apply_before_fail=True)
    result = perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    assert result.reconciled and zd.calls == 1


def test_server_error_without_effect_is_retried_then_raised(ledger: Ledger) -> None:
    rid = _request(ledger)
    errors: list[BaseException] = [ServerError("boom", response=_response(503)) for _ in range(5)]
    zd = Zendesk(fail_with=errors)
    with pytest.raises(ServerError):
        perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile, attempts=5)
    assert zd.calls == 5
    assert ledger.step_state(rid, "k") == "none"


def test_refusal_is_recorded_failed_and_raised(ledger: Ledger) -> None:
    rid = _request(ledger)
    zd = Zendesk(fail_with=[ValidationError("open tickets", response=_response(422))])
    with pytest.raises(ValidationError):
        perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    assert phases(ledger, rid, "k") == [("intent", ""), ("outcome", "failed")]
    assert ledger.step_state(rid, "k") == "none"


def test_not_found_with_no_effect_is_raised(ledger: Ledger) -> None:
    rid = _request(ledger)
    zd = Zendesk(fail_with=[NotFoundError("gone", response=_response(404))])
    with pytest.raises(NotFoundError):
        perform(ledger, rid, "k", {}, action=zd.action, reconcile=zd.reconcile)
    assert zd.calls == 1


BOOK = load_playbook_text(
    "schema: privacykit.playbook/1\nname: t\nkind: erasure\n"
    "art19_recipients: {none_reason: none}\n"
    "steps: [resolve_subject, discover, check_safety, soft_delete_users, "
    "permanently_delete_users, evidence]\n"
)


def _engine(halt_at: str | None = None) -> tuple[Engine, list[str]]:
    ran: list[str] = []

    def make(name: str) -> Any:
        def step(ctx: RunContext, _step: Any) -> Halt | None:
            ran.append(name)
            return Halt("needs_review", "needs_review", ("x",)) if name == halt_at else None

        return step

    functions = {name: make(name) for name in BOOK.step_names()}
    functions["poll_compliance"] = make("poll_compliance")
    return Engine(BOOK, functions), ran


def test_engine_runs_steps_in_order() -> None:
    engine, ran = _engine()
    assert engine.run(RunContext())
    assert ran == BOOK.step_names()


def test_halt_skips_to_the_final_steps() -> None:
    engine, ran = _engine(halt_at="check_safety")
    ctx = RunContext()
    assert engine.run(ctx)
    assert ran == ["resolve_subject", "discover", "check_safety", "evidence"]
    assert ctx.halt is not None and ctx.halt.reasons == ("x",)


def test_pause_and_continue() -> None:
    engine, ran = _engine()
    ctx = RunContext()
    assert not engine.run(ctx, pause_before={"permanently_delete_users"})
    assert ran[-1] == "soft_delete_users"
    assert engine.next_step(ctx) == "permanently_delete_users"
    assert engine.run(ctx)
    assert ran[-2:] == ["permanently_delete_users", "evidence"]


def test_compliance_state() -> None:
    rows = [
        {"application": "all", "action": "request_deletion", "created_at": "t0"},
        {"application": "support", "action": "started", "created_at": "t1"},
        {"application": "support", "action": "complete", "created_at": "t2"},
        {"application": "chat", "action": "started", "created_at": "t3"},
    ]
    complete, apps = compliance_state(rows, ["support"])
    assert not complete
    assert apps == {
        "chat": {"status": "started", "at": "t3"},
        "support": {"status": "complete", "at": "t2"},
    }
    rows.append({"application": "chat", "action": "complete", "created_at": "t4"})
    assert compliance_state(rows, ["support"])[0]
    assert not compliance_state(rows, ["support", "talk"])[0], "an expected app never reported"
    assert not compliance_state(rows[:1])[0], "nothing but the request is not complete"
