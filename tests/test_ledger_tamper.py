"""Tamper evidence: any single changed, deleted, reordered or inserted entry, a changed
derived row, artifact or checkpoint, a truncated tail, and random byte flips in the
SQLite file are detected by ``verify()``, which names the first bad entry.

Tampering is done the way an attacker with file access would: through a second SQLite
connection with the append-only triggers dropped. Randomness is seeded.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privacykit.errors import LedgerError, LedgerIntegrityError
from privacykit.ledger import Ledger, merkle
from privacykit.ledger.canonical import fast_entry_canonical_bytes
from privacykit.ledger.schema import SCHEMA_SQL
from privacykit.ledger.schema import TRIGGERS as _TRIGGERS

COLUMNS = ("request_id", "ts", "step_key", "phase", "data", "leaf")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1500)
        return self.now


def build(home: Path, seed: int = 7) -> None:
    """A realistic small ledger: requests with steps, artifacts, several checkpoints, and a
    final checkpoint covering every entry."""
    rng = random.Random(seed)
    with Ledger.open(home, clock=Clock()) as ledger:
        for r in range(6):
            ref = ledger.subject_ref(f"email:person{r}@example.com")
            kind = ("erasure", "access")[r % 2]
            rid = ledger.create_request(kind, ref, received_at=f"2026-01-{10 + r:02d}")
            ledger.set_status(rid, "in_progress")
            for user in range(rng.randint(2, 5)):
                user_id = 1000 + r * 10 + user
                with ledger.step(rid, f"soft_delete:user:{user_id}", {"user_id": user_id}) as s:
                    s.done({"status": 200, "user_id": user_id})
                ledger.record(rid, f"profiles:user:{user_id}", "info", {"profiles": user})
            if r == 2:
                ledger.extend(rid, 1, "several systems", notified_at="2026-02-01")
            if r % 2:
                source = home.parent / f"evidence-{r}.pdf"
                source.write_bytes(f"%PDF evidence {r}".encode())
                ledger.add_artifact(rid, source, "report")
            ledger.set_status(rid, "completed" if r != 4 else "needs_review")
            if r in (1, 3, 5):
                ledger.checkpoint()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("tamper") / "home"
    build(home)
    return home


@pytest.fixture
def copy(template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template, home)
    return home


@pytest.fixture
def live(copy: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(copy)
    try:
        yield ledger
    finally:
        ledger.close(checkpoint=False)  # never sign over what a test tampered with


TRIGGER_SQL = [
    statement
    for statement in SCHEMA_SQL.split(";\n")
    if statement.strip().startswith("CREATE TRIGGER")
]


def restore_triggers(conn: sqlite3.Connection) -> None:
    """What a careful attacker does after editing: put the append-only triggers back."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    for name, statement in zip(_TRIGGERS, TRIGGER_SQL, strict=True):
        if name not in present:
            conn.execute(statement)


@contextmanager
def tampered(ledger: Ledger) -> Iterator[sqlite3.Connection]:
    """Tamper inside a transaction on the ledger's own connection, triggers dropped (and
    restored by :func:`verify_fails`), and roll back afterwards: many trials against one
    ledger, each seeing only its change."""
    with ledger._lock:
        conn = ledger._conn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            for name in _TRIGGERS:
                conn.execute(f"DROP TRIGGER {name}")
            yield conn
        finally:
            conn.execute("ROLLBACK")


class _Attacker(sqlite3.Connection):
    def close(self) -> None:
        restore_triggers(self)
        super().close()


def attacker(home: Path) -> sqlite3.Connection:
    """A second connection with the triggers dropped, restored when it is closed."""
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None, factory=_Attacker)
    for name in _TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn


def verify_fails(ledger: Ledger, **kwargs: object) -> LedgerIntegrityError:
    if ledger._conn is not None and ledger._conn.in_transaction:
        restore_triggers(ledger._conn)
    with pytest.raises(LedgerIntegrityError) as caught:
        ledger.verify(**kwargs)  # type: ignore[arg-type]
    return caught.value


