"""What a report template sees: the record, the ledger's view of the request, the facts.

Owns :func:`build_context` and the rules that decide what a report *states*
(:func:`facts`): the status is the record's final status; the playbook is the one the
record says was used; "everything found was erased" only when the record says erased,
nothing is listed as not done and the request is completed; an interim title for a
pending-compliance report; when Zendesk reported completion. Templates only print these.

Privacy: the record should only hold ids, counts and keyed references, but the renderer
does not rely on it. Before any template sees a value, every string is passed through a
redactor that replaces this process's Zendesk credentials with ``***`` and any email
address, external id or word whose keyed reference (``ledger.subject_ref``) equals the
request's subject reference with ``[subject identifier withheld]``. The ledger can tell
us a string *is* the subject without us ever knowing the subject.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from privacykit import __version__, clock
from privacykit.errors import EvidenceError, PrivacykitError, UsageError

if TYPE_CHECKING:
    from privacykit.evidence.keys import SigningKeys
    from privacykit.ledger import Ledger, RequestRecord

__all__ = [
    "CLOSING_GROUNDS",
    "KNOWN_KEYS",
    "REPORT_KINDS",
    "WITHHELD",
    "build_context",
    "facts",
]

REPORT_KINDS = ("erasure", "access", "audit", "closing")
WITHHELD = "[subject identifier withheld]"
#: Why a request was closed without being carried out (``privacykit request close --as``).
CLOSING_GROUNDS = ("withdrawn", "refused", "mistake")

_KIND_LABELS = {"erasure": "Erasure", "access": "Access", "audit": "Audit", "closing": "Closing"}
_DEFAULT_ARTICLES = {
    "erasure": "Art. 17 (right to erasure)",
    "access": "Art. 15 (right of access) and Art. 20 (right to data portability)",
    "audit": "Art. 5(2) and Art. 24 (accountability); Art. 12(3) (time limits)",
}
_COMMON_KEYS = (
    "schema",
    "request_id",
    "subject_ref",
    "outcome",
    "status",
    "interim",
    "not_done",
    "reasons",
    "steps",
    "playbook",
    "tool_version",
    "operator",
    "started_at",
    "completed_at",
    "case_ref",
)
# Fields each template renders in its own sections; anything else in a record is shown
# (escaped) under "Further details", so nothing a playbook records is silently dropped.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "erasure": (
        *_COMMON_KEYS,
        "gdpr",
        "searched",
        "counts",
        "users",
        "profiles",
        "compliance",
        "compliance_completed_at",
        "tickets",
        "art19_recipients",
    ),
    "access": (
        *_COMMON_KEYS,
        "gdpr",
        "export",
        "found",
        "searched",
        "counts",
        "categories",
        "processing",
        "delivered_files",
        "prepared_files",
        "not_covered",
        "others",
        "attachments",
        "export_schema",
        "users",
        "profiles",
        "compliance",
    ),
    "audit": (
        *_COMMON_KEYS,
        "summary",
        "checks",
        "findings",
        "findings_not_recorded",
        "errors",
        "open_requests",
    ),
    "closing": (
        *_COMMON_KEYS,
        "kind",
        "ground",
        "article",
        "reason",
        "closed_at",
        "earlier_outcome",
    ),
}
_DEADLINE_BUCKETS = (
    ("overdue", None, -1),
    ("0-7 days", 0, 7),
    ("8-14 days", 8, 14),
    ("15-21 days", 15, 21),
    ("22-31 days", 22, 31),
    ("> 31 days", 32, None),
)


# --- redaction ---------------------------------------------------------------------------

# Runs of characters that can make up an address; one character class and no nesting, so
# matching is linear even on a 100 000-character value.
_TOKEN = re.compile(r"[^\s<>\"'(),;:\[\]{}]+")
_WORD_STRIP = ".,;:!?\"'()[]{}<>"
_SEPARATORS = re.compile(r"[\s./\\=:,;()<>\[\]{}\"'@|#?&]+")


def _redactor(ledger: Ledger, subject_ref: str | None) -> Callable[[str], str]:
    secrets = [
        value
        for name in ("ZENDESK_API_TOKEN", "ZENDESK_OAUTH_TOKEN")
        if len(value := os.environ.get(name, "").strip()) >= 4
    ]
    cache: dict[str, bool] = {}

    def is_subject(normalised: str) -> bool:
        if subject_ref is None or not normalised.split(":", 1)[1]:
            return False
        if normalised not in cache:
            try:
                cache[normalised] = ledger.subject_ref(normalised) == subject_ref
            except (PrivacykitError, ValueError):
                cache[normalised] = False
        return cache[normalised]

    def redact(text: str) -> str:
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "***")
        if subject_ref is None or not text.strip():
            return text
        if is_subject(f"ext:{text.strip().lower()}") or is_subject(f"email:{text.strip().lower()}"):
            return WITHHELD

        if "@" in text:
            for token in set(_TOKEN.findall(text)):
                if "@" in token and is_subject(f"email:{token.strip(_WORD_STRIP).lower()}"):
                    text = text.replace(token, WITHHELD)
        if len(text) <= 4000:  # external ids embedded in prose or file names (bounded work)
            words = {w.strip(_WORD_STRIP) for w in text.split()}
            words.update(_SEPARATORS.split(text))
            words.discard("")
            if len(words) <= 800:
                for word in sorted(words, key=len, reverse=True):
                    if is_subject(f"ext:{word.lower()}") or is_subject(f"email:{word.lower()}"):
                        text = text.replace(word, WITHHELD)
        return text

    return redact


# --- the facts a report states -----------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _not_done(value: Any) -> list[dict[str, Any]]:
    """``not_done`` as ``[{"item", "why"}]`` (a bare string is an item without a why)."""
    rows: list[dict[str, Any]] = []
    if not isinstance(value, list | tuple):
        return rows
    for item in value:
        if isinstance(item, Mapping):
            rows.append({"item": item.get("item"), "why": item.get("why")})
        elif item is not None:
            rows.append({"item": item, "why": None})
    return rows


def facts(kind: str, record: Mapping[str, Any], req: RequestRecord) -> dict[str, Any]:
    """What the report states, decided here once (the templates only print it)."""
    # An audit record's "status" is the audit's result (clear, findings, incomplete).
    status = (_text(record.get("status")) if kind != "audit" else None) or req.status
    outcome = _text(record.get("outcome"))
    not_done = _not_done(record.get("not_done"))
    interim = record.get("interim") is True or status == "pending_compliance"
    given = record.get("playbook")
    playbook: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    name = _text(playbook.get("name")) or req.playbook_name
    sha = _text(playbook.get("sha256")) or req.playbook_sha256
    gdpr = record.get("gdpr")
    exceptions = gdpr.get("exceptions") if isinstance(gdpr, Mapping) else None
    everything_erased = (
        kind == "erasure"
        and outcome == "erased"
        and status == "completed"
        and not not_done
        and not interim
        and not exceptions
    )
    # Whether the record shows anything that was not carried out, itemised or not.
    incomplete = (
        bool(not_done)
        or status in ("needs_review", "failed")
        or (outcome in ("needs_review", "failed"))
    )
    completed_at = _text(record.get("completed_at"))
    if completed_at is None and not interim:
        completed_at = req.closed_at
    return {
        "status": status,
        "status_now": req.status if req.status != status else None,
        "outcome": outcome,
        "interim": interim,
        "not_done": not_done,
        "incomplete": incomplete,
        "everything_erased": everything_erased,
        "no_data_found": outcome == "no_data_found" and not not_done,
        "completed_at": completed_at,
        "compliance_completed_at": _text(record.get("compliance_completed_at")),
        "playbook_name": name,
        "playbook_sha256": sha,
        # The request row names another playbook than the record: say so, never pick one.
        "request_playbook": (
            {"name": req.playbook_name, "sha256": req.playbook_sha256}
            if (req.playbook_name, req.playbook_sha256) != (name, sha)
            and (req.playbook_name or req.playbook_sha256)
            else None
        ),
        "case_ref": _text(record.get("case_ref")) or getattr(req, "case_ref", None),
    }


def _closing(record: Mapping[str, Any], req: RequestRecord) -> dict[str, Any]:
    ground = record.get("ground")
    if ground not in CLOSING_GROUNDS:
        raise EvidenceError(
            f"a closing record needs a ground ({', '.join(CLOSING_GROUNDS)}); got {ground!r}"
        )
    if not _text(record.get("reason")):
        raise EvidenceError("a closing record needs the reason it was closed")
    kind = record.get("kind") or req.kind
    if kind != req.kind:
        raise EvidenceError(f"the closing record is for a {kind} request, not {req.kind}")
    return {
        "ground": ground,
        "kind": kind,
        "kind_label": _KIND_LABELS.get(str(kind), str(kind)),
        "article": _text(record.get("article")),
        "closed_at": _text(record.get("closed_at")) or req.closed_at,
        # A finished "no data found" request closed as a mistake (#17): the report says
        # that answer related to an identifier entered by mistake.
        "earlier_no_data": record.get("earlier_outcome") == "no_data_found",
    }


# --- the audit's deadline chart and tables -------------------------------------------------


def _days_left(row: Mapping[str, Any], today: dt.date) -> int | None:
    for key in ("days_left", "days_remaining", "days_to_deadline"):
        value = row.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    due = row.get("due") or row.get("due_date")
    if isinstance(due, str):
        try:
            return (dt.date.fromisoformat(due[:10]) - today).days
        except ValueError:
            return None
    return None


def _open_requests(
    ledger: Ledger, record: Mapping[str, Any], today: dt.date
) -> list[dict[str, Any]]:
    """Open requests for the audit chart: the record's own list when it has one, else the
    ledger's open (non-audit) requests."""
    given = record.get("open_requests")
    rows: list[dict[str, Any]] = []
    if isinstance(given, list) and all(isinstance(r, Mapping) for r in given):
        for r in given:
            rows.append(
                {
                    "request_id": r.get("request_id"),
                    "kind": r.get("kind"),
                    "status": r.get("status"),
                    "due": r.get("due") or r.get("due_date"),
                    "days_left": _days_left(r, today),
                }
            )
        return rows
    from privacykit.ledger.records import OPEN_STATUSES

    for req in ledger.list_requests(status=OPEN_STATUSES):
        if req.kind == "audit":
            continue
        rows.append(
            {
                "request_id": req.request_id,
                "kind": req.kind,
                "status": req.status,
                "due": req.due_date.isoformat(),
                "days_left": req.days_remaining(today),
            }
        )
    return rows


