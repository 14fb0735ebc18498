"""Closing a request that will not be carried out: withdrawn, refused, or opened by mistake.

Owns :func:`close_request` (what ``privacykit request close`` calls), :class:`Closed` and
the grounds. A request is closed, never deleted: the ledger keeps everything it recorded,
and the closing adds

1. the closing evidence record (``privacykit.closing-evidence/1``: ground, the article
   relied on, the reason, who and when) as the request's ``evidence`` entry;
2. a ``report`` intent (and the ``reports-owed`` marker, so a run killed before the PDF
   is stored signs it later, as for every request);
3. the final status ``closed`` with its ground (a ``ledger:status`` entry: the deadline
   stops, so the audit no longer reports it);
4. the signed closing report stating the ground, then the report's outcome.

Grounds: ``withdrawn`` (the subject withdrew the request), ``refused`` -- Art. 12(5)
(manifestly unfounded or excessive) or, for an erasure, an Art. 17(3) exception (a) to
(e) -- and ``mistake`` (no such request: e.g. a mistyped identifier opened it). A refusal
must also be explained to the subject with their right to complain (Art. 12(4)); the
report says so. Only an open request can be closed: a finished one keeps its outcome,
and one that already changed Zendesk (a deletion done, or started with its outcome
unknown) was carried out at least in part, so it is finished with ``erase --resume``.

One exception (#17): a typo'd identifier makes a request that finishes at once as
"no data found" with a signed report. A *completed* request whose outcome is
``no_data_found`` and that changed nothing (:func:`finished_no_data`) may be closed
``mistake`` -- not withdrawn or refused, which say a real request was not carried out.
The closing record keeps ``earlier_outcome`` so the report states that the earlier
"no data found" answer relates to an identifier entered by mistake. The ledger's replay
allows exactly this ``completed -> closed`` transition and no other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacykit import __version__, clock
from privacykit.errors import UsageError
from privacykit.ledger.guard import looks_personal
from privacykit.ledger.replay import carries_out
from privacykit.playbooks.request import (
    EVIDENCE_STEP,
    REPORT_STEP,
    default_operator,
    ledger_view,
    owed_marker,
)

if TYPE_CHECKING:
    from privacykit.ledger import Ledger

__all__ = [
    "CLOSING_SCHEMA",
    "GROUNDS",
    "REFUSAL_ARTICLES",
    "Closed",
    "close_request",
    "finished_no_data",
    "refusal_article",
]

CLOSING_SCHEMA = "privacykit.closing-evidence/1"
GROUNDS = ("withdrawn", "refused", "mistake")
#: What ``--article`` accepts for a refusal, and the article as the record states it.
REFUSAL_ARTICLES = {
    "12(5)": "Art. 12(5)",
    "17(3)(a)": "Art. 17(3)(a)",
    "17(3)(b)": "Art. 17(3)(b)",
    "17(3)(c)": "Art. 17(3)(c)",
    "17(3)(d)": "Art. 17(3)(d)",
    "17(3)(e)": "Art. 17(3)(e)",
}
_REASON_LIMIT = 1000


@dataclass(frozen=True)
class Closed:
    """A closed request: its ground, the article relied on, and the signed report."""

    request_id: str
    kind: str
    ground: str
    article: str | None
    reason: str
    closed_at: str
    report_path: Path | None = None
    report_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "status": "closed",
            "ground": self.ground,
            "article": self.article,
            "reason": self.reason,
            "closed_at": self.closed_at,
            "report": str(self.report_path) if self.report_path else None,
            "report_sha256": self.report_sha256,
        }


def refusal_article(text: str | None, kind: str) -> str:
    """The article a refusal relies on, as the record states it (``Art. 12(5)``);
    :class:`UsageError` when missing or not one of :data:`REFUSAL_ARTICLES`."""
    if text is None or not text.strip():
        raise UsageError(
            "--as refused needs --article: 12(5) (manifestly unfounded or excessive) "
            "or, for an erasure, 17(3)(a) to 17(3)(e)"
        )
    key = text.strip().removeprefix("Art.").strip().replace(" ", "")
    article = REFUSAL_ARTICLES.get(key)
    if article is None:
        raise UsageError("--article must be 12(5) or one of 17(3)(a) to 17(3)(e)")
    if key.startswith("17(3)") and kind != "erasure":
        raise UsageError(f"Art. 17(3) exceptions apply to erasure requests, not {kind}")
    return article


def _reason(text: str) -> str:
    reason = " ".join((text or "").split())
    if not reason:
        raise UsageError("--reason must say why the request is closed (it is recorded)")
    if len(reason) > _REASON_LIMIT:
        raise UsageError(f"--reason is limited to {_REASON_LIMIT} characters")
    if looks_personal(reason):
        # The ledger keeps the reason for good: no address, phone number or token in it.
        raise UsageError(
            "--reason looks like it holds personal data (an email address, a phone number "
            "or a token); state the ground without it"
        )
    return reason


def _changed_zendesk(ledger: Ledger, request_id: str) -> list[str]:
    """The request's steps that changed Zendesk or may have (the last intent has no
    ``failed`` outcome after it), by the ledger's step rules. The report step and the DSAR
    ticket's intake note or closing are not a carrying out of the request."""
    state: dict[str, str] = {}
    for entry in ledger.iter_entries(request_id):
        key = entry.step_key
        if key == REPORT_STEP or key.startswith(("intake:", "ledger:")):
            continue
        if entry.phase == "intent":
            state[key] = "intent"
        elif entry.phase == "outcome" and key in state:
            result = entry.data.get("result", "ok")
            state[key] = "none" if result == "failed" else "done"
    return [key for key, value in state.items() if value != "none"]


