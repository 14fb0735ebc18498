"""The documented, versioned schema of an access export's ``data.json`` (version 2).

Owns :data:`EXPORT_SCHEMA` (a JSON Schema, draft 2020-12, that anyone can feed to their
own validator; ``docs/access-export.md`` explains every field) and :func:`validate`, a
small validator for exactly the JSON Schema keywords that schema uses. privacykit has no
``jsonschema`` dependency, and the subset is small enough to check by hand; a keyword the
validator does not know is an error, so the schema cannot silently outgrow its checker.

Compatibility promise: within ``privacykit.access-export/2`` fields are only ever added,
never removed, renamed or retyped. Anything else bumps the version. Version 2 (issue #16)
replaced version 1's ``tickets`` (requested only, no comments, with a ``user_id`` link
field) by the person's conversations and added ``not_covered``, ``others``,
``organizations``, ``organization_memberships`` and ``people``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["EXPORT_SCHEMA", "EXPORT_SCHEMA_ID", "SchemaViolation", "validate"]

EXPORT_SCHEMA_ID = "privacykit.access-export/2"

_TIMESTAMP = {"type": ["string", "null"]}
_SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}

EXPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://privacykit.invalid/schemas/access-export-2.json",
    "title": "privacykit access export, version 2 (data.json)",
    "type": "object",
    "required": [
        "schema",
        "request_id",
        "generated_at",
        "tool_version",
        "subject",
        "found",
        "processing",
        "searched",
        "not_covered",
        "others",
        "counts",
        "users",
        "identities",
        "profiles",
        "events",
        "organizations",
        "organization_memberships",
        "people",
        "tickets",
        "compliance_deletion_statuses",
    ],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": EXPORT_SCHEMA_ID},
        "request_id": {"type": "string", "minLength": 1},
        "generated_at": {"type": "string", "minLength": 1},
        "tool_version": {"type": "string"},
        "subject": {
            "type": "object",
            "required": ["form", "value"],
            "additionalProperties": False,
            "properties": {
                "form": {"enum": ["email", "user", "external_id", "identifier"]},
                "value": {"type": "string"},
            },
        },
        "found": {"type": "boolean"},
        "processing": {"$ref": "#/$defs/processing"},
        "searched": {
            "type": "object",
            "required": ["systems", "endpoints", "profile_sources"],
            "additionalProperties": False,
            "properties": {
                "systems": {"$ref": "#/$defs/strings"},
                "endpoints": {"$ref": "#/$defs/strings"},
                "profile_sources": {"$ref": "#/$defs/strings"},
            },
        },
        "not_covered": {"$ref": "#/$defs/strings"},
        "others": {
            "type": "object",
            "required": ["policy", "note"],
            "additionalProperties": False,
            "properties": {
                "policy": {"enum": ["pseudonymise", "keep"]},
                "note": {"type": "string"},
            },
        },
        "counts": {
            "type": "object",
            "required": [
                "users",
                "identities",
                "profiles",
                "profile_identifiers",
                "profile_attributes",
                "events",
                "tickets",
                "tickets_requested",
                "tickets_ccd",
                "tickets_followed",
                "comments",
                "comments_by_person",
                "internal_notes",
                "satisfaction_ratings",
                "attachments",
                "attachments_downloaded",
                "attachments_not_downloaded",
                "attachment_bytes",
                "organizations",
                "organization_memberships",
                "other_customers",
                "compliance_deletion_statuses",
            ],
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "users": {"type": "array", "items": {"$ref": "#/$defs/user"}},
        "identities": {"type": "array", "items": {"$ref": "#/$defs/identity"}},
        "profiles": {"type": "array", "items": {"$ref": "#/$defs/profile"}},
        "events": {"type": "array", "items": {"$ref": "#/$defs/event"}},
        "organizations": {"type": "array", "items": {"$ref": "#/$defs/organization"}},
        "organization_memberships": {
            "type": "array",
            "items": {"$ref": "#/$defs/organization_membership"},
        },
        "people": {"type": "array", "items": {"$ref": "#/$defs/person"}},
        "tickets": {"type": "array", "items": {"$ref": "#/$defs/ticket"}},
        "compliance_deletion_statuses": {
            "type": "array",
            "items": {"$ref": "#/$defs/compliance_deletion_status"},
        },
    },
    "$defs": {
        "strings": {"type": "array", "items": {"type": "string"}},
        "processing": {
            "description": "The GDPR Art. 15(1)(a)-(h) and 15(2) facts, as the DPO wrote them.",
            "type": "object",
            "required": [
                "controller",
                "contact",
                "purposes",
                "legal_bases",
                "recipients",
                "retention",
                "source",
                "rights",
                "complaint",
                "automated_decision_making",
                "third_country_transfers",
            ],
            "additionalProperties": False,
            "properties": {
                "controller": {"type": "string"},
                "contact": {"type": "string"},
                "purposes": {"$ref": "#/$defs/strings"},
                "legal_bases": {"$ref": "#/$defs/strings"},
                "recipients": {"$ref": "#/$defs/strings"},
                "retention": {"type": "string"},
                "source": {"type": "string"},
                "rights": {"$ref": "#/$defs/strings"},
                "complaint": {"type": "string"},
                "automated_decision_making": {"type": "string"},
                "third_country_transfers": {"type": "string"},
            },
        },
        "user": {
            "description": "A Zendesk Support user record as Zendesk returned it (minus the "
            "fields the playbook excludes), plus 'related' counts.",
            "type": "object",
            "required": ["id", "related"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": ["string", "null"]},
                "email": {"type": ["string", "null"]},
                "role": {"type": ["string", "null"]},
                "organization_id": {"type": ["integer", "null"]},
                "created_at": _TIMESTAMP,
                "updated_at": _TIMESTAMP,
                "related": {
                    "type": "object",
                    "additionalProperties": {"type": ["integer", "null"]},
                },
            },
        },
        "identity": {
            "type": "object",
            "required": ["id", "user_id", "type", "value"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "user_id": {"type": "integer"},
                "type": {"type": "string"},
                "value": _SCALAR,
                "verified": {"type": ["boolean", "null"]},
                "primary": {"type": ["boolean", "null"]},
                "created_at": _TIMESTAMP,
                "updated_at": _TIMESTAMP,
            },
        },
        "profile": {
            "type": "object",
            "required": ["id", "user_id", "source", "type", "identifiers", "attributes"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "string"},
                "user_id": {"type": ["string", "integer", "null"]},
                "source": {"type": "string"},
                "type": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "created_at": _TIMESTAMP,
                "updated_at": _TIMESTAMP,
                "identifiers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "value"],
                        "additionalProperties": True,
                        "properties": {"type": {"type": "string"}, "value": _SCALAR},
                    },
                },
                "attributes": {"type": "object"},
            },
        },
        "event": {
            "type": "object",
            "required": ["id", "profile_id", "source", "type", "created_at"],
            "additionalProperties": True,
            "properties": {
                # The events API's docs in hand do not say the id's type; accept both.
                "id": {"type": ["string", "integer"]},
                "profile_id": {"type": "string"},
                "source": {"type": ["string", "null"]},
                "type": {"type": ["string", "null"]},
                "description": {"type": ["string", "null"]},
                "properties": {"type": ["object", "null"]},
                "created_at": _TIMESTAMP,
                "received_at": _TIMESTAMP,
            },
        },
        "person": {
            "description": "Someone who appears in the person's conversations, in order of "
            "first appearance: the person ('you'), an agent of the organisation, or another "
            "customer (user_id null when pseudonymised).",
            "type": "object",
            "required": ["shown_as", "kind", "user_id"],
            "additionalProperties": False,
            "properties": {
                "shown_as": {"type": "string"},
                "kind": {"enum": ["you", "agent", "another_customer"]},
                "user_id": {"type": ["integer", "null"]},
            },
        },
        "person_ref": {
            "description": "A user id, or (another customer, pseudonymised) the label the "
            "people list shows.",
            "type": ["integer", "string", "null"],
        },
        "person_refs": {"type": ["array", "null"], "items": {"$ref": "#/$defs/person_ref"}},
        "ticket": {
            "description": "A ticket as Zendesk returned it (minus excluded fields, with the "
            "'others' policy applied), the person's relations to it, and every comment.",
            "type": "object",
            "required": ["id", "relations", "comments"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "relations": {
                    "type": "array",
                    "items": {"enum": ["requested", "ccd", "followed"]},
                },
                "subject": {"type": ["string", "null"]},
                "description": {"type": ["string", "null"]},
                "status": {"type": ["string", "null"]},
                "requester_id": {"$ref": "#/$defs/person_ref"},
                "submitter_id": {"$ref": "#/$defs/person_ref"},
                "assignee_id": {"$ref": "#/$defs/person_ref"},
                "collaborator_ids": {"$ref": "#/$defs/person_refs"},
                "email_cc_ids": {"$ref": "#/$defs/person_refs"},
                "follower_ids": {"$ref": "#/$defs/person_refs"},
                "satisfaction_rating": {"type": ["object", "null"]},
                "created_at": _TIMESTAMP,
                "updated_at": _TIMESTAMP,
                "comments": {"type": "array", "items": {"$ref": "#/$defs/comment"}},
            },
        },
        "comment": {
            "type": "object",
            "required": ["id", "author", "author_kind"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "author": {"type": ["string", "null"]},
                "author_kind": {"enum": ["you", "agent", "another_customer", None]},
                "author_id": {"$ref": "#/$defs/person_ref"},
                "public": {"type": ["boolean", "null"]},
                "body": {"type": ["string", "null"]},
                "plain_body": {"type": ["string", "null"]},
                "html_body": {"type": ["string", "null"]},
                "created_at": _TIMESTAMP,
                "attachments": {"type": "array", "items": {"$ref": "#/$defs/attachment"}},
            },
        },
        "attachment": {
            "type": "object",
            "required": ["id", "downloaded", "file"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "file_name": {"type": ["string", "null"]},
                "content_type": {"type": ["string", "null"]},
                "size": {"type": ["integer", "null"]},
                "downloaded": {"type": "boolean"},
                "file": {"type": ["string", "null"]},
                "sha256": {"type": "string"},
                "bytes": {"type": "integer", "minimum": 0},
                "not_downloaded_reason": {"type": "string"},
            },
        },
        "organization": {
            "type": "object",
            "required": ["id"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": ["string", "null"]},
                "created_at": _TIMESTAMP,
                "updated_at": _TIMESTAMP,
            },
        },
        "organization_membership": {
            "type": "object",
            "required": ["id", "user_id", "organization_id"],
            "additionalProperties": True,
            "properties": {
                "id": {"type": "integer"},
                "user_id": {"type": "integer"},
                "organization_id": {"type": "integer"},
                "created_at": _TIMESTAMP,
                "updated_at": _TIMESTAMP,
            },
        },
        "compliance_deletion_status": {
            "type": "object",
            "required": ["user_id", "application", "action", "created_at"],
            "additionalProperties": True,
            "properties": {
                "user_id": {"type": "integer"},
                "application": {"type": ["string", "null"]},
                "action": {"type": ["string", "null"]},
                "created_at": _TIMESTAMP,
            },
        },
    },
}


class SchemaViolation(ValueError):
    """``instance`` does not match the schema; ``path`` is a JSON pointer to the first problem."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or '/'}: {message}")
        self.path = path


