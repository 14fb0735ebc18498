"""The ledger's API: requests, entries, steps, subject references, artifacts, checkpoints,
proofs, permissions and thread safety."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from privacykit.errors import (
    LedgerError,
    LedgerIntegrityError,
    NetworkError,
    NotFoundError,
    ServerError,
    UsageError,
)
from privacykit.ledger import (
    Ledger,
    entry_canonical_bytes,
    entry_leaf_hash,
    merkle,
    parse_verifier_key,
    verify_checkpoint_note,
)
from privacykit.ledger.checkpoint import key_hash, verify_signed_note

SUBJECT = "email:jane.doe@example.com"


class FixedClock:
    """Deterministic timestamps: one second apart from 2026-03-01T10:00:00Z."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _http_error(cls: type, status: int) -> Exception:
    request = httpx.Request("DELETE", "http://127.0.0.1/api/v2/users/1")
    return cls(f"HTTP {status}", response=httpx.Response(status, request=request))


@pytest.fixture
def rid(ledger: Ledger) -> str:
    return ledger.create_request(
        "erasure",
        ledger.subject_ref(SUBJECT),
        received_at="2026-01-31",
        playbook_name="erasure",
        playbook_sha256="ab" * 32,
        operator="dpo",
        batch_id="batch-1",
    )


# ---------------------------------------------------------------- files and keys


def test_open_creates_owner_only_files(home: Path) -> None:
    with Ledger.open(home) as ledger:
        ledger.create_request("audit", ledger.subject_ref("audit:all"), received_at="2026-01-01")
        ledger.checkpoint()
        names = {p.name for p in home.iterdir()}
        assert {
            "ledger.sqlite3",
            "ledger-subject.key",
            "ledger-checkpoint.key",
            "ledger-checkpoint.pub",
            "ledger-checkpoint.latest",
        } <= names
        for path in home.iterdir():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), path.name
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert len((home / "ledger-subject.key").read_bytes()) == 32
        mode = ledger._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_open_defaults_to_privacykit_home(home: Path) -> None:
    with Ledger.open() as ledger:
        assert ledger.home == home


def test_public_key_file_is_a_verifier_key(ledger: Ledger) -> None:
    vkey = (ledger.home / "ledger-checkpoint.pub").read_text().strip()
    assert vkey == ledger.checkpoint_verifier_key
    name, raw = parse_verifier_key(vkey)
    assert name == ledger.origin and raw == ledger.checkpoint_public_key


def test_reopen_keeps_keys_and_refuses_swapped_ones(home: Path, tmp_path: Path) -> None:
    with Ledger.open(home) as ledger:
        ref = ledger.subject_ref(SUBJECT)
        pub = ledger.checkpoint_public_key
    with Ledger.open(home) as ledger:
        assert ledger.subject_ref(SUBJECT) == ref
        assert ledger.checkpoint_public_key == pub
    other = tmp_path / "other"
    Ledger.open(other).close()
    (home / "ledger-subject.key").write_bytes((other / "ledger-subject.key").read_bytes())
    with pytest.raises(LedgerError, match="different subject key id"):
        Ledger.open(home)


def test_missing_key_file_is_an_error_not_a_new_key(home: Path) -> None:
    Ledger.open(home).close()
    (home / "ledger-checkpoint.key").unlink()
    with pytest.raises(LedgerError, match="restore it from backup"):
        Ledger.open(home)


def test_world_readable_secret_is_refused(home: Path) -> None:
    Ledger.open(home).close()
    (home / "ledger-subject.key").chmod(0o644)
    with pytest.raises(LedgerError, match="owner-only"):
        Ledger.open(home)


# ---------------------------------------------------------------- subject references


def test_subject_ref_is_keyed_and_stable(ledger: Ledger, tmp_path: Path) -> None:
    ref = ledger.subject_ref(SUBJECT)
    assert ref.startswith("sr1:") and len(ref) == 4 + 64
    assert ref == ledger.subject_ref(SUBJECT)
    assert ref != ledger.subject_ref("email:john@example.com")
    with Ledger.open(tmp_path / "elsewhere") as other:
        assert other.subject_ref(SUBJECT) != ref  # per-installation secret
    with pytest.raises(UsageError):
        ledger.subject_ref("")


# ---------------------------------------------------------------- requests


