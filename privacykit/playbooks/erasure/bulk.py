"""Bulk soft deletion: the users of many subjects in one ``destroy_many`` job.

Owns :func:`soft_delete_many`. A batch pipeline hands it the users several jobs are about
to soft-delete (their plans passed ``check_safety``: nobody here is blocked); it records
each user's ``soft_delete:user:<id>`` intent, sends ``DELETE /api/v2/users/destroy_many``
(up to 100 ids), follows the job status to its end, and records each user's outcome from
the job's results. One job and a few polls replace one ``DELETE /users/{id}`` per user.

Nothing is concluded without Zendesk saying so: a user the job reports deleted is
``ok``; one it reports failed is ``failed`` (nothing applied: the step's own single
``DELETE`` runs next and meets the real error, e.g. an open ticket); a user the job never
reported on (the request or a poll failed, the status expired, the wait bound) is
``unknown``, which the step reconciles through ``show_deleted_user`` before repeating
anything. A user whose step the ledger already knows (done, or an intent left by a crash)
is left to the step.

Assumption (the docs only say the endpoint "returns a job_status JSON object and queues a
background job"): a finished job's ``results`` hold one ``{"id": user id, "success":
bool, ...}`` per user, as Zendesk's other bulk jobs do; anything else counts as unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from privacykit.errors import HTTPStatusError, NotFoundError, ServerError, ZendeskError
from privacykit.playbooks.erasure.keys import StepKey
from privacykit.playbooks.erasure.state import ErasureJob, as_int
from privacykit.playbooks.ports import ErasureClient
from privacykit.playbooks.reasons import stops_the_run

__all__ = ["MAX_IDS", "MIN_USERS", "soft_delete_many"]

#: Zendesk's limit per ``destroy_many`` call.
MAX_IDS = 100
#: Below this many users a job (one request and at least one poll) does not pay.
MIN_USERS = 3
_TERMINAL = frozenset({"completed", "failed", "killed"})
#: Seconds before the first look at a job's status, and the longest gap between looks.
_FIRST_POLL = 1.0
_POLL_CAP = 8.0


def soft_delete_many(
    client: ErasureClient,
    items: Sequence[tuple[ErasureJob, int]],
    *,
    scale: float = 1.0,
    max_polls: int = 18,  # about 2 minutes of looking (1 + 2 + 4 + 15 x 8 s)
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Soft-delete ``items`` (job, user id) with ``destroy_many`` jobs of up to
    :data:`MAX_IDS`; returns how many users the jobs deleted. ``scale`` shortens the
    waits between polls for a server whose clock runs faster (the sandbox)."""
    mine = [(job, uid) for job, uid in items if _claim(job, uid)]
    deleted = 0
    for start in range(0, len(mine), MAX_IDS):
        deleted += _one_job(client, mine[start : start + MAX_IDS], scale, max_polls, sleep)
    return deleted


def _claim(job: ErasureJob, uid: int) -> bool:
    """Record the user's intent unless the ledger already knows the step (then the job's
    own step handles it: done is skipped, an old intent is reconciled)."""
    session = job.session
    if session is None or session.request_id is None or not session.opened:
        return False
    key = str(StepKey.soft_delete(uid))
    state = session.step_state(session.request_id, key)
    if state == "done":
        job.users[uid].soft_deleted = True
        return False
    if state != "none":
        return False
    session.record(key, "intent", {"user_id": uid, "bulk": True})
    return True


def _settle(job: ErasureJob, uid: int, data: dict[str, Any]) -> None:
    session = job.session
    assert session is not None
    session.record(str(StepKey.soft_delete(uid)), "outcome", data)
    if data.get("result", "ok") == "ok":
        user = job.users[uid]
        user.soft_deleted = True
        user.blocking_tickets = []


def _one_job(
    client: ErasureClient,
    items: Sequence[tuple[ErasureJob, int]],
    scale: float,
    max_polls: int,
    sleep: Callable[[float], None],
) -> int:
    ids = [uid for _, uid in items]
    try:
        status = client.destroy_many(ids)
    except ZendeskError as exc:
        if stops_the_run(exc):
            _all(items, {"result": "unknown", "error": type(exc).__name__})
            raise
        certain = isinstance(exc, HTTPStatusError) and not isinstance(
            exc, NotFoundError | ServerError
        )
        # A refused request queued nothing; any other failure may have queued the job.
        _all(items, {"result": "failed" if certain else "unknown", "error": type(exc).__name__})
        return 0
    job_id = str(status.get("id") or "")
    results = _follow(client, job_id, status, scale, max_polls, sleep)
    deleted = 0
    for job, uid in items:
        outcome = results.get(uid)
        if outcome is True:
            _settle(job, uid, {"user_id": uid, "state": "soft_deleted", "job_id": job_id})
            deleted += 1
        elif outcome is False:
            _settle(job, uid, {"user_id": uid, "result": "failed", "job_id": job_id})
        else:
            _settle(job, uid, {"user_id": uid, "result": "unknown", "job_id": job_id})
    return deleted


def _all(items: Sequence[tuple[ErasureJob, int]], data: dict[str, Any]) -> None:
    for job, uid in items:
        _settle(job, uid, {"user_id": uid, **data})


def _follow(
    client: ErasureClient,
    job_id: str,
    status: dict[str, Any],
    scale: float,
    max_polls: int,
    sleep: Callable[[float], None],
) -> dict[int, bool]:
    """The job's per-user results once it has ended ({} when it cannot be known)."""
    polls = 0
    while str(status.get("status")) not in _TERMINAL:
        if not job_id or polls >= max_polls:
            return {}
        # 1, 2, 4, then every 8 s: a queued job needs seconds (the sandbox's two), and each
        # poll spends the account budget every erasure shares; a poll that can only say
        # "still working" is a request another subject could have used (#14).
        sleep(max(0.002, min(_POLL_CAP, _FIRST_POLL * 2 ** min(polls, 3)) * scale))
        polls += 1
        try:
            status = client.show_job_status(job_id)
        except ZendeskError as exc:
            if stops_the_run(exc):
                raise
            return {}  # expired (404) or unreadable: unknown, the steps reconcile
    out: dict[int, bool] = {}
    for row in status.get("results") or []:
        if not isinstance(row, dict):
            continue
        uid = as_int(row.get("id"))
        success = row.get("success")
        if uid is not None and isinstance(success, bool):
            out[uid] = success
    return out