def row(conn: sqlite3.Connection, seq: int) -> tuple[object, ...]:
    conn.text_factory = bytes
    try:
        return tuple(
            conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM entries WHERE seq = ?", (seq,)
            ).fetchone()
        )
    finally:
        conn.text_factory = str


def leaf_for(seq: int, values: dict[str, str]) -> bytes:
    return merkle.leaf_hash(
        fast_entry_canonical_bytes(
            seq,
            values["request_id"],
            values["ts"],
            values["step_key"],
            values["phase"],
            values["data"],
        )
    )


def test_template_verifies(live: Ledger) -> None:
    report = live.verify()
    assert report.entries > 60 and report.checkpoints == 3 and report.artifacts == 3
    assert live.latest_checkpoint().size == report.entries  # type: ignore[union-attr]


def test_random_single_byte_change_in_any_entry_field(live: Ledger) -> None:
    rng = random.Random(1)
    size = live.size
    for _trial in range(300):
        seq = rng.randint(1, size)
        column = rng.choice(COLUMNS)
        with tampered(live) as conn:
            value = row(conn, seq)[COLUMNS.index(column)]
            assert isinstance(value, bytes)
            raw = bytearray(value)
            position = rng.randrange(len(raw))
            raw[position] ^= 1 << rng.randrange(8)
            stored: bytes | str = bytes(raw)
            if column != "leaf":
                try:
                    stored = bytes(raw).decode()
                except UnicodeDecodeError:
                    pass  # stored as a BLOB: still must be caught, at this entry
            conn.execute(f"UPDATE entries SET {column} = ? WHERE seq = ?", (stored, seq))
            error = verify_fails(live)
        assert error.entry == seq, (column, str(error))
        assert f"entry {seq}" in str(error)


def test_changed_entry_with_recomputed_leaf_caught_by_checkpoint(live: Ledger) -> None:
    rng = random.Random(2)
    checkpoints = [cp.size for cp in live.checkpoints()]
    for _trial in range(60):
        seq = rng.randint(1, live.size)
        with tampered(live) as conn:
            conn.text_factory = str
            values = dict(
                zip(
                    COLUMNS[:-1],
                    conn.execute(
                        "SELECT request_id, ts, step_key, phase, data FROM entries WHERE seq = ?",
                        (seq,),
                    ).fetchone(),
                    strict=True,
                )
            )
            values["data"] = (
                values["data"].replace("}", ',"zz":1}', 1) if values["data"] != "{}" else '{"zz":1}'
            )
            conn.execute(
                "UPDATE entries SET data = ?, leaf = ? WHERE seq = ?",
                (values["data"], leaf_for(seq, values), seq),
            )
            error = verify_fails(live)
        # The signed checkpoint covering it no longer matches: the range is named.
        lower = max([size for size in checkpoints if size < seq], default=0)
        assert error.entry == lower + 1, str(error)
        assert "do not match signed checkpoint" in str(error)


def test_deleted_entry(live: Ledger) -> None:
    rng = random.Random(3)
    size = live.size
    for seq in [*rng.sample(range(1, size), 30), 1]:
        with tampered(live) as conn:
            conn.execute("DELETE FROM entries WHERE seq = ?", (seq,))
            error = verify_fails(live)
        assert error.entry == seq and "deleted" in str(error)


def test_deleted_last_entry_is_a_truncation(live: Ledger) -> None:
    size = live.size
    with tampered(live) as conn:
        conn.execute("DELETE FROM entries WHERE seq = ?", (size,))
        error = verify_fails(live)
    assert error.entry == size and "removed from the end" in str(error)


def test_reordered_entries(live: Ledger) -> None:
    rng = random.Random(4)
    size = live.size
    for _trial in range(40):
        a, b = sorted(rng.sample(range(1, size + 1), 2))
        with tampered(live) as conn:
            row_a, row_b = row(conn, a), row(conn, b)
            sets = ", ".join(f"{c} = ?" for c in COLUMNS)
            conn.execute(f"UPDATE entries SET {sets} WHERE seq = ?", (*row_b, a))
            conn.execute(f"UPDATE entries SET {sets} WHERE seq = ?", (*row_a, b))
            error = verify_fails(live)
        assert error.entry == a, str(error)


