"""The access evidence record: what the ledger and the signed report say about an answer.

Owns :func:`evidence_record` (``privacykit.access-evidence/2``: what was searched and what
is not covered, what was found as counts, categories and Zendesk ids, how other people in
the conversations appear, the Art. 15 facts, and the sha256 of every prepared file --
never the data itself) and :func:`categories` (Art. 15(1)(b): the
kinds of personal data found, by name). The ledger keeps the record in the one redacted
shape of :func:`privacykit.playbooks.request.ledger_view`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from privacykit import __version__
from privacykit.playbooks.access.export import DATA_FILE, INDEX_FILE
from privacykit.playbooks.access.files import DeliveredFile
from privacykit.playbooks.access.job import (
    SEARCHED_KEYS,
    Collected,
    Gathered,
    Outcome,
    as_int,
    not_covered,
)
from privacykit.playbooks.access.kind import ART15_FIELDS, AccessPolicy
from privacykit.playbooks.access.schema import EXPORT_SCHEMA_ID

__all__ = [
    "EVIDENCE_SCHEMA_ID",
    "REPORT_FILE",
    "categories",
    "evidence_record",
]

EVIDENCE_SCHEMA_ID = "privacykit.access-evidence/2"
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
    counts = gathered.counts()
    ticket_fields: set[str] = set()
    comment_fields: set[str] = set()
    attachment_types: set[str] = set()
    rating_fields: set[str] = set()
    for ticket in gathered.tickets:
        ticket_fields.update(_field_names([ticket], skip=("id", "comments", "relations")))
        rating = ticket.get("satisfaction_rating")
        if isinstance(rating, Mapping):
            rating_fields.update(_field_names([rating], skip=("id", "url")))
        for comment in ticket.get("comments") or []:
            comment_fields.update(_field_names([comment], skip=("id", "attachments")))
            for attachment in comment.get("attachments") or []:
                attachment_types.add(str(attachment.get("content_type") or "unknown"))
    add(
        "Support tickets (requested, CC'd or followed)",
        counts["tickets"],
        sorted(ticket_fields),
    )
    add(
        "Ticket comments written by the person",
        counts["comments_by_person"],
        sorted(comment_fields),
    )
    add(
        "Ticket comments by agents and others in the person's conversations",
        counts["comments"] - counts["comments_by_person"],
        sorted(comment_fields),
    )
    add("Internal notes on the person's tickets", counts["internal_notes"], ["body"])
    add("Satisfaction ratings", counts["satisfaction_ratings"], sorted(rating_fields))
    add("Files attached to ticket comments", counts["attachments"], sorted(attachment_types))
    add(
        "Organizations",
        len(gathered.organizations),
        _field_names(gathered.organizations, skip=("id",)),
    )
    add(
        "Organization memberships",
        len(gathered.organization_memberships),
        _field_names(gathered.organization_memberships, skip=("id",)),
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
    prepared: Sequence[DeliveredFile],
    operator: str | None,
    started_at: str,
    completed_at: str,
) -> dict[str, Any]:
    """The access evidence record (:data:`EVIDENCE_SCHEMA_ID`): what was searched and what
    was not, what was found (counts, categories, Zendesk ids), how other people in the
    conversations appear, the Art. 15 facts, and the sha256 of every prepared file. No
    personal data: ids, counts, field names and hashes only."""
    gathered = collected.gathered if collected else None
    found = collected.discovery if collected else None
    talk = collected.conversations if collected else None
    per_user = talk.per_user if talk is not None else {}
    users = []
    if gathered is not None and found is not None:
        for user in gathered.users:
            uid = int(user["id"])
            relations = per_user.get(uid, {})
            users.append(
                {
                    "user_id": uid,
                    "role": user.get("role"),
                    "organization_id": user.get("organization_id"),
                    "identities": len(found.identities.get(uid, [])),
                    "profiles": len(found.profiles_of(uid)),
                    # Tickets of this user in the answer, by relation.
                    "tickets": {r: relations.get(r, 0) for r in ("requested", "ccd", "followed")},
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
        "not_covered": list(gathered.not_covered if gathered else not_covered(policy)),
        "others": _others(policy, gathered),
        "attachments": _attachments(policy, gathered),
        "export": {
            "format": f"{DATA_FILE} ({EXPORT_SCHEMA_ID}), one CSV per record type and "
            f"{INDEX_FILE} (readable in a browser)",
            "files": len(prepared),
            "prepared": bool(prepared),
        },
        "prepared_files": [f.as_dict() for f in prepared],
        "users": users,
        "profiles": profiles,
        "compliance": compliance,
        "playbook": {"name": policy.name, "sha256": policy.sha256},
        "tool_version": __version__,
        "operator": operator,
        "started_at": started_at,
        "completed_at": completed_at,
    }


def _others(policy: AccessPolicy, gathered: Gathered | None) -> dict[str, Any]:
    counts = gathered.counts() if gathered else {}
    if policy.others == "pseudonymise":
        how = (
            "Other customers in the person's conversations appear as 'another customer #n'; "
            "their names, addresses and Zendesk ids are withheld (Art. 15(4)). Comment "
            "bodies are not rewritten: what others wrote appears as the person received it."
        )
    else:
        how = (
            "Other people in the person's conversations appear by name, as Zendesk holds "
            "them (playbook policy 'others: keep'). Comment bodies are not rewritten."
        )
    return {
        "policy": policy.others,
        "other_customers": counts.get("other_customers", 0),
        "bodies_rewritten": False,
        "how": how,
        "internal_notes": "included" if policy.include_internal_notes else "withheld",
    }


def _attachments(policy: AccessPolicy, gathered: Gathered | None) -> dict[str, Any]:
    counts = gathered.counts() if gathered else {}
    return {
        "downloaded": counts.get("attachments_downloaded", 0),
        "listed_not_downloaded": counts.get("attachments_not_downloaded", 0),
        "bytes": counts.get("attachment_bytes", 0),
        "max_file_bytes": policy.max_attachment_bytes if policy.collect_attachments else 0,
        "max_total_bytes": policy.max_total_attachment_bytes if policy.collect_attachments else 0,
        "hashes": f"the sha256 of every downloaded file is in {DATA_FILE}",
    }
