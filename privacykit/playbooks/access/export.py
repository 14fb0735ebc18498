"""The exported data: ``data.json`` and one CSV per record type.

Owns the export document (:func:`build_export`, schema
:data:`~privacykit.playbooks.access.schema.EXPORT_SCHEMA_ID`), how records become CSV
tables and cells (:data:`CSV_TABLES`, :func:`csv_tables`, :func:`csv_cell` with its
formula-injection defence, :func:`render_csv`), and :func:`deliver`, which writes them
into the subject's folder. The format is documented in ``docs/access-export.md``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacykit import __version__
from privacykit.errors import EvidenceError
from privacykit.playbooks.access.files import DeliveredFile, write_private_file
from privacykit.playbooks.access.job import SEARCHED_KEYS, Collected, Gathered, now
from privacykit.playbooks.access.kind import AccessPolicy, ProcessingFacts
from privacykit.playbooks.access.schema import EXPORT_SCHEMA_ID, SchemaViolation, validate
from privacykit.playbooks.subjects import Subject

__all__ = [
    "CSV_FORMULA_TRIGGERS",
    "CSV_TABLES",
    "DATA_FILE",
    "build_export",
    "csv_cell",
    "csv_tables",
    "deliver",
    "render_csv",
]

DATA_FILE = "data.json"


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
        "searched": {key: list(gathered.searched.get(key, [])) for key in SEARCHED_KEYS},
        "counts": gathered.counts(),
        "users": gathered.users,
        "identities": gathered.identities,
        "profiles": gathered.profiles,
        "events": gathered.events,
        "tickets": gathered.tickets,
        "compliance_deletion_statuses": gathered.compliance_deletion_statuses,
    }


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


def deliver(
    collected: Collected,
    *,
    subject: Subject,
    request_id: str,
    target: Path,
    policy: AccessPolicy,
) -> list[DeliveredFile]:
    """Write ``data.json`` and every CSV into ``target`` (0600 each) and return them with
    their sha256. The JSON is validated against its documented schema first. When Zendesk
    holds nothing on the person, ``data.json`` (which says so, and what was searched) is
    the whole answer: no empty CSVs."""
    export = build_export(
        request_id=request_id,
        subject=subject,
        facts=policy.facts,
        gathered=collected.gathered,
        generated_at=now(),
    )
    try:
        validate(export)
    except SchemaViolation as exc:
        # Our own output not matching our own schema is a bug; never deliver it.
        raise EvidenceError(f"the export does not match {EXPORT_SCHEMA_ID} at {exc.path}") from None
    data = (json.dumps(export, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    written = write_private_file(target, DATA_FILE, data)
    files = [DeliveredFile(written.name, written.sha256, written.bytes, None)]
    if not collected.gathered.found:
        return files
    for name, (columns, records) in csv_tables(export).items():
        csv_file = write_private_file(target, f"{name}.csv", render_csv(columns, records))
        files.append(DeliveredFile(csv_file.name, csv_file.sha256, csv_file.bytes, len(records)))
    return files
