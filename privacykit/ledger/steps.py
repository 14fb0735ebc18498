"""Steps of a request: intent before a destructive call, outcome after, and the state a
resumed run acts on (``none`` run it, ``intent`` reconcile first, ``done`` skip it).

Owns :class:`Step` and the step methods of :class:`~privacykit.ledger.Ledger`; the
entries themselves are written by :meth:`LedgerBase.record`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from privacykit.errors import HTTPStatusError, LedgerError
from privacykit.ledger.base import LedgerBase
from privacykit.ledger.records import StepInfo, StepState

__all__ = ["Step", "StepsMixin"]


def _definitely_not_applied(exc: BaseException) -> bool:
    """Did the failed call certainly leave Zendesk unchanged? A 4xx answer (including 429)
    means Zendesk refused it. Anything else (5xx, a dropped connection, a bug after the
    call, an interrupt) may have happened after the change was made."""
    return isinstance(exc, HTTPStatusError) and 400 <= exc.status_code < 500


class Step:
    """Handle for one step inside :meth:`Ledger.step`: call :meth:`done` with the outcome."""

    def __init__(self, ledger: LedgerBase, request_id: str, step_key: str, intent_seq: int) -> None:
        self.ledger = ledger
        self.request_id = request_id
        self.step_key = step_key
        self.intent_seq = intent_seq
        self.outcome_seq: int | None = None

    @property
    def finished(self) -> bool:
        return self.outcome_seq is not None

    def _outcome(self, result: str, data: dict[str, Any] | None) -> int:
        if self.finished:
            raise LedgerError(f"step {self.step_key} already has an outcome")
        payload = dict(data or {})
        payload["result"] = result
        self.outcome_seq = self.ledger.record(self.request_id, self.step_key, "outcome", payload)
        return self.outcome_seq

    def done(self, data: dict[str, Any] | None = None) -> int:
        """Record success (``result: ok``) with ids/statuses from Zendesk's answer."""
        return self._outcome("ok", data)

    def fail(self, data: dict[str, Any] | None = None, *, may_have_applied: bool = False) -> int:
        """Record failure: ``failed`` (certainly not applied, the step may be retried) or,
        with ``may_have_applied``, ``unknown`` (reconcile before repeating)."""
        return self._outcome("unknown" if may_have_applied else "failed", data)


class StepsMixin(LedgerBase):
    """Step methods of :class:`~privacykit.ledger.Ledger`."""

    def step_info(self, request_id: str, step_key: str) -> StepInfo:
        """Everything about one step: state, attempts, last intent and outcome data."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, phase, data FROM entries WHERE request_id = ? AND step_key = ? "
                "AND phase IN ('intent', 'outcome') ORDER BY seq",
                (request_id, step_key),
            ).fetchall()
        state: StepState = "none"
        attempts, intent, outcome, last_result = 0, None, None, None
        intent_seq = outcome_seq = None
        for seq, phase, text in rows:
            data = json.loads(text)
            if phase == "intent":
                attempts += 1
                intent, intent_seq, state = data, seq, "intent"
                outcome, outcome_seq, last_result = None, None, None
            else:
                outcome, outcome_seq = data, seq
                last_result = data.get("result", "ok")
                state = {"ok": "done", "failed": "none"}.get(last_result, "intent")  # type: ignore[assignment]
        return StepInfo(
            state=state,
            attempts=attempts,
            intent=intent,
            outcome=outcome,
            last_result=last_result,
            intent_seq=intent_seq,
            outcome_seq=outcome_seq,
        )

    def step_state(self, request_id: str, step_key: str) -> StepState:
        """``none`` (run it), ``intent`` (outcome unknown: reconcile with Zendesk before
        repeating anything destructive) or ``done`` (skip it)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT phase, data FROM entries WHERE request_id = ? AND step_key = ? "
                "AND phase IN ('intent', 'outcome') ORDER BY seq DESC LIMIT 1",
                (request_id, step_key),
            ).fetchone()
        if row is None:
            return "none"
        if row[0] == "intent":
            return "intent"
        result = json.loads(row[1]).get("result", "ok")
        return "done" if result == "ok" else "none" if result == "failed" else "intent"

    def step_outcome(self, request_id: str, step_key: str) -> dict[str, Any] | None:
        """The data of the step's successful outcome, or None unless it is ``done``."""
        info = self.step_info(request_id, step_key)
        return info.outcome if info.state == "done" else None

    @contextmanager
    def step(
        self,
        request_id: str,
        step_key: str,
        intent: dict[str, Any] | None = None,
        *,
        allow_repeat: bool = False,
    ) -> Iterator[Step]:
        """Record an intent (durably) before the block and an outcome after it::

            with ledger.step(rid, "soft_delete:user:12", {"user_id": 12}) as step:
                response = client.soft_delete_user(12)
                step.done({"status": 200})

        Leaving the block normally without an outcome records ``done`` with no data. If an
        exception escapes, the outcome is ``failed`` when Zendesk certainly did nothing
        (a 4xx answer: the step may be retried, ``step_state`` reads ``none``) and
        ``unknown`` otherwise (``step_state`` stays ``intent``: reconcile first). If even
        that cannot be written, the bare intent says the same thing.

        A step that is already ``done`` or in ``intent`` is refused unless
        ``allow_repeat`` (use it for idempotent steps, or after reconciling)."""
        state = self.step_state(request_id, step_key)
        if state != "none" and not allow_repeat:
            raise LedgerError(
                f"step {step_key} of {request_id} is already {state}; "
                + ("skip it" if state == "done" else "reconcile it with Zendesk first")
            )
        handle = Step(
            self, request_id, step_key, self.record(request_id, step_key, "intent", intent)
        )
        try:
            yield handle
        except BaseException as exc:
            if not handle.finished and self._conn is not None:
                result = "failed" if _definitely_not_applied(exc) else "unknown"
                data: dict[str, Any] = {"error": type(exc).__name__}
                if isinstance(exc, HTTPStatusError):
                    data["status"] = exc.status_code
                try:
                    handle._outcome(result, data)
                except Exception:  # noqa: BLE001 - never mask the step's own error
                    pass
            raise
        if not handle.finished:
            handle.done()
