"""Requests in the ledger: creating them, status, deadline extension, identity
verification, listing, and the history of audit runs.

Every change is a ``ledger:*`` entry first; the ``requests`` row is derived from it
(:mod:`.replay`). Nothing personal is stored: a subject is a keyed reference.
"""

from __future__ import annotations

import getpass
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from privacykit import __version__, clock
from privacykit.errors import UsageError
from privacykit.ledger.base import ID_SHAPE, LedgerBase
from privacykit.ledger.dates import MAX_EXTENSION_MONTHS, due_date, parse_date
from privacykit.ledger.guard import looks_personal
from privacykit.ledger.records import (
    CLOSING_GROUNDS,
    KINDS,
    OPEN_STATUSES,
    STATUSES,
    RequestRecord,
)
from privacykit.ledger.replay import (
    CASE_KEY,
    EXTENSION_KEY,
    REQUEST_COLUMNS,
    REQUEST_KEY,
    STATUS_KEY,
    VERIFIED_KEY,
    case_ref_problem,
)
from privacykit.ledger.subject import compute_subject_ref, is_subject_ref

__all__ = [
    "DSAR_KINDS",
    "EXPORT_COLUMNS",
    "AuditRun",
    "RequestsMixin",
    "default_operator",
    "request_record",
]

#: Data subject requests (what ``ledger list`` shows); audits are runs, not requests.
DSAR_KINDS = ("erasure", "access")
#: What ``ledger export`` writes: the requests table without the subject reference (a
#: keyed hash, still pseudonymous data, which a record of processing does not need).
EXPORT_COLUMNS = tuple(column for column in REQUEST_COLUMNS if column != "subject_ref")


