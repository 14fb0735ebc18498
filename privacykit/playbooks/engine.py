"""The step engine: runs a playbook's steps in order and makes destructive calls resumable.

Owns two things every playbook kind uses:

* :class:`Engine` runs the steps a playbook lists, each mapped by name to a function the
  kind provides. A step can halt the run (:class:`Halt`: later steps are skipped except the
  ``final`` ones, such as ``evidence``), and a run can pause before named steps so a batch
  pipeline can hand the rest to another stage (e.g. the permanent-deletion workers) and
  continue later with the same context.
* :func:`perform` wraps one destructive Zendesk call with the ledger: an ``intent`` entry
  (committed to disk) before the call and an ``outcome`` after it. If the ledger already
  says the step is done, nothing is sent. If it holds an intent without an outcome (a
  crash, a dropped connection), Zendesk's state is checked first (``reconcile``) and the
  call is repeated only if it certainly did not happen. The Zendesk client never retries
  non-idempotent calls blindly; this is where they are reconciled instead.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from privacykit.errors import (
    HTTPStatusError,
    NetworkError,
    NotFoundError,
    PlaybookError,
    ServerError,
)
from privacykit.playbooks.loader import Playbook, Step

__all__ = [
    "Engine",
    "Halt",
    "Performed",
    "RunContext",
    "StepFunction",
    "StepLedger",
    "perform",
]


@dataclass(frozen=True)
class Halt:
    """Returned by a step to stop the run: ``status`` is the request status to end in,
    ``outcome`` the evidence outcome, ``reasons`` why (ids and counts only)."""

    status: str
    outcome: str
    reasons: tuple[str, ...] = ()


@dataclass
class RunContext:
    """Where one request is in its playbook. Kinds subclass it with their own state."""

    cursor: int = 0
    halt: Halt | None = None
    paused_at: str | None = None
    finished: bool = False
    steps_run: list[str] = field(default_factory=list)


StepFunction = Callable[[Any, Step], "Halt | None"]


class Engine:
    """Runs the steps of ``playbook`` using ``functions`` (step name -> function).

    ``final`` steps run even after a halt (evidence must always be recorded)."""

    def __init__(
        self,
        playbook: Playbook,
        functions: Mapping[str, StepFunction],
        *,
        final: Collection[str] = ("evidence",),
    ) -> None:
        missing = [step.name for step in playbook.steps if step.name not in functions]
        if missing:
            # The loader only accepts registered step names, so this is a programming error
            # in a kind's registry rather than in the operator's file.
            raise PlaybookError(
                f"no implementation for step(s) {', '.join(missing)}",
                file=str(playbook.path) if playbook.path else None,
            )
        self.playbook = playbook
        self.functions = dict(functions)
        self.final = frozenset(final)

    def run(self, ctx: RunContext, *, pause_before: Collection[str] = ()) -> bool:
        """Run from ``ctx.cursor``. Returns True when the playbook is finished, False when
        it paused before a step in ``pause_before`` (call again to continue from there)."""
        steps = self.playbook.steps
        while ctx.cursor < len(steps):
            step = steps[ctx.cursor]
            if ctx.halt is not None and step.name not in self.final:
                ctx.cursor += 1
                continue
            if step.name in pause_before and ctx.paused_at != step.name:
                ctx.paused_at = step.name
                return False
            result = self.functions[step.name](ctx, step)
            ctx.steps_run.append(step.name)
            if isinstance(result, Halt) and ctx.halt is None:
                ctx.halt = result
            ctx.cursor += 1
        ctx.finished = True
        return True

    def next_step(self, ctx: RunContext) -> str | None:
        steps = self.playbook.steps
        return steps[ctx.cursor].name if ctx.cursor < len(steps) else None


class StepLedger(Protocol):
    """The part of :class:`privacykit.ledger.Ledger` that :func:`perform` needs."""

    def record(
        self, request_id: str, step_key: str, phase: str, data: dict[str, Any] | None = None
    ) -> int: ...
    def step_state(self, request_id: str, step_key: str) -> str: ...
    def step_outcome(self, request_id: str, step_key: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Performed:
    """How a destructive step ended: ``data`` is its outcome data; ``reconciled`` when
    Zendesk's state showed it had already happened; ``already`` when the ledger said so."""

    data: dict[str, Any]
    reconciled: bool = False
    already: bool = False


def _status_of(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, HTTPStatusError):
        data["status"] = exc.status_code
    return data


def perform(
    ledger: StepLedger,
    request_id: str,
    step_key: str,
    intent: dict[str, Any],
    *,
    action: Callable[[], dict[str, Any]],
    reconcile: Callable[[], dict[str, Any] | None],
    attempts: int = 5,
) -> Performed:
    """Do one destructive call at most once as far as Zendesk is concerned.

    ``action`` makes the call and returns outcome data (ids/statuses only). ``reconcile``
    looks at Zendesk's state and returns outcome data if the call's effect is already
    there, else None. Errors:

    * an answer that certainly changed nothing (4xx other than 404) is recorded as
      ``failed`` and raised (the caller decides, e.g. 422 open tickets -> needs review);
    * 404, 5xx and network errors leave the outcome unknown: ``reconcile`` decides; if the
      effect is absent the attempt is recorded ``failed`` and repeated (at most
      ``attempts`` times), then the last error is raised;
    * anything else (a crash, an interrupt) leaves the bare intent, which the next run
      reconciles."""
    state = ledger.step_state(request_id, step_key)
    if state == "done":
        return Performed(ledger.step_outcome(request_id, step_key) or {}, already=True)
    if state == "intent":
        found = reconcile()
        if found is not None:
            data = {**found, "reconciled": True}
            ledger.record(request_id, step_key, "outcome", data)
            return Performed(data, reconciled=True)
        ledger.record(request_id, step_key, "outcome", {"result": "failed", "reconciled": True})
    last: Exception | None = None
    for _ in range(max(1, attempts)):
        ledger.record(request_id, step_key, "intent", intent)
        try:
            data = action()
        except (NotFoundError, ServerError, NetworkError) as exc:
            last = exc
            found = reconcile()
            if found is not None:
                data = {**found, "reconciled": True}
                ledger.record(request_id, step_key, "outcome", data)
                return Performed(data, reconciled=True)
            # Reconciliation shows the call did not take effect: safe to repeat.
            ledger.record(request_id, step_key, "outcome", {"result": "failed", **_status_of(exc)})
            if isinstance(exc, NotFoundError):
                raise
            continue
        except HTTPStatusError as exc:
            ledger.record(request_id, step_key, "outcome", {"result": "failed", **_status_of(exc)})
            raise
        ledger.record(request_id, step_key, "outcome", dict(data))
        return Performed(dict(data))
    assert last is not None
    raise last
