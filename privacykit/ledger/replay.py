"""Deriving the convenience tables from the entries, the ledger's only source of truth.

The ``requests`` and ``artifacts`` tables are caches: every change to them is first an
entry with a reserved ``ledger:*`` step key. The same pure function applies an entry to
a row when the ledger writes it and when :meth:`Ledger.verify` replays the whole log,
so a verified ledger's tables are exactly what its entries say.
"""

from __future__ import annotations

import re
from typing import Any

from privacykit.ledger.dates import MAX_EXTENSION_MONTHS, due_date, parse_date
from privacykit.ledger.guard import looks_personal
from privacykit.ledger.records import CLOSING_GROUNDS, KINDS, STATUSES, TERMINAL_STATUSES
from privacykit.ledger.subject import is_subject_ref

__all__ = [
    "ARTIFACT_KEY",
    "ARTIFACT_COLUMNS",
    "CASE_KEY",
    "EVIDENCE_KEY",
    "EXTENSION_KEY",
    "REQUEST_COLUMNS",
    "REQUEST_KEY",
    "RESERVED_PREFIX",
    "STATUS_KEY",
    "VERIFIED_KEY",
    "apply_artifact",
    "apply_request_entry",
    "carries_out",
    "case_ref_problem",
    "evidence_no_data",
    "note_entry",
]

RESERVED_PREFIX = "ledger:"
REQUEST_KEY = "ledger:request"
STATUS_KEY = "ledger:status"
EXTENSION_KEY = "ledger:extension"
VERIFIED_KEY = "ledger:identity_verified"
#: The DPO's own case reference given to a request after it was opened (the one given
#: when it was opened is in its ``ledger:request`` entry).
CASE_KEY = "ledger:case"
ARTIFACT_KEY = "ledger:artifact"

REQUEST_COLUMNS = (
    "request_id",
    "kind",
    "subject_ref",
    "received_at",
    "identity_verified_at",
    "extension_months",
    "extension_reason",
    "due_date",
    "status",
    "status_reason",
    "operator",
    "playbook_name",
    "playbook_sha256",
    "tool_version",
    "batch_id",
    "created_at",
    "updated_at",
    "closed_at",
)
ARTIFACT_COLUMNS = ("seq", "sha256", "request_id", "kind", "suffix", "size", "created_at")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUFFIX = re.compile(r"^(?:\.[A-Za-z0-9]{1,10}){0,2}$")
_KIND = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# A case reference names a folder too (access answers): letters, digits, '.', '_', '-'.
_CASE_REF = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
# A national phone number written without '+' (07700 900123, 0049...): the guard only
# knows international ones; a ticket number never starts with 0.
_NATIONAL_PHONE = re.compile(r"^0[\d .()-]{8,}$")
_METHOD_LIMIT = 200
# The steps whose intents are not a carrying out of the request: its report, and the DSAR
# ticket's intake note or closing (a note on the DSAR ticket, not the subject's data).
_NOT_CARRIED_OUT = ("report", "intake:")
#: The step key of a request's evidence record; its ``outcome`` says whether data was found
#: (a closing record's outcome is ``closed``: it does not replace the answer it closes).
EVIDENCE_KEY = "evidence"


def carries_out(step_key: str, phase: str) -> bool:
    """Whether an entry is a destructive step's intent, i.e. the request changed Zendesk or
    may have. A finished request with none whose evidence says ``no_data_found`` is the one
    finished request that may still be closed (as opened by mistake)."""
    return phase == "intent" and not (
        step_key == _NOT_CARRIED_OUT[0] or step_key.startswith(_NOT_CARRIED_OUT[1])
    )


