"""The access (DSAR, GDPR Art. 15/20) playbook: everything Zendesk holds on a person.

Owns the access run end to end: gathering a person's records (through the shared
:mod:`~privacykit.playbooks.discovery`, never a copy of it), the versioned ``data.json``
(:data:`~privacykit.playbooks.access_schema.EXPORT_SCHEMA`), one CSV per record type, the
owner-only output directory, the access evidence record handed to
:func:`privacykit.evidence.produce_report`, and the ledger entries of the request.

An access run is read-only against Zendesk: it sends GET requests only.

The ledger never sees the data: it gets the request (keyed subject reference), counts,
Zendesk ids and the sha256 of every delivered file. The data goes only to the output
directory, which is created owner-only (0700) with files 0600.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import click

from privacykit import __version__
from privacykit.config import ZendeskConfig, privacykit_home
from privacykit.errors import (
    AuthenticationError,
    EvidenceError,
    ForbiddenError,
    LedgerError,
    NotFoundError,
    PlaybookError,
    SubjectError,
    UsageError,
    ZendeskError,
)
from privacykit.evidence import produce_report
from privacykit.ledger.guard import looks_personal
from privacykit.playbooks.access_schema import EXPORT_SCHEMA_ID, SchemaViolation, validate
from privacykit.playbooks.discovery import Discovery, DiscoveryClient, DiscoveryRun
from privacykit.playbooks.engine import Engine, Halt, RunContext
from privacykit.playbooks.loader import (
    Field,
    Int,
    KindSchema,
    ListOf,
    Playbook,
    Step,
    StepSchema,
    Str,
    Struct,
    load_playbook,
    register_kind,
    resolve_playbook,
)
from privacykit.playbooks.policy import DISCOVERY_POLICY_FIELDS, DISCOVERY_STEPS, DiscoveryPolicy
from privacykit.playbooks.subjects import Subject, read_subjects
from privacykit.zendesk import ZendeskClient

# The facts GDPR Art. 15(1)(a)-(h) and 15(2) require alongside the data, in the order the
# report shows them. A DPO writes them once, in the playbook's ``processing`` section.
# name -> (is a list, heading)
ART15_FIELDS: dict[str, tuple[bool, str]] = {
    "controller": (False, "Controller"),
    "contact": (False, "Contact / data protection officer"),
    "purposes": (True, "Purposes of the processing (Art. 15(1)(a))"),
    "legal_bases": (True, "Legal bases (Art. 6)"),
    "recipients": (True, "Recipients or categories of recipients (Art. 15(1)(c))"),
    "retention": (False, "Retention period or criteria (Art. 15(1)(d))"),
    "source": (False, "Source of the data (Art. 15(1)(g))"),
    "rights": (True, "Your rights (Art. 15(1)(e))"),
    "complaint": (False, "Right to lodge a complaint (Art. 15(1)(f))"),
    "automated_decision_making": (False, "Automated decision-making (Art. 15(1)(h))"),
    "third_country_transfers": (False, "Transfers to third countries (Art. 15(2))"),
}


# --- the access playbook kind ------------------------------------------------------------

_FIELD_NAME = Str(pattern=r"[A-Za-z0-9_.-]{1,100}", pattern_help="a field name")

ACCESS_STEPS: dict[str, StepSchema] = {
    **DISCOVERY_STEPS,
    "collect_records": StepSchema(
        required=True,
        needs=("discover",),
        doc="user records, identities, profiles with identifiers and attributes, related counts",
    ),
    "collect_events": StepSchema(
        needs=("discover",),
        after=("collect_records",),
        options=Struct({"max_per_profile": Field(Int(min=1, max=10_000_000), default=1_000_000)}),
        doc="the Sunshine events of every profile (cursor-paginated)",
    ),
    "collect_tickets": StepSchema(
        needs=("discover",),
        after=("collect_records",),
        doc="the tickets the person requested (GET /api/v2/users/{id}/tickets/requested)",
    ),
    "collect_compliance": StepSchema(
        needs=("discover",),
        after=("collect_records",),
        doc="Zendesk's compliance deletion history for each user, if any",
    ),
    "export": StepSchema(
        required=True,
        needs=("collect_records",),
        after=("collect_events", "collect_tickets", "collect_compliance"),
        options=Struct(
            {
                # Fields that describe Zendesk's API rather than the person (the record's
                # own API URL, an inert flag); everything else Zendesk holds is exported.
                "user_exclude_fields": Field(
                    ListOf(_FIELD_NAME, unique=True), default=["url", "report_csv"]
                ),
                "ticket_exclude_fields": Field(ListOf(_FIELD_NAME, unique=True), default=["url"]),
                "identity_exclude_fields": Field(ListOf(_FIELD_NAME, unique=True), default=["url"]),
            }
        ),
        doc="data.json (privacykit.access-export/1) and one CSV per record type",
    ),
    "evidence": StepSchema(
        required=True, last=True, doc="the evidence record and the signed access report"
    ),
}

_TEXT = Str(max_length=4000)
_TEXTS = ListOf(_TEXT, min_items=1)
PROCESSING_SCHEMA = Struct(
    {
        name: Field(_TEXTS if is_list else _TEXT, required=True)
        for name, (is_list, _heading) in ART15_FIELDS.items()
    }
)

ACCESS_KIND = KindSchema(
    kind="access",
    steps=ACCESS_STEPS,
    policy=Struct(dict(DISCOVERY_POLICY_FIELDS)),
    extra={
        "gdpr": Field(Struct({"ground": Field(Str(), default="Art. 15 and Art. 20")})),
        "processing": Field(PROCESSING_SCHEMA, required=True),
    },
)
register_kind(ACCESS_KIND)


@dataclass(frozen=True)
class ProcessingFacts:
    """The Art. 15 facts from the playbook: field name -> text or list of texts."""

    values: Mapping[str, str | tuple[str, ...]]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "processing") -> ProcessingFacts:
        """Check and freeze the playbook's ``processing`` mapping. Raises ``ValueError``
        naming the key; the playbook loader turns that into a PlaybookError with a line."""
        values: dict[str, str | tuple[str, ...]] = {}
        unknown = set(data) - set(ART15_FIELDS)
        if unknown:
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown key")
        for name, (is_list, _heading) in ART15_FIELDS.items():
            value = data.get(name)
            if is_list:
                if not isinstance(value, list) or not value:
                    raise ValueError(f"{where}.{name}: must be a non-empty list of texts")
                if not all(isinstance(v, str) and v.strip() for v in value):
                    raise ValueError(f"{where}.{name}: every entry must be non-empty text")
                values[name] = tuple(v.strip() for v in value)
            else:
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where}.{name}: must be non-empty text")
                values[name] = value.strip()
        return cls(values)

    def as_dict(self) -> dict[str, str | list[str]]:
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.values.items()
        }


@dataclass
class Gathered:
    """Everything found for one person, as Zendesk returned it (plus the link fields we add:
    ``users[].related``, ``events[].profile_id``, ``tickets[].user_id``)."""

    users: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    profiles: list[dict[str, Any]]
    events: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    compliance_deletion_statuses: list[dict[str, Any]]
    searched: dict[str, list[str]]

    @property
    def found(self) -> bool:
        return bool(self.users or self.profiles)

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "identities": len(self.identities),
            "profiles": len(self.profiles),
            "profile_identifiers": sum(len(p.get("identifiers") or []) for p in self.profiles),
            "profile_attributes": sum(len(p.get("attributes") or {}) for p in self.profiles),
            "events": len(self.events),
            "tickets": len(self.tickets),
            "compliance_deletion_statuses": len(self.compliance_deletion_statuses),
        }


def build_export(
    *,
    request_id: str,
    subject: Subject,
    facts: ProcessingFacts,
    gathered: Gathered,
    generated_at: str,
) -> dict[str, Any]:
    """The ``data.json`` document (``privacykit.access-export/1``). The subject's own
    identifier is included: this file goes to the subject, never to the ledger."""
    value = subject.query if subject.kind == "identifier" else subject.value
    return {
        "schema": EXPORT_SCHEMA_ID,
        "request_id": request_id,
        "generated_at": generated_at,
        "tool_version": __version__,
        "subject": {"form": subject.kind, "value": value},
        "found": gathered.found,
        "processing": facts.as_dict(),
        "searched": {key: list(gathered.searched.get(key, [])) for key in _SEARCHED_KEYS},
        "counts": gathered.counts(),
        "users": gathered.users,
        "identities": gathered.identities,
        "profiles": gathered.profiles,
        "events": gathered.events,
        "tickets": gathered.tickets,
        "compliance_deletion_statuses": gathered.compliance_deletion_statuses,
    }


_SEARCHED_KEYS = ("systems", "endpoints", "profile_sources")

__all__ = [
    "ACCESS_KIND",
    "ACCESS_STEPS",
    "ART15_FIELDS",
    "CSV_FORMULA_TRIGGERS",
    "CSV_TABLES",
    "DATA_FILE",
    "EVIDENCE_SCHEMA_ID",
    "REPORT_FILE",
    "AccessClient",
    "AccessJob",
    "AccessPolicy",
    "AccessRun",
    "Collected",
    "DeliveredFile",
    "Gathered",
    "Outcome",
    "ProcessingFacts",
    "SubjectResult",
    "access_request",
    "build_export",
    "categories",
    "collect",
    "csv_cell",
    "csv_tables",
    "deliver",
    "evidence_record",
    "ledger_view",
    "prepare_output_dir",
    "render_csv",
    "run_access",
    "write_private_file",
]

# Spreadsheet formula injection (CWE-1236): a cell that starts with one of these is run as a
# formula by Excel, LibreOffice or Google Sheets. OWASP's list is = + - @ TAB CR; we add LF
# and the full-width forms, which some spreadsheets normalise to their ASCII twins.
CSV_FORMULA_TRIGGERS = (
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "\uff1d",
    "\uff0b",
    "\uff0d",
    "\uff20",
)


def csv_cell(value: Any) -> str:
    """One CSV cell from one JSON value. ``None`` is empty, booleans are ``true``/``false``,
    numbers as JSON writes them, objects and arrays as compact JSON, and a string that a
    spreadsheet would run as a formula is prefixed with ``'``. Numbers are never prefixed:
    ``-5`` is a number to a spreadsheet, not a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = str(value)
    if text.startswith(CSV_FORMULA_TRIGGERS):
        return "'" + text
    return text


