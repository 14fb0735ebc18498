"""The ledger database's schema, written by hand, and its semantic comparison.

Owns the SQL that creates a ledger (:data:`SCHEMA_SQL`), the ``meta`` rows a ledger must
hold, and the check that a database has exactly that schema. The comparison is semantic:
tables and their columns (name, declared type, NOT NULL, primary key, default), indexes
(table, uniqueness, columns, order, collation) and triggers (table and whitespace-
normalised SQL), read through SQLite's own PRAGMAs. Whoever created the file (this
module, or sqlite-utils 3.x/4.x in earlier versions of privacykit, which quote names
differently) does not matter; what the database *is* does. Anything else in the file (an
unexpected table, index, view or trigger) is a difference too, named.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = [
    "META_KEYS",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "TABLES",
    "TRIGGERS",
    "Schema",
    "create_schema",
    "describe",
    "expected_schema",
    "meta_problems",
    "schema_problems",
]

SCHEMA_VERSION = "1"

SCHEMA_SQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL, ts TEXT NOT NULL,
    step_key TEXT NOT NULL, phase TEXT NOT NULL, data TEXT NOT NULL, leaf BLOB NOT NULL);
CREATE INDEX entries_by_step ON entries (request_id, step_key, seq);
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_ref TEXT NOT NULL,
    received_at TEXT NOT NULL, identity_verified_at TEXT, extension_months INTEGER NOT NULL,
    extension_reason TEXT, due_date TEXT NOT NULL, status TEXT NOT NULL, status_reason TEXT,
    operator TEXT, playbook_name TEXT, playbook_sha256 TEXT, tool_version TEXT NOT NULL,
    batch_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, closed_at TEXT);
CREATE INDEX requests_by_subject ON requests (kind, subject_ref, status);
CREATE TABLE artifacts (
    seq INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, request_id TEXT NOT NULL,
    kind TEXT NOT NULL, suffix TEXT NOT NULL, size INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX artifacts_by_sha ON artifacts (sha256);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY, size INTEGER NOT NULL, root TEXT NOT NULL, note TEXT NOT NULL);
CREATE TRIGGER entries_append_only_insert BEFORE INSERT ON entries
WHEN NEW.seq IS NULL OR NEW.seq != (SELECT COALESCE(MAX(seq), 0) + 1 FROM entries)
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: seq must be the next number'); END;
CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER checkpoints_append_only_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_append_only_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER meta_append_only_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is append-only'); END;
CREATE TRIGGER meta_append_only_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is append-only'); END;
"""

TABLES = ("meta", "entries", "requests", "artifacts", "checkpoints")
TRIGGERS = (
    "entries_append_only_insert",
    "entries_append_only_update",
    "entries_append_only_delete",
    "checkpoints_append_only_update",
    "checkpoints_append_only_delete",
    "meta_append_only_update",
    "meta_append_only_delete",
)
#: The rows of ``meta``: written once when the ledger is created, never changed.
META_KEYS = ("schema_version", "origin", "checkpoint_public_key", "subject_key_id")