def _deadline_chart(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = [0] * len(_DEADLINE_BUCKETS)
    for row in rows:
        days = row.get("days_left")
        if not isinstance(days, int):
            continue
        for i, (_, low, high) in enumerate(_DEADLINE_BUCKETS):
            if (low is None or days >= low) and (high is None or days <= high):
                counts[i] += 1
                break
    return [
        {"label": label, "value": n}
        for (label, _, _), n in zip(_DEADLINE_BUCKETS, counts, strict=True)
    ]


_ART15_POINT = re.compile(r"Art\. 15\((\d)\)(?:\(([a-h])\))?")


def _processing(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The Art. 15 facts in the article's order (the ledger keeps a record's keys sorted):
    headings naming no point first (controller, contact), then 15(1)(a) to (h), then
    15(2) and on."""
    given = record.get("processing")
    if not isinstance(given, Mapping):
        return []

    def order(key: str) -> tuple[str, str]:
        match = _ART15_POINT.search(key)
        return (match.group(1), match.group(2) or "") if match else ("0", "")

    return sorted(((str(k), v) for k, v in given.items()), key=lambda kv: order(kv[0]))


def _audit(record: Mapping[str, Any]) -> dict[str, Any]:
    """The audit record split for its template: summary counters apart from what was
    checked (``checked_*`` keys, shown without the repeated word), findings grouped by
    check in the order of the checks."""
    summary = record.get("summary")
    overview: list[tuple[str, Any]] = []
    checked: list[tuple[str, Any]] = []
    if isinstance(summary, Mapping):
        for key, value in summary.items():
            name = str(key)
            if name.startswith("checked_"):
                name = name.removeprefix("checked_").removesuffix("_checked")
                checked.append((name, value))
            else:
                overview.append((name, value))
    checks = record.get("checks")
    order = (
        [c.get("check") for c in checks if isinstance(c, Mapping)]
        if isinstance(checks, list)
        else []
    )
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    findings = record.get("findings")
    for finding in findings if isinstance(findings, list) else []:
        if isinstance(finding, Mapping):
            groups.setdefault(finding.get("check"), []).append(finding)
    ordered = [c for c in order if c in groups] + [c for c in groups if c not in order]
    return {
        "overview": overview,
        "checked": checked,
        "finding_groups": [
            {"check": check, "severity": groups[check][0].get("severity"), "rows": groups[check]}
            for check in ordered
        ],
    }


# --- the context -------------------------------------------------------------------------


def _request_view(req: RequestRecord) -> dict[str, Any]:
    due = req.due_date.isoformat()
    if req.extension_months:
        due += f" (extended by {req.extension_months} month(s): {req.extension_reason or '—'})"
    return {
        "id": req.request_id,
        "kind": req.kind,
        "kind_label": _KIND_LABELS.get(req.kind, req.kind),
        "subject_ref": req.subject_ref,
        "status": req.status,
        "status_reason": req.status_reason,
        "received_at": req.received_at.isoformat(),
        "identity_verified_at": (
            req.identity_verified_at.isoformat()
            # How it was verified (``--method``), when the ledger recorded it (#17).
            + (f" ({req.identity_method})" if getattr(req, "identity_method", None) else "")
            if req.identity_verified_at
            else None
        ),
        "due_at": due,
        "closed_at": req.closed_at,
        "operator": req.operator,
        "tool_version": req.tool_version,
    }


def build_context(
    ledger: Ledger,
    request_id: str,
    kind: str,
    record: Mapping[str, Any],
    *,
    keys: SigningKeys,
    checkpoint: Any = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Everything a report template sees, already sanitised and redacted."""
    from privacykit.evidence.render import fonts, sanitise

    if kind not in REPORT_KINDS:
        raise UsageError(f"report kind must be one of {', '.join(REPORT_KINDS)}")
    if not isinstance(record, Mapping):
        raise EvidenceError("an evidence record must be a mapping")
    req = ledger.get_request(request_id)
    if kind != "closing" and req.kind != kind:
        raise UsageError(f"request {request_id} is a {req.kind} request, not {kind}")
    today = today or clock.today()
    checkpoint = checkpoint if checkpoint is not None else ledger.latest_checkpoint()
    seqs = [e.seq for e in ledger.iter_entries(request_id)]
    redact = _redactor(ledger, req.subject_ref)
    gdpr = record.get("gdpr")
    article = gdpr.get("ground") if isinstance(gdpr, Mapping) and kind != "erasure" else None
    request = _request_view(req)
    request["operator"] = request["operator"] or record.get("operator")
    context: dict[str, Any] = {
        "kind": kind,
        "kind_label": _KIND_LABELS[kind],
        "title": f"{_KIND_LABELS[kind]} evidence",
        "record": record,
        "request": request,
        "facts": facts(kind, record, req),
        "gdpr_article": article or _DEFAULT_ARTICLES.get(req.kind, req.kind),
        "known_keys": list(KNOWN_KEYS[kind]),
        "ledger": {
            "first_seq": seqs[0] if seqs else None,
            "last_seq": seqs[-1] if seqs else None,
            "entries": len(seqs),
            "checkpoint_size": checkpoint.size if checkpoint is not None else None,
            "checkpoint_root": checkpoint.root_hex if checkpoint is not None else None,
            "checkpoint_origin": checkpoint.origin if checkpoint is not None else None,
        },
        "signer": {
            "fingerprint": keys.fingerprint,
            "subject": keys.subject,
            "algorithm": keys.key_algorithm,
        },
        "tool_version": __version__,
        "generated_at": clock.now_iso(),
        "typeface": fonts().note,
    }
    if kind == "closing":
        context["closing"] = _closing(record, req)
    if kind == "access":
        context["processing"] = _processing(record)
    if kind == "audit":
        rows = _open_requests(ledger, record, today)
        rows.sort(key=lambda r: (r["days_left"] is None, r["days_left"] or 0))
        context["open_requests"] = rows
        context["deadline_chart"] = _deadline_chart(rows)
        context["audit"] = _audit(record)
    sanitised: dict[str, Any] = sanitise(context, redact)
    return sanitised