def test_create_and_get_request(ledger: Ledger, rid: str) -> None:
    request = ledger.get_request(rid)
    assert rid.startswith("req-20260131-")
    assert request.kind == "erasure"
    assert request.subject_ref == ledger.subject_ref(SUBJECT)
    assert request.received_at == date(2026, 1, 31)
    assert request.due_date == date(2026, 2, 28)
    assert request.status == "open" and request.is_open
    assert request.playbook_name == "erasure" and request.playbook_sha256 == "ab" * 32
    assert request.operator == "dpo" and request.batch_id == "batch-1"
    assert request.tool_version == "0.1.0"
    assert request.days_remaining(date(2026, 2, 20)) == 8
    assert request.is_overdue(date(2026, 3, 1))
    created = ledger.entries(rid)[0]
    assert created.step_key == "ledger:request" and created.phase == "info"
    assert created.data["subject_ref"] == request.subject_ref


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "deletion"}, "kind"),
        ({"subject_ref": "email:jane@example.com"}, "keyed reference"),
        ({"received_at": "yesterday"}, "ISO date"),
        ({"status": "done"}, "status"),
        ({"playbook_sha256": "xyz"}, "sha256"),
    ],
)
def test_create_request_validates(ledger: Ledger, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "kind": "erasure",
        "subject_ref": ledger.subject_ref(SUBJECT),
        "received_at": "2026-01-01",
    }
    args.update(kwargs)
    kind, ref = args.pop("kind"), args.pop("subject_ref")
    with pytest.raises(UsageError, match=message):
        ledger.create_request(kind, ref, **args)
    assert ledger.size == 0


def test_status_extension_and_identity_are_entries(ledger: Ledger, rid: str) -> None:
    ledger.set_identity_verified(rid, "2026-02-02")
    ledger.set_status(rid, "in_progress")
    extended = ledger.extend(rid, 1, "many systems to search", notified_at="2026-02-10")
    assert extended.due_date == date(2026, 3, 31)
    extended = ledger.extend(rid, 1, "still waiting for a processor", notified_at="2026-02-27")
    assert extended.due_date == date(2026, 4, 30) and extended.extension_months == 2
    with pytest.raises(UsageError, match="at most 2 extra months"):
        ledger.extend(rid, 1, "again", notified_at="2026-02-27")
    ledger.set_status(rid, "completed", "erased")
    request = ledger.get_request(rid)
    assert request.identity_verified_at == date(2026, 2, 2)
    assert request.status == "completed" and request.status_reason == "erased"
    assert request.closed_at is not None and not request.is_open
    assert not request.is_overdue(date(2030, 1, 1))
    keys = [e.step_key for e in ledger.entries(rid)]
    assert keys == [
        "ledger:request",
        "ledger:identity_verified",
        "ledger:status",
        "ledger:extension",
        "ledger:extension",
        "ledger:status",
    ]
    with pytest.raises(UsageError, match="cannot be extended"):
        ledger.extend(rid, 1, "late")
    ledger.verify()


@pytest.mark.parametrize(("months", "reason"), [(0, "x"), (3, "x"), (1, ""), (1, "   ")])
def test_extend_validates(ledger: Ledger, rid: str, months: int, reason: str) -> None:
    with pytest.raises(UsageError):
        ledger.extend(rid, months, reason)


def test_unknown_request_is_a_usage_error(ledger: Ledger) -> None:
    for call in (
        lambda: ledger.get_request("req-nope"),
        lambda: ledger.extend("req-nope", 1, "x"),
        lambda: ledger.set_status("req-nope", "completed"),
        lambda: ledger.record("req-nope", "step", "info", {}),
    ):
        with pytest.raises(UsageError, match="no request 'req-nope'"):
            call()
    with pytest.raises(UsageError, match="^no request with that id in the ledger$"):
        ledger.get_request("jane.doe@example.com")