def default_operator() -> str:
    """The local user name (who ran it), unless it looks like something personal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
    return user if ID_SHAPE.match(user) and looks_personal(user) is None else "unknown"


def request_record(row: dict[str, Any], facts: dict[str, Any] | None = None) -> RequestRecord:
    """The record of a ``requests`` row, with the facts its entries hold beyond the row
    (:meth:`RequestsMixin._facts`)."""
    values = {key: row[key] for key in REQUEST_COLUMNS}
    values["received_at"] = parse_date(row["received_at"])
    values["due_date"] = parse_date(row["due_date"])
    values["identity_verified_at"] = (
        parse_date(row["identity_verified_at"]) if row["identity_verified_at"] else None
    )
    facts = facts or {}
    notified = facts.get("notified_at")
    closed = row["status"] == "closed"
    return RequestRecord(
        **values,
        case_ref=facts.get("case_ref"),
        identity_method=facts.get("identity_method"),
        extension_notified_at=parse_date(notified) if notified else None,
        closing_ground=facts.get("ground") if closed else None,
        closing_article=facts.get("article") if closed else None,
    )


# The request facts kept in ``ledger:*`` entries rather than table columns, read with one
# indexed query per 500 requests (``entries_by_step`` leads with the request id).
_FACT_KEYS = (REQUEST_KEY, CASE_KEY, VERIFIED_KEY, EXTENSION_KEY, STATUS_KEY)
_FACT_SQL = (
    "SELECT request_id, step_key, json_extract(data, '$.case_ref'), "
    "json_extract(data, '$.identity_method'), json_extract(data, '$.method'), "
    "json_extract(data, '$.notified_at'), json_extract(data, '$.status'), "
    "json_extract(data, '$.ground'), json_extract(data, '$.article') FROM entries "
    "WHERE request_id IN ({ids}) AND step_key IN ({keys}) ORDER BY seq"
)
_CHUNK = 500


def _fold(facts: dict[str, Any], row: tuple[Any, ...]) -> None:
    _rid, key, case_ref, identity_method, method, notified, status, ground, article = row
    if key == REQUEST_KEY:
        facts["case_ref"], facts["identity_method"] = case_ref, identity_method
    elif key == CASE_KEY:
        facts["case_ref"] = case_ref
    elif key == VERIFIED_KEY:
        facts["identity_method"] = method
    elif key == EXTENSION_KEY:
        facts["notified_at"] = notified
    elif key == STATUS_KEY and status == "closed":
        facts["ground"], facts["article"] = ground, article


def _method(value: str) -> str:
    text = " ".join(str(value).split())
    if not text or len(text) > 200:
        raise UsageError("--method must be a short text (at most 200 characters)")
    return text


def _case_ref(value: str | None, option: str = "--case") -> str | None:
    if value is None:
        return None
    problem = case_ref_problem(value)
    if problem is not None:
        raise UsageError(f"{option} must be the DPO's own reference: {problem}")
    return value


@dataclass(frozen=True)
class AuditRun:
    """One ``privacykit audit`` run as the ledger recorded it (for ``audit history``)."""

    request_id: str
    started_at: str
    completed_at: str | None
    status: str
    findings: int | None
    incomplete_checks: int | None
    report_sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "status": self.status,
            "findings": self.findings,
            "incomplete_checks": self.incomplete_checks,
            "report_sha256": self.report_sha256,
        }


class RequestsMixin(LedgerBase):
    """Request methods of :class:`~privacykit.ledger.Ledger`."""

    def subject_ref(self, normalised_identifier: str) -> str:
        """The keyed reference (``sr1:<hex>``) for a normalised identifier such as
        ``email:jane@example.com``. The identifier itself is never stored."""
        if self._secret is None:
            raise UsageError("subject references need the ledger opened for writing")
        return compute_subject_ref(self._secret, normalised_identifier)

    def create_request(
        self,
        kind: str,
        subject_ref: str,
        *,
        received_at: date | str,
        identity_verified_at: date | str | None = None,
        playbook_name: str | None = None,
        playbook_sha256: str | None = None,
        operator: str | None = None,
        batch_id: str | None = None,
        tool_version: str | None = None,
        status: str = "open",
        case_ref: str | None = None,
        identity_method: str | None = None,
    ) -> str:
        """Record a new request and return its id (``req-YYYYMMDD-<8 hex>``). ``case_ref``
        is the DPO's own reference (e.g. the DSAR ticket number; never personal data),
        ``identity_method`` how the subject's identity was verified."""
        if kind not in KINDS:
            raise UsageError(f"request kind must be one of {', '.join(KINDS)}")
        if not is_subject_ref(subject_ref):
            raise UsageError("subject_ref must be a keyed reference from ledger.subject_ref()")
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        received = parse_date(received_at, "received_at")
        data: dict[str, Any] = {
            "kind": kind,
            "subject_ref": subject_ref,
            "received_at": received.isoformat(),
            "identity_verified_at": (
                None
                if identity_verified_at is None
                else parse_date(identity_verified_at, "identity_verified_at").isoformat()
            ),
            "due_date": due_date(received).isoformat(),
            "status": status,
            "operator": operator if operator is not None else default_operator(),
            "playbook_name": playbook_name,
            "playbook_sha256": playbook_sha256,
            "tool_version": tool_version or __version__,
            "batch_id": batch_id,
        }
        # Only when given: entries of requests without them stay as they always were.
        if case_ref is not None:
            data["case_ref"] = _case_ref(case_ref)
        if identity_method is not None:
            data["identity_method"] = _method(identity_method)
        with self._write() as conn:
            while True:
                request_id = f"req-{received:%Y%m%d}-{secrets.token_hex(4)}"
                exists = conn.execute(
                    "SELECT 1 FROM requests WHERE request_id = ?", (request_id,)
                ).fetchone()
                if not exists:
                    break
            self._ledger_entry(request_id, REQUEST_KEY, data)
        return request_id

    def get_request(self, request_id: str) -> RequestRecord:
        """The request (``UsageError`` if the id is unknown)."""
        with self._read() as conn:
            row = self._require_request(conn, request_id)
        return request_record(row, self._facts([request_id]).get(request_id))

    def _facts(self, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What each request's ``ledger:*`` entries say beyond its row: case reference,
        identity method, extension notified date, closing ground and article."""
        ids = list(dict.fromkeys(request_ids))
        facts: dict[str, dict[str, Any]] = {}
        keys = ", ".join("?" for _ in _FACT_KEYS)
        with self._read() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                sql = _FACT_SQL.format(ids=", ".join("?" for _ in chunk), keys=keys)
                for row in conn.execute(sql, [*chunk, *_FACT_KEYS]):
                    _fold(facts.setdefault(row[0], {}), row)
        return facts

    def _records(self, rows: list[dict[str, Any]]) -> list[RequestRecord]:
        facts = self._facts(row["request_id"] for row in rows)
        return [request_record(row, facts.get(row["request_id"])) for row in rows]

    def list_requests(
        self,
        status: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        overdue: bool = False,
        *,
        today: date | None = None,
        case_ref: str | None = None,
    ) -> list[RequestRecord]:
        """Requests, oldest due first, filtered by status(es), kind(s) (e.g.
        :data:`DSAR_KINDS`), overdue (open and past the due date) and the DPO's case
        reference."""
        statuses = [status] if isinstance(status, str) else list(status or [])
        for value in statuses:
            if value not in STATUSES:
                raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        kinds = [kind] if isinstance(kind, str) else list(kind or [])
        for value in kinds:
            if value not in KINDS:
                raise UsageError(f"kind must be one of {', '.join(KINDS)}")
        where, params = [], []
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if kinds:
            where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
            params.extend(kinds)
        if overdue:
            where.append(f"status IN ({', '.join('?' for _ in OPEN_STATUSES)}) AND due_date < ?")
            params.extend(OPEN_STATUSES)
            params.append((today or clock.today()).isoformat())
        if case_ref is not None:
            # Requests whose entries ever named it; the latest naming decides below.
            where.append(
                "request_id IN (SELECT request_id FROM entries WHERE step_key IN (?, ?) "
                "AND json_extract(data, '$.case_ref') = ?)"
            )
            params.extend([REQUEST_KEY, CASE_KEY, case_ref])
        sql = "SELECT * FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due_date, created_at, request_id"
        records = self._records(self._rows(sql, params))
        if case_ref is not None:
            records = [r for r in records if r.case_ref == case_ref]
        return records

    def find_open_request(self, kind: str, subject_ref: str) -> RequestRecord | None:
        """The most recent unfinished request of ``kind`` about ``subject_ref`` (so a batch
        given the same input again resumes it), or None."""
        rows = self._rows(
            "SELECT * FROM requests WHERE kind = ? AND subject_ref = ? AND status IN "
            f"({', '.join('?' for _ in OPEN_STATUSES)}) "
            "ORDER BY created_at DESC, request_id DESC LIMIT 1",
            [kind, subject_ref, *OPEN_STATUSES],
        )
        return self._records(rows)[0] if rows else None

    def set_status(self, request_id: str, status: str, reason: str | None = None) -> None:
        """Record a status change (``open``, ``in_progress``, ``needs_review``,
        ``pending_compliance``, ``completed``, ``failed``; ``closed`` only through
        :meth:`close_request`, which records its ground)."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        if status == "closed":
            raise UsageError("a request is closed with a ground: use close_request")
        self._ledger_entry(request_id, STATUS_KEY, {"status": status, "reason": reason})

    def close_request(
        self, request_id: str, ground: str, reason: str, *, article: str | None = None
    ) -> RequestRecord:
        """Close an open request that will not be carried out: status ``closed`` with its
        ``ground`` (withdrawn, refused, mistake), the ``article`` a refusal relies on and
        the ``reason``; its deadline stops. A finished request cannot be closed, except a
        completed one that found no data and changed nothing, as a ``mistake`` (the
        replay's rule, :func:`~privacykit.ledger.replay.apply_request_entry`)."""
        if ground not in CLOSING_GROUNDS:
            raise UsageError(f"a closing ground is one of {', '.join(CLOSING_GROUNDS)}")
        text = " ".join((reason or "").split())
        if not text:
            raise UsageError("closing a request needs a reason")
        with self._write() as conn:
            row = self._require_request(conn, request_id)
            if row["status"] not in (*OPEN_STATUSES, "completed"):
                raise UsageError(
                    f"request {request_id} is {row['status']}; only an open request can be closed"
                )
            data = {"status": "closed", "reason": text, "ground": ground, "article": article}
            self._ledger_entry(request_id, STATUS_KEY, data)
        return self.get_request(request_id)

    def set_case_ref(self, request_id: str, case_ref: str) -> RequestRecord:
        """Give a request the DPO's own case reference (or change it)."""
        value = _case_ref(case_ref)
        self._ledger_entry(request_id, CASE_KEY, {"case_ref": value})
        return self.get_request(request_id)

    def set_identity_verified(
        self, request_id: str, verified_at: date | str, method: str | None = None
    ) -> None:
        """Record the date the subject's identity was verified (and how)."""
        when = parse_date(verified_at, "identity_verified_at")
        if when > clock.today():
            raise UsageError("the identity cannot be verified in the future")
        data: dict[str, Any] = {"identity_verified_at": when.isoformat()}
        if method is not None:
            data["method"] = _method(method)
        self._ledger_entry(request_id, VERIFIED_KEY, data)

    def extend(
        self,
        request_id: str,
        months: int,
        reason: str,
        *,
        notified_at: date | str | None = None,
    ) -> RequestRecord:
        """Extend the deadline by ``months`` (Art. 12(3): at most two in total, with a reason
        that must also be given to the subject within one month of receipt). ``notified_at``
        is the day the subject was told (default: today); a notification later than one
        month after receipt is refused. Returns the updated request."""
        if not isinstance(months, int) or isinstance(months, bool) or months < 1:
            raise UsageError("an extension is a whole number of months, at least 1")
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("an extension needs a reason (Art. 12(3))")
        self.guard.check({"reason": reason}, "data")  # personal data first, whatever else
        with self._write() as conn:
            row = self._require_request(conn, request_id)
            if row["status"] not in OPEN_STATUSES:
                raise UsageError(f"request {request_id} is {row['status']}; it cannot be extended")
            total = row["extension_months"] + months
            if total > MAX_EXTENSION_MONTHS:
                raise UsageError(
                    f"Art. 12(3) allows at most {MAX_EXTENSION_MONTHS} extra months; "
                    f"request {request_id} already has {row['extension_months']}"
                )
            received = parse_date(row["received_at"])
            told = parse_date(
                notified_at if notified_at is not None else clock.today(), "notified_at"
            )
            if told > clock.today():
                raise UsageError("--notified cannot be in the future")
            if told < received:
                raise UsageError(
                    f"--notified {told.isoformat()} is before request {request_id} was "
                    f"received ({received.isoformat()})"
                )
            if told > due_date(received):
                raise UsageError(
                    f"Art. 12(3): the subject must be told of an extension within one month "
                    f"of receipt, by {due_date(received).isoformat()}; request {request_id} "
                    f"was received on {received.isoformat()}, so it can no longer be extended"
                )
            data = {
                "months": months,
                "extension_months": total,
                "reason": reason.strip(),
                "due_date": due_date(received, total).isoformat(),
                "notified_at": told.isoformat(),
            }
            self._ledger_entry(request_id, EXTENSION_KEY, data)
        return self.get_request(request_id)

    def audit_runs(self, limit: int | None = None) -> list[AuditRun]:
        """Audit runs, newest first (``limit`` of them): when, status, how many findings
        and incomplete checks their evidence record counted, and their report's sha256."""
        sql = "SELECT request_id, created_at, closed_at, status FROM requests WHERE kind = 'audit'"
        sql += " ORDER BY created_at DESC, request_id DESC"
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        runs = []
        for row in self._rows(sql):
            rid = row["request_id"]
            evidence = self._rows(
                "SELECT data FROM entries WHERE request_id = ? AND step_key = 'evidence' "
                "ORDER BY seq DESC LIMIT 1",
                (rid,),
            )
            findings = incomplete = None
            if evidence:
                record = json.loads(evidence[0]["data"])
                recorded = record.get("findings")
                if isinstance(recorded, list):
                    findings = len(recorded) + int(record.get("findings_not_recorded") or 0)
                errors = record.get("errors")
                incomplete = len(errors) if isinstance(errors, list) else None
            report = self._rows(
                "SELECT sha256 FROM artifacts WHERE request_id = ? AND kind = 'report' "
                "ORDER BY seq DESC LIMIT 1",
                (rid,),
            )
            runs.append(
                AuditRun(
                    request_id=rid,
                    started_at=row["created_at"],
                    completed_at=row["closed_at"],
                    status=row["status"],
                    findings=findings,
                    incomplete_checks=incomplete,
                    report_sha256=report[0]["sha256"] if report else None,
                )
            )
        return runs
