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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from privacykit import __version__
from privacykit.errors import UsageError
from privacykit.playbooks.access_schema import EXPORT_SCHEMA_ID
from privacykit.playbooks.loader import (
    Field,
    Int,
    KindSchema,
    ListOf,
    StepSchema,
    Str,
    Struct,
    register_kind,
)
from privacykit.playbooks.policy import DISCOVERY_POLICY_FIELDS
from privacykit.playbooks.subjects import Subject

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
    "resolve_subject": StepSchema(required=True, doc="find the users the subject names directly"),
    "discover": StepSchema(
        required=True,
        needs=("resolve_subject",),
        doc="every user, identity and profile, to a fixed point (shared with erasure)",
    ),
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
    "ART15_FIELDS",
    "CSV_FORMULA_TRIGGERS",
    "CSV_TABLES",
    "DeliveredFile",
    "Gathered",
    "ProcessingFacts",
    "build_export",
    "csv_cell",
    "csv_tables",
    "prepare_output_dir",
    "render_csv",
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
