"""Canonical JSON for ledger entries, and the leaf hash every entry contributes to the tree.

Owns the one byte encoding that is hashed: **RFC 8785 (JSON Canonicalization Scheme)**,
restricted so that it is also exactly what Python's ``json`` produces with sorted keys:

* no floating-point numbers at all (JCS's number formatting is where implementations
  differ); integers only, within ±(2**53 − 1), the range every JSON implementation holds
  exactly;
* object keys sorted, compact separators ``,`` and ``:``, UTF-8, non-ASCII kept as is,
  control characters escaped as ``\\b \\t \\n \\f \\r`` or ``\\u00xx`` (lower-case hex):
  JCS's rules;
* keys without characters outside the Basic Multilingual Plane (for those, JCS's UTF-16
  key order and Python's code-point order could differ) and strings of valid Unicode
  (no lone surrogates).

So a verifier in any language with a JCS library (or these few rules) reproduces the
bytes and the hashes. :func:`normalise_data` refuses anything outside these rules before
it is recorded. Entries written by earlier versions that hold a float still verify: the
stored text is what is hashed. Public so an offline verifier (the evidence bundle) can
recompute a leaf hash from an exported entry with nothing but this module and
:mod:`privacykit.ledger.merkle`::

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
    "encode_basestring",
    "entry_canonical_bytes",
    "entry_leaf_hash",
    "fast_entry_canonical_bytes",
    "is_canonical_batch",
    "normalise_data",
    "scan_json",
]

#: The fields of an entry that are hashed, in canonical (sorted) order.
ENTRY_FIELDS = ("data", "phase", "request_id", "seq", "step_key", "ts")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
#: The string encoder json.dumps(..., ensure_ascii=False) uses (the C one when available).
encode_basestring = _encode_str = json.encoder.encode_basestring
#: ``scan_json(text, 0) -> (value, end)``: the JSON decoder's scanner (C when available),
#: without ``json.loads``' Python layers: verification calls it once per entry.
scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
#: The largest integer recorded: every JSON implementation holds it exactly (RFC 8785).
MAX_SAFE_INTEGER = 2**53 - 1


# One C encoder reused for every call (``JSONEncoder.encode`` builds a new one each time,
# which costs more than encoding a small entry). None without the C accelerator.
_C_ENCODE = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, _encode_str, None, ":", ",", True, False, False
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON value (sorted keys, compact, non-ASCII kept as is)."""
    if _C_ENCODE is not None and isinstance(value, dict | list):
        return "".join(_C_ENCODE(value, 0))
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


def is_canonical_batch(values: list[Any], texts: list[str]) -> bool:
    """True when each ``texts[i]`` is exactly the canonical JSON of ``values[i]``, given that
    each text was parsed, completely, into its value. One encoder call for the whole batch:
    the encoding of a list is its items' encodings joined by ``,``, and since every item
    is one complete JSON value, equal joins imply equal items (a prefix of a complete
    JSON object is never itself a complete object)."""
    try:
        return canonical_json(values) == "[" + ",".join(texts) + "]"
    except ValueError:  # NaN or infinity: never canonical
        return False


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LedgerError(f"{where}: text must be valid Unicode (a lone surrogate)") from None


def normalise_data(value: Any, where: str = "data") -> Any:
    """A JSON-safe copy of ``value`` in the canonical subset (see the module docstring):
    dates become ISO strings, tuples lists; floats, integers beyond ±(2**53 − 1), non-string
    keys, keys outside the Basic Multilingual Plane, invalid Unicode and other types are
    refused (the message names the path, never the value)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise LedgerError(f"{where}: integers beyond ±(2**53 - 1) cannot be recorded")
        return value
    if isinstance(value, str):
        _check_text(value, where)
        return value
    if isinstance(value, float):
        raise LedgerError(
            f"{where}: floating-point numbers are not recorded (canonical JSON without floats "
            "hashes the same in every language): record an integer (e.g. milliseconds) or text"
        )
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerError(f"{where}: keys must be strings")
            _check_text(key, where)
            if any(ord(ch) > 0xFFFF for ch in key):
                raise LedgerError(f"{where}: keys must not hold characters beyond U+FFFF")
            out[key] = normalise_data(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [normalise_data(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise LedgerError(f"{where}: a {type(value).__name__} cannot be recorded (JSON values only)")
