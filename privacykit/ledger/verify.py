"""Full verification of a ledger: everything recomputed from the entries, nothing trusted.

Called by :meth:`Ledger.verify` with the ledger's lock held. Streams the entries once
(constant memory apart from the Merkle tree's 64 bytes per entry), so a million-entry
ledger verifies in seconds. The first problem raises :class:`LedgerIntegrityError`,
naming the entry when one can be named.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from privacykit.errors import LedgerIntegrityError
from privacykit.ledger import merkle
from privacykit.ledger.canonical import canonical_json, fast_entry_canonical_bytes
from privacykit.ledger.checkpoint import Checkpoint
from privacykit.ledger.records import PHASES, RESULTS
from privacykit.ledger.replay import (
    ARTIFACT_COLUMNS,
    ARTIFACT_KEY,
    REQUEST_COLUMNS,
    RESERVED_PREFIX,
    apply_artifact,
    apply_request_entry,
)

if TYPE_CHECKING:
    from privacykit.ledger.store import Ledger

__all__ = ["verify_ledger"]


@dataclass(frozen=True)
class _Result:
    entries: int
    requests: int
    checkpoints: int
    artifacts: int
    root: bytes
    latest_checkpoint: Checkpoint | None
    saved_checkpoints: int
    checks: tuple[str, ...]


def _bad(message: str, entry: int | None = None) -> LedgerIntegrityError:
    if entry is not None:
        message = f"entry {entry}: {message}"
    return LedgerIntegrityError(message, entry=entry)


def verify_ledger(
    ledger: Ledger, conn: sqlite3.Connection, saved_notes: Iterable[str], check_artifacts: bool
) -> _Result:
    checks: list[str] = []
    problems = conn.execute("PRAGMA integrity_check(1)").fetchone()
    if problems is None or problems[0] != "ok":
        raise LedgerIntegrityError(f"the ledger database is damaged: {problems and problems[0]}")
    checks.append("sqlite integrity")

    stored = _stored_checkpoints(ledger, conn)
    checks.append("checkpoint signatures")

    tree, requests, artifacts, last_seq_of = _replay_entries(conn)
    size = len(tree)
    checks.append("entry hashes and order")

    _check_checkpoints(tree, stored)
    checks.append("checkpoint roots and consistency")

    notes = [note for note in saved_notes]
    latest_file = ledger.home / "ledger-checkpoint.latest"
    if latest_file.exists():
        latest_note = latest_file.read_text(encoding="utf-8")
        if stored and latest_note not in {cp.note for cp in stored}:
            _check_saved(ledger, tree, stored, latest_note, "ledger-checkpoint.latest")
            raise _bad("ledger-checkpoint.latest is not among the stored checkpoints")
        _check_saved(ledger, tree, stored, latest_note, "ledger-checkpoint.latest")
        checks.append("latest checkpoint file")
    for index, note in enumerate(notes, 1):
        _check_saved(ledger, tree, stored, note, f"saved checkpoint {index}")
    if notes:
        checks.append("saved checkpoints")

    _check_derived(conn, requests, artifacts, last_seq_of)
    checks.append("derived tables")

    if check_artifacts:
        _check_artifact_files(ledger, artifacts)
        checks.append("artifact hashes")

    _check_schema(ledger, conn)
    checks.append("append-only triggers")
    checks.append("schema")

    ledger._tree = tree  # verified from content: reuse for proofs and checkpoints
    return _Result(
        entries=size,
        requests=len(requests),
        checkpoints=len(stored),
        artifacts=len(artifacts),
        root=tree.root(),
        latest_checkpoint=stored[-1] if stored else None,
        saved_checkpoints=len(notes),
        checks=tuple(checks),
    )


def _check_schema(ledger: Ledger, conn: sqlite3.Connection) -> None:
    """The triggers, tables and indexes are exactly the ones the ledger creates: a dropped
    or edited trigger (or any other schema change) is reported."""
    from privacykit.ledger.store import _SCHEMA_QUERY, expected_schema

    present = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
    }
    missing = [name for name in ledger._triggers() if name not in present]
    if missing:
        raise _bad(f"append-only trigger(s) missing: {', '.join(missing)}")
    actual = {row[1]: row for row in conn.execute(_SCHEMA_QUERY)}
    expected = {row[1]: row for row in expected_schema()}
    changed = sorted(
        name for name in actual.keys() | expected.keys() if actual.get(name) != expected.get(name)
    )
    if changed:
        raise _bad(f"the database schema was changed ({', '.join(changed)})")


def _stored_checkpoints(ledger: Ledger, conn: sqlite3.Connection) -> list[Checkpoint]:
    found: list[Checkpoint] = []
    previous_size = 0
    for cid, ts, size, root_hex, note in conn.execute(
        "SELECT c.id, COALESCE(e.ts, ''), c.size, c.root, c.note FROM checkpoints c "
        "LEFT JOIN entries e ON e.seq = c.size ORDER BY c.id"
    ):
        if cid != len(found) + 1:
            # Rows are only ever appended, so ids run 1, 2, 3...: a gap is a removed row.
            raise _bad(f"checkpoint #{len(found) + 1} is missing (the next stored is #{cid})")
        if not isinstance(note, str):
            raise _bad(f"checkpoint #{cid} is malformed")
        try:
            _, note_size, note_root = ledger._verify_note(note)
        except LedgerIntegrityError as exc:
            raise _bad(f"checkpoint #{cid}: {exc}") from None
        if note_size != size or not isinstance(root_hex, str) or note_root.hex() != root_hex:
            raise _bad(f"checkpoint #{cid}: its columns do not match its signed note")
        if note_size < previous_size:
            raise _bad(f"checkpoint #{cid} is smaller than the checkpoint before it")
        previous_size = note_size
        found.append(Checkpoint(note_size, note_root, note, ledger.origin, str(ts)))
    return found


def _replay_entries(
    conn: sqlite3.Connection,
) -> tuple[merkle.MerkleTree, dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    tree = merkle.MerkleTree()
    requests: dict[str, dict[str, Any]] = {}
    artifacts: list[dict[str, Any]] = []
    last_seq_of: dict[str, int] = {}
    leaf_hash, loads, dumps = merkle.leaf_hash, json.loads, canonical_json
    expected = 1
    # Text as bytes: a byte flip that breaks UTF-8 is then reported at its entry instead of
    # failing inside the cursor.
    conn.text_factory = bytes
    try:
        cursor = conn.execute(
            "SELECT seq, request_id, ts, step_key, phase, data, leaf FROM entries ORDER BY seq"
        )
        for seq, rid_b, ts_b, key_b, phase_b, data_b, leaf in cursor:
            if seq != expected:
                if isinstance(seq, int) and seq > expected:
                    raise _bad(
                        f"missing (the next stored entry is {seq}): an entry was deleted",
                        expected,
                    )
                raise _bad(f"unexpected sequence number {seq!r} (inserted or reordered)", expected)
            try:
                rid, ts, key, phase, text = (
                    rid_b.decode(),
                    ts_b.decode(),
                    key_b.decode(),
                    phase_b.decode(),
                    data_b.decode(),
                )
                data = loads(text)
            except (AttributeError, UnicodeDecodeError, ValueError):
                raise _bad("a field is not valid text or JSON", seq) from None
            if phase not in PHASES or not isinstance(data, dict) or dumps(data) != text:
                raise _bad("phase or data is malformed (not canonical JSON)", seq)
            computed = leaf_hash(fast_entry_canonical_bytes(seq, rid, ts, key, phase, text))
            if not isinstance(leaf, bytes) or computed != leaf:
                raise _bad("content does not match its leaf hash (changed, moved or inserted)", seq)
            tree.append(computed)
            if key.startswith(RESERVED_PREFIX):
                try:
                    if key == ARTIFACT_KEY:
                        if rid not in requests:
                            raise ValueError("artifact for a request that was never created")
                        artifacts.append(apply_artifact(seq, rid, ts, data))
                    else:
                        requests[rid] = apply_request_entry(requests.get(rid), rid, ts, key, data)
                except ValueError as exc:
                    raise _bad(f"{key} does not replay: {exc}", seq) from None
                last_seq_of[rid] = seq
            elif rid not in requests:
                raise _bad("belongs to a request that was never created", seq)
            elif phase == "outcome" and data.get("result") not in RESULTS:
                raise _bad("outcome without a valid result", seq)
            expected += 1
    finally:
        conn.text_factory = str
    return tree, requests, artifacts, last_seq_of


def _check_checkpoints(tree: merkle.MerkleTree, stored: list[Checkpoint]) -> None:
    size = len(tree)
    good_size = 0
    previous: Checkpoint | None = None
    for number, cp in enumerate(stored, 1):
        if cp.size > size:
            raise _bad(
                f"the ledger has {size} entries but checkpoint #{number} was signed at "
                f"{cp.size}: entries were removed from the end",
                size + 1,
            )
        if tree.root(cp.size) != cp.root:
            raise _bad(
                f"entries {good_size + 1}..{cp.size} do not match signed checkpoint #{number} "
                "(an entry in this range was changed, inserted, removed or reordered)",
                good_size + 1,
            )
        if previous is not None and previous.size > 0:
            proof = tree.consistency_proof(previous.size, cp.size)
            if not merkle.verify_consistency(previous.size, cp.size, previous.root, cp.root, proof):
                raise _bad(f"checkpoint #{number} does not extend checkpoint #{number - 1}")
        good_size, previous = cp.size, cp


def _check_saved(
    ledger: Ledger, tree: merkle.MerkleTree, stored: list[Checkpoint], note: str, what: str
) -> None:
    try:
        _, cp_size, cp_root = ledger._verify_note(note)
    except LedgerIntegrityError as exc:
        raise _bad(f"{what}: {exc}") from None
    size = len(tree)
    if cp_size > size:
        raise _bad(
            f"the ledger has {size} entries but {what} was signed at {cp_size}: "
            "entries were removed from the end",
            size + 1,
        )
    if tree.root(cp_size) != cp_root:
        good = max((cp.size for cp in stored if cp.size <= cp_size), default=0)
        raise _bad(
            f"entries {good + 1}..{cp_size} do not match {what} "
            "(an entry in this range was changed, inserted, removed or reordered)",
            good + 1,
        )
    latest = stored[-1] if stored else None
    if latest is not None and latest.size > 0 and cp_size > 0:
        old, new = sorted(((cp_size, cp_root), (latest.size, latest.root)))
        proof = tree.consistency_proof(old[0], new[0])
        if not merkle.verify_consistency(old[0], new[0], old[1], new[1], proof):
            raise _bad(f"{what} and the latest stored checkpoint are not consistent")


def _check_derived(
    conn: sqlite3.Connection,
    requests: dict[str, dict[str, Any]],
    artifacts: list[dict[str, Any]],
    last_seq_of: dict[str, int],
) -> None:
    columns = ", ".join(REQUEST_COLUMNS)
    seen: set[str] = set()
    for values in conn.execute(f"SELECT {columns} FROM requests"):
        row = dict(zip(REQUEST_COLUMNS, values, strict=True))
        rid = row["request_id"]
        expected = requests.get(rid)
        if expected is None:
            raise _bad(f"requests table has {rid!r}, which no entry created")
        if row != expected:
            fields = sorted(k for k in REQUEST_COLUMNS if row[k] != expected[k])
            raise _bad(
                f"requests row {rid} does not match its entries ({', '.join(fields)})",
                last_seq_of.get(rid),
            )
        seen.add(rid)
    for rid in requests:
        if rid not in seen:
            raise _bad(f"request {rid} is missing from the requests table", last_seq_of.get(rid))
    columns = ", ".join(ARTIFACT_COLUMNS)
    stored = [
        dict(zip(ARTIFACT_COLUMNS, values, strict=True))
        for values in conn.execute(f"SELECT {columns} FROM artifacts ORDER BY seq")
    ]
    by_seq = {row["seq"]: row for row in artifacts}
    for row in stored:
        if by_seq.get(row["seq"]) != row:
            raise _bad("artifacts table does not match the entries", row["seq"])
    if len(stored) != len(artifacts):
        missing = sorted(set(by_seq) - {row["seq"] for row in stored})
        raise _bad("artifact is missing from the artifacts table", missing[0] if missing else None)


def _check_artifact_files(ledger: Ledger, artifacts: list[dict[str, Any]]) -> None:
    from privacykit.ledger.store import sha256_file

    checked: set[tuple[str, str]] = set()
    for row in artifacts:
        key = (row["sha256"], row["suffix"])
        if key in checked:
            continue
        path = ledger.artifacts_dir / f"{row['sha256']}{row['suffix']}"
        try:
            actual = sha256_file(path)
        except OSError:
            raise _bad(f"artifact file {path.name} is missing", row["seq"]) from None
        if actual != row["sha256"]:
            raise _bad(f"artifact file {path.name} does not match its sha256", row["seq"])
        checked.add(key)
