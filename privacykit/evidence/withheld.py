"""Free texts the ledger withheld, restored from the playbook copy the request used.

The ledger's privacy guard refuses strings that look like an address, a phone number or
a token, so the engine stores the evidence record with such free texts -- the DPO's
contact address in an access record's ``processing``, an Art. 19 recipient -- replaced by
``[not kept in the ledger; sha256 <hex>]`` (older erasure records: ``sha256:<hex>``).
Those texts come from the playbook, and the engine stores a copy of the playbook file as
an artifact of kind ``playbook`` when the request is opened.

When a report is rendered again from the ledger (:func:`~privacykit.evidence.
reproduce_report`), :func:`restore_from_playbook` finds that copy, checks that its sha256
is the request's ``playbook_sha256`` (and re-hashes the file), collects every string in
it, and puts back each withheld text whose sha256 matches; only exact matches are put
back. A text that cannot be recovered is shown as :func:`unrecoverable` -- never as the
raw placeholder.

The playbook copy is read with YAML's scanner only (string tokens, no construction, no
alias expansion), size-bounded, so even a hostile file costs linear time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacykit.ledger import Ledger, RequestRecord

__all__ = [
    "PLAYBOOK_ARTIFACT",
    "Restored",
    "restore",
    "restore_from_playbook",
    "unrecoverable",
    "withheld_digest",
]

PLAYBOOK_ARTIFACT = "playbook"
MAX_PLAYBOOK_BYTES = 1024 * 1024
_FORMS = (
    re.compile(r"^\[not kept in the ledger; sha256 ([0-9a-f]{64})\]$"),
    re.compile(r"^sha256:([0-9a-f]{64})$"),
)


def withheld_digest(text: str) -> str | None:
    """The sha256 a withheld-text placeholder names, or None for any other string."""
    for form in _FORMS:
        match = form.match(text)
        if match:
            return match.group(1)
    return None


def unrecoverable(digest: str) -> str:
    """What a report shows for a withheld text that cannot be restored."""
    return (
        f"[text not kept in the ledger (sha256 {digest[:16]}…); the playbook copy that held "
        "it is not available]"
    )


@dataclass(frozen=True)
class Restored:
    """A record with its withheld texts put back, and what could not be."""

    record: dict[str, Any]
    restored: int
    missing: int
    source: str  # "playbook <sha256>" or why no playbook copy could be used


def restore(value: Any, texts: Mapping[str, str]) -> tuple[Any, int, int]:
    """``value`` with every placeholder whose digest is in ``texts`` replaced by the text
    (others by :func:`unrecoverable`); returns ``(value, restored, missing)``."""
    counts = [0, 0]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            digest = withheld_digest(item)
            if digest is None:
                return item
            if digest in texts:
                counts[0] += 1
                return texts[digest]
            counts[1] += 1
            return unrecoverable(digest)
        if isinstance(item, Mapping):
            return {key: walk(v) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    result = walk(value)
    return result, counts[0], counts[1]


def _scalars(text: str) -> Iterator[str]:
    import yaml

    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.ScalarToken) and isinstance(token.value, str):
                yield token.value
    except yaml.YAMLError:
        return


def _texts(playbook: str) -> dict[str, str]:
    """sha256 -> text for every string in the playbook (as written, stripped, and with
    runs of white space collapsed: the forms a playbook value reaches a record in)."""
    found: dict[str, str] = {}
    for scalar in _scalars(playbook):
        for form in (scalar, scalar.strip(), " ".join(scalar.split())):
            found.setdefault(hashlib.sha256(form.encode("utf-8")).hexdigest(), form)
    return found


def _playbook_copy(
    ledger: Ledger, request: RequestRecord, record: Mapping[str, Any]
) -> tuple[str | None, str]:
    """The text of the request's playbook copy, or None and why not."""
    expected = request.playbook_sha256
    if expected is None:
        given = record.get("playbook")
        sha = given.get("sha256") if isinstance(given, Mapping) else None
        expected = sha if isinstance(sha, str) else None
    if expected is None:
        return None, "the request names no playbook sha256"
    copies = [
        a
        for a in ledger.artifacts(request.request_id)
        if a.kind == PLAYBOOK_ARTIFACT and a.sha256 == expected
    ]
    if not copies:
        return None, "no copy of the request's playbook is stored"
    try:
        with open(copies[0].path, "rb") as handle:
            data = handle.read(MAX_PLAYBOOK_BYTES + 1)
    except OSError:
        return None, "the stored playbook copy cannot be read"
    if len(data) > MAX_PLAYBOOK_BYTES or hashlib.sha256(data).hexdigest() != expected:
        return None, "the stored playbook copy does not match the request's playbook sha256"
    try:
        return data.decode("utf-8"), f"playbook {expected}"
    except UnicodeDecodeError:
        return None, "the stored playbook copy is not UTF-8 text"


def restore_from_playbook(
    ledger: Ledger, request: RequestRecord, record: Mapping[str, Any]
) -> Restored:
    """``record`` (as the ledger keeps it) with its withheld free texts restored from the
    request's playbook copy; see the module docstring."""
    text, source = _playbook_copy(ledger, request, record)
    texts = _texts(text) if text is not None else {}
    value, restored, missing = restore(dict(record), texts)
    return Restored(record=value, restored=restored, missing=missing, source=source)