def case_ref_problem(value: object) -> str | None:
    """Why ``value`` cannot be a case reference (the DPO's own reference for a request,
    e.g. the DSAR ticket number), or None. Never personal data: an email address or a
    phone number is refused as the ledger's guard would, before the shape is checked."""
    if not isinstance(value, str) or not value:
        return "it is empty"
    what = looks_personal(value)
    if what is None and _NATIONAL_PHONE.match(value) and sum(c.isdigit() for c in value) >= 9:
        what = "a phone number"
    if what is not None:
        return f"it looks like {what}; use your own reference, e.g. the DSAR ticket number"
    if not _CASE_REF.match(value):
        return "use 1-100 letters, digits, '.', '_' or '-' (not starting with '.')"
    return None


def _case(data: dict[str, Any], required: bool = False) -> None:
    value = data.get("case_ref")
    if value is None and not required:
        return
    problem = case_ref_problem(value)
    if problem is not None:
        raise ValueError(f"case_ref is not a case reference: {problem}")


def _method(data: dict[str, Any], key: str) -> None:
    value = data.get(key)
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or len(value) > _METHOD_LIMIT:
        raise ValueError(f"{key} must be a short text")


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _iso(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be an ISO date")
    return parse_date(value, key).isoformat()


def evidence_no_data(data: dict[str, Any]) -> bool | None:
    """Whether an evidence record says ``no_data_found``; None for a closing record
    (outcome ``closed``), which does not replace the answer it closes."""
    outcome = data.get("outcome")
    return None if outcome == "closed" else outcome == "no_data_found"


def note_entry(
    no_data: dict[str, bool | None],
    request_id: str,
    step_key: str,
    phase: str,
    data: dict[str, Any],
) -> None:
    """Fold an ordinary entry into what closing a finished request as a mistake depends
    on: ``no_data[request_id]`` is True while the request's latest evidence record says
    ``no_data_found``, and None for good once it has a destructive intent (so the
    closing's ``no_data_unchanged`` is ``no_data.get(request_id) is True``)."""
    if carries_out(step_key, phase):
        no_data[request_id] = None
    elif step_key == EVIDENCE_KEY and no_data.get(request_id, False) is not None:
        said = evidence_no_data(data)
        if said is not None:
            no_data[request_id] = said


def apply_request_entry(
    current: dict[str, Any] | None,
    request_id: str,
    ts: str,
    step_key: str,
    data: dict[str, Any],
    *,
    no_data_unchanged: bool = False,
) -> dict[str, Any]:
    """The ``requests`` row after the ``ledger:*`` entry ``step_key`` (ValueError if the
    entry is malformed or does not fit the request's history). ``no_data_unchanged``: the
    request's entries so far hold no destructive intent (:func:`carries_out`) and its latest
    evidence record's outcome is ``no_data_found`` -- the only finished request that may be
    closed, and only as opened by mistake (a typo'd identifier answered "no data found")."""
    if step_key == REQUEST_KEY:
        if current is not None:
            raise ValueError("request created twice")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError("unknown request kind")
        if not is_subject_ref(data.get("subject_ref")):
            raise ValueError("subject_ref is not a keyed reference")
        status = data.get("status", "open")
        if status not in STATUSES:
            raise ValueError("unknown status")
        received = _iso(data.get("received_at"), "received_at")
        verified = data.get("identity_verified_at")
        due = due_date(parse_date(received)).isoformat()
        if data.get("due_date") != due:
            raise ValueError("due_date does not follow from received_at")
        sha = _opt_str(data, "playbook_sha256")
        if sha is not None and not _SHA256.match(sha):
            raise ValueError("playbook_sha256 is not a sha256")
        tool_version = data.get("tool_version")
        if not isinstance(tool_version, str):
            raise ValueError("tool_version missing")
        _case(data)
        _method(data, "identity_method")
        return {
            "request_id": request_id,
            "kind": kind,
            "subject_ref": data["subject_ref"],
            "received_at": received,
            "identity_verified_at": (
                None if verified is None else _iso(verified, "identity_verified_at")
            ),
            "extension_months": 0,
            "extension_reason": None,
            "due_date": due,
            "status": status,
            "status_reason": None,
            "operator": _opt_str(data, "operator"),
            "playbook_name": _opt_str(data, "playbook_name"),
            "playbook_sha256": sha,
            "tool_version": tool_version,
            "batch_id": _opt_str(data, "batch_id"),
            "created_at": ts,
            "updated_at": ts,
            "closed_at": ts if status in TERMINAL_STATUSES else None,
        }
    if current is None:
        raise ValueError("entry for a request that was never created")
    row = dict(current)
    row["updated_at"] = ts
    if step_key == STATUS_KEY:
        status = data.get("status")
        if status not in STATUSES:
            raise ValueError("unknown status")
        if status == "closed":
            finished = current["status"]
            if finished == "completed" and (
                data.get("ground") != "mistake" or not no_data_unchanged
            ):
                raise ValueError(
                    "a completed request can be closed only as a mistake, and only when it "
                    "found no data and changed nothing"
                )
            if finished in TERMINAL_STATUSES and finished != "completed":
                raise ValueError(f"a {finished} request cannot be closed")
            if data.get("ground") not in CLOSING_GROUNDS:
                raise ValueError(f"closing needs a ground ({', '.join(CLOSING_GROUNDS)})")
            if not _opt_str(data, "reason"):
                raise ValueError("closing needs a reason")
            _opt_str(data, "article")
        elif "ground" in data:
            raise ValueError("only a closing has a ground")
        row["status"] = status
        row["status_reason"] = _opt_str(data, "reason")
        row["closed_at"] = ts if status in TERMINAL_STATUSES else None
    elif step_key == EXTENSION_KEY:
        months, total = data.get("months"), data.get("extension_months")
        if not isinstance(months, int) or isinstance(months, bool) or months < 1:
            raise ValueError("extension months must be a positive integer")
        if total != row["extension_months"] + months or total > MAX_EXTENSION_MONTHS:
            raise ValueError("extension months do not add up (Art. 12(3) allows two)")
        reason = _opt_str(data, "reason")
        if not reason:
            raise ValueError("an extension needs a reason")
        due = due_date(parse_date(row["received_at"]), total).isoformat()
        if data.get("due_date") != due:
            raise ValueError("due_date does not follow from the extension")
        notified = data.get("notified_at")
        if notified is not None:
            # Art. 12(3): the subject is told of an extension within one month of receipt.
            told = parse_date(_iso(notified, "notified_at"))
            receipt = parse_date(row["received_at"])
            if not receipt <= told <= due_date(receipt):
                raise ValueError("notified_at is not within one month of receipt")
        row["extension_months"] = total
        row["extension_reason"] = reason
        row["due_date"] = due
    elif step_key == VERIFIED_KEY:
        row["identity_verified_at"] = _iso(data.get("identity_verified_at"), "identity_verified_at")
        _method(data, "method")
    elif step_key == CASE_KEY:
        _case(data, required=True)
    else:
        raise ValueError(f"unknown ledger step {step_key}")
    return row


def apply_artifact(seq: int, request_id: str, ts: str, data: dict[str, Any]) -> dict[str, Any]:
    """The ``artifacts`` row an ``ledger:artifact`` entry adds."""
    sha, kind, suffix, size = (
        data.get("sha256"),
        data.get("kind"),
        data.get("suffix"),
        data.get("size"),
    )
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ValueError("artifact sha256 is malformed")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError("artifact kind is malformed")
    if not isinstance(suffix, str) or not _SUFFIX.match(suffix):
        raise ValueError("artifact suffix is malformed")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("artifact size is malformed")
    return {
        "seq": seq,
        "sha256": sha,
        "request_id": request_id,
        "kind": kind,
        "suffix": suffix,
        "size": size,
        "created_at": ts,
    }


def valid_artifact_kind(kind: str) -> bool:
    return bool(_KIND.match(kind))


def valid_suffix(suffix: str) -> bool:
    return bool(_SUFFIX.match(suffix))