def test_list_requests_filters(ledger: Ledger) -> None:
    today = date(2026, 3, 10)
    ref = ledger.subject_ref(SUBJECT)
    late = ledger.create_request("erasure", ref, received_at="2026-01-15")  # due 02-15
    soon = ledger.create_request("access", ref, received_at="2026-03-01")  # due 04-01
    done = ledger.create_request("erasure", ref, received_at="2026-01-01")  # due 02-01
    ledger.set_status(done, "completed")
    ledger.set_status(soon, "needs_review")
    assert [r.request_id for r in ledger.list_requests(today=today)] == [done, late, soon]
    assert [r.request_id for r in ledger.list_requests(overdue=True, today=today)] == [late]
    assert [r.request_id for r in ledger.list_requests(kind="access")] == [soon]
    assert [r.request_id for r in ledger.list_requests(status="completed")] == [done]
    both = ledger.list_requests(status=["open", "needs_review"], today=today)
    assert [r.request_id for r in both] == [late, soon]
    assert ledger.list_requests(status="closed") == []
    with pytest.raises(UsageError):
        ledger.list_requests(status="withdrawn")


def test_find_open_request_resumes_the_same_subject(ledger: Ledger) -> None:
    ref = ledger.subject_ref(SUBJECT)
    assert ledger.find_open_request("erasure", ref) is None
    rid = ledger.create_request("erasure", ref, received_at="2026-01-01")
    # The same input, referenced again in a later run, finds it.
    again = ledger.find_open_request("erasure", ledger.subject_ref(SUBJECT))
    assert again is not None and again.request_id == rid
    assert ledger.find_open_request("access", ref) is None
    ledger.set_status(rid, "needs_review")
    assert ledger.find_open_request("erasure", ref).request_id == rid  # type: ignore[union-attr]
    ledger.set_status(rid, "completed")
    assert ledger.find_open_request("erasure", ref) is None


# ---------------------------------------------------------------- entries and steps


def test_record_and_entries(ledger: Ledger, rid: str) -> None:
    seq = ledger.record(
        rid, "discover", "info", {"users": 2, "ids": [1, 2], "when": date(2026, 1, 2)}
    )
    entry = ledger.entry(seq)
    assert entry.data == {"users": 2, "ids": [1, 2], "when": "2026-01-02"}
    assert entry.request_id == rid and entry.phase == "info"
    assert [e.seq for e in ledger.entries()] == list(range(1, seq + 1))
    assert ledger.size == seq


@pytest.mark.parametrize(
    ("step_key", "phase", "data", "message"),
    [
        ("ledger:status", "info", {}, "the ledger's own"),
        ("", "info", {}, "step key"),
        ("s", "started", {}, "phase"),
        ("s", "info", {"x": float("nan")}, "floating-point"),
        ("s", "info", {"ratio": 0.5}, "floating-point numbers are not recorded"),
        ("s", "info", {"n": 2**53}, "beyond"),
        ("s", "info", {"\U0001f600": 1}, "beyond U\\+FFFF"),
        ("s", "info", {"x": "\ud800"}, "lone surrogate"),
        ("s", "info", {1: "x"}, "keys must be strings"),
        ("s", "info", {"x": object()}, "cannot be recorded"),
        ("s", "outcome", {"result": "maybe"}, "result"),
        ("s", "info", {"blob": "x" * (1 << 20)}, "larger than"),
    ],
)
def test_record_validates(
    ledger: Ledger, rid: str, step_key: str, phase: str, data: dict[Any, Any], message: str
) -> None:
    size = ledger.size
    with pytest.raises(LedgerError, match=message):
        ledger.record(rid, step_key, phase, data)
    assert ledger.size == size


@pytest.mark.parametrize(
    "value",
    [
        "jane.doe@example.com",
        "Jane <jane.doe@example.com>",
        "GET /api/v2/users/search?query=jane.doe%40example.com",
        "+44 20 7946 0958",
        "tel:+15555550123",
        "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv",  # Zendesk-style API token
        "Bearer abcdef0123456789",
        "agent@example.com/token:abc",
        "authorization: Basic YWdlbnQ6dG9rZW4=",
        "aGVsbG8gd29y/bGQgdGhpcyBpcyBh/c2VjcmV0MTIz",  # base64 with slashes
    ],
)
def test_guard_refuses_personal_data_and_tokens(ledger: Ledger, rid: str, value: str) -> None:
    size = ledger.size
    for data in ({"value": value}, {"nested": [{"deep": value}]}, {value: 1}):
        with pytest.raises(LedgerError, match="refusing to record") as caught:
            ledger.record(rid, "step", "info", data)
        assert value not in str(caught.value)  # the error never repeats it
    with pytest.raises(LedgerError, match="refusing to record"):
        ledger.record(rid, f"lookup:{value}", "info", {})
    with pytest.raises(LedgerError, match="refusing to record"):
        ledger.extend(rid, 1, f"asked by {value}")
    with pytest.raises(LedgerError, match="refusing to record"):
        ledger.set_status(rid, "failed", value)
    assert ledger.size == size


