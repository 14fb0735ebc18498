"""The CSV files of an access answer: one per record type.

Owns :data:`CSV_TABLES` (which file holds which records, and their leading columns),
:func:`table_rows` (the flat rows of one table, streamed from the export), :func:`csv_cell`
(one cell, with the spreadsheet formula-injection defence), :func:`csv_tables` (every
table of an in-memory export, for checking) and :func:`write_csv` (one file, streamed: a
first pass finds the columns, a second writes the rows). Format: ``docs/access-export.md``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

__all__ = [
    "CSV_FORMULA_TRIGGERS",
    "CSV_TABLES",
    "csv_cell",
    "csv_tables",
    "render_csv",
    "table_columns",
    "table_rows",
    "write_csv",
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
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    # A JSON array or object starts with [ or {, never a trigger; a string may.
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


_TS = ("created_at", "updated_at")

# The CSVs of an export, in the order they are written. ``profile_identifiers`` and
# ``profile_attributes`` are flattened out of ``profiles``, ``comments`` out of
# ``tickets`` and ``attachments`` out of the comments; ``users.related`` becomes
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
            "alias",
            "details",
            "notes",
            "signature",
            "tags",
            "user_fields",
            "locale",
            "time_zone",
            *_TS,
            "last_login_at",
        ),
        nested=("related",),
    ),
    _Table(
        "identities",
        "identities",
        ("id", "user_id", "type", "value", "verified", "primary", *_TS),
    ),
    _Table(
        "profiles",
        "profiles",
        ("id", "user_id", "source", "type", "name", *_TS),
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
        (
            "id",
            "relations",
            "subject",
            "description",
            "status",
            "requester_id",
            "satisfaction_rating",
            *_TS,
        ),
        nested=("comments",),
    ),
    _Table(
        "comments",
        "comments",
        ("ticket_id", "id", "created_at", "author", "author_kind", "public", "plain_body"),
        nested=("attachments",),
    ),
    _Table(
        "attachments",
        "attachments",
        (
            "ticket_id",
            "comment_id",
            "id",
            "file_name",
            "content_type",
            "size",
            "downloaded",
            "file",
            "sha256",
            "not_downloaded_reason",
        ),
    ),
    _Table(
        "organizations",
        "organizations",
        ("id", "name", "details", "notes", "domain_names", "external_id", "tags", *_TS),
    ),
    _Table(
        "organization_memberships",
        "organization_memberships",
        ("id", "user_id", "organization_id", "default", *_TS),
    ),
    _Table("people", "people", ("shown_as", "kind", "user_id")),
    _Table(
        "compliance_deletion_statuses",
        "compliance_deletion_statuses",
        ("user_id", "application", "action", "created_at", "executer_id", "account_subdomain"),
    ),
)


def _flatten(source: str, export: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    if source == "profile_identifiers":
        for profile in export["profiles"]:
            for identifier in profile.get("identifiers") or []:
                yield {"profile_id": profile["id"], **identifier}
    elif source == "profile_attributes":
        for profile in export["profiles"]:
            for key, value in sorted((profile.get("attributes") or {}).items()):
                yield {"profile_id": profile["id"], "key": key, "value": value}
    elif source == "comments":
        for ticket in export["tickets"]:
            for comment in ticket.get("comments") or []:
                yield {"ticket_id": ticket.get("id"), **comment}
    elif source == "attachments":
        for ticket in export["tickets"]:
            for comment in ticket.get("comments") or []:
                for attachment in comment.get("attachments") or []:
                    yield {
                        "ticket_id": ticket.get("id"),
                        "comment_id": comment.get("id"),
                        **attachment,
                    }
    else:
        yield from export[source]


def table_rows(export: Mapping[str, Any], table: _Table) -> Iterator[dict[str, Any]]:
    """The records of one table as flat dicts (column -> JSON value), streamed. ``export``
    may hold ``tickets`` as any re-iterable (the spool-backed tickets of a run)."""
    for record in _flatten(table.source, export):
        row = {k: v for k, v in record.items() if k not in table.nested}
        if table.source == "users":
            for key, value in sorted((record.get("related") or {}).items()):
                row[f"related_{key}"] = value
        yield row


def table_columns(export: Mapping[str, Any], table: _Table) -> tuple[list[str], int]:
    """The table's columns (leading ones, then every other key found, sorted, so no field
    is ever dropped) and its number of rows."""
    keys: set[str] = set()
    rows = 0
    for row in table_rows(export, table):
        keys.update(row)
        rows += 1
    return [*table.leading, *sorted(keys - set(table.leading))], rows


def csv_tables(export: Mapping[str, Any]) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """Every CSV of an in-memory ``export`` as ``name -> (columns, flat records)``; records
    hold JSON values, :func:`csv_cell` turns them into cells."""
    return {
        table.name: (table_columns(export, table)[0], list(table_rows(export, table)))
        for table in CSV_TABLES
    }


def _writer(handle: IO[str]) -> Any:
    return csv.writer(handle, lineterminator="\r\n")


def render_csv(columns: Sequence[str], records: Iterable[Mapping[str, Any]]) -> bytes:
    """One CSV document: RFC 4180 (CRLF, minimal quoting), UTF-8 with a byte-order mark so
    spreadsheets detect the encoding (Python reads it back with ``encoding="utf-8-sig"``)."""
    buffer = io.StringIO(newline="")
    writer = _writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow([csv_cell(record.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8-sig")


def write_csv(handle: IO[bytes], export: Mapping[str, Any], table: _Table) -> int:
    """Write one table as :func:`render_csv` would, streamed into ``handle``; returns the
    number of rows."""
    columns, rows = table_columns(export, table)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = _writer(text)
        writer.writerow(columns)
        for record in table_rows(export, table):
            writer.writerow([csv_cell(record.get(column)) for column in columns])
        text.flush()
    finally:
        text.detach()
    return rows
