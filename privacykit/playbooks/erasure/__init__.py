"""Erasure (GDPR Art. 17): the ``erasure`` playbook kind, one small module per concern.

* :mod:`.run` -- :func:`erase`, :class:`ErasureBatch` (plan, then run), the plan and result
  views, :func:`run_erase` / :func:`open_erasure` (what ``privacykit erase`` calls);
* :mod:`.pipeline` -- the batch pipeline at Zendesk's deletion pace;
* :mod:`.steps` -- :class:`ErasureRunner`, the playbook's step functions;
* :mod:`.actions` -- each destructive Zendesk call with its reconciliation;
* :mod:`.state` -- the job, its users and profiles, :func:`compliance_state`;
* :mod:`.records` -- the plan and the evidence record (typed);
* :mod:`.history` and :mod:`.keys` -- the ledger's step keys as types and what a request's
  entries say happened (shared with the audit).

What reaches the ledger and the evidence: Zendesk ids, roles, counts, statuses and keyed
subject references -- never identifiers, names or profile contents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.playbooks.erasure.pipeline import (
        BatchProgress,
    )
    from privacykit.playbooks.erasure.records import (
        ErasureEvidence,
        NotDone,
    )
    from privacykit.playbooks.erasure.run import (
        EraseCommand,
        EraseOptions,
        EraseReport,
        ErasureBatch,
        erase,
        open_erasure,
        plan_view,
        result_view,
        run_erase,
    )
    from privacykit.playbooks.erasure.state import (
        DESTRUCTIVE_STEPS,
        EVIDENCE_SCHEMA,
        PERMANENTLY_DELETED_NAME,
        ErasureJob,
        compliance_state,
    )
    from privacykit.playbooks.erasure.steps import (
        ErasureRunner,
    )
    from privacykit.playbooks.request import (
        default_operator,
    )

__all__ = [
    "DESTRUCTIVE_STEPS",
    "EVIDENCE_SCHEMA",
    "PERMANENTLY_DELETED_NAME",
    "BatchProgress",
    "EraseCommand",
    "EraseOptions",
    "EraseReport",
    "ErasureBatch",
    "ErasureEvidence",
    "ErasureJob",
    "ErasureRunner",
    "NotDone",
    "compliance_state",
    "default_operator",
    "erase",
    "open_erasure",
    "plan_view",
    "result_view",
    "run_erase",
]

# Imported on first use (see privacykit._lazy): importing one module of this package
# (or the package) does not load the others.
_EXPORTS = {
    "privacykit.playbooks.erasure.pipeline": ("BatchProgress",),
    "privacykit.playbooks.erasure.records": (
        "ErasureEvidence",
        "NotDone",
    ),
    "privacykit.playbooks.erasure.run": (
        "EraseCommand",
        "EraseOptions",
        "EraseReport",
        "ErasureBatch",
        "erase",
        "open_erasure",
        "plan_view",
        "result_view",
        "run_erase",
    ),
    "privacykit.playbooks.erasure.state": (
        "DESTRUCTIVE_STEPS",
        "EVIDENCE_SCHEMA",
        "PERMANENTLY_DELETED_NAME",
        "ErasureJob",
        "compliance_state",
    ),
    "privacykit.playbooks.erasure.steps": ("ErasureRunner",),
    "privacykit.playbooks.request": ("default_operator",),
}
lazy_exports(__name__, _EXPORTS)