@dataclass(frozen=True)
class _Table:
    """How one record type becomes one CSV: which export list, the columns that always
    come first (in this order, present even when no record has them), and the nested keys
    that live in their own table instead."""

    name: str
    source: str
    leading: tuple[str, ...]
    nested: tuple[str, ...] = ()


# The CSVs of an export, in the order they are written. ``profile_identifiers`` and
# ``profile_attributes`` are flattened out of ``profiles``; ``users.related`` becomes
# ``related_<key>`` columns of users.csv.
CSV_TABLES: tuple[_Table, ...] = (
    _Table(
        "users",
        "users",
        (
            "id",
            "name",
            "email",
            "phone",
            "external_id",
            "role",
            "organization_id",
            "locale",
            "time_zone",
            "created_at",
            "updated_at",
            "last_login_at",
        ),
        nested=("related",),
    ),
    _Table(
        "identities",
        "identities",
        ("id", "user_id", "type", "value", "verified", "primary", "created_at", "updated_at"),
    ),
    _Table(
        "profiles",
        "profiles",
        ("id", "user_id", "source", "type", "name", "created_at", "updated_at"),
        nested=("identifiers", "attributes"),
    ),
    _Table("profile_identifiers", "profile_identifiers", ("profile_id", "type", "value")),
    _Table("profile_attributes", "profile_attributes", ("profile_id", "key", "value")),
    _Table(
        "events",
        "events",
        (
            "id",
            "profile_id",
            "source",
            "type",
            "description",
            "created_at",
            "received_at",
            "properties",
        ),
    ),
    _Table(
        "tickets",
        "tickets",
        ("id", "user_id", "subject", "description", "status", "created_at", "updated_at"),
    ),
    _Table(
        "compliance_deletion_statuses",
        "compliance_deletion_statuses",
        ("user_id", "application", "action", "created_at", "executer_id", "account_subdomain"),
    ),
)