def test_guard_allows_ids_counts_hashes_refs_and_dates(ledger: Ledger, rid: str) -> None:
    data = {
        "user_id": 10234567890123,
        "user_ids": ["10234567890123", 7],
        "profile_id": "01E06HXMJ8RJ6C0MR142D6FBSA",
        "job_id": "82de0b044094f0c67893ac9fe64f1a99",
        "uuid": "550e8400-e29b-41d4-a716-446655440000",
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "subject_ref": ledger.subject_ref(SUBJECT),
        "at": "2026-05-09T10:11:12.123456+00:00",
        "date": "2026-05-09",
        "status": 204,
        "endpoint": "DELETE /api/v2/deleted_users/10234567890123",
        # A reason naming the path of a profile request (a word meets a ULID).
        "why": "AuthenticationError 401: DELETE /api/v2/user_profiles/01E06HXMJ8RJ6C0MR142D6FBSA",
        "reason": "agent or admin users are never erased by default: user 12 (admin)",
        "source_type": "shopify:customer",
        "ok": True,
        "none": None,
        "ratio_permille": 500,
    }
    seq = ledger.record(rid, "soft_delete:user:10234567890123", "outcome", data)
    assert ledger.entry(seq).data == {**data, "result": "ok"}


def test_guard_refuses_the_processs_own_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "f3a9c2e1d4b5a6978877665544332211ffeeddccbbaa99887766554433221100"  # hex: no shape
    monkeypatch.setenv("ZENDESK_API_TOKEN", token)
    with Ledger.open(home) as ledger:
        rid = ledger.create_request(
            "audit", ledger.subject_ref("audit:1"), received_at="2026-01-01"
        )
        with pytest.raises(LedgerError, match="registered secret"):
            ledger.record(rid, "step", "info", {"x": f"prefix-{token}"})
        ledger.guard.forbid("another-secret-value")
        with pytest.raises(LedgerError, match="registered secret"):
            ledger.record(rid, "step", "info", {"x": "another-secret-value"})


def test_step_state_transitions(ledger: Ledger, rid: str) -> None:
    key = "permanent_delete:user:7"
    assert ledger.step_state(rid, key) == "none"
    assert ledger.step_outcome(rid, key) is None
    ledger.record(rid, key, "intent", {"user_id": 7})
    assert ledger.step_state(rid, key) == "intent"
    assert ledger.step_outcome(rid, key) is None
    ledger.record(rid, key, "outcome", {"result": "failed", "status": 422})
    assert ledger.step_state(rid, key) == "none"  # definitely not applied: retry
    ledger.record(rid, key, "intent", {"user_id": 7})
    ledger.record(rid, key, "outcome", {"result": "unknown", "error": "NetworkError"})
    assert ledger.step_state(rid, key) == "intent"  # may have happened: reconcile
    ledger.record(rid, key, "outcome", {"status": 200, "reconciled": True})
    assert ledger.step_state(rid, key) == "done"
    assert ledger.step_outcome(rid, key) == {"result": "ok", "status": 200, "reconciled": True}
    info = ledger.step_info(rid, key)
    assert info.attempts == 2 and info.last_result == "ok" and info.intent == {"user_id": 7}
    # Info entries do not change a step's state.
    ledger.record(rid, key, "info", {"note": "checked"})
    assert ledger.step_state(rid, key) == "done"
    # Other requests' steps with the same key are separate.
    other = ledger.create_request("erasure", ledger.subject_ref("x:1"), received_at="2026-01-01")
    assert ledger.step_state(other, key) == "none"


def test_step_context_records_intent_then_outcome(ledger: Ledger, rid: str) -> None:
    with ledger.step(rid, "soft_delete:user:1", {"user_id": 1}) as step:
        intent = ledger.entry(step.intent_seq)
        assert intent.phase == "intent" and intent.data == {"user_id": 1}
        assert ledger.step_state(rid, "soft_delete:user:1") == "intent"
        step.done({"status": 204})
    assert ledger.step_state(rid, "soft_delete:user:1") == "done"
    assert ledger.step_outcome(rid, "soft_delete:user:1") == {"result": "ok", "status": 204}
    # Leaving without an explicit outcome means done with no data.
    with ledger.step(rid, "scrub:profile:1"):
        pass
    assert ledger.step_outcome(rid, "scrub:profile:1") == {"result": "ok"}


