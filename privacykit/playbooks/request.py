"""One data subject request in the ledger, from opening to its signed report.

Owns :class:`RequestSession`, the one way erasure and access (and later kinds) open or
resume a request, record what they do, and finish it:

* **open / resume**: a subject's open request of the same kind is continued under its id;
  otherwise a new request is created with the operator (``PRIVACYKIT_OPERATOR`` or the OS
  user, for every kind), the received date, the playbook name and sha256 actually used, and
  a copy of that playbook file stored as an artifact of kind ``playbook`` (the evidence
  re-renders the playbook's free texts from it).
* **record**: every entry goes through the ledger (and its privacy guard); the session
  remembers what it wrote (and, for a resumed request, what it read once at load), so the
  engine never re-reads its own entries. It is the :class:`~privacykit.playbooks.engine.
  StepLedger` that :func:`~privacykit.playbooks.engine.perform` uses.
* **finish**: the evidence record is stored in the ledger in its one redacted shape
  (:func:`ledger_view`), then the final status is written, and only then the signed report
  is produced -- so the report states the final status. The report is never skipped
  silently: a PDF stack that cannot load is an :class:`EvidenceError`.

Crash safety of the report: a ``report`` intent is recorded before the final status and
its outcome (the report's sha256) after the PDF is stored; a marker file
``<home>/reports-owed/<request id>`` indexes the requests between the two, and
:func:`settle_owed_reports` (called at the start of every run) signs what a killed run
owed, from the ledger's evidence record (both in :mod:`.owed_reports`). A run defers its
reports (``finish(defer_report=True)``, then :func:`sign_deferred_reports`, which calls
:meth:`RequestSession.sign_report`) so that every report names the one checkpoint it signs
after all the final statuses (erasure, access and audit runs all do).

Also here, shared by every kind: :func:`default_operator`, :func:`parse_received` (the one
``--received`` parser) and :func:`ledger_view` / :func:`restore_withheld`.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacykit import __version__, clock
from privacykit.errors import LedgerError, UsageError
from privacykit.ledger.guard import looks_personal
from privacykit.playbooks.owed_reports import (
    EVIDENCE_STEP,
    REPORT_STEP,
    owed_marker,
    settle_owed_reports,
    sign_deferred_reports,
)
from privacykit.playbooks.owed_reports import produce as _produce
from privacykit.playbooks.ports import RequestLedger

if TYPE_CHECKING:
    from privacykit.ledger.checkpoint import Checkpoint
    from privacykit.ledger.records import RequestRecord
    from privacykit.playbooks.loader import Playbook

__all__ = [
    "EVIDENCE_STEP",
    "PLAYBOOK_ARTIFACT",
    "REPORT_STEP",
    "Recorded",
    "RequestSession",
    "SessionSteps",
    "default_operator",
    "ledger_view",
    "owed_marker",
    "parse_received",
    "recorded_playbook",
    "restore_withheld",
    "settle_owed_reports",
    "sign_deferred_reports",
    "withheld",
]

PLAYBOOK_ARTIFACT = "playbook"
_WITHHELD = re.compile(r"^\[not kept in the ledger; sha256 ([0-9a-f]{64})\]$")


def default_operator() -> str:
    """Who runs this: ``PRIVACYKIT_OPERATOR`` or the OS user."""
    name = os.environ.get("PRIVACYKIT_OPERATOR", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_received(text: str | None, option: str = "--received") -> date | None:
    """The date a request arrived, as given on the command line (``YYYY-MM-DD``), or None.
    Not in the future (UTC). :class:`UsageError` otherwise."""
    if text is None:
        return None
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date like 2026-01-31") from None
    if value > clock.today():
        raise UsageError(f"{option} cannot be in the future")
    return value


def withheld(text: str) -> str:
    """The ledger's stand-in for a free text its privacy guard refuses (a DPO's address in
    a playbook): the text's sha256, so it can be restored from the playbook verbatim."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"[not kept in the ledger; sha256 {digest}]"