# SQLite's own bookkeeping tables, which appear by themselves (ANALYZE, AUTOINCREMENT).
_INTERNAL = re.compile(r"^sqlite_(stat\d|sequence)$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Schema:
    """What a database holds, as SQLite describes it (comparable with ``==``)."""

    tables: Mapping[str, tuple[tuple[object, ...], ...]]
    indexes: Mapping[str, tuple[object, ...]]
    triggers: Mapping[str, tuple[str, str]]
    views: tuple[str, ...]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _normalise_sql(sql: str) -> str:
    text = _SPACE.sub(" ", sql.strip()).rstrip(";").strip()
    return re.sub(r"(?i)^CREATE TRIGGER IF NOT EXISTS ", "CREATE TRIGGER ", text)


def describe(conn: sqlite3.Connection) -> Schema:
    """The schema of the database on ``conn``, read through PRAGMAs."""
    tables: dict[str, tuple[tuple[object, ...], ...]] = {}
    indexes: dict[str, tuple[object, ...]] = {}
    triggers: dict[str, tuple[str, str]] = {}
    views: list[str] = []
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    for kind, name, table, sql in rows:
        if kind == "table" and not _INTERNAL.match(name):
            columns = conn.execute(f"PRAGMA table_xinfo({_quote(name)})").fetchall()
            # (name, upper-cased declared type, not null, default, pk position, hidden)
            tables[name] = tuple((c[1], str(c[2]).upper(), c[3], c[4], c[5], c[6]) for c in columns)
        elif kind == "trigger":
            triggers[name] = (table, _normalise_sql(sql or ""))
        elif kind == "view":
            views.append(name)
    for table in tables:
        for _, name, unique, origin, partial in conn.execute(
            f"PRAGMA index_list({_quote(table)})"
        ).fetchall():
            keys = tuple(
                (c[2], c[3], c[4])  # column, descending, collation
                for c in conn.execute(f"PRAGMA index_xinfo({_quote(name)})").fetchall()
                if c[5]  # key columns only
            )
            # Automatic indexes (PRIMARY KEY on a TEXT column) are named by SQLite itself.
            label = f"{table}:{origin}" if name.startswith("sqlite_autoindex_") else name
            indexes[label] = (table, unique, origin, partial, keys)
    return Schema(tables, indexes, triggers, tuple(sorted(views)))


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table, index and trigger of an empty ledger database (in the caller's
    transaction: ``executescript`` would commit on its own)."""
    for statement in SCHEMA_SQL.split(";\n"):
        if statement.strip():
            conn.execute(statement)


@cache
def expected_schema() -> Schema:
    """The schema :data:`SCHEMA_SQL` produces, described the same way."""
    conn = sqlite3.connect(":memory:")
    try:
        create_schema(conn)
        return describe(conn)
    finally:
        conn.close()


def _differences(
    actual: Mapping[str, object],
    expected: Mapping[str, object],
    names: Sequence[str],
    wording: tuple[str, str, str],
) -> list[str]:
    """One kind of schema object compared: the expected ``names`` missing or changed (in
    that order), then any the schema does not have (sorted); one phrase per finding, worded
    by ``wording`` (missing, changed, unexpected)."""
    missing = [n for n in names if n not in actual]
    changed = [n for n in names if n in actual and actual[n] != expected[n]]
    extra = sorted(set(actual) - set(expected))
    found = zip(wording, (missing, changed, extra), strict=True)
    return [f"{label}: {', '.join(items)}" for label, items in found if items]


def schema_problems(conn: sqlite3.Connection) -> list[str]:
    """What differs from the ledger schema, one short phrase each (empty when exact).
    Missing or changed append-only triggers come first: they are what an attacker drops."""
    actual, expected = describe(conn), expected_schema()
    problems: list[str] = []
    problems += _differences(
        actual.triggers,
        expected.triggers,
        TRIGGERS,
        (
            "append-only trigger(s) missing",
            "append-only trigger(s) changed",
            "unexpected trigger(s)",
        ),
    )
    problems += _differences(
        actual.tables,
        expected.tables,
        TABLES,
        ("table(s) missing", "table(s) with changed columns", "unexpected table(s)"),
    )
    if actual.views:
        problems.append(f"unexpected view(s): {', '.join(actual.views)}")
    problems += _differences(
        actual.indexes,
        expected.indexes,
        sorted(expected.indexes),
        ("index(es) missing", "index(es) changed", "unexpected index(es)"),
    )
    return problems


def _shown(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def meta_problems(conn: sqlite3.Connection, expected: Mapping[str, str]) -> list[str]:
    """How the ``meta`` rows differ from ``expected`` (every key of :data:`META_KEYS`)."""
    rows = conn.execute("SELECT key, value FROM meta ORDER BY rowid").fetchall()
    problems: list[str] = []
    seen: set[object] = set()
    for key, value in rows:
        if key in seen:
            problems.append(f"meta row {_shown(key)} appears twice")
        seen.add(key)
        if key not in expected:
            problems.append(f"unexpected meta row {_shown(key)}")
        elif value != expected[key]:
            problems.append(f"meta row {_shown(key)} was changed")
    missing = [key for key in expected if key not in seen]
    if missing:
        problems.append(f"meta row(s) missing: {', '.join(missing)}")
    return problems
