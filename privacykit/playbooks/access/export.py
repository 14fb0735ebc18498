"""The answer's files: ``data.json``, one CSV per record type, ``index.html``, attachments.

Owns the export document (:func:`build_export`, schema
:data:`~privacykit.playbooks.access.schema.EXPORT_SCHEMA_ID`), :func:`write_json` (the
document streamed to disk, tickets one at a time, each checked against the schema first)
and :func:`deliver`, which writes every file of the answer into the subject's folder and
moves the downloaded attachments in. CSVs are :mod:`.csvs`, the page :mod:`.html`. The
format is documented in ``docs/access-export.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from privacykit import __version__
from privacykit.errors import EvidenceError
from privacykit.playbooks.access.conversations import Conversations
from privacykit.playbooks.access.csvs import CSV_TABLES, write_csv
from privacykit.playbooks.access.files import DeliveredFile, PrivateWriter, subject_dir
from privacykit.playbooks.access.html import write_html
from privacykit.playbooks.access.job import SEARCHED_KEYS, Collected, Gathered, now
from privacykit.playbooks.access.kind import AccessPolicy, ProcessingFacts
from privacykit.playbooks.access.schema import EXPORT_SCHEMA_ID, SchemaViolation, validate
from privacykit.playbooks.subjects import Subject

__all__ = ["DATA_FILE", "INDEX_FILE", "OTHERS_NOTES", "build_export", "deliver", "write_json"]

DATA_FILE = "data.json"
INDEX_FILE = "index.html"


def build_export(
    *,
    request_id: str,
    subject: Subject,
    facts: ProcessingFacts,
    gathered: Gathered,
    generated_at: str,
) -> dict[str, Any]:
    """The ``data.json`` document (:data:`EXPORT_SCHEMA_ID`). The subject's own identifier
    is included: this file goes to the subject, never to the ledger. ``tickets`` is the
    gathered (re-iterable) tickets, written by :func:`write_json` one at a time."""
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
        "not_covered": list(gathered.not_covered),
        "others": {"policy": gathered.others, "note": OTHERS_NOTES[gathered.others]},
        "counts": gathered.counts(),
        "users": gathered.users,
        "identities": gathered.identities,
        "profiles": gathered.profiles,
        "events": gathered.events,
        "organizations": gathered.organizations,
        "organization_memberships": gathered.organization_memberships,
        "people": gathered.people,
        "tickets": gathered.tickets,
        "compliance_deletion_statuses": gathered.compliance_deletion_statuses,
    }


OTHERS_NOTES = {
    "pseudonymise": (
        "Other customers in your conversations are shown as 'another customer #n': their "
        "names, addresses and Zendesk ids are left out to protect them (GDPR Art. 15(4)). "
        "Messages are not rewritten: what they wrote is shown as you received it."
    ),
    "keep": "Other people in your conversations are shown by name. Messages are not rewritten.",
}


def _dumps(value: Any, level: int) -> bytes:
    # JSON strings never hold a raw newline (it is escaped), so every newline here is
    # structure and can be indented to the nesting level.
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + "  " * level).encode("utf-8")


def _check(document: Mapping[str, Any]) -> None:
    """Our own output not matching our own schema is a bug; never deliver it."""
    try:
        validate({**document, "tickets": []})
    except SchemaViolation as exc:
        raise EvidenceError(f"the export does not match {EXPORT_SCHEMA_ID} at {exc.path}") from None


def write_json(handle: IO[bytes], document: Mapping[str, Any]) -> None:
    """``document`` as indented JSON, ``tickets`` streamed one at a time (each checked
    against the schema's ticket definition before it is written)."""
    _check(document)
    handle.write(b"{\n")
    keys = list(document)
    for index, key in enumerate(keys):
        handle.write(b"  " + json.dumps(key).encode("utf-8") + b": ")
        if key == "tickets":
            written = 0
            handle.write(b"[")
            for ticket in document[key]:
                try:
                    validate(ticket, definition="ticket")
                except SchemaViolation as exc:
                    raise EvidenceError(
                        f"the export does not match {EXPORT_SCHEMA_ID} at "
                        f"/tickets/{written}{exc.path}"
                    ) from None
                handle.write(b"\n    " if written == 0 else b",\n    ")
                handle.write(_dumps(ticket, 2))
                written += 1
            handle.write(b"\n  ]" if written else b"]")
        else:
            handle.write(_dumps(document[key], 1))
        handle.write(b",\n" if index < len(keys) - 1 else b"\n")
    handle.write(b"}\n")


def _move_attachments(talk: Conversations | None, target: Path) -> None:
    """Move the downloaded attachments from the spool into ``target/attachments`` (folders
    created owner-only; an existing ``attachments`` folder from an earlier answer written
    with ``--force`` is reused, its files replaced one by one)."""
    if talk is None or talk.spool is None:
        return
    source = talk.spool.directory / "attachments"
    for result in talk.attachments.values():
        relative = result.get("file")
        if not result.get("downloaded") or not isinstance(relative, str):
            continue
        parts = Path(relative).parts  # attachments/<ticket id>/<safe name>
        folder = target
        for part in parts[:-1]:
            folder = subject_dir(folder, part)
        os.replace(source.joinpath(*parts[1:]), folder / parts[-1])


def _write(target: Path, name: str, write: Callable[[IO[bytes]], int | None]) -> DeliveredFile:
    writer = PrivateWriter(target, name)
    with writer as handle:
        records = write(handle)
    assert writer.result is not None
    return replace(writer.result, records=records)


def deliver(
    collected: Collected,
    *,
    subject: Subject,
    request_id: str,
    target: Path,
    policy: AccessPolicy,
) -> list[DeliveredFile]:
    """Write the answer into ``target`` (files 0600) and return the files with their
    sha256: ``data.json`` (checked against its documented schema as it is written),
    ``index.html``, one CSV per record type, and the downloaded attachments (their sha256
    is in data.json). When Zendesk holds nothing on the person, ``data.json`` and
    ``index.html`` (which say so, and what was searched) are the whole answer: no empty
    CSVs."""
    export = build_export(
        request_id=request_id,
        subject=subject,
        facts=policy.facts,
        gathered=collected.gathered,
        generated_at=now(),
    )

    def json_file(handle: IO[bytes]) -> None:
        write_json(handle, export)

    def html_file(handle: IO[bytes]) -> None:
        write_html(handle, export)

    files = [_write(target, DATA_FILE, json_file), _write(target, INDEX_FILE, html_file)]
    if not collected.gathered.found:
        return files
    for table in CSV_TABLES:

        def csv_file(handle: IO[bytes], table: Any = table) -> int:
            return write_csv(handle, export, table)

        files.append(_write(target, f"{table.name}.csv", csv_file))
    _move_attachments(collected.conversations, target)
    return files