@pytest.mark.parametrize("recompute", [False, True], ids=["naive", "recomputed-leaves"])
def test_inserted_entry(live: Ledger, recompute: bool) -> None:
    rng = random.Random(5)
    size = live.size
    checkpoints = [cp.size for cp in live.checkpoints()]
    for _trial in range(15):
        at = rng.randint(1, size)
        with tampered(live) as conn:
            conn.text_factory = str
            rows = conn.execute(
                "SELECT seq, request_id, ts, step_key, phase, data, leaf FROM entries "
                "WHERE seq >= ? ORDER BY seq",
                (at,),
            ).fetchall()
            conn.execute("DELETE FROM entries WHERE seq >= ?", (at,))
            forged = {
                "request_id": rows[0][1],
                "ts": rows[0][2],
                "step_key": "permanent_delete:user:1",
                "phase": "outcome",
                "data": '{"result":"ok"}',
            }
            conn.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, *forged.values(), leaf_for(at, forged)),
            )
            for seq, *values, leaf in rows:
                new_seq = seq + 1
                if recompute:
                    leaf = leaf_for(new_seq, dict(zip(COLUMNS[:-1], values, strict=True)))
                conn.execute(
                    "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", (new_seq, *values, leaf)
                )
            error = verify_fails(live)
        # Named: the forged entry itself when it does not fit its request's history, else
        # the first shifted entry (naive) or the range of the checkpoint it breaks.
        if recompute:
            lower = max([s for s in checkpoints if s < at], default=0)
            assert error.entry is not None and lower + 1 <= error.entry <= at, str(error)
        else:
            assert error.entry in (at, at + 1), str(error)


def test_truncated_tail_detected_against_saved_checkpoint(copy: Path, tmp_path: Path) -> None:
    saved = (copy / "ledger-checkpoint.latest").read_text()
    with Ledger.open(copy) as ledger:
        size = ledger.size
    # Remove the last 10 entries and every trace of the checkpoints that covered them.
    conn = attacker(copy)
    try:
        conn.execute("DELETE FROM entries WHERE seq > ?", (size - 10,))
        conn.execute("DELETE FROM checkpoints WHERE size > ?", (size - 10,))
        conn.execute("DELETE FROM requests")
        conn.execute("DELETE FROM artifacts")
    finally:
        conn.close()
    (copy / "ledger-checkpoint.latest").unlink()
    with Ledger.open(copy, readonly=True) as reader:
        # A reader: the entries after the last remaining checkpoint are signed by nothing.
        assert "not covered by any signed checkpoint" in str(verify_fails(reader))
    with Ledger.open(copy) as ledger:
        # A writer (which would sign the tail) finds the wiped tables...
        error = verify_fails(ledger)
        assert "missing from the requests table" in str(error)
        # ...and the saved checkpoint alone names the truncation.
        error = verify_fails(ledger, saved_checkpoints=[saved])
        assert error.entry == size - 9
        assert f"has {size - 10} entries but saved checkpoint 1 was signed at {size}" in str(error)


def test_truncated_tail_detected_by_latest_checkpoint_file(copy: Path) -> None:
    with Ledger.open(copy) as ledger:
        size = ledger.size
    conn = attacker(copy)
    try:
        conn.execute("DELETE FROM entries WHERE seq > ?", (size - 3,))
        conn.execute("DELETE FROM checkpoints WHERE size > ?", (size - 3,))
    finally:
        conn.close()
    with Ledger.open(copy) as ledger:
        error = verify_fails(ledger)
    assert error.entry == size - 2 and "ledger-checkpoint.latest" in str(error)