def _flat_records(export: Mapping[str, Any], table: _Table) -> list[dict[str, Any]]:
    """The records of one table as flat dicts (column -> JSON value)."""
    if table.source == "profile_identifiers":
        return [
            {"profile_id": profile["id"], **identifier}
            for profile in export["profiles"]
            for identifier in profile.get("identifiers") or []
        ]
    if table.source == "profile_attributes":
        return [
            {"profile_id": profile["id"], "key": key, "value": value}
            for profile in export["profiles"]
            for key, value in sorted((profile.get("attributes") or {}).items())
        ]
    rows: list[dict[str, Any]] = []
    for record in export[table.source]:
        row = {k: v for k, v in record.items() if k not in table.nested}
        if table.source == "users":
            for key, value in sorted((record.get("related") or {}).items()):
                row[f"related_{key}"] = value
        rows.append(row)
    return rows


def csv_tables(export: Mapping[str, Any]) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """Every CSV of ``export`` as ``name -> (columns, flat records)``; records hold JSON
    values, :func:`csv_cell` turns them into cells. Columns: the table's leading columns,
    then every other key found, sorted, so no field is ever dropped."""
    tables: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    for table in CSV_TABLES:
        records = _flat_records(export, table)
        extra = sorted({key for record in records for key in record} - set(table.leading))
        tables[table.name] = ([*table.leading, *extra], records)
    return tables


def render_csv(columns: Sequence[str], records: Iterable[Mapping[str, Any]]) -> bytes:
    """One CSV document: RFC 4180 (CRLF, minimal quoting), UTF-8 with a byte-order mark so
    spreadsheets detect the encoding (Python reads it back with ``encoding="utf-8-sig"``)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([csv_cell(record.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8-sig")


@dataclass(frozen=True)
class DeliveredFile:
    """A file handed to the subject: its name in the output directory, size and sha256."""

    name: str
    sha256: str
    bytes: int
    records: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "sha256": self.sha256, "bytes": self.bytes}
        if self.records is not None:
            out["records"] = self.records
        return out


def write_private_file(directory: Path, name: str, data: bytes) -> DeliveredFile:
    """Write ``directory/name`` owner-only (0600), atomically (temporary file, fsync,
    rename) and without following a symlink planted at the temporary name."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    target = directory / name
    temporary = directory / f".{name}.tmp"
    try:
        temporary.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        os.close(fd)
    os.replace(temporary, target)
    return DeliveredFile(name, hashlib.sha256(data).hexdigest(), len(data))