def test_step_refuses_to_repeat_without_permission(ledger: Ledger, rid: str) -> None:
    with ledger.step(rid, "s"):
        pass
    with pytest.raises(LedgerError, match="already done; skip it"):
        with ledger.step(rid, "s"):
            pytest.fail("must not run")
    ledger.record(rid, "t", "intent", {})
    with pytest.raises(LedgerError, match="already intent; reconcile"):
        with ledger.step(rid, "t"):
            pytest.fail("must not run")
    with ledger.step(rid, "t", allow_repeat=True) as step:
        step.done()
    assert ledger.step_info(rid, "t").attempts == 2


@pytest.mark.parametrize(
    ("error", "state", "result"),
    [
        (_http_error(NotFoundError, 404), "none", "failed"),
        (_http_error(ServerError, 503), "intent", "unknown"),
        (NetworkError("connection dropped"), "intent", "unknown"),
        (RuntimeError("bug after the call"), "intent", "unknown"),
        (KeyboardInterrupt(), "intent", "unknown"),
    ],
)
def test_step_failure_outcomes(
    ledger: Ledger, rid: str, error: BaseException, state: str, result: str
) -> None:
    with pytest.raises(type(error)):
        with ledger.step(rid, "permanent_delete:user:9", {"user_id": 9}):
            raise error
    assert ledger.step_state(rid, "permanent_delete:user:9") == state
    outcome = ledger.entries(rid)[-1]
    assert outcome.phase == "outcome" and outcome.data["result"] == result
    assert outcome.data["error"] == type(error).__name__


def test_explicit_fail(ledger: Ledger, rid: str) -> None:
    with ledger.step(rid, "a") as step:
        step.fail({"status": 409})
    assert ledger.step_state(rid, "a") == "none"
    with ledger.step(rid, "b") as step:
        step.fail({"status": 500}, may_have_applied=True)
    assert ledger.step_state(rid, "b") == "intent"
    with pytest.raises(LedgerError, match="already has an outcome"):
        step.done()


def test_batch_commits_intents_before_returning(ledger: Ledger, rid: str) -> None:
    with ledger.batch():
        ledger.record(rid, "x", "info", {"n": 1})
        ledger.record(rid, "y", "intent", {"n": 2})
        # A second connection (another process) already sees the intent.
        import sqlite3

        other = sqlite3.connect(ledger.path)
        try:
            seen = other.execute("SELECT step_key FROM entries ORDER BY seq").fetchall()
        finally:
            other.close()
        assert ("y",) in seen
    with pytest.raises(RuntimeError), ledger.batch():
        ledger.record(rid, "z", "info", {})
        raise RuntimeError("abort")
    assert ledger.step_info(rid, "z").state == "none"
    assert [e.step_key for e in ledger.entries(rid)][-2:] == ["x", "y"]
    ledger.verify()


def test_concurrent_threads(ledger: Ledger) -> None:
    refs = [ledger.subject_ref(f"id:{i}") for i in range(8)]
    rids = [ledger.create_request("erasure", ref, received_at="2026-01-01") for ref in refs]
    errors: list[BaseException] = []

    def work(rid: str) -> None:
        try:
            for n in range(60):
                with ledger.step(rid, f"delete:user:{n}", {"user_id": n}) as step:
                    assert ledger.step_state(rid, f"delete:user:{n}") == "intent"
                    step.done({"status": 204})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rid,)) for rid in rids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert ledger.size == 8 + 8 * 60 * 2
    assert [e.seq for e in ledger.entries()] == list(range(1, ledger.size + 1))
    for rid in rids:
        assert all(ledger.step_state(rid, f"delete:user:{n}") == "done" for n in range(60))
    ledger.checkpoint()
    assert ledger.verify().entries == ledger.size


