"""The audit's Zendesk phase: which erasures are re-checked this run, within the budget.

Owns :class:`ZendeskSweep`:

a. every erasure that is not completed, each run (round-robin from ``active_after`` when
   the budget cannot cover them all): erased people really gone, soft deletions not
   lingering, compliance progress (:class:`~privacykit.audit.compliance.ComplianceChecks`);
b. completed erasures in rotation (:func:`~privacykit.audit.erasures.plan_rotation`):
   never re-checked ones first, then round-robin from where the last run stopped.

Every finished request moves the cursor at once (:attr:`ZendeskSweep.partial`), so a
Zendesk failure later in the run does not lose what was checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from privacykit.audit.compliance import ComplianceChecks
from privacykit.audit.context import AuditContext
from privacykit.audit.erasures import (
    ErasureView,
    OrderKey,
    as_key,
    load_erasure,
    order_key,
    plan_rotation,
    rotate,
)
from privacykit.audit.zendesk_checks import DeletedTickets, check_gone, check_lingering
from privacykit.errors import ZendeskError
from privacykit.ledger import RequestRecord

__all__ = ["ZendeskSweep", "request_key_above"]


class ZendeskSweep:
    """One run's re-checks of erasures in Zendesk (see the module docstring)."""

    def __init__(self, ctx: AuditContext) -> None:
        self.ctx = ctx
        self.compliance = ComplianceChecks(ctx)
        # Soft-deleted tickets, listed at most once per run (#15: purged ones re-checked).
        self._deleted_tickets = DeletedTickets(ctx.client)
        #: The cursor as far as this run got (used when Zendesk fails mid-run).
        self.partial: dict[str, Any] | None = None

    def run(self, erasures: list[RequestRecord], previous: Mapping[str, Any]) -> dict[str, Any]:
        """Re-check what the budget allows; returns the cursor for the next run."""
        ctx = self.ctx
        cursor: dict[str, Any] = {
            "active_after": previous.get("active_after"),
            "high_water": previous.get("high_water"),
            "rotation_after": previous.get("rotation_after"),
        }
        self.partial = dict(cursor)

        # a. Erasures still under way (or stopped short): every run, round-robin if the
        # budget cannot cover them all.
        active = [r for r in erasures if r.status != "completed"]
        order = rotate(active, order_key, after=as_key(cursor["active_after"]))
        done = self._take(order, self._check_active, "active_erasures")
        if len(done) == len(order):
            cursor["active_after"] = None  # all seen: start from the top next run
        elif done:
            cursor["active_after"] = list(order_key(done[-1]))
        ctx.checked["active_erasures_deferred"] = len(order) - len(done)
        self.partial = dict(cursor)

        # b. Completed erasures in rotation: never re-checked ones first.
        completed = [r for r in erasures if r.status == "completed"]
        high_water = as_key(cursor["high_water"])
        fresh, rotation = plan_rotation(
            completed,
            order_key,
            high_water=high_water,
            rotation_after=as_key(cursor["rotation_after"]),
        )
        workers = ctx.options.workers
        taken_fresh = self._take(
            fresh, self._check_completed, "completed_erasures", workers=workers
        )
        if taken_fresh:
            cursor["high_water"] = list(order_key(taken_fresh[-1]))
            self.partial = dict(cursor)
        if len(taken_fresh) == len(fresh):
            taken_old = self._take(
                rotation,
                self._check_completed,
                "completed_erasures",
                first=not taken_fresh,
                workers=workers,
            )
            if taken_old:
                cursor["rotation_after"] = list(order_key(taken_old[-1]))
            deferred = len(rotation) - len(taken_old)
        else:
            deferred = len(fresh) - len(taken_fresh) + len(rotation)
        ctx.checked["completed_erasures_total"] = len(completed)
        ctx.checked["completed_erasures_deferred"] = deferred
        return cursor

    def _take(
        self,
        requests: list[RequestRecord],
        check: Callable[[ErasureView], None],
        counter: str,
        *,
        first: bool = True,
        workers: int = 1,
    ) -> list[RequestRecord]:
        """Check requests in order while the budget lasts; returns those checked.

        Requests go in batches whose estimated cost fits what is left of the budget, each
        batch checked by ``workers`` threads (Zendesk's latency, not its budget, would
        otherwise bound a single thread; the shared governor keeps all of them inside
        the account budget). Each finished request moves the cursor at once, so a Zendesk
        failure later in the run does not lose what was checked; a failure stops the
        phase after the batch in flight."""
        ctx = self.ctx
        taken: list[RequestRecord] = []
        index, out_of_budget = 0, False
        batch_size = max(1, workers) * 4
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="audit") as pool:
            while index < len(requests) and not out_of_budget:
                batch: list[ErasureView] = []
                reserved = 0
                while index < len(requests) and len(batch) < batch_size:
                    view = load_erasure(ctx.ledger, requests[index])
                    cost = _cost(view)
                    if cost and not ctx.budget.fits(
                        reserved + cost, first=first and not taken and not batch
                    ):
                        out_of_budget = True
                        break
                    batch.append(view)
                    reserved += cost
                    index += 1
                if not batch:
                    break
                if workers > 1:
                    futures = [pool.submit(_capture, check, view) for view in batch]
                    errors = [future.result() for future in futures]
                else:
                    errors = [_capture(check, view) for view in batch]
                for view, error in zip(batch, errors, strict=True):
                    if error is not None:
                        raise error
                    taken.append(view.request)
                    ctx.checked[counter] += 1
                    self._progress(counter, view.request)
        return taken

    def _progress(self, counter: str, request: RequestRecord) -> None:
        """Move the partial cursor past ``request`` (used if Zendesk fails mid-run)."""
        cursor = self.partial
        if cursor is None:
            return
        if counter == "active_erasures":
            cursor["active_after"] = list(order_key(request))
        elif request_key_above(order_key(request), as_key(cursor.get("high_water"))):
            cursor["high_water"] = list(order_key(request))
        else:
            cursor["rotation_after"] = list(order_key(request))

    def _check_completed(self, view: ErasureView) -> None:
        self._gone_and_lingering(view)

    def _check_active(self, view: ErasureView) -> None:
        self._gone_and_lingering(view)
        self.compliance.check(view)

    def _gone_and_lingering(self, view: ErasureView) -> None:
        # Runs in worker threads: Zendesk calls outside the lock, bookkeeping inside.
        ctx = self.ctx
        findings = check_gone(ctx.client, view, deleted_tickets=self._deleted_tickets)
        grace = timedelta(hours=ctx.options.soft_delete_grace_hours)
        lingering = check_lingering(ctx.client, view, now=ctx.now, grace=grace)
        with ctx.lock:
            ctx.checked["users_rechecked"] += len(view.permanently_deleted)
            ctx.checked["profiles_rechecked"] += len(view.deleted_profiles)
            if view.purged_tickets or view.redacted_comments:
                ctx.checked["tickets_rechecked"] += len(view.purged_tickets)
                ctx.checked["comments_rechecked"] += len(view.redacted_comments)
            ctx.checked["soft_deleted_users_checked"] += lingering.checked
            if lingering.within_grace:
                ctx.checked["soft_deleted_users_within_grace"] += lingering.within_grace
            ctx.result.findings.extend(findings)
            ctx.result.findings.extend(lingering.findings)


def _cost(view: ErasureView) -> int:
    cost = view.gone_cost()
    if view.request.status != "completed":
        cost += len(view.compliance_pending())
    return cost


def _capture(check: Callable[[ErasureView], None], view: ErasureView) -> ZendeskError | None:
    """Run one check; a Zendesk failure is returned (to stop the phase in order), anything
    else propagates."""
    try:
        check(view)
    except ZendeskError as exc:
        return exc
    return None


def request_key_above(key: OrderKey, high_water: OrderKey | None) -> bool:
    return high_water is None or key > high_water