def prepare_output_dir(path: Path, *, force: bool = False) -> Path:
    """Create (or accept) the output directory, owner-only (0700).

    An existing non-empty directory is refused unless ``force``: an export must never be
    mixed with someone else's files by accident. Raises :class:`UsageError` (exit 2) before
    anything is sent to Zendesk."""
    shown = click.format_filename(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {shown} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise UsageError(f"--out {shown} is not empty (use --force to write into it anyway)")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as exc:
        raise UsageError(f"--out {shown}: cannot create directory: {exc.strerror}") from None
    return path


# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessPolicy:
    """The access playbook as typed values."""

    name: str
    sha256: str
    discovery: DiscoveryPolicy
    facts: ProcessingFacts
    ground: str = "Art. 15 and Art. 20"
    collect_events: bool = True
    max_events_per_profile: int = 1_000_000
    collect_tickets: bool = True
    collect_compliance: bool = True
    user_exclude_fields: frozenset[str] = frozenset({"url", "report_csv"})
    ticket_exclude_fields: frozenset[str] = frozenset({"url"})
    identity_exclude_fields: frozenset[str] = frozenset({"url"})
    playbook: Playbook | None = None

    @classmethod
    def from_playbook(cls, playbook: Playbook) -> AccessPolicy:
        if playbook.kind != "access":
            raise PlaybookError(
                f"not an access playbook (kind {playbook.kind!r})",
                file=str(playbook.path or playbook.name),
                key="kind",
            )
        events = playbook.step("collect_events")
        export = playbook.step("export")
        export_options: Mapping[str, Any] = export.options if export else {}
        return cls(
            name=playbook.name,
            sha256=playbook.sha256,
            discovery=DiscoveryPolicy.from_mapping(playbook.policy),
            facts=ProcessingFacts.from_mapping(playbook.data["processing"]),
            ground=(playbook.data.get("gdpr") or {}).get("ground", cls.ground),
            collect_events=events is not None,
            max_events_per_profile=int(
                events.options["max_per_profile"] if events else cls.max_events_per_profile
            ),
            collect_tickets=playbook.has_step("collect_tickets"),
            collect_compliance=playbook.has_step("collect_compliance"),
            user_exclude_fields=frozenset(export_options.get("user_exclude_fields", ())),
            ticket_exclude_fields=frozenset(export_options.get("ticket_exclude_fields", ())),
            identity_exclude_fields=frozenset(export_options.get("identity_exclude_fields", ())),
            playbook=playbook,
        )


# --- gathering -----------------------------------------------------------------------------

ACCESS_ENDPOINTS = {
    "related": "GET /api/v2/users/{id}/related",
    "events": "GET /api/v2/user_profiles/{id}/events",
    "tickets": "GET /api/v2/users/{id}/tickets/requested",
    "compliance": "GET /api/v2/users/{id}/compliance_deletion_statuses",
}
ACCESS_SYSTEMS = {
    "events": "Sunshine profile events",
    "tickets": "Zendesk Support tickets (requested)",
    "compliance": "Zendesk compliance deletion statuses",
}


class AccessClient(DiscoveryClient, Protocol):
    """The read-only part of :class:`privacykit.zendesk.ZendeskClient` access uses."""

    def user_related(self, user_id: int) -> dict[str, Any]: ...
    def requested_tickets(self, user_id: int) -> list[dict[str, Any]]: ...
    def compliance_deletion_statuses(
        self, user_id: int, application: str | None = None
    ) -> list[dict[str, Any]]: ...
    def iter_profile_events(self, profile_id: str) -> Iterator[dict[str, Any]]: ...


def _without(record: Mapping[str, Any], excluded: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in excluded}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Collected:
    """One subject's discovery and what was gathered on top of it. ``incomplete`` says why
    the export would miss records (a discovery bound, an event bound): such an export is
    never delivered. Ambiguities (``discovery.ambiguities``) may be waived by an operator
    who checked that every user found is the same person."""

    discovery: Discovery
    gathered: Gathered
    incomplete: list[str]
    events_per_profile: dict[str, int]


class AccessJob(RunContext):
    """One subject's access request as the step engine runs it: what the collection steps
    found (in memory only) and, once delivered, what went out."""

    def __init__(
        self,
        subject: Subject,
        *,
        position: int = 1,
        request_id: str = "",
        subject_ref: str = "",
    ) -> None:
        super().__init__()
        self.subject = subject
        self.position = position
        self.request_id = request_id
        self.subject_ref = subject_ref
        self.started_at = _now()
        self.run: DiscoveryRun | None = None
        self.discovery: Discovery | None = None
        self.users: list[dict[str, Any]] = []
        self.tickets: list[dict[str, Any]] = []
        self.compliance: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.events_per_profile: dict[str, int] = {}
        self.systems: list[str] = []
        self.endpoints: set[str] = set()
        self.incomplete: list[str] = []
        self.error: ZendeskError | None = None
        self.result = SubjectResult(position, subject_ref, request_id, "failed")

    def collected(self, policy: AccessPolicy) -> Collected:
        """Everything gathered so far, in the export's order."""
        found = self.discovery
        if found is None:
            raise RuntimeError("discovery has not run")
        identities = [
            _without(identity, policy.identity_exclude_fields)
            for uid in found.user_ids()
            for identity in sorted(
                found.identities.get(uid, []), key=lambda i: _int(i.get("id")) or 0
            )
        ]
        gathered = Gathered(
            users=list(self.users),
            identities=identities,
            profiles=[dict(found.profiles[pid]) for pid in sorted(found.profiles)],
            events=list(self.events),
            tickets=sorted(self.tickets, key=lambda t: (t["user_id"], _int(t.get("id")) or 0)),
            compliance_deletion_statuses=sorted(
                self.compliance, key=lambda c: (c["user_id"], str(c.get("created_at") or ""))
            ),
            searched={
                "systems": [*found.searched()["systems"], *self.systems],
                "endpoints": sorted(set(found.searched()["endpoints"]) | self.endpoints),
                "profile_sources": list(found.profile_sources),
            },
        )
        return Collected(found, gathered, list(self.incomplete), dict(self.events_per_profile))


class _Collector:
    """The read-only steps of the access playbook (GET requests only). Each takes the job
    and its playbook step, as :class:`~privacykit.playbooks.engine.Engine` calls them."""

    def __init__(self, client: AccessClient, policy: AccessPolicy) -> None:
        self.client = client
        self.policy = policy

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {
            "resolve_subject": self.step_resolve_subject,
            "discover": self.step_discover,
            "collect_records": self.step_collect_records,
            "collect_events": self.step_collect_events,
            "collect_tickets": self.step_collect_tickets,
            "collect_compliance": self.step_collect_compliance,
        }

    def step_resolve_subject(self, job: AccessJob, step: Step) -> Halt | None:
        """The users the subject names directly (shared discovery)."""
        job.run = DiscoveryRun(self.client, job.subject, self.policy.discovery)
        job.run.resolve()
        return None

    def step_discover(self, job: AccessJob, step: Step) -> Halt | None:
        """Every user, identity and profile of the person, to a fixed point."""
        if job.run is None:
            raise RuntimeError("discover needs resolve_subject first")
        job.discovery = job.run.expand()
        if job.discovery.limit_reached:
            job.incomplete.append(
                f"discovery stopped at a bound: {job.discovery.limit_reached}; "
                "the export would be incomplete"
            )
        return None

    def _found(self, job: AccessJob) -> Discovery:
        if job.discovery is None:
            raise RuntimeError("this step needs discover first")
        return job.discovery

    def step_collect_records(self, job: AccessJob, step: Step) -> Halt | None:
        """User records (minus excluded fields) with their related counts. Identities and
        profiles (with identifiers and attributes) come from discovery as Zendesk sent them."""
        found = self._found(job)
        job.endpoints.add(ACCESS_ENDPOINTS["related"])
        for uid in found.user_ids():
            user = _without(found.users[uid], self.policy.user_exclude_fields)
            try:
                related: Mapping[str, Any] = self.client.user_related(uid)
            except NotFoundError:
                related = {}
            inner = related.get("user_related", related)
            user["related"] = {k: v for k, v in inner.items() if v is None or isinstance(v, int)}
            job.users.append(user)
        return None

    def step_collect_events(self, job: AccessJob, step: Step) -> Halt | None:
        """Every Sunshine event of every profile, all pages (``links`` is an array there)."""
        found = self._found(job)
        limit = int(step.options.get("max_per_profile", self.policy.max_events_per_profile))
        job.systems.append(ACCESS_SYSTEMS["events"])
        if found.profiles:
            job.endpoints.add(ACCESS_ENDPOINTS["events"])
        for pid in sorted(found.profiles):
            count = 0
            try:
                for event in self.client.iter_profile_events(pid):
                    if count >= limit:
                        job.incomplete.append(
                            f"profile {pid} has more than {limit} events "
                            "(collect_events.max_per_profile); the export would be incomplete"
                        )
                        break
                    job.events.append({**event, "profile_id": event.get("profile_id") or pid})
                    count += 1
            except NotFoundError:
                pass  # the profile went away since discovery: it holds nothing any more
            job.events_per_profile[pid] = count
        return None

    def step_collect_tickets(self, job: AccessJob, step: Step) -> Halt | None:
        """The tickets each user requested."""
        found = self._found(job)
        job.systems.append(ACCESS_SYSTEMS["tickets"])
        job.endpoints.add(ACCESS_ENDPOINTS["tickets"])
        for uid in found.user_ids():
            try:
                requested = self.client.requested_tickets(uid)
            except NotFoundError:
                requested = []
            for ticket in requested:
                job.tickets.append(
                    {**_without(ticket, self.policy.ticket_exclude_fields), "user_id": uid}
                )
        return None

    def step_collect_compliance(self, job: AccessJob, step: Step) -> Halt | None:
        """Zendesk's compliance deletion history of each user, if any."""
        found = self._found(job)
        job.systems.append(ACCESS_SYSTEMS["compliance"])
        job.endpoints.add(ACCESS_ENDPOINTS["compliance"])
        for uid in found.user_ids():
            try:
                statuses = self.client.compliance_deletion_statuses(uid)
            except NotFoundError:
                statuses = []  # documented: 404 "if the user is not in the account"
            for status in statuses:
                job.compliance.append({**status, "user_id": _int(status.get("user_id")) or uid})
        return None


def collect(client: AccessClient, subject: Subject, policy: AccessPolicy) -> Collected:
    """Discover the person (shared discovery) and gather every record Zendesk holds on
    them, with the steps ``policy`` enables, in the default order. Read-only: GET requests
    only. Zendesk errors other than "not found" propagate."""
    collector = _Collector(client, policy)
    job = AccessJob(subject)
    functions = collector.functions()
    for name in _default_steps(policy):
        if name in functions:
            functions[name](job, Step(name, {}))
    return job.collected(policy)


def _default_steps(policy: AccessPolicy) -> list[str]:
    steps = ["resolve_subject", "discover", "collect_records"]
    if policy.collect_events:
        steps.append("collect_events")
    if policy.collect_tickets:
        steps.append("collect_tickets")
    if policy.collect_compliance:
        steps.append("collect_compliance")
    return [*steps, "export", "evidence"]


# --- evidence ------------------------------------------------------------------------------

EVIDENCE_SCHEMA_ID = "privacykit.access-evidence/1"
REPORT_FILE = "access-report.pdf"
DATA_FILE = "data.json"

Outcome = Literal["data_found", "no_data_found", "needs_review", "failed"]


def _field_names(records: Iterable[Mapping[str, Any]], skip: Iterable[str] = ()) -> list[str]:
    """Names of the fields that hold a value in at least one record (never the values)."""
    skipped = set(skip)
    return sorted(
        {
            key
            for record in records
            for key, value in record.items()
            if key not in skipped and value not in (None, "", [], {})
        }
    )


def categories(gathered: Gathered) -> list[dict[str, Any]]:
    """The categories of personal data found (Art. 15(1)(b)): record types, how many, and
    which fields, identifier types, attribute keys or event types they hold. Names only,
    never values: this goes into the ledger and the report."""
    out: list[dict[str, Any]] = []

    def add(category: str, records: int, fields: list[str]) -> None:
        if records:
            out.append({"category": category, "records": records, "fields": fields})

    add(
        "Zendesk Support user record",
        len(gathered.users),
        _field_names(gathered.users, skip=("id", "related")),
    )
    add(
        "Contact identities (email, phone, social)",
        len(gathered.identities),
        sorted({str(i.get("type")) for i in gathered.identities}),
    )
    by_source: dict[str, list[dict[str, Any]]] = {}
    for profile in gathered.profiles:
        by_source.setdefault(f"{profile.get('source')}:{profile.get('type')}", []).append(profile)
    for source_type, profiles in sorted(by_source.items()):
        identifier_types = {
            f"identifier:{i.get('type')}"
            for p in profiles
            for i in p.get("identifiers") or []
            if isinstance(i, Mapping)
        }
        attribute_keys = {f"attribute:{k}" for p in profiles for k in (p.get("attributes") or {})}
        add(
            f"Sunshine profile {source_type}",
            len(profiles),
            sorted(identifier_types) + sorted(attribute_keys),
        )
    add(
        "Sunshine profile events",
        len(gathered.events),
        sorted({f"{e.get('source')}:{e.get('type')}" for e in gathered.events}),
    )
    add(
        "Support tickets requested",
        len(gathered.tickets),
        _field_names(gathered.tickets, skip=("id", "user_id")),
    )
    add(
        "Compliance deletion history",
        len(gathered.compliance_deletion_statuses),
        sorted({str(c.get("application")) for c in gathered.compliance_deletion_statuses}),
    )
    return out


def evidence_record(
    *,
    request_id: str,
    subject_ref: str,
    outcome: Outcome,
    reasons: Sequence[str],
    collected: Collected | None,
    policy: AccessPolicy,
    delivered: Sequence[DeliveredFile],
    operator: str | None,
    started_at: str,
    completed_at: str,
) -> dict[str, Any]:
    """The access evidence record (``privacykit.access-evidence/1``): what was searched,
    what was found (counts, categories, Zendesk ids), the Art. 15 facts, and the sha256 of
    every delivered file. No personal data: ids, counts, field names and hashes only."""
    gathered = collected.gathered if collected else None
    found = collected.discovery if collected else None
    users = []
    if gathered is not None and found is not None:
        for user in gathered.users:
            uid = int(user["id"])
            related = user.get("related") or {}
            users.append(
                {
                    "user_id": uid,
                    "role": user.get("role"),
                    "organization_id": user.get("organization_id"),
                    "identities": len(found.identities.get(uid, [])),
                    "profiles": len(found.profiles_of(uid)),
                    "tickets_requested_assigned_ccd": "/".join(
                        str(related.get(k, "-"))
                        for k in ("requested_tickets", "assigned_tickets", "ccd_tickets")
                    ),
                    "tickets_exported": sum(1 for t in gathered.tickets if t["user_id"] == uid),
                    "found_via": found.via.get(uid),
                }
            )
    profiles = []
    if gathered is not None and collected is not None:
        for profile in gathered.profiles:
            pid = str(profile["id"])
            profiles.append(
                {
                    "profile_id": pid,
                    "source_type": f"{profile.get('source')}:{profile.get('type')}",
                    "user_id": _int(profile.get("user_id")),
                    "identifiers": len(profile.get("identifiers") or []),
                    "attributes": len(profile.get("attributes") or {}),
                    "events": collected.events_per_profile.get(pid, 0),
                }
            )
    compliance = [
        {
            "user_id": c.get("user_id"),
            "application": c.get("application"),
            "status": c.get("action"),
            "at": c.get("created_at"),
        }
        for c in (gathered.compliance_deletion_statuses if gathered else [])
    ]
    return {
        "schema": EVIDENCE_SCHEMA_ID,
        "request_id": request_id,
        "subject_ref": subject_ref,
        "outcome": outcome,
        "reasons": list(reasons),
        "found": bool(gathered and gathered.found),
        "gdpr": {"ground": policy.ground},
        "searched": (
            {k: list(gathered.searched.get(k, [])) for k in _SEARCHED_KEYS}
            if gathered
            else {k: [] for k in _SEARCHED_KEYS}
        ),
        "counts": gathered.counts() if gathered else {},
        "categories": categories(gathered) if gathered else [],
        # Keyed by the report's headings (which name the article each fact answers);
        # data.json keys the same facts by field name.
        "processing": {
            ART15_FIELDS[name][1]: value for name, value in policy.facts.as_dict().items()
        },
        "export": {
            "format": f"{DATA_FILE} ({EXPORT_SCHEMA_ID}) and one CSV per record type",
            "files": len(delivered),
            "delivered": bool(delivered),
        },
        "delivered_files": [f.as_dict() for f in delivered],
        "users": users,
        "profiles": profiles,
        "compliance": compliance,
        "playbook": {"name": policy.name, "sha256": policy.sha256},
        "tool_version": __version__,
        "operator": operator,
        "started_at": started_at,
        "completed_at": completed_at,
    }


def _withhold(value: Any) -> Any:
    if isinstance(value, str):
        if looks_personal(value) is None:
            return value
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        return f"[not kept in the ledger; sha256 {digest}]"
    if isinstance(value, Mapping):
        return {key: _withhold(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_withhold(item) for item in value]
    return value


def ledger_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence record as the ledger keeps it: every text that looks like an address,
    a phone number or a token is replaced by its sha256. The record holds no subject data,
    but some texts are free-form -- the Art. 15 facts (a DPO's contact address), profile
    attribute keys and event types named by whoever set up the account -- and the ledger's
    privacy guard rightly refuses such strings. The report is rendered from the full
    record; the playbook (whose hash the request carries) holds the facts verbatim."""
    return {key: _withhold(value) for key, value in record.items()}


# --- the run -------------------------------------------------------------------------------


@dataclass
class SubjectResult:
    """How one subject's access request ended. No personal data: the subject is named by
    its position in the input and its keyed reference."""

    position: int
    subject_ref: str
    request_id: str
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    out_dir: Path | None = None
    files: list[DeliveredFile] = field(default_factory=list)
    report_path: Path | None = None
    report_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("data_found", "no_data_found")

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "subject_ref": self.subject_ref,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "counts": dict(self.counts),
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "files": [f.as_dict() for f in self.files],
            "report": str(self.report_path) if self.report_path else None,
            "report_sha256": self.report_sha256,
        }


@dataclass
class AccessRun:
    """The result of one ``privacykit access`` invocation."""

    out: Path
    results: list[SubjectResult]
    checkpoint_size: int | None = None

    @property
    def exit_code(self) -> int:
        """0 when every subject got an answer (data or "nothing found"), else 1."""
        return 0 if all(r.ok for r in self.results) else 1

    def as_dict(self) -> dict[str, Any]:
        totals: dict[str, int] = {}
        for result in self.results:
            totals[result.outcome] = totals.get(result.outcome, 0) + 1
        return {
            "out": str(self.out),
            "outcomes": totals,
            "requests": [r.as_dict() for r in self.results],
            "checkpoint_tree_size": self.checkpoint_size,
            "exit_code": self.exit_code,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _subject_dir(out: Path, request_id: str, batch: bool) -> Path:
    if not batch:
        return out
    # The directory is named by request id, never by the subject: the operator's listing of
    # the output directory must not become a list of people.
    if not _REQUEST_ID.match(request_id):
        raise LedgerError("the ledger returned a request id that is not a safe directory name")
    target = out / request_id
    target.mkdir(mode=0o700, exist_ok=True)
    target.chmod(0o700)
    return target


def deliver(
    collected: Collected,
    *,
    subject: Subject,
    request_id: str,
    target: Path,
    policy: AccessPolicy,
) -> list[DeliveredFile]:
    """Write ``data.json`` and every CSV into ``target`` (0600 each) and return them with
    their sha256. The JSON is validated against its documented schema first."""
    export = build_export(
        request_id=request_id,
        subject=subject,
        facts=policy.facts,
        gathered=collected.gathered,
        generated_at=_now(),
    )
    try:
        validate(export)
    except SchemaViolation as exc:
        # Our own output not matching our own schema is a bug; never deliver it.
        raise EvidenceError(f"the export does not match {EXPORT_SCHEMA_ID} at {exc.path}") from None
    data = (json.dumps(export, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    written = write_private_file(target, DATA_FILE, data)
    files = [DeliveredFile(written.name, written.sha256, written.bytes, None)]
    for name, (columns, records) in csv_tables(export).items():
        csv_file = write_private_file(target, f"{name}.csv", render_csv(columns, records))
        files.append(DeliveredFile(csv_file.name, csv_file.sha256, csv_file.bytes, len(records)))
    return files


class _Deliverer:
    """The steps that write: ``export`` (files into the output directory) and ``evidence``
    (the record in the ledger, the signed report). They run on the calling thread."""

    def __init__(
        self,
        *,
        policy: AccessPolicy,
        ledger: Any,
        home: Path,
        out: Path,
        batch: bool,
        confirm_ambiguous: bool,
        operator: str | None,
    ) -> None:
        self.policy = policy
        self.ledger = ledger
        self.home = home
        self.out = out
        self.batch = batch
        self.confirm_ambiguous = confirm_ambiguous
        self.operator = operator

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {"export": self.step_export, "evidence": self.step_evidence}

    def step_export(self, job: AccessJob, step: Step) -> Halt | None:
        """data.json and the CSVs, unless the discovery is ambiguous (and not confirmed)
        or the collection incomplete: then nothing goes out and a person must look."""
        collected = job.collected(self.policy)
        found = collected.discovery
        ledger, rid = self.ledger, job.request_id
        ledger.record(rid, "discover", "info", found.summary())
        ledger.record(
            rid,
            "collect",
            "info",
            {
                "counts": collected.gathered.counts(),
                "events_per_profile": dict(sorted(collected.events_per_profile.items())),
                "ticket_ids": [t.get("id") for t in collected.gathered.tickets],
            },
        )
        job.result.counts = collected.gathered.counts()
        reasons = list(collected.incomplete)
        if found.ambiguities and not self.confirm_ambiguous:
            reasons += found.ambiguities
            reasons.append(
                "check that every user found is the person, then re-run with --confirm-ambiguous"
            )
        elif found.ambiguities:
            ledger.record(rid, "confirm_ambiguous", "info", {"ambiguities": len(found.ambiguities)})
        if reasons:
            return Halt("needs_review", "needs_review", tuple(reasons))

        target = _subject_dir(self.out, rid, self.batch)
        try:
            delivered = deliver(
                collected, subject=job.subject, request_id=rid, target=target, policy=self.policy
            )
        except EvidenceError as exc:
            # Zendesk sent something the documented format cannot hold: deliver nothing for
            # this subject, say why, carry on with the others.
            ledger.record(rid, "deliver", "info", {"error": "export_schema"})
            return Halt("failed", "failed", (str(exc),))
        ledger.record(rid, "deliver", "info", {"files": [f.as_dict() for f in delivered]})
        job.result.out_dir = target
        job.result.files = delivered
        return None

    def step_evidence(self, job: AccessJob, step: Step) -> Halt | None:
        """The evidence record (ledger), the final status, the signed report (delivered
        next to the data when there is data to deliver)."""
        ledger, rid, halt = self.ledger, job.request_id, job.halt
        if halt is not None:
            outcome = cast(Outcome, halt.outcome)
            reasons = list(halt.reasons)
        else:
            found = job.discovery is not None and job.discovery.found
            outcome = "data_found" if found else "no_data_found"
            reasons = []
        record = evidence_record(
            request_id=rid,
            subject_ref=job.subject_ref,
            outcome=outcome,
            reasons=reasons,
            collected=job.collected(self.policy),
            policy=self.policy,
            delivered=job.result.files,
            operator=self.operator,
            started_at=job.started_at,
            completed_at=_now(),
        )
        ledger.record(rid, "evidence", "info", ledger_view(record))
        stored, sha256 = produce_report(ledger, rid, "access", record, home=self.home)
        job.result.report_sha256 = sha256
        job.result.report_path = stored
        if job.result.out_dir is not None:
            copy = write_private_file(job.result.out_dir, REPORT_FILE, stored.read_bytes())
            if copy.sha256 != sha256:
                raise EvidenceError("the access report changed while it was being delivered")
            ledger.record(rid, "deliver:report", "info", copy.as_dict())
            job.result.files = [*job.result.files, copy]
            job.result.report_path = job.result.out_dir / REPORT_FILE
        # The final status comes last (as in erasure): a run interrupted before the report
        # was delivered leaves the request open, and the next run resumes it under the same
        # id. The report states the outcome; its status line says the request was still
        # being answered when it was signed.
        if halt is not None:
            ledger.set_status(rid, halt.status, reason="; ".join(reasons)[:1000])
        else:
            ledger.set_status(rid, "completed", reason=outcome)
        job.result.outcome = outcome
        job.result.reasons = reasons
        return None


def _engine_playbook(policy: AccessPolicy) -> Playbook:
    """The playbook whose steps the engine runs: the loaded one, or (for a policy built in
    code) the default steps the policy's switches describe."""
    if policy.playbook is not None:
        return policy.playbook
    return Playbook(
        name=policy.name,
        kind="access",
        description="",
        steps=tuple(Step(name, {}) for name in _default_steps(policy)),
        policy={},
        data={},
        sha256=policy.sha256,
    )


def run_access(
    subjects: Sequence[Subject],
    out: Path,
    *,
    policy: AccessPolicy,
    client: AccessClient,
    ledger: Any,
    home: Path,
    confirm_ambiguous: bool = False,
    received_at: date | None = None,
    operator: str | None = None,
    workers: int = 4,
    on_result: Callable[[SubjectResult], None] | None = None,
) -> AccessRun:
    """Answer one access request per subject into ``out`` (already prepared with
    :func:`prepare_output_dir`): one subject writes into ``out`` itself, several write one
    subdirectory each, named by request id.

    The playbook's steps run on the step engine: the read-only ones (up to ``export``) in
    ``workers`` threads, ``export`` and ``evidence`` on the calling thread, in input order
    (the ledger, the files and the reports are written from one place). A subject whose
    discovery is ambiguous (unless ``confirm_ambiguous``) or incomplete is marked *needs
    review* and nothing is delivered for it. The ledger is checkpointed at the end,
    whatever happened."""
    if not subjects:
        raise SubjectError("no SUBJECT given")
    received = received_at or date.today()
    jobs: list[AccessJob] = []
    results: list[SubjectResult] = []
    checkpoint_size: int | None = None
    try:
        for position, subject in enumerate(subjects, start=1):
            ref = ledger.subject_ref(subject.key)
            existing = ledger.find_open_request("access", ref)
            if existing is not None:
                request_id = existing.request_id  # an interrupted run: answer the same request
            else:
                request_id = ledger.create_request(
                    "access",
                    ref,
                    received_at=received,
                    playbook_name=policy.name,
                    playbook_sha256=policy.sha256,
                    operator=operator,
                )
            ledger.set_status(request_id, "in_progress")
            jobs.append(
                AccessJob(subject, position=position, request_id=request_id, subject_ref=ref)
            )
        # The ledger fills in the operator when none is given; the evidence repeats it.
        if operator is None:
            operator = ledger.get_request(jobs[0].request_id).operator

        deliverer = _Deliverer(
            policy=policy,
            ledger=ledger,
            home=home,
            out=out,
            batch=len(jobs) > 1,
            confirm_ambiguous=confirm_ambiguous,
            operator=operator,
        )
        engine = Engine(
            _engine_playbook(policy),
            {**_Collector(client, policy).functions(), **deliverer.functions()},
        )

        def read_only_steps(job: AccessJob) -> AccessJob:
            engine.run(job, pause_before={"export"})
            return job

        pool_size = max(1, min(workers, len(jobs)))
        # Collected data waits in memory until its turn to be delivered; a bounded window of
        # jobs in flight keeps a batch of thousands from holding everyone's data at once.
        window = pool_size * 4
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            pending: deque[tuple[AccessJob, Future[AccessJob]]] = deque()
            queue = iter(jobs)
            try:
                while True:
                    while len(pending) < window:
                        job = next(queue, None)
                        if job is None:
                            break
                        pending.append((job, pool.submit(read_only_steps, job)))
                    if not pending:
                        break
                    job, future = pending.popleft()
                    _finish(job, future, engine, ledger)
                    results.append(job.result)
                    if on_result is not None:
                        on_result(job.result)
            finally:
                for _job, future in pending:
                    future.cancel()
    finally:
        if jobs:
            checkpoint_size = ledger.checkpoint().size
    return AccessRun(out, results, checkpoint_size)


def _finish(job: AccessJob, future: Future[AccessJob], engine: Engine, ledger: Any) -> None:
    """Wait for one job's read-only steps, then run its export and evidence steps."""
    rid = job.request_id
    try:
        future.result()
    except (AuthenticationError, ForbiddenError) as exc:
        # Every other subject would fail the same way: stop the run, say why.
        ledger.record(rid, "collect", "info", {"error": type(exc).__name__})
        ledger.set_status(
            rid, "failed", reason=f"Zendesk refused the credentials ({exc.status_code})"
        )
        raise
    except ZendeskError as exc:
        status = getattr(exc, "status_code", None)
        reason = f"Zendesk error {type(exc).__name__}" + (f" ({status})" if status else "")
        ledger.record(rid, "collect", "info", {"error": type(exc).__name__, "status": status})
        ledger.set_status(rid, "failed", reason=reason)
        job.result.reasons = [reason]
        return
    engine.run(job)


def access_request(
    subject_args: Sequence[str],
    *,
    out: Path | None,
    from_file: Path | None = None,
    playbook: str | None = None,
    force: bool = False,
    confirm_ambiguous: bool = False,
    received: str | None = None,
    workers: int = 4,
    env: Mapping[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[SubjectResult], None] | None = None,
) -> AccessRun:
    """``privacykit access``: validate everything (subjects, playbook, configuration, output
    directory -- any problem is a :class:`UsageError` before a single request is sent),
    then answer one access request per subject with :func:`run_access`."""
    if out is None:
        raise UsageError("--out DIR is required: where the answer is written")
    subjects = read_subjects(subject_args, from_file)
    if not subjects:
        raise SubjectError("give at least one SUBJECT or --from-file with subjects")
    from privacykit.ledger import Ledger
    from privacykit.ledger.dates import parse_date

    received_at = parse_date(received, "--received") if received else None
    home = privacykit_home(env)
    book = load_playbook(resolve_playbook(playbook or "access", home=home))
    policy = AccessPolicy.from_playbook(book)
    config = ZendeskConfig.from_env(env)
    prepare_output_dir(out, force=force)
    ledger = Ledger.open(home)
    if on_start is not None:
        on_start(len(subjects))
    try:
        with ZendeskClient(config) as client:
            return run_access(
                subjects,
                out,
                policy=policy,
                client=client,
                ledger=ledger,
                home=home,
                confirm_ambiguous=confirm_ambiguous,
                received_at=received_at,
                workers=workers,
                on_result=on_result,
            )
    finally:
        ledger.close()
