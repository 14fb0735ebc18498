"""The attacks of issue #13, done as someone with file access to PRIVACYKIT_HOME would, each
detected with the first bad thing named; and what only the witness (a directory outside
the home) can detect: a rolled-back ledger, and a rewritten one re-signed with the key that
sits in the home.

Every attacker here restores the append-only triggers after editing (so the schema check is
not what catches them), rebuilds the derived tables where the attack says so, and keeps the
ledger's own schema.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.errors import ConfigError, LedgerIntegrityError
from privacykit.ledger import Ledger, merkle
from privacykit.ledger.canonical import fast_entry_canonical_bytes
from privacykit.ledger.checkpoint import CheckpointSigner
from privacykit.ledger.replay import ARTIFACT_KEY, apply_artifact, apply_request_entry
from privacykit.ledger.schema import SCHEMA_SQL, TRIGGERS

TRIGGER_SQL = [s for s in SCHEMA_SQL.split(";\n") if s.strip().startswith("CREATE TRIGGER")]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def build(home: Path, runs: int = 4, witness: Path | None = None) -> list[int]:
    """A ledger written by ``runs`` runs, each ending with a checkpoint; returns their sizes."""
    sizes = []
    for run in range(runs):
        with Ledger.open(home, clock=Clock(), witness=witness) as ledger:
            for n in range(3):
                ref = ledger.subject_ref(f"email:person{run}-{n}@example.com")
                rid = ledger.create_request("erasure", ref, received_at="2026-01-20")
                for user in range(2):
                    user_id = 1000 + run * 100 + n * 10 + user
                    with ledger.step(rid, f"permanent_delete:user:{user_id}", {"user": user_id}):
                        pass
                ledger.set_status(rid, "completed")
            sizes.append(ledger.checkpoint().size)
    return sizes


@contextmanager
def attacker(home: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    try:
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute("BEGIN")
        yield conn
        conn.execute("COMMIT")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for statement in TRIGGER_SQL:
            if statement.split(" ON ")[1].split()[0] in tables:
                conn.execute(statement)
    finally:
        conn.close()


def rewrite_history(conn: sqlite3.Connection, drop: set[int]) -> int:
    """Delete entries ``drop``, renumber and rehash the rest, and rebuild ``requests`` and
    ``artifacts`` from them, exactly as the ledger would have. Returns the new size."""
    rows = conn.execute(
        "SELECT seq, request_id, ts, step_key, phase, data FROM entries ORDER BY seq"
    ).fetchall()
    conn.execute("DELETE FROM entries")
    conn.execute("DELETE FROM requests")
    conn.execute("DELETE FROM artifacts")
    import json

    requests: dict[str, dict[str, object]] = {}
    seq = 0
    for old, rid, ts, key, phase, data in rows:
        if old in drop:
            continue
        seq += 1
        leaf = merkle.leaf_hash(fast_entry_canonical_bytes(seq, rid, ts, key, phase, data))
        conn.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, rid, ts, key, phase, data, leaf),
        )
        if key == ARTIFACT_KEY:
            row = apply_artifact(seq, rid, ts, json.loads(data))
            conn.execute(
                f"INSERT INTO artifacts VALUES ({', '.join('?' * 7)})", tuple(row.values())
            )
        elif key.startswith("ledger:"):
            requests[rid] = apply_request_entry(requests.get(rid), rid, ts, key, json.loads(data))
    for row in requests.values():
        conn.execute(f"INSERT INTO requests VALUES ({', '.join('?' * 18)})", tuple(row.values()))
    return seq


def resign(home: Path, conn: sqlite3.Connection, size: int) -> str:
    """Sign the rewritten tree with the key in the home, as the only stored checkpoint."""
    leaves = b"".join(row[0] for row in conn.execute("SELECT leaf FROM entries ORDER BY seq"))
    tree = merkle.MerkleTree.from_leaf_bytes(leaves)
    note = CheckpointSigner.load(home).sign(size, tree.root(size))
    conn.execute("DELETE FROM checkpoints")
    conn.execute(
        "INSERT INTO checkpoints (id, size, root, note) VALUES (1, ?, ?, ?)",
        (size, tree.root(size).hex(), note),
    )
    (home / "ledger-checkpoint.latest").write_text(note)
    return note


def verify_fails(home: Path, **kwargs: object) -> LedgerIntegrityError:
    with Ledger.open(home, readonly=True, check=False, **kwargs) as reader:  # type: ignore[arg-type]
        with pytest.raises(LedgerIntegrityError) as caught:
            reader.verify()
    return caught.value


def verifies(home: Path, **kwargs: object) -> None:
    with Ledger.open(home, readonly=True, **kwargs) as reader:  # type: ignore[arg-type]
        reader.verify()


@pytest.fixture
def witness(tmp_path: Path) -> Path:
    path = tmp_path / "witness"
    path.mkdir()
    return path


# ------------------------------------------------------------------ rewrite, home alone


def test_middle_deleted_renumbered_rehashed_checkpoints_dropped(home: Path) -> None:
    build(home)
    with attacker(home) as conn:
        rewrite_history(conn, drop={20, 21})
        conn.execute("DROP TABLE checkpoints")
    (home / "ledger-checkpoint.latest").unlink()
    # Opening never repairs (it used to recreate the table and sign the rewritten history).
    with pytest.raises(LedgerIntegrityError, match=r"table\(s\) missing: checkpoints"):
        Ledger.open(home)
    error = verify_fails(home)
    assert "table(s) missing: checkpoints" in str(error)
    result = CliRunner().invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: ledger verification failed in {home}: the database schema was changed: "
        "append-only trigger(s) missing: checkpoints_append_only_update, "
        "checkpoints_append_only_delete; table(s) missing: checkpoints\n"
    )
    result = CliRunner().invoke(cli, ["ledger", "list"])
    assert (
        result.exit_code == 1 and "table(s) missing: checkpoints): it is not used" in result.output
    )


def test_middle_deleted_checkpoints_emptied(home: Path) -> None:
    build(home)
    with attacker(home) as conn:
        size = rewrite_history(conn, drop={20, 21})
        conn.execute("DELETE FROM checkpoints")
    (home / "ledger-checkpoint.latest").unlink()
    error = verify_fails(home)
    assert error.entry == 1
    assert f"the ledger has {size} entries but no signed checkpoint covers them" in str(error)
    # And no writer signs it: a checkpoint verifies first, the witness-free home included.
    with Ledger.open(home) as ledger:
        assert ledger.checkpoints() == []


def test_old_checkpoints_kept_history_rewritten_after_them(home: Path) -> None:
    sizes = build(home)
    with attacker(home) as conn:
        rewrite_history(conn, drop={sizes[1] + 3})
        conn.execute("DELETE FROM checkpoints WHERE id > 2")
        note = conn.execute("SELECT note FROM checkpoints WHERE id = 2").fetchone()[0]
    (home / "ledger-checkpoint.latest").write_text(note)
    error = verify_fails(home)
    # The rewritten tail is signed by nothing, and nobody is writing it.
    assert error.entry == sizes[1] + 1
    assert "not covered by any signed checkpoint and no run is writing them" in str(error)


def test_changed_meta_row_is_named(home: Path) -> None:
    build(home, runs=1)
    with attacker(home) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'schema_version'")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
        conn.execute("INSERT INTO meta VALUES ('note', 'x')")
    with pytest.raises(LedgerIntegrityError, match="meta row 'schema_version' was changed"):
        Ledger.open(home)
    error = verify_fails(home)
    assert str(error) == (
        "the ledger's metadata was changed: meta row 'schema_version' was changed; "
        "unexpected meta row 'note'"
    )


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("DROP TRIGGER meta_append_only_update", "append-only trigger(s) missing: meta_append"),
        ("CREATE TABLE shadow (x)", "unexpected table(s): shadow"),
        ("CREATE INDEX extra ON entries (ts)", "unexpected index(es): extra"),
        ("CREATE VIEW v AS SELECT 1", "unexpected view(s): v"),
        ("DROP INDEX entries_by_step", "index(es) missing: entries_by_step"),
        (
            "CREATE TRIGGER sneaky AFTER INSERT ON entries BEGIN SELECT 1; END",
            "unexpected trigger(s): sneaky",
        ),
    ],
)
def test_schema_changes_are_named_and_refused(home: Path, statement: str, named: str) -> None:
    build(home, runs=1)
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    try:
        conn.execute(statement)
    finally:
        conn.close()
    with pytest.raises(LedgerIntegrityError, match="is damaged"):
        Ledger.open(home)
    assert named in str(verify_fails(home))


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_missing_database_next_to_a_checkpoint_is_not_a_new_home(home: Path, how: str) -> None:
    build(home, runs=1)
    database = home / "ledger.sqlite3"
    for extra in ("ledger.sqlite3-wal", "ledger.sqlite3-shm"):
        (home / extra).unlink(missing_ok=True)
    if how == "deleted":
        database.unlink()
    else:
        database.write_bytes(b"")
    with pytest.raises(LedgerIntegrityError, match="restore the ledger from backup"):
        Ledger.open(home)
    assert not database.exists() or database.stat().st_size == 0
    # ``ledger verify`` says what is wrong (exit 1), never "no ledger at" (exit 2, as for a
    # home where no ledger was ever made): a cron job sees a failed verification.
    result = CliRunner().invoke(cli, ["ledger", "verify"])
    assert (result.exit_code, result.output) == (
        1,
        f"Error: {database} is missing or empty but ledger-checkpoint.latest shows a ledger "
        "was kept here: restore the ledger from backup\n",
    )


def test_truncated_database_file_is_damage_named(home: Path) -> None:
    build(home, runs=1)
    database = home / "ledger.sqlite3"
    for extra in ("ledger.sqlite3-wal", "ledger.sqlite3-shm"):
        (home / extra).unlink(missing_ok=True)
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2])
    with pytest.raises(LedgerIntegrityError, match="damaged"):
        Ledger.open(home)
    result = CliRunner().invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: ledger verification failed in {home}: ")
    assert "damaged" in result.output and result.output.count("\n") == 1


# ------------------------------------------------------------------ what needs the witness


def test_rollback_to_an_older_signed_checkpoint(home: Path, witness: Path) -> None:
    sizes = build(home, witness=witness)
    with attacker(home) as conn:
        keep = sizes[1]
        rewrite_history(conn, drop=set(range(keep + 1, sizes[-1] + 1)))
        conn.execute("DELETE FROM checkpoints WHERE id > 2")
        note = conn.execute("SELECT note FROM checkpoints WHERE id = 2").fetchone()[0]
    (home / "ledger-checkpoint.latest").write_text(note)
    # The home alone cannot tell: it is exactly what it was after the second run
    # (README, threat model).
    verifies(home, witness=None)
    error = verify_fails(home, witness=witness)
    assert error.entry == keep + 1
    assert f"the ledger has {keep} entries but witness note {sizes[2]:020d}-" in str(error)
    assert "removed from the end (or the ledger was rolled back)" in str(error)
    # And no run continues on it.
    with pytest.raises(LedgerIntegrityError, match="refusing to sign"):
        with Ledger.open(home, witness=witness) as ledger:
            ledger.checkpoint()


def test_rewrite_resigned_with_the_key_in_the_home(home: Path, witness: Path) -> None:
    sizes = build(home, witness=witness)
    with attacker(home) as conn:
        size = rewrite_history(conn, drop={sizes[0] + 5})
        resign(home, conn, size)
    verifies(home, witness=None)  # signed by the right key: the home alone is satisfied
    error = verify_fails(home, witness=witness)
    # The first witnessed checkpoint still matches; the next one names the range.
    assert error.entry == sizes[0] + 1
    assert f"entries {sizes[0] + 1}..{sizes[1]} do not match witness note" in str(error)
    with pytest.raises(LedgerIntegrityError, match="refusing to sign"):
        with Ledger.open(home, witness=witness) as ledger:
            ledger.checkpoint()


def test_witness_holds_every_checkpoint_and_survives_a_wiped_home(
    home: Path, witness: Path, tmp_path: Path
) -> None:
    sizes = build(home, witness=witness)
    [folder] = list(witness.iterdir())
    names = sorted(p.name for p in folder.glob("*.checkpoint"))
    assert [int(name.split("-")[0]) for name in names] == sizes
    assert (folder / "verifier.key").read_text() == (home / "ledger-checkpoint.pub").read_text()
    with Ledger.open(home, readonly=True, witness=witness) as reader:
        report = reader.verify()
    assert (report.witnessed, report.latest_witnessed) == (len(sizes), sizes[-1])
    # Everything in the home replaced by a fresh, well-formed ledger with the same keys.
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("ledger-subject.key", "ledger-checkpoint.key", "ledger-checkpoint.pub"):
        shutil.copy2(home / name, keys / name)
    shutil.rmtree(home)
    shutil.copytree(keys, home)
    build(home, runs=1)  # no witness: the attacker leaves it out
    error = verify_fails(home, witness=witness)
    assert "entries were removed from the end" in str(error) or "do not match witness" in str(error)


def test_witness_notes_that_are_not_stored_are_named(home: Path, witness: Path) -> None:
    build(home, runs=2, witness=witness)
    with attacker(home) as conn:
        conn.execute("DELETE FROM checkpoints WHERE id = 2")
        note = conn.execute("SELECT note FROM checkpoints WHERE id = 1").fetchone()[0]
    (home / "ledger-checkpoint.latest").write_text(note)
    # With a writer pretending to be in progress the tail is tolerated: the witness is not.
    error = verify_fails(home, witness=witness)
    assert "not covered by any signed checkpoint" in str(error) or "not among the" in str(error)


def test_forged_and_foreign_witness_notes(home: Path, witness: Path, tmp_path: Path) -> None:
    build(home, runs=1, witness=witness)
    [folder] = list(witness.iterdir())
    [name] = [p.name for p in folder.glob("*.checkpoint")]
    other = tmp_path / "other"
    build(other, runs=1)
    foreign = (other / "ledger-checkpoint.latest").read_text()
    (folder / f"{1:020d}-{'0' * 16}.checkpoint").write_text(foreign)
    error = verify_fails(home, witness=witness)
    assert "carries no signature by this key" in str(error)
    (folder / f"{1:020d}-{'0' * 16}.checkpoint").write_bytes(b"\xff\xfe not text")
    error = verify_fails(home, witness=witness)
    assert "is not a checkpoint note (not UTF-8 text)" in str(error)
    assert name  # the genuine note is still there


def test_unmounted_witness_is_a_configuration_error(home: Path, tmp_path: Path) -> None:
    build(home, runs=1)
    # A writer refuses to start (before anything is written)...
    with pytest.raises(ConfigError, match="is not a directory .is the witness mounted"):
        Ledger.open(home, witness=tmp_path / "gone")
    # ...and one that started with it (the audit) cannot sign without it.
    with pytest.raises(ConfigError, match="is not a directory .is the witness mounted"):
        with Ledger.open(home, witness=tmp_path / "gone", require_witness=False) as ledger:
            ledger.record(ledger.list_requests()[0].request_id, "note", "info", {"n": 1})
            ledger.checkpoint()


def test_a_witness_inside_the_home_is_refused(home: Path) -> None:
    build(home, runs=1)
    for inside in (home, home / "witness"):
        with pytest.raises(ConfigError, match="must be outside PRIVACYKIT_HOME"):
            Ledger.open(home, witness=inside)
        with pytest.raises(ConfigError, match="must be outside PRIVACYKIT_HOME"):
            Ledger.open(home, witness=inside, readonly=True)