def test_saved_checkpoint_from_another_ledger_or_forged(copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    build(other, seed=8)
    foreign = (other / "ledger-checkpoint.latest").read_text()
    with Ledger.open(copy) as ledger:
        assert "no signature by this key" in str(verify_fails(ledger, saved_checkpoints=[foreign]))
        note = ledger.latest_checkpoint().note  # type: ignore[union-attr]
        forged = note.replace(note.split("\n")[2], "A" * 43 + "=")
        assert "does not verify" in str(verify_fails(ledger, saved_checkpoints=[forged]))
        assert ledger.verify(saved_checkpoints=[note]).saved_checkpoints == 1


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "UPDATE requests SET status = 'open' WHERE status = 'completed'",
            "does not match its entries",
        ),
        ("UPDATE requests SET due_date = '2099-01-01'", "does not match its entries"),
        ("UPDATE requests SET extension_months = 2", "does not match its entries"),
        ("DELETE FROM requests WHERE status = 'needs_review'", "missing from the requests table"),
        (
            "INSERT INTO requests SELECT 'req-forged', kind, subject_ref, received_at, "
            "identity_verified_at, extension_months, extension_reason, due_date, status, "
            "status_reason, operator, playbook_name, playbook_sha256, tool_version, batch_id, "
            "created_at, updated_at, closed_at FROM requests LIMIT 1",
            "which no entry created",
        ),
        ("UPDATE artifacts SET kind = 'other'", "artifacts table does not match"),
        (
            "DELETE FROM artifacts WHERE seq = (SELECT MAX(seq) FROM artifacts)",
            "missing from the artifacts",
        ),
    ],
)
def test_derived_tables_must_match_the_entries(live: Ledger, sql: str, message: str) -> None:
    with tampered(live) as conn:
        conn.execute(sql)
        error = verify_fails(live)
    assert message in str(error)


def test_forged_status_entry_appended_after_the_checkpoint(live: Ledger) -> None:
    # Even a well-formed append made outside the API shows up: the table was not updated.
    with tampered(live) as conn:
        rid = conn.execute(
            "SELECT request_id FROM requests WHERE status = 'needs_review'"
        ).fetchone()[0]
        seq = live.size + 1
        forged = {
            "request_id": rid,
            "ts": "2026-02-02T00:00:00.000000Z",
            "step_key": "ledger:status",
            "phase": "info",
            "data": '{"reason":null,"status":"completed"}',
        }
        conn.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, *forged.values(), leaf_for(seq, forged)),
        )
        error = verify_fails(live)
    assert error.entry == seq and "does not match its entries (closed_at, status" in str(error)


def test_artifact_file_changes(live: Ledger) -> None:
    [first, *_] = live.artifacts()
    original = first.path.read_bytes()
    first.path.write_bytes(original + b" ")
    assert verify_fails(live).entry == first.seq
    first.path.unlink()
    assert "is missing" in str(verify_fails(live))
    first.path.write_bytes(original)
    first.path.chmod(0o600)
    live.verify()


def test_checkpoint_rows(live: Ledger) -> None:
    with tampered(live) as conn:
        conn.execute("UPDATE checkpoints SET note = replace(note, '\n', '\n\n') WHERE id = 1")
        assert "checkpoint #1" in str(verify_fails(live))
    with tampered(live) as conn:
        conn.execute("UPDATE checkpoints SET size = size - 1 WHERE id = 2")
        assert "columns do not match its signed note" in str(verify_fails(live))
    with tampered(live) as conn:
        # Swap two notes: order matters (a later checkpoint never shrinks).
        conn.execute(
            "UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE id = 3), "
            "size = (SELECT size FROM checkpoints WHERE id = 3), "
            "root = (SELECT root FROM checkpoints WHERE id = 3) WHERE id = 1"
        )
        assert "smaller than the checkpoint before it" in str(verify_fails(live))


def test_replaced_checkpoint_key_is_noticed(copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Ledger.open(other).close()
    for name in ("ledger-checkpoint.key", "ledger-checkpoint.pub"):
        shutil.copy(other / name, copy / name)
    with pytest.raises(LedgerError, match="different origin"):
        Ledger.open(copy)
    # An attacker who also rewrites the metadata still cannot re-sign the old checkpoints.
    conn = attacker(copy)
    try:
        with Ledger.open(other) as keyed:
            conn.execute("DELETE FROM meta WHERE key IN ('origin', 'checkpoint_public_key')")
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("origin", keyed.origin),
                    ("checkpoint_public_key", keyed.checkpoint_public_key.hex()),
                ],
            )
    finally:
        conn.close()
    with Ledger.open(copy) as ledger:
        assert "checkpoint #1" in str(verify_fails(ledger))


