"""Evidence reports: the record plus the ledger's view of the request, rendered and signed.

Owns :func:`produce_report` (the contract with the playbooks, docs/ARCHITECTURE.md
"Evidence records"), :func:`reproduce_report` (render again from the ``evidence`` entry
the ledger holds, e.g. with a timestamp authority), :func:`build_context` and
:func:`request_reports`.

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
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacykit import __version__, clock
from privacykit.errors import EvidenceError, PrivacykitError, UsageError
from privacykit.evidence.keys import SigningKeys, ensure_keys
from privacykit.evidence.render import fonts, render_pdf, sanitise
from privacykit.evidence.sign import sign_pdf

if TYPE_CHECKING:
    from privacykit.ledger import Ledger, RequestRecord

__all__ = [
    "ARTIFACT_KIND",
    "REPORT_KINDS",
    "Report",
    "build_context",
    "produce_report",
    "reproduce_report",
    "request_reports",
]

ARTIFACT_KIND = "report"
REPORT_KINDS = ("erasure", "access", "audit")
WITHHELD = "[subject identifier withheld]"

_KIND_LABELS = {"erasure": "Erasure", "access": "Access", "audit": "Audit"}
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
    "reasons",
    "steps",
    "playbook",
    "tool_version",
    "operator",
    "started_at",
    "completed_at",
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
        "export_schema",
        "users",
        "profiles",
        "compliance",
    ),
    "audit": (
        *_COMMON_KEYS,
        "status",
        "summary",
        "checks",
        "findings",
        "findings_not_recorded",
        "errors",
        "open_requests",
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


@dataclass(frozen=True)
class Report:
    """A signed report stored as a ledger artifact. Unpacks as ``path, sha256``."""

    path: Path
    sha256: str
    request_id: str = ""
    kind: str = ""
    signer_fingerprint: str = ""
    checkpoint_size: int = 0

    def __iter__(self) -> Iterator[Any]:
        yield self.path
        yield self.sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "request_id": self.request_id,
            "kind": self.kind,
            "signer_fingerprint": self.signer_fingerprint,
            "checkpoint_size": self.checkpoint_size,
        }


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


# --- context -----------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


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


def _request_view(req: RequestRecord, record: Mapping[str, Any]) -> dict[str, Any]:
    due = req.due_date.isoformat()
    if req.extension_months:
        due += f" (extended by {req.extension_months} month(s): {req.extension_reason or '—'})"
    given = record.get("playbook")
    playbook: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    return {
        "id": req.request_id,
        "kind": req.kind,
        "subject_ref": req.subject_ref,
        "status": req.status,
        "status_reason": req.status_reason,
        "received_at": req.received_at.isoformat(),
        "identity_verified_at": _iso(req.identity_verified_at),
        "due_at": due,
        "completed_at": req.closed_at or record.get("completed_at"),
        "operator": req.operator or record.get("operator"),
        "playbook_name": req.playbook_name or playbook.get("name"),
        "playbook_sha256": req.playbook_sha256 or playbook.get("sha256"),
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
    if kind not in REPORT_KINDS:
        raise UsageError(f"report kind must be one of {', '.join(REPORT_KINDS)}")
    if not isinstance(record, Mapping):
        raise EvidenceError("an evidence record must be a mapping")
    req = ledger.get_request(request_id)
    if req.kind != kind:
        raise UsageError(f"request {request_id} is a {req.kind} request, not {kind}")
    today = today or clock.today()
    checkpoint = checkpoint if checkpoint is not None else ledger.latest_checkpoint()
    seqs = [e.seq for e in ledger.iter_entries(request_id)]
    redact = _redactor(ledger, req.subject_ref)
    gdpr = record.get("gdpr")
    article = gdpr.get("ground") if isinstance(gdpr, Mapping) and kind != "erasure" else None
    context: dict[str, Any] = {
        "kind": kind,
        "kind_label": _KIND_LABELS[kind],
        "title": f"{_KIND_LABELS[kind]} evidence",
        "record": record,
        "request": _request_view(req, record),
        "gdpr_article": article or _DEFAULT_ARTICLES[kind],
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
    if kind == "audit":
        rows = _open_requests(ledger, record, today)
        rows.sort(key=lambda r: (r["days_left"] is None, r["days_left"] or 0))
        context["open_requests"] = rows
        context["deadline_chart"] = _deadline_chart(rows)
    sanitised: dict[str, Any] = sanitise(context, redact)
    return sanitised


# --- produce -----------------------------------------------------------------------------


def produce_report(
    ledger: Ledger,
    request_id: str,
    kind: str,
    record: Mapping[str, Any],
    *,
    home: Path | None = None,
    tsa_url: str | None = None,
    keys: SigningKeys | None = None,
) -> Report:
    """Render ``record`` with the request's ledger metadata, sign it (PAdES; RFC 3161
    timestamp with ``tsa_url`` or ``$PRIVACYKIT_TSA_URL``), store it as a ``report``
    artifact of the request and return its stored path and sha256.

    A fresh checkpoint is written first, so the root printed in the report covers every
    entry of the request so far (including the ``evidence`` entry). Signing keys are
    created on first use (:func:`ensure_keys`)."""
    home = Path(home) if home is not None else Path(ledger.home)
    keys = keys or ensure_keys(home)
    checkpoint = ledger.checkpoint()
    context = build_context(ledger, request_id, kind, record, keys=keys, checkpoint=checkpoint)
    unsigned = render_pdf(
        f"{kind}.xml.j2", context, subject=f"GDPR evidence, request {context['request']['id']}"
    )
    signed = sign_pdf(unsigned, keys, tsa_url=tsa_url)
    with tempfile.TemporaryDirectory(dir=home, prefix=".report-") as tmp:
        path = Path(tmp) / f"{kind}-report.pdf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(signed)
        sha = ledger.add_artifact(request_id, path, ARTIFACT_KIND)
    return Report(
        path=ledger.artifact_path(sha),
        sha256=sha,
        request_id=request_id,
        kind=kind,
        signer_fingerprint=keys.fingerprint,
        checkpoint_size=checkpoint.size,
    )


def reproduce_report(
    ledger: Ledger, request_id: str, *, home: Path | None = None, tsa_url: str | None = None
) -> Report:
    """Produce the report again from the latest ``evidence`` entry the ledger holds for
    the request (e.g. to add an RFC 3161 timestamp, or after a DPO changed the wording)."""
    req = ledger.get_request(request_id)
    evidence = [
        e for e in ledger.iter_entries(request_id) if e.step_key == "evidence" and e.phase == "info"
    ]
    if not evidence:
        raise EvidenceError(f"request {request_id} has no evidence record in the ledger yet")
    return produce_report(
        ledger, request_id, req.kind, evidence[-1].data, home=home, tsa_url=tsa_url
    )


def request_reports(ledger: Ledger, request_id: str) -> list[dict[str, Any]]:
    """The signed reports stored for a request, oldest first."""
    ledger.get_request(request_id)  # UsageError for an unknown id
    return [a.to_dict() for a in ledger.artifacts(request_id) if a.kind == ARTIFACT_KIND]
