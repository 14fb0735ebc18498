"""Canonical JSON for ledger entries, and the leaf hash every entry contributes to the tree.

Owns the one byte encoding that is hashed: JSON with sorted keys, compact separators
(``,`` and ``:``), UTF-8 without ``\\u`` escapes for non-ASCII, no NaN or infinities. It is
public so an offline verifier (the evidence bundle) can recompute a leaf hash from an
exported entry with nothing but this module and :mod:`privacykit.ledger.merkle`::

    leaf = merkle.leaf_hash(entry_canonical_bytes(entry_dict))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from privacykit.errors import LedgerError
from privacykit.ledger import merkle

__all__ = [
    "ENTRY_FIELDS",
    "canonical_bytes",
    "canonical_json",
    "entry_canonical_bytes",
    "entry_leaf_hash",
    "fast_entry_canonical_bytes",
    "normalise_data",
]

#: The fields of an entry that are hashed, in canonical (sorted) order.
ENTRY_FIELDS = ("data", "phase", "request_id", "seq", "step_key", "ts")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# The string encoder json.dumps(..., ensure_ascii=False) uses (the C one when available).
_encode_str = json.encoder.encode_basestring


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON value (sorted keys, compact, non-ASCII kept as is)."""
    return _ENCODER.encode(value)


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 bytes of :func:`canonical_json`."""
    return canonical_json(value).encode("utf-8")


def entry_canonical_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes hashed for one entry: the canonical JSON of exactly the six fields
    ``seq``, ``request_id``, ``ts``, ``step_key``, ``phase`` and ``data``."""
    missing = [name for name in ENTRY_FIELDS if name not in entry]
    if missing:
        raise ValueError(f"entry lacks field(s): {', '.join(missing)}")
    return canonical_bytes({name: entry[name] for name in ENTRY_FIELDS})


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes:
    """The RFC 6962 leaf hash of an entry: ``merkle.leaf_hash(entry_canonical_bytes(entry))``."""
    return merkle.leaf_hash(entry_canonical_bytes(entry))


def fast_entry_canonical_bytes(
    seq: int, request_id: str, ts: str, step_key: str, phase: str, data_json: str
) -> bytes:
    """Same bytes as :func:`entry_canonical_bytes` for an entry whose ``data`` is already
    canonical JSON text (as stored), without re-encoding the data: keys in sorted order
    ``data, phase, request_id, seq, step_key, ts``. Used on hot paths (append, verify)."""
    enc = _encode_str
    return (
        f'{{"data":{data_json},"phase":{enc(phase)},"request_id":{enc(request_id)},'
        f'"seq":{int(seq)},"step_key":{enc(step_key)},"ts":{enc(ts)}}}'
    ).encode()


def normalise_data(value: Any, where: str = "data") -> Any:
    """A JSON-safe copy of ``value`` whose canonical form round-trips exactly: dates become
    ISO strings, tuples lists; non-string keys, NaN/infinity and other types are refused
    (the message names the path, never the value)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise LedgerError(f"{where}: NaN and infinity cannot be recorded")
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerError(f"{where}: keys must be strings")
            out[key] = normalise_data(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [normalise_data(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise LedgerError(f"{where}: a {type(value).__name__} cannot be recorded (JSON values only)")