_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}
_KNOWN = _ANNOTATIONS | {
    "$ref",
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minLength",
    "minimum",
}


def _type_ok(value: Any, name: str) -> bool:
    # JSON has no bool/int distinction problem, Python does: True is an int.
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    raise SchemaViolation("", f"unknown type {name!r} in schema")


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    match = re.fullmatch(r"#/\$defs/([A-Za-z0-9_]+)", ref)
    if not match or match.group(1) not in root.get("$defs", {}):
        raise SchemaViolation("", f"unresolvable $ref {ref!r}")
    resolved: dict[str, Any] = root["$defs"][match.group(1)]
    return resolved


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise SchemaViolation(path, f"schema uses unsupported keywords {sorted(unknown)}")
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path)
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, n) for n in names):
            raise SchemaViolation(
                path, f"expected {' or '.join(names)}, got {type(value).__name__}"
            )
    if "const" in schema and value != schema["const"]:
        raise SchemaViolation(path, f"must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(path, f"must be one of {schema['enum']!r}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        raise SchemaViolation(path, f"shorter than {schema['minLength']}")
    if "minimum" in schema and _type_ok(value, "number") and value < schema["minimum"]:
        raise SchemaViolation(path, f"less than {schema['minimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise SchemaViolation(path, f"missing required property {key!r}")
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            where = f"{path}/{key}"
            if key in properties:
                _check(item, properties[key], root, where)
            elif extra is False:
                raise SchemaViolation(where, "property not allowed")
            elif isinstance(extra, dict):
                _check(item, extra, root, where)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], root, f"{path}/{index}")


def validate(
    instance: Any, schema: dict[str, Any] | None = None, *, definition: str | None = None
) -> None:
    """Raise :class:`SchemaViolation` (naming a JSON pointer) unless ``instance`` matches
    ``schema`` (default: :data:`EXPORT_SCHEMA`), or only its ``$defs`` entry
    ``definition`` (e.g. one ``ticket`` while the export is streamed)."""
    root = EXPORT_SCHEMA if schema is None else schema
    target = root if definition is None else _resolve(f"#/$defs/{definition}", root)
    _check(instance, target, root, "")
