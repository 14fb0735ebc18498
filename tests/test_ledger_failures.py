"""A full disk while the ledger writes (#14): one line, exit 1, nothing lost, and never
hiding the error of the run it happened at the end of. One checkpoint per run (#13).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.errors import LedgerError, ZendeskError
from privacykit.ledger import Ledger, sign_at_end
from privacykit.sandbox import SandboxServer


def disk_full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def rid(ledger: Ledger) -> str:
    rid = ledger.create_request("erasure", ledger.subject_ref("x:1"), received_at="2026-01-02")
    ledger.checkpoint()
    ledger.record(rid, "note", "info", {"n": 1})
    return rid


def test_checkpoint_on_a_full_disk_is_one_line_and_loses_nothing(
    ledger: Ledger, rid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("privacykit.ledger.signing.write_latest", disk_full)
    with pytest.raises(LedgerError) as caught:
        ledger.checkpoint()
    assert str(caught.value) == (
        "checkpoint of size 2 is signed and stored in the ledger, but "
        "ledger-checkpoint.latest could not be written: No space left on device"
    )
    monkeypatch.undo()
    report = ledger.verify()  # the stored checkpoint covers everything; the file is older
    assert report.checkpoints == 2 and report.unsigned_from is None


def test_sqlite_full_is_one_line(ledger: Ledger, rid: str) -> None:
    conn = ledger._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(LedgerError) as caught:
        for n in range(2000):
            ledger.record(rid, f"filler:{n}", "info", {"blob": "x" * 2000})
    assert str(caught.value) == (
        "the ledger could not be written: database or disk is full (nothing was lost)"
    )
    conn.execute("PRAGMA max_page_count = 1073741823")
    ledger.verify()


def test_final_checkpoint_failure_never_hides_the_run_error(
    ledger: Ledger, rid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("privacykit.ledger.signing.write_latest", disk_full)
    with pytest.raises(ZendeskError) as caught:
        try:
            raise ZendeskError("GET /api/v2/users/{id}: Zendesk failed")
        finally:
            assert sign_at_end(ledger) is None
    assert str(caught.value) == "GET /api/v2/users/{id}: Zendesk failed"
    assert caught.value.__notes__ == [
        "the final checkpoint could not be signed either: checkpoint of size 2 is signed and "
        "stored in the ledger, but ledger-checkpoint.latest could not be written: No space "
        "left on device"
    ]
    # Without an error in flight the failure is the one reported.
    with pytest.raises(LedgerError, match="No space left on device"):
        ledger.record(rid, "more", "info", {"n": 2})
        sign_at_end(ledger)
    # The run scope does the same.
    with pytest.raises(KeyError) as interrupted:
        with ledger.run():
            ledger.record(rid, "again", "info", {"n": 3})
            raise KeyError("boom")
    assert "could not be signed either" in interrupted.value.__notes__[0]


def test_cli_checkpoint_on_a_full_disk(
    ledger: Ledger, rid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("privacykit.ledger.signing.write_latest", disk_full)
    result = CliRunner().invoke(cli, ["ledger", "checkpoint"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: checkpoint of size 2 is signed and stored in the ledger, but "
        "ledger-checkpoint.latest could not be written: No space left on device\n"
    )


def test_erase_whose_final_checkpoint_hits_a_full_disk(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=4) as sb:
        sb.state.add_user("Full Disk", email="full.disk@example.com")
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr("privacykit.ledger.signing.write_latest", disk_full)
        result = CliRunner().invoke(
            cli, ["erase", "full.disk@example.com", "--yes", "--no-report", "--quiet"]
        )
    # The engine stops the run with one line naming the failure; the summary is printed.
    assert result.exit_code == 1, result.output
    full = [line for line in result.stderr.splitlines() if "No space left on device" in line]
    assert len(full) == 1, result.stderr
    assert "checkpoint of size " in full[0] and "is signed and stored in the ledger" in full[0]
    assert "request(s)" in result.stdout, result.stdout
    assert "Traceback" not in result.output
    monkeypatch.undo()
    with Ledger.open(home, readonly=True) as reader:
        reader.verify()  # consistent: the checkpoint is stored, only the copy failed


def test_a_batch_signs_one_checkpoint_its_reports_reference(ledger: Ledger, tmp_path: Path) -> None:
    before = len(ledger.checkpoints())
    with ledger.run() as run:
        rids = []
        for n in range(5):
            rid = ledger.create_request(
                "erasure", ledger.subject_ref(f"x:{n}"), received_at="2026-01-02"
            )
            ledger.set_status(rid, "completed")
            rids.append(rid)
        cp = run.checkpoint()
        assert run.checkpoint() == cp  # nothing new: the same one
        for n, rid in enumerate(rids):
            assert ledger.checkpoint_covering(rid) == cp  # reports reference it
            report = tmp_path / f"report-{n}.pdf"
            report.write_bytes(b"%PDF-1.7 " + bytes([n]))
            ledger.add_artifact(rid, report, "report")
    assert run.final is not None and run.final.size == ledger.size
    # One for the reports to reference, one covering their registrations: not N + 1.
    assert len(ledger.checkpoints()) == before + 2
    # A report outside a batch gets its own checkpoint when nothing covers it yet.
    outside = ledger.create_request("access", ledger.subject_ref("y:1"), received_at="2026-01-03")
    own = ledger.checkpoint_covering(outside)
    assert own.size == ledger.size and len(ledger.checkpoints()) == before + 3
    # Closing signs only what this run left unsigned (nothing here).
    ledger.close()
    with Ledger.open(ledger.home, readonly=True) as reader:
        assert reader.verify().checkpoints == before + 3