def test_dropped_triggers_are_reported(live: Ledger) -> None:
    conn = sqlite3.connect(live.home / "ledger.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER entries_append_only_delete")
    conn.close()
    error = verify_fails(live)
    assert "append-only trigger(s) missing: entries_append_only_delete" in str(error)


def test_checkpoint_refuses_to_sign_over_tampering(live: Ledger) -> None:
    rid = live.list_requests()[0].request_id
    live.record(rid, "after", "info", {"n": 1})
    conn = attacker(live.home)
    try:
        conn.execute("UPDATE entries SET data = '{\"n\":2}' WHERE seq = ?", (live.size,))
    finally:
        conn.close()
    with pytest.raises(LedgerIntegrityError, match="refusing to sign") as caught:
        live.checkpoint()
    assert caught.value.entry == live.size


# ---------------------------------------------------------------- bytes in the file


def _dump(path: Path) -> list[tuple[object, ...]] | None:
    """Every row of every table, or None if the file cannot be read."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.text_factory = bytes
            rows: list[tuple[object, ...]] = []
            for table in ("meta", "entries", "requests", "artifacts", "checkpoints"):
                rows.extend(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))
            rows.extend(conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name"))
            return rows
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None


def _flip_and_verify(template: Path, target: Path, offset: int, bit: int) -> bool:
    """Copy the ledger with one bit flipped at ``offset``; True when verification fails."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target)
    db = target / "ledger.sqlite3"
    data = bytearray(db.read_bytes())
    data[offset] ^= 1 << bit
    db.write_bytes(bytes(data))
    try:
        with Ledger.open(target) as ledger:
            ledger.verify()
    except LedgerError:
        return True
    return False


def test_single_bit_flips_in_entry_bytes_of_the_file(template: Path, tmp_path: Path) -> None:
    db = (template / "ledger.sqlite3").read_bytes()
    assert not (template / "ledger.sqlite3-wal").exists()  # closed: everything in the file
    with Ledger.open(template) as ledger:
        needles = [e.ts.encode() for e in ledger.entries()] + [
            ledger.leaf_hash(e.seq) for e in ledger.entries()
        ]
    offsets = []
    for needle in needles:
        start = db.find(needle)
        while start != -1:
            offsets.extend(range(start, start + len(needle)))
            start = db.find(needle, start + 1)
    assert len(offsets) > 1000
    rng = random.Random(6)
    for _trial in range(120):
        offset = rng.choice(offsets)
        assert _flip_and_verify(template, tmp_path / "flip", offset, rng.randrange(8)), offset


def test_random_bit_flips_anywhere_are_detected_or_harmless(template: Path, tmp_path: Path) -> None:
    path = template / "ledger.sqlite3"
    original = _dump(path)
    size = path.stat().st_size
    rng = random.Random(9)
    detected = 0
    for _trial in range(200):
        offset, bit = rng.randrange(size), rng.randrange(8)
        if _flip_and_verify(template, tmp_path / "flip", offset, bit):
            detected += 1
            continue
        # Not detected: then the flip hit unused space and changed nothing that is read.
        assert _dump(tmp_path / "flip" / "ledger.sqlite3") == original, offset
    assert detected > 0


def test_checkpoint_refuses_to_sign_a_truncated_ledger(copy: Path) -> None:
    with Ledger.open(copy) as ledger:
        size = ledger.size
    conn = attacker(copy)
    try:
        conn.execute("DELETE FROM entries WHERE seq > ?", (size - 2,))
        conn.execute("DELETE FROM checkpoints")
    finally:
        conn.close()
    with Ledger.open(copy) as ledger:
        with pytest.raises(LedgerIntegrityError, match="ledger-checkpoint.latest was signed at"):
            ledger.checkpoint()


