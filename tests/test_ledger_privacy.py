"""Nothing personal and no token in the ledger's files: the test input's email, phone and
API token are searched for in the raw bytes of every file under PRIVACYKIT_HOME (the
SQLite file, its WAL and shared-memory files, checkpoints, artifacts), while the ledger
is open and after it is closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacykit.errors import LedgerError
from privacykit.ledger import Ledger

EMAIL = "jane.doe.private@example.com"
PHONE = "+44 20 7946 0958"
TOKEN = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
HEX_TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
FORBIDDEN = [EMAIL, "jane.doe.private", PHONE, "7946 0958", TOKEN, HEX_TOKEN]


def _scan(home: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in FORBIDDEN:
                for encoded in (needle.encode("utf-8"), needle.encode("utf-16-le")):
                    if encoded in data:
                        found.setdefault(path.name, []).append(needle)
    return found


def test_no_personal_data_or_token_in_any_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZENDESK_EMAIL", "agent@example.com")
    monkeypatch.setenv("ZENDESK_API_TOKEN", HEX_TOKEN)
    ledger = Ledger.open(home)
    try:
        ref = ledger.subject_ref(f"email:{EMAIL}")
        phone_ref = ledger.subject_ref(f"phone:{PHONE}")
        rid = ledger.create_request(
            "erasure", ref, received_at="2026-01-31", operator="dpo", playbook_name="erasure"
        )
        ledger.record(rid, "discover", "info", {"subject_refs": [ref, phone_ref], "users": [101]})
        for user_id in (101, 102):
            with ledger.step(rid, f"soft_delete:user:{user_id}", {"user_id": user_id}) as step:
                step.done({"status": 200, "user_id": user_id})
        # Every way a careless caller could leak is refused before anything is written.
        attempts = [
            lambda: ledger.record(rid, "search", "info", {"query": f"email:{EMAIL}"}),
            lambda: ledger.record(rid, "search", "info", {"q": EMAIL.replace("@", "%40")}),
            lambda: ledger.record(rid, "identity", "info", {"value": PHONE}),
            lambda: ledger.record(rid, "auth", "info", {"header": f"Bearer {TOKEN}"}),
            lambda: ledger.record(rid, "auth", "info", {"token": TOKEN}),
            lambda: ledger.record(rid, "auth", "info", {"token": HEX_TOKEN}),
            lambda: ledger.record(rid, f"user:{EMAIL}", "intent", {}),
            lambda: ledger.extend(rid, 1, f"waiting for {EMAIL}"),
            lambda: ledger.set_status(rid, "failed", f"{EMAIL} not found"),
            lambda: ledger.create_request("access", ref, received_at="2026-01-31", operator=EMAIL),
            lambda: ledger.create_request("access", ref, received_at="2026-01-31", batch_id=TOKEN),
        ]
        for attempt in attempts:
            with pytest.raises(LedgerError, match="refusing to record") as caught:
                attempt()
            assert not any(needle in str(caught.value) for needle in FORBIDDEN)
        report = tmp_path / f"{EMAIL}.pdf"  # even a file named after the subject
        report.write_bytes(b"%PDF evidence without personal data")
        ledger.add_artifact(rid, report, "report")
        ledger.set_status(rid, "completed")
        ledger.checkpoint()
        assert (home / "ledger.sqlite3-wal").exists()
        assert _scan(home) == {}
        assert "jane" not in repr(ledger.get_request(rid)) and "jane" not in repr(ledger.entries())
    finally:
        ledger.close()
    assert _scan(home) == {}


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    # Control: the byte scan is not vacuous.
    (tmp_path / "a.bin").write_bytes(b"\x00prefix" + EMAIL.encode() + b"\x00")
    (tmp_path / "b.bin").write_bytes(TOKEN.encode("utf-16-le"))
    assert _scan(tmp_path) == {"a.bin": [EMAIL, "jane.doe.private"], "b.bin": [TOKEN]}
