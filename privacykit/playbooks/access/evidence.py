"""The access evidence record: what the ledger and the signed report say about an answer.

Owns :func:`evidence_record` (``privacykit.access-evidence/1``: what was searched, what
was found as counts, categories and Zendesk ids, the Art. 15 facts, and the sha256 of
every delivered file -- never the data itself), :func:`categories` (Art. 15(1)(b): the
kinds of personal data found, by name) and :func:`ledger_view` (the record as the ledger
keeps it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from privacykit import __version__
from privacykit.ledger.guard import looks_personal
from privacykit.playbooks.access.export import DATA_FILE
from privacykit.playbooks.access.files import DeliveredFile
from privacykit.playbooks.access.job import SEARCHED_KEYS, Collected, Gathered, Outcome, as_int
from privacykit.playbooks.access.kind import ART15_FIELDS, AccessPolicy
from privacykit.playbooks.access.schema import EXPORT_SCHEMA_ID

__all__ = [
    "EVIDENCE_SCHEMA_ID",
    "REPORT_FILE",
    "categories",
    "evidence_record",
    "ledger_view",
]

EVIDENCE_SCHEMA_ID = "privacykit.access-evidence/1"
REPORT_FILE = "access-report.pdf"


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
                    "user_id": as_int(profile.get("user_id")),
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
            {k: list(gathered.searched.get(k, [])) for k in SEARCHED_KEYS}
            if gathered
            else {k: [] for k in SEARCHED_KEYS}
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
