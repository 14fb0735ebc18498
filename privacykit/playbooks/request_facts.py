"""The options that describe one request beyond its subject: ``--case``,
``--identity-verified`` and ``--method``.

Owns :func:`subject_facts`, the one check of those options for ``erase`` and ``access``
(before anything is sent: exit 2, one line, never echoing a value that looks personal),
returning the :class:`~privacykit.playbooks.request.RequestSession` fields they set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from privacykit.errors import UsageError
from privacykit.ledger.guard import looks_personal
from privacykit.playbooks.request import parse_received

__all__ = ["subject_facts"]


def subject_facts(
    subjects: Sequence[object],
    *,
    case_ref: str | None = None,
    identity_verified: str | None = None,
    identity_method: str | None = None,
) -> dict[str, Any]:
    """The ``--case``, ``--identity-verified`` and ``--method`` of a command, checked
    (:class:`UsageError`, exit 2, before anything is sent) and ready for a
    :class:`RequestSession`: they describe one request, so one SUBJECT."""
    facts: dict[str, Any] = {}
    given = [
        name
        for name, value in (
            ("--case", case_ref),
            ("--identity-verified", identity_verified),
            ("--method", identity_method),
        )
        if value is not None
    ]
    if not given:
        return facts
    if len(subjects) != 1:
        raise UsageError(f"{given[0]} describes one request: give exactly one SUBJECT")
    if case_ref is not None:
        from privacykit.ledger.replay import case_ref_problem

        problem = case_ref_problem(case_ref)
        if problem is not None:
            raise UsageError(f"--case must be the DPO's own reference: {problem}")
        facts["case_ref"] = case_ref
    if identity_method is not None and identity_verified is None:
        raise UsageError("--method says how the identity was verified: give --identity-verified")
    if identity_verified is not None:
        facts["identity_verified"] = parse_received(identity_verified, "--identity-verified")
    if identity_method is not None:
        method = " ".join(identity_method.split())
        if not method or len(method) > 200:
            raise UsageError("--method must be a short text (at most 200 characters)")
        if looks_personal(method):
            raise UsageError(
                "--method looks like it holds personal data; say how, not with what "
                "(e.g. 'video call', 'signed letter')"
            )
        facts["identity_method"] = method
    return facts