# What a "no data found" access answer consists of (``playbooks/access/export.py``: when
# Zendesk holds nothing on the person, data.json and index.html say so and are the whole
# answer; the signed report is recorded apart, as ``deliver:report``).
_NO_DATA_ANSWER = frozenset({"data.json", "index.html"})


def finished_no_data(ledger: Ledger, request_id: str) -> bool:
    """Whether the finished request ``request_id`` answered "no data found" and changed
    nothing: its latest evidence record's outcome is ``no_data_found``, no entry is a
    destructive step's intent (not even one that failed: "changed nothing" is read from
    the entries, never assumed), and -- for access -- nothing was delivered beyond the
    no-data answer.

    Why that is enough for access: access never writes to Zendesk (its only Zendesk write,
    the DSAR ticket's intake note, is an ``intake:`` step on the DPO's own ticket), and
    ``no_data_found`` is set only when discovery found no one (``access/runner.py``), so
    the delivered answer holds no one's data; checking the delivered file names as well
    keeps a record that says "no data" but lists a CSV or an attachment from being closed
    as if nothing had been handed over."""
    outcome: object = None
    delivered: set[str] = set()
    for entry in ledger.iter_entries(request_id):
        if carries_out(entry.step_key, entry.phase):
            return False
        if entry.step_key == EVIDENCE_STEP and entry.data.get("outcome") != "closed":
            outcome = entry.data.get("outcome")
        elif entry.step_key == "deliver":
            files = entry.data.get("files")
            if not isinstance(files, list):
                return False
            delivered.update(str(f.get("name")) if isinstance(f, dict) else "" for f in files)
    return outcome == "no_data_found" and delivered <= _NO_DATA_ANSWER


def close_request(
    ledger: Ledger,
    request_id: str,
    ground: str,
    reason: str,
    *,
    article: str | None = None,
    home: Path | None = None,
    produce_report: bool = True,
    operator: str | None = None,
) -> Closed:
    """Close the open request ``request_id`` on ``ground`` with ``reason`` (see the module
    docstring). Bad input and a request that is not open raise :class:`UsageError`
    (exit 2) with nothing recorded."""
    if ground not in GROUNDS:
        raise UsageError(f"--as must be one of {', '.join(GROUNDS)}")
    request = ledger.get_request(request_id)  # UsageError for an unknown id
    if request.kind not in ("erasure", "access"):
        raise UsageError(f"{request_id} is an {request.kind} run, not a data subject request")
    earlier: str | None = None
    if request.status == "completed" and finished_no_data(ledger, request_id):
        if ground != "mistake":
            raise UsageError(
                f"{request_id} finished with no data found: only --as mistake applies to a "
                "finished no-data request"
            )
        earlier = "no_data_found"
    elif not request.is_open:
        raise UsageError(
            f"{request_id} is {request.status}: only an open request can be closed "
            "(a finished one keeps its outcome)"
        )
    changed = _changed_zendesk(ledger, request_id)
    if changed:
        # A closing report says the request was not carried out: never over deletions.
        how = "with `privacykit erase --resume`" if request.kind == "erasure" else "instead"
        raise UsageError(
            f"{request_id} has already changed Zendesk ({len(changed)} step(s) done or "
            f"started, e.g. {changed[0]}): it cannot be closed as not carried out; finish it "
            f"{how}"
        )
    if ground == "refused":
        stated = refusal_article(article, request.kind)
    elif article is not None:
        raise UsageError("--article is only for --as refused")
    else:
        stated = None
    text = _reason(reason)
    closed_at = clock.now_iso()
    record: dict[str, Any] = {
        "schema": CLOSING_SCHEMA,
        "request_id": request_id,
        "subject_ref": request.subject_ref,
        "kind": request.kind,
        "status": "closed",
        "outcome": "closed",
        "ground": ground,
        "article": stated,
        "reason": text,
        "case_ref": getattr(request, "case_ref", None),
        "closed_at": closed_at,
        # The finished request's answer the closing corrects (None: it had not finished).
        "earlier_outcome": earlier,
        "playbook": {"name": request.playbook_name, "sha256": request.playbook_sha256},
        "operator": operator or default_operator(),
        "tool_version": __version__,
        "started_at": request.created_at,
        "completed_at": closed_at,
    }
    base = Path(home) if home is not None else Path(ledger.home)
    seq = ledger.record(request_id, EVIDENCE_STEP, "info", ledger_view(record))
    marker = owed_marker(base, request_id) if produce_report else None
    if marker is not None:
        marker.parent.mkdir(mode=0o700, exist_ok=True)
        marker.touch(mode=0o600)
        ledger.record(request_id, REPORT_STEP, "intent", {"evidence_seq": seq})
    ledger.close_request(request_id, ground, text, article=stated)
    if marker is None:
        return Closed(request_id, request.kind, ground, stated, text, closed_at)
    from privacykit.evidence import produce_report as produce

    report = produce(ledger, request_id, "closing", record, home=base)
    ledger.record(
        request_id,
        REPORT_STEP,
        "outcome",
        {"sha256": str(report.sha256), "evidence_seq": seq, "result": "ok"},
    )
    marker.unlink(missing_ok=True)
    return Closed(
        request_id,
        request.kind,
        ground,
        stated,
        text,
        closed_at,
        Path(report.path),
        str(report.sha256),
    )