def test_append_only_triggers(ledger: Ledger, rid: str) -> None:
    import sqlite3

    conn = sqlite3.connect(ledger.path, isolation_level=None)
    try:
        for sql in (
            "UPDATE entries SET data = '{}' WHERE seq = 1",
            "DELETE FROM entries WHERE seq = 1",
            "INSERT INTO entries (seq, request_id, ts, step_key, phase, data, leaf) "
            "VALUES (1000, 'r', 't', 's', 'info', '{}', x'00')",
            "INSERT INTO entries (request_id, ts, step_key, phase, data, leaf) "
            "VALUES ('r', 't', 's', 'info', '{}', x'00')",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
        ledger.checkpoint()
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM checkpoints")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE meta SET value = 'x'")
    finally:
        conn.close()


# ---------------------------------------------------------------- hashing, proofs, checkpoints


def test_leaf_is_hash_of_canonical_entry(ledger: Ledger, rid: str) -> None:
    ledger.record(rid, "é-step", "info", {"b": [1, {"z": None, "a": "ü"}], "a": True})
    for entry in ledger.entries():
        exported = json.loads(json.dumps(entry.to_dict()))  # as an offline verifier sees it
        assert entry_leaf_hash(exported) == ledger.leaf_hash(entry.seq)
    last = ledger.entries()[-1]
    assert (
        entry_canonical_bytes(last.to_dict())
        == (
            '{"data":{"a":true,"b":[1,{"a":"ü","z":null}]},"phase":"info",'
            f'"request_id":"{rid}","seq":{last.seq},"step_key":"é-step","ts":"{last.ts}"}}'
        ).encode()
    )


def test_inclusion_and_consistency_proofs(ledger: Ledger, rid: str) -> None:
    for n in range(40):
        ledger.record(rid, f"s{n}", "info", {"n": n})
    first = ledger.checkpoint()
    for n in range(17):
        ledger.record(rid, f"t{n}", "info", {"n": n})
    second = ledger.checkpoint()
    assert (first.size, second.size) == (41, 58)
    for entry in ledger.entries(rid):
        for size in (first.size, second.size):
            if entry.seq > size:
                continue
            proof = ledger.inclusion_proof(entry.seq, size)
            root = first.root if size == first.size else second.root
            assert merkle.verify_inclusion(
                entry.index, size, entry_leaf_hash(entry.to_dict()), proof, root
            )
    proof = ledger.consistency_proof(first.size, second.size)
    assert merkle.verify_consistency(first.size, second.size, first.root, second.root, proof)
    assert ledger.root(first.size) == first.root and ledger.root() == second.root
    with pytest.raises(UsageError):
        ledger.inclusion_proof(59, 58)
    with pytest.raises(UsageError):
        ledger.inclusion_proof(1, 100)


def test_checkpoint_note_format_and_offline_verification(home: Path) -> None:
    with Ledger.open(home, clock=FixedClock()) as ledger:
        rid = ledger.create_request("access", ledger.subject_ref(SUBJECT), received_at="2026-01-01")
        ledger.record(rid, "export", "info", {"users": 1})
        cp = ledger.checkpoint()
        assert cp.size == 2 and cp.root == ledger.root()
        lines = cp.note.split("\n")
        assert lines[0] == ledger.origin
        assert lines[1] == "2"
        assert lines[3] == "" and lines[-1] == ""
        assert lines[4].startswith(f"\u2014 {ledger.origin} ")
        import base64

        blob = base64.b64decode(lines[4].rsplit(" ", 1)[1])
        assert blob[:4] == key_hash(ledger.origin, ledger.checkpoint_public_key)
        assert len(blob) == 4 + 64
        assert base64.b64decode(lines[2]) == cp.root
        assert verify_checkpoint_note(cp.note, ledger.checkpoint_public_key) == (
            ledger.origin,
            2,
            cp.root,
        )
        assert verify_checkpoint_note(cp.note, ledger.checkpoint_verifier_key)[1] == 2
        assert ledger.checkpoint() == cp  # nothing new: the same checkpoint
        assert (home / "ledger-checkpoint.latest").read_text() == cp.note
        assert ledger.checkpoints() == [cp]


def test_signed_note_interoperates_with_the_go_reference() -> None:
    # The example from golang.org/x/mod/sumdb/note, the reference signed-note implementation.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    note = (
        text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
        "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    assert verify_signed_note(note, vkey) == text
    assert verify_signed_note(note, parse_verifier_key(vkey)[1]) == text
    with pytest.raises(LedgerIntegrityError, match="does not verify"):
        verify_signed_note(note.replace("cryptography", "cryptographY"), vkey)
    with pytest.raises(LedgerIntegrityError, match="malformed checkpoint"):
        verify_checkpoint_note(note, vkey)  # a valid note, but not a checkpoint