def ledger_view(value: Any) -> Any:
    """A record as the ledger keeps it: every string that looks like an address, a phone
    number or a token becomes :func:`withheld` text; everything else is unchanged. Records
    hold ids and counts, but playbook free texts (Art. 19 recipients, retention reasons,
    Art. 15 facts) are the DPO's and may name an address."""
    if isinstance(value, str):
        return withheld(value) if looks_personal(value) else value
    if isinstance(value, Mapping):
        return {key: ledger_view(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [ledger_view(item) for item in value]
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def restore_withheld(view: Any, source: Any) -> Any:
    """``view`` with every :func:`withheld` text replaced by the string of ``source`` (e.g.
    the playbook's data) whose sha256 it names; texts not found stay withheld."""
    by_hash = {hashlib.sha256(s.encode("utf-8")).hexdigest(): s for s in _strings(source)}

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            match = _WITHHELD.match(value)
            return by_hash.get(match.group(1), value) if match else value
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [walk(item) for item in value]
        return value

    return walk(view)


@dataclass(frozen=True)
class Recorded:
    """One entry of the request as the session knows it (read at load or written since)."""

    seq: int
    step_key: str
    phase: str
    data: dict[str, Any]
    ts: str


@dataclass(frozen=True)
class Finished:
    """How :meth:`RequestSession.finish` ended: the final status and the stored report."""

    status: str
    evidence_seq: int
    report_path: Path | None = None
    report_sha256: str | None = None


@dataclass
class RequestSession:
    """One request of ``kind`` about ``subject_ref``, opened or resumed in the ledger.

    Build it with :meth:`for_subject` (continues the subject's open request, if any) or
    :meth:`for_request` (an open request found by ``--resume``). Until :meth:`open` is
    called nothing is written: ``info`` entries are buffered (a dry run discards them)."""

    ledger: RequestLedger
    kind: str
    #: None for a request no playbook drives (the audit's own): it is named by its kind.
    playbook: Playbook | None
    subject_ref: str = ""
    operator: str = field(default_factory=default_operator)
    received_at: date | None = None
    batch_id: str | None = None
    home: Path | None = None
    #: The DPO's own reference (``--case``), and the identity verification (``--identity-
    #: verified DATE --method TEXT``): recorded when the request is opened, or added to a
    #: resumed request when given again.
    case_ref: str | None = None
    identity_verified: date | None = None
    identity_method: str | None = None
    request_id: str | None = None
    started_at: str | None = None
    resumed: bool = False
    status: str | None = None
    entries: list[Recorded] = field(default_factory=list)
    loaded: int = 0
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: (name, sha256) the ledger recorded when the request was opened (resumed requests).
    recorded_playbook: tuple[str, str] | None = None
    #: An open request of the same subject this one replaces (it was opened under another
    #: playbook and nothing destructive happened in it): closed when this one opens.
    supersedes: str | None = None
    _open: bool = False
    # The full record and evidence seq of a report finish() left to sign_report().
    _deferred: tuple[dict[str, Any], int] | None = field(default=None, repr=False)
    # Permanent-deletion workers record for one request from several threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def for_subject(
        cls, ledger: RequestLedger, kind: str, playbook: Playbook, subject_key: str, **kw: Any
    ) -> RequestSession:
        """A session for the subject (``Subject.key``): its open request, else a new one
        (created by :meth:`open`)."""
        ref = ledger.subject_ref(subject_key)
        found = ledger.find_open_request(kind, ref)
        if found is not None:
            return cls.for_request(ledger, found, playbook, **kw)
        return cls(ledger, kind, playbook, subject_ref=ref, **kw)

    @classmethod
    def for_request(
        cls, ledger: RequestLedger, request: RequestRecord, playbook: Playbook, **kw: Any
    ) -> RequestSession:
        """A session continuing ``request``; its entries are read once, here."""
        session = cls(
            ledger,
            request.kind,
            playbook,
            subject_ref=request.subject_ref,
            request_id=request.request_id,
            started_at=request.created_at,
            resumed=True,
            status=request.status,
            **kw,
        )
        if request.playbook_name and request.playbook_sha256:
            session.recorded_playbook = (request.playbook_name, request.playbook_sha256)
        session.entries = [
            Recorded(e.seq, e.step_key, e.phase, dict(e.data), e.ts)
            for e in ledger.entries(request.request_id)
        ]
        session.loaded = len(session.entries)
        return session

    # -- opening ----------------------------------------------------------------------------

    def open(self) -> str:
        """Create the request (first time) or continue it; flush buffered info; mark it
        ``in_progress``. Returns the request id."""
        if self.request_id is None:
            facts: dict[str, Any] = {}
            if self.case_ref is not None:
                facts["case_ref"] = self.case_ref
            if self.identity_method is not None:
                facts["identity_method"] = self.identity_method
            book = self.playbook
            self.request_id = self.ledger.create_request(
                self.kind,
                self.subject_ref,
                received_at=self.received_at or clock.today(),
                identity_verified_at=self.identity_verified,
                playbook_name=book.name if book is not None else self.kind,
                playbook_sha256=book.sha256 if book is not None else None,
                operator=self.operator,
                batch_id=self.batch_id,
                tool_version=__version__,
                **facts,
            )
            self.started_at = self.ledger.get_request(self.request_id).created_at
            self.status = "open"
            self._store_playbook()
            if self.supersedes is not None:
                self.ledger.set_status(
                    self.supersedes,
                    "failed",
                    f"superseded by {self.request_id} (run under playbook {book.name})"
                    if book is not None
                    else f"superseded by {self.request_id}",
                )
        elif not self._open:
            self._add_facts(self.request_id)
        self._open = True
        for key, data in self.pending:
            self.record(key, "info", data)
        self.pending.clear()
        if self.status != "in_progress":
            self.set_status("in_progress")
        return self.request_id

    def _add_facts(self, rid: str) -> None:
        """A resumed request given a case reference or identity verification it does not
        have yet (or a different one): record it."""
        if self.case_ref is None and self.identity_verified is None:
            return
        current = self.ledger.get_request(rid)
        if self.case_ref is not None and current.case_ref != self.case_ref:
            self.ledger.set_case_ref(rid, self.case_ref)
        if self.identity_verified is not None and (
            current.identity_verified_at != self.identity_verified
            or current.identity_method != self.identity_method
        ):
            self.ledger.set_identity_verified(rid, self.identity_verified, self.identity_method)

    def _store_playbook(self) -> None:
        """The playbook file actually used, as an artifact (its sha256 is the request's)."""
        assert self.request_id is not None
        if self.playbook is None or self.playbook.path is None:
            return  # none, or built in code (tests, library callers): no file to keep
        path = self.playbook.path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the playbook file again: {exc.strerror}") from None
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != self.playbook.sha256:
            raise UsageError("the playbook file changed while the request was being opened")
        with tempfile.TemporaryDirectory(prefix="privacykit-playbook-") as tmp:
            copy = Path(tmp) / "playbook.yaml"
            copy.write_text(text, encoding="utf-8")
            self.ledger.add_artifact(self.request_id, copy, PLAYBOOK_ARTIFACT)

    # -- recording ----------------------------------------------------------------------------

    @property
    def opened(self) -> bool:
        """Whether :meth:`open` ran (a resumed request is not written to before it)."""
        return self._open

    def info(self, step_key: str, data: dict[str, Any]) -> None:
        """An ``info`` entry now, or when the request is opened (dry runs never open)."""
        if not self._open:
            self.pending.append((step_key, data))
        else:
            self.record(step_key, "info", data)

    def record(
        self,
        step_key: str,
        phase: str,
        data: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> int:
        """Append an entry through the ledger (and its guard) and remember it."""
        rid = self._rid(request_id)
        value = dict(data or {})
        if phase == "outcome":
            value.setdefault("result", "ok")
        with self._lock:
            seq = self.ledger.record(rid, step_key, phase, value)
            self.entries.append(Recorded(seq, step_key, phase, value, clock.now_iso()))
        return seq

    def _rid(self, request_id: str | None) -> str:
        if self.request_id is None or not self._open:
            raise LedgerError("the request is not open yet")
        if request_id is not None and request_id != self.request_id:
            raise LedgerError("a session records for its own request only")
        return self.request_id

    def set_status(self, status: str, reason: str | None = None) -> None:
        # The reason in the ledger's one shape, like the evidence: a text the guard would
        # refuse is withheld, never a final status that cannot be written (the request
        # would stay in_progress, its report owed, on every run).
        self.ledger.set_status(self._rid(None), status, ledger_view(_clip(reason)))
        self.status = status

    # StepLedger (engine.perform) ------------------------------------------------------------

    @property
    def steps(self) -> SessionSteps:
        """This session as the :class:`~privacykit.playbooks.engine.StepLedger` that
        :func:`~privacykit.playbooks.engine.perform` writes through."""
        return SessionSteps(self)

    def _step(self, step_key: str) -> tuple[str, dict[str, Any] | None]:
        """State and successful outcome data of a step, by the ledger's rules: the last
        intent or outcome decides (``ok`` done, ``failed`` none, ``unknown`` intent)."""
        state, outcome = "none", None
        with self._lock:
            entries = list(self.entries)
        for entry in entries:
            if entry.step_key != step_key:
                continue
            if entry.phase == "intent":
                state, outcome = "intent", None
            elif entry.phase == "outcome":
                result = entry.data.get("result", "ok")
                state = {"ok": "done", "failed": "none"}.get(result, "intent")
                outcome = dict(entry.data) if state == "done" else None
        return state, outcome

    def step_state(self, request_id: str, step_key: str) -> str:
        """``none`` | ``intent`` | ``done`` from what the session knows (no ledger read)."""
        self._rid(request_id)
        return self._step(step_key)[0]

    def step_outcome(self, request_id: str, step_key: str) -> dict[str, Any] | None:
        """The step's successful outcome data, or None unless it is done."""
        self._rid(request_id)
        return self._step(step_key)[1]

    def latest(self, step_key: str, phase: str = "info") -> Recorded | None:
        for entry in reversed(self.entries):
            if entry.step_key == step_key and entry.phase == phase:
                return entry
        return None

    def outcomes(self) -> list[Recorded]:
        return [e for e in self.entries if e.phase == "outcome"]

    def changed_since_load(self) -> bool:
        """Whether this run wrote anything but status bookkeeping."""
        return any(e.step_key != "ledger:status" for e in self.entries[self.loaded :])

    def report_owed(self) -> bool:
        """The latest evidence has no signed report recorded after it."""
        evidence = self.latest(EVIDENCE_STEP)
        if evidence is None:
            return False
        done = self.latest(REPORT_STEP, "outcome")
        return done is None or done.seq < evidence.seq

    # -- finishing ----------------------------------------------------------------------------

    def finish(
        self,
        status: str,
        record: dict[str, Any],
        *,
        reason: str | None = None,
        produce_report: bool = True,
        record_evidence: bool = True,
        status_in_record: bool = True,
        defer_report: bool = False,
    ) -> Finished:
        """Store ``record`` (``status`` set in it) as the ``evidence`` entry, write the final
        status, then produce the signed report from the full record. With
        ``record_evidence`` False (nothing changed since the last evidence) only a report
        the ledger still owes is produced. With ``status_in_record`` False the record keeps
        its own ``status`` (an audit record's is the audit's result, not the request's).
        With ``defer_report`` the report stays owed (its intent and marker written) until
        :meth:`sign_report`: a batch signs its one checkpoint after every final status,
        then every report names it."""
        rid = self._rid(None)
        full = {**record, "status": status} if status_in_record else dict(record)
        if record_evidence:
            seq = self.record(EVIDENCE_STEP, "info", ledger_view(full))
        else:
            latest = self.latest(EVIDENCE_STEP)
            seq = latest.seq if latest is not None else 0
        owed = produce_report and (record_evidence or self.report_owed())
        marker = owed_marker(self._home(), rid) if owed else None
        if marker is not None:
            marker.parent.mkdir(mode=0o700, exist_ok=True)
            marker.touch(mode=0o600)
            self.record(REPORT_STEP, "intent", {"evidence_seq": seq})
        if self.status != status or record_evidence:
            self.set_status(status, reason)
        if not owed:
            return Finished(status, seq)
        self._deferred = (full, seq)
        if defer_report:
            return Finished(status, seq)
        return self.sign_report()

    @property
    def report_deferred(self) -> bool:
        """:meth:`finish` left the report to :meth:`sign_report`."""
        return self._deferred is not None

    def sign_report(self, checkpoint: Checkpoint | None = None) -> Finished:
        """Produce the report :meth:`finish` left owed, naming ``checkpoint`` when given
        (see :func:`privacykit.evidence.produce_report`), and record its outcome."""
        rid = self._rid(None)
        if self._deferred is None:
            raise LedgerError("no report is owed by this session")
        full, seq = self._deferred
        path, sha = _produce(self.ledger, rid, self.kind, full, self._home(), checkpoint)
        self._deferred = None
        self.record(REPORT_STEP, "outcome", {"sha256": sha, "evidence_seq": seq})
        owed_marker(self._home(), rid).unlink(missing_ok=True)
        return Finished(self.status or "", seq, path, sha)

    def _home(self) -> Path:
        return Path(self.home) if self.home is not None else Path(self.ledger.home)


@dataclass(frozen=True)
class SessionSteps:
    """A :class:`RequestSession` with the ledger's ``record(request_id, ...)`` signature."""

    session: RequestSession

    def record(
        self, request_id: str, step_key: str, phase: str, data: dict[str, Any] | None = None
    ) -> int:
        return self.session.record(step_key, phase, data, request_id)

    def step_state(self, request_id: str, step_key: str) -> str:
        return self.session.step_state(request_id, step_key)

    def step_outcome(self, request_id: str, step_key: str) -> dict[str, Any] | None:
        return self.session.step_outcome(request_id, step_key)


def recorded_playbook(
    ledger: RequestLedger, request: RequestRecord, *, home: Path | None = None
) -> Playbook | None:
    """The playbook ``request`` was opened with: the copy stored with it (artifact of kind
    ``playbook``), else the playbook of that name if its sha256 still matches; None when
    neither is available (the request then cannot be continued faithfully)."""
    from privacykit.errors import PlaybookError
    from privacykit.playbooks.loader import load_playbook, load_playbook_text, resolve_playbook

    want = request.playbook_sha256
    for artifact in ledger.artifacts(request.request_id):
        if artifact.kind != PLAYBOOK_ARTIFACT:
            continue
        try:
            text = Path(artifact.path).read_text(encoding="utf-8")
            book = load_playbook_text(text, file=f"playbook recorded for {request.request_id}")
        except (OSError, UnicodeDecodeError, PlaybookError):
            continue
        if book.sha256 == want:
            return book
    if not request.playbook_name:
        return None
    try:
        book = load_playbook(resolve_playbook(request.playbook_name, home=home))
    except PlaybookError:
        return None
    return book if book.sha256 == want else None


def _clip(text: str | None, limit: int = 1000) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
