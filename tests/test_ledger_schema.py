"""The ledger's schema is compared by what it is, not by its SQL text (#13): ledgers whose
tables were created by sqlite-utils (round 1; 3.x quotes names with brackets, 4.x with
double quotes) open and verify, and real differences are named. The pinned sqlite-utils
range is the installed one, and what the ledger uses of it (``ledger export``) works.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import sqlite_utils

from privacykit.errors import LedgerIntegrityError
from privacykit.ledger import Ledger
from privacykit.ledger.schema import SCHEMA_SQL, describe, expected_schema, schema_problems

ROOT = Path(__file__).resolve().parent.parent
TABLES_ROUND_1 = {
    "meta": ({"key": str, "value": str}, "key", set()),
    "entries": (
        {
            "seq": int,
            "request_id": str,
            "ts": str,
            "step_key": str,
            "phase": str,
            "data": str,
            "leaf": bytes,
        },
        "seq",
        {"request_id", "ts", "step_key", "phase", "data", "leaf"},
    ),
    "requests": (
        {
            "request_id": str,
            "kind": str,
            "subject_ref": str,
            "received_at": str,
            "identity_verified_at": str,
            "extension_months": int,
            "extension_reason": str,
            "due_date": str,
            "status": str,
            "status_reason": str,
            "operator": str,
            "playbook_name": str,
            "playbook_sha256": str,
            "tool_version": str,
            "batch_id": str,
            "created_at": str,
            "updated_at": str,
            "closed_at": str,
        },
        "request_id",
        {
            "kind",
            "subject_ref",
            "received_at",
            "extension_months",
            "due_date",
            "status",
            "tool_version",
            "created_at",
            "updated_at",
        },
    ),
    "artifacts": (
        {
            "seq": int,
            "sha256": str,
            "request_id": str,
            "kind": str,
            "suffix": str,
            "size": int,
            "created_at": str,
        },
        "seq",
        {"sha256", "request_id", "kind", "suffix", "size", "created_at"},
    ),
    "checkpoints": (
        {"id": int, "size": int, "root": str, "note": str},
        "id",
        {"size", "root", "note"},
    ),
}
INDEXES = (
    ("entries", ["request_id", "step_key", "seq"], "entries_by_step"),
    ("requests", ["kind", "subject_ref", "status"], "requests_by_subject"),
    ("artifacts", ["sha256"], "artifacts_by_sha"),
)
_TYPES = {int: "INTEGER", str: "TEXT", bytes: "BLOB"}


def triggers_sql() -> list[str]:
    # Round 1 created them with IF NOT EXISTS (which SQLite drops from the stored text).
    return [
        s.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1)
        for s in SCHEMA_SQL.split(";\n")
        if s.strip().startswith("CREATE TRIGGER")
    ]


def with_sqlite_utils(conn: sqlite3.Connection) -> None:
    """The schema as round 1 created it, through the installed sqlite-utils."""
    db = sqlite_utils.Database(conn, execute_plugins=False)
    for name, (columns, pk, not_null) in TABLES_ROUND_1.items():
        db.table(name).create(columns, pk=pk, not_null=not_null)
    for table, columns, name in INDEXES:
        db.table(table).create_index(columns, index_name=name)
    for statement in triggers_sql():
        conn.execute(statement)


def quoted(conn: sqlite3.Connection, left: str, right: str) -> None:
    """The schema as sqlite-utils 3.x ('[', ']') or 4.x ('"', '"') spells it."""
    for name, (columns, pk, not_null) in TABLES_ROUND_1.items():
        defs = []
        for column, kind in columns.items():
            spec = f"   {left}{column}{right} {_TYPES[kind]}"
            if column == pk:
                spec += " PRIMARY KEY"
            elif column in not_null:
                spec += " NOT NULL"
            defs.append(spec)
        conn.execute(f"CREATE TABLE {left}{name}{right} (\n" + ",\n".join(defs) + "\n)")
    for table, columns, name in INDEXES:
        cols = ", ".join(f"{left}{c}{right}" for c in columns)
        conn.execute(f"CREATE INDEX {left}{name}{right}\n    ON {left}{table}{right} ({cols})")
    for statement in triggers_sql():
        conn.execute(statement)


@pytest.mark.parametrize(
    "make",
    [
        with_sqlite_utils,
        lambda conn: quoted(conn, "[", "]"),
        lambda conn: quoted(conn, '"', '"'),
    ],
    ids=["installed-sqlite-utils", "sqlite-utils-3-brackets", "sqlite-utils-4-quotes"],
)
def test_schemas_written_by_sqlite_utils_are_the_same_schema(make: object) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        make(conn)  # type: ignore[operator]
        assert schema_problems(conn) == []
        assert describe(conn) == expected_schema()
    finally:
        conn.close()


def test_a_round_1_ledger_opens_and_verifies(home: Path, tmp_path: Path) -> None:
    with Ledger.open(home) as ledger:
        rid = ledger.create_request("erasure", ledger.subject_ref("x:1"), received_at="2026-01-02")
        ledger.record(rid, "note", "info", {"n": 1})
        ledger.set_status(rid, "completed")
    # The same content in a file whose schema sqlite-utils 3.x wrote, as round 1 did.
    db = home / "ledger.sqlite3"
    old = tmp_path / "round1.sqlite3"
    conn = sqlite3.connect(old, isolation_level=None)
    try:
        quoted(conn, "[", "]")
        conn.execute("ATTACH DATABASE ? AS new", (str(db),))
        for table in TABLES_ROUND_1:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM new.{table}")
        conn.execute("DETACH DATABASE new")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    db.unlink()
    old.rename(db)
    db.chmod(0o600)
    with Ledger.open(home) as ledger:
        report = ledger.verify()
        assert report.entries == 3 and report.checkpoints == 1
        ledger.record(rid, "later", "info", {"n": 2})  # and it goes on being written
    with Ledger.open(home, readonly=True) as reader:
        assert reader.verify().checkpoints == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("leaf TEXT NOT NULL", "table(s) with changed columns: entries"),
        ("leaf BLOB", "table(s) with changed columns: entries"),
        ("leaf BLOB NOT NULL DEFAULT x''", "table(s) with changed columns: entries"),
    ],
)
def test_real_differences_are_named(change: str, named: str) -> None:
    sql = SCHEMA_SQL.replace("leaf BLOB NOT NULL", change)
    conn = sqlite3.connect(":memory:")
    try:
        for statement in sql.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        assert schema_problems(conn) == [named]
    finally:
        conn.close()


def test_sqlite_utils_version_is_in_the_pinned_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [requirement] = [d for d in project["project"]["dependencies"] if d.startswith("sqlite-utils")]
    match = re.fullmatch(r"sqlite-utils>=(\d+)\.(\d+),<(\d+)", requirement)
    assert match, f"sqlite-utils must be pinned to a range, found {requirement!r}"
    low = (int(match.group(1)), int(match.group(2)))
    high = int(match.group(3))
    installed = tuple(int(part) for part in version("sqlite-utils").split(".")[:2])
    assert low <= installed and installed[0] < high, installed


def test_export_through_sqlite_utils(home: Path) -> None:
    with Ledger.open(home) as ledger:
        first = ledger.create_request(
            "erasure", ledger.subject_ref("x:1"), received_at="2026-01-02"
        )
        second = ledger.create_request(
            "access", ledger.subject_ref("x:2"), received_at="2026-01-03"
        )
        audit = ledger.create_request("audit", ledger.subject_ref("x:3"), received_at="2026-01-04")
        rows = list(ledger.export_requests(("erasure", "access")))
        assert [r["request_id"] for r in rows] == [first, second]
        assert [r["request_id"] for r in ledger.export_requests("audit")] == [audit]
        assert all("subject_ref" not in r for r in rows)


def test_opening_refuses_and_never_recreates(home: Path) -> None:
    Ledger.open(home).close()
    conn = sqlite3.connect(home / "ledger.sqlite3", isolation_level=None)
    try:
        conn.execute("DROP TABLE artifacts")
    finally:
        conn.close()
    for _ in range(2):
        with pytest.raises(LedgerIntegrityError, match=r"table\(s\) missing: artifacts"):
            Ledger.open(home)
    conn = sqlite3.connect(home / "ledger.sqlite3")
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert "artifacts" not in names