def test_checkpoint_note_rejections(ledger: Ledger, rid: str, tmp_path: Path) -> None:
    note = ledger.checkpoint().note
    pub = ledger.checkpoint_public_key
    lines = note.split("\n")
    assert lines[1] == "1"
    forged = "\n".join([lines[0], "2", *lines[2:]])
    for bad in (
        forged,
        note.replace("\u2014", "-"),
        note.rstrip("\n"),
        note.split("\n\n")[0] + "\n",
    ):
        with pytest.raises(LedgerIntegrityError):
            verify_checkpoint_note(bad, pub)
    with Ledger.open(tmp_path / "other") as other:
        with pytest.raises(LedgerIntegrityError, match="no signature by this key"):
            verify_checkpoint_note(note, other.checkpoint_public_key)
        # A note cosigned by another key still verifies with ours (other lines are ignored).
        cosigned = note + other._signer.sign(1, b"\x00" * 32).split("\n\n")[1]
        assert verify_checkpoint_note(cosigned, pub)[1] == 1


def test_verify_report(ledger: Ledger, rid: str, tmp_path: Path) -> None:
    source = tmp_path / "evidence.PDF"
    source.write_bytes(b"%PDF-1.7 evidence")
    sha = ledger.add_artifact(rid, source, "report")
    ledger.checkpoint()
    report = ledger.verify()
    assert (report.entries, report.requests, report.checkpoints, report.artifacts) == (2, 1, 1, 1)
    assert report.root == ledger.root()
    assert report.to_dict()["ok"] is True
    assert "artifact hashes" in report.checks and "schema and append-only triggers" in report.checks
    path = ledger.artifact_path(sha)
    assert path.name == f"{sha}.pdf" and path.read_bytes() == b"%PDF-1.7 evidence"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [record] = ledger.artifacts(rid)
    assert (record.sha256, record.kind, record.size, record.suffix) == (sha, "report", 17, ".pdf")
    # Registering the same file again (another request) shares the stored copy.
    assert ledger.add_artifact(rid, source, "report") == sha
    assert len(ledger.artifacts()) == 2
    with pytest.raises(UsageError):
        ledger.artifact_path("0" * 64)
    with pytest.raises(UsageError):
        ledger.add_artifact(rid, source, "Bad Kind")


def test_artifact_name_is_not_recorded(ledger: Ledger, rid: str, tmp_path: Path) -> None:
    source = tmp_path / "jane.doe-export.json"
    source.write_text("{}")
    sha = ledger.add_artifact(rid, source, "access-export")
    entry = ledger.entries(rid)[-1]
    assert entry.data == {"kind": "access-export", "sha256": sha, "size": 2, "suffix": ".json"}
    assert "jane" not in ledger.path.read_bytes().decode("latin-1")


def test_closed_ledger_refuses_use(home: Path) -> None:
    ledger = Ledger.open(home)
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        ledger.subject_ref  # noqa: B018 - attribute access is fine
        ledger.list_requests()


def test_interrupted_creation_is_still_fresh(home: Path) -> None:
    # A crash right after the database file was created, before anything was written.
    (home / "ledger.sqlite3").touch(mode=0o600)
    with Ledger.open(home) as ledger:
        assert ledger.size == 0


def test_iter_entries_pages(ledger: Ledger, rid: str) -> None:
    with ledger.batch():
        for n in range(4500):
            ledger.record(rid, "bulk", "info", {"n": n})
    assert [e.seq for e in ledger.iter_entries(start=10, stop=4400)] == list(range(10, 4401))
    assert len(ledger.entries(rid)) == 4501


def test_checkpoint_inside_a_batch_is_committed(ledger: Ledger, rid: str) -> None:
    with pytest.raises(RuntimeError), ledger.batch():
        ledger.record(rid, "a", "info", {})
        ledger.checkpoint()
        raise RuntimeError("abort after the checkpoint")
    assert ledger.latest_checkpoint().size == 2  # type: ignore[union-attr]
    ledger.verify()