def test_edited_trigger_is_reported(live: Ledger) -> None:
    # Same name, no protection: an attacker's "append-only" trigger that allows deletes.
    conn = attacker(live.home)
    try:
        conn.execute(
            "CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries "
            "WHEN 0 BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END"
        )
    finally:
        conn.close()
    # Opening refuses it (never repairs), and read-only verification says what is wrong.
    with pytest.raises(
        LedgerIntegrityError, match="trigger.s. changed: entries_append_only_delete"
    ):
        Ledger.open(live.home).close()
    with Ledger.open(live.home, readonly=True, check=False) as reader:
        error = verify_fails(reader)
    assert "append-only trigger(s) changed: entries_append_only_delete" in str(error)


def test_removed_checkpoint_row(live: Ledger) -> None:
    with tampered(live) as conn:
        conn.execute("DELETE FROM checkpoints WHERE id = 2")
        assert "checkpoint #2 is missing" in str(verify_fails(live))


# ---------------------------------------------------------------- the parallel pass


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every full verification shares its work with a second process (as a big one does)."""
    monkeypatch.setattr("privacykit.ledger.entries.PARALLEL_FROM", 1)


def _reader_conn(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'ledger.sqlite3'}?mode=ro", uri=True)


def test_parallel_pass_agrees_on_a_clean_ledger(copy: Path, parallel: None) -> None:
    from privacykit.ledger.entries import (
        Verified,
        _entries_in_parallel,
        canonical_scan,
        check_entries,
    )

    conn = _reader_conn(copy)
    try:
        size = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        assert canonical_scan(str(copy / "ledger.sqlite3")) == (size, None)
        fast = Verified(merkle.MerkleTree())
        assert _entries_in_parallel(conn, fast) is not None  # the second process agreed
        careful = Verified(merkle.MerkleTree())
        from privacykit.ledger.entries import _replay

        _replay(conn, careful, fast=True)
        assert fast.tree.root() == careful.tree.root() and fast.requests == careful.requests
        assert fast.artifacts == careful.artifacts and fast.last_seq_of == careful.last_seq_of
        again = Verified(merkle.MerkleTree())
        check_entries(conn, again)
        assert again.tree.root() == careful.tree.root()
    finally:
        conn.close()
    with Ledger.open(copy, readonly=True) as reader:
        reader.verify()


@pytest.mark.parametrize("reserved", [False, True], ids=["ordinary", "ledger-entry"])
def test_parallel_pass_names_a_non_canonical_entry(
    copy: Path, parallel: None, reserved: bool
) -> None:
    conn = attacker(copy)
    try:
        conn.text_factory = str
        where = "step_key LIKE 'ledger:%'" if reserved else "step_key NOT LIKE 'ledger:%'"
        seq, rid, ts, key, phase, data = conn.execute(
            f"SELECT seq, request_id, ts, step_key, phase, data FROM entries WHERE {where} "
            "AND data != '{}' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        spaced = data.replace(":", ": ", 1)  # the same JSON, not in canonical form
        values = {"request_id": rid, "ts": ts, "step_key": key, "phase": phase, "data": spaced}
        conn.execute(
            "UPDATE entries SET data = ?, leaf = ? WHERE seq = ?",
            (spaced, leaf_for(seq, values), seq),
        )
    finally:
        conn.close()
    from privacykit.ledger.entries import canonical_scan

    assert canonical_scan(str(copy / "ledger.sqlite3"))[1] == seq
    with Ledger.open(copy, readonly=True) as reader:
        error = verify_fails(reader)
    assert error.entry is not None and error.entry <= seq
    if error.entry == seq:
        assert "not canonical JSON" in str(error)
    else:  # a signed checkpoint covering it names its range first
        assert "do not match signed checkpoint" in str(error)


def test_parallel_pass_leaves_naming_to_the_careful_one(copy: Path, parallel: None) -> None:
    conn = attacker(copy)
    try:
        conn.execute("UPDATE entries SET data = '{\"x\":1}' WHERE seq = 7")
        conn.execute("UPDATE entries SET ts = CAST(x'ff' AS TEXT) WHERE seq = 9")
    finally:
        conn.close()
    with Ledger.open(copy, readonly=True) as reader:
        error = verify_fails(reader)
    assert error.entry == 7 and "does not match its leaf hash" in str(error)
