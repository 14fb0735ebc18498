"""One writer at a time (#13): the home's OS lock, between processes and between threads,
with real files; and two real `privacykit erase` runs on one home against the sandbox:
the second is refused at once (or, with --wait, waits), no subject gets two requests and
no permanent deletion is sent twice. Readers never take the lock.

Ordering is made deterministic by reading the processes' own output (a held confirmation
prompt, the "waiting for" line), never by sleeping.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.errors import HomeBusyError, LedgerError
from privacykit.ledger import Ledger, hold_home, home_writer, lock_home
from privacykit.sandbox import SandboxServer

HOLDER = (
    "import sys; from privacykit.ledger import hold_home\n"
    "with hold_home(sys.argv[1], 'privacykit erase'):\n"
    "    print('held', flush=True); sys.stdin.read()\n"
)


CLI = "import sys; from privacykit.cli import cli; cli(sys.argv[1:], prog_name='privacykit')"


def read_until(stream: IO[bytes], marker: bytes, timeout: float = 60.0) -> bytes:
    """Bytes from a child's pipe up to and including ``marker`` (bounded by ``timeout``)."""
    seen = b""
    while marker not in seen:
        ready, _, _ = select.select([stream], [], [], timeout)
        assert ready, f"no {marker!r} within {timeout} s; got {seen!r}"
        chunk = os.read(stream.fileno(), 4096)
        assert chunk, f"stream closed before {marker!r}; got {seen!r}"
        seen += chunk
    return seen


def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PRIVACYKIT_HOME": str(home), **(extra or {})}
    env.pop("PRIVACYKIT_WITNESS_DIR", None)
    return env


@pytest.fixture
def holder(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the home as `privacykit erase` until its stdin closes."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(home),
    )
    assert child.stdout is not None and child.stdin is not None
    read_until(child.stdout, b"held\n")
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()


def test_second_writer_is_refused_at_once_naming_the_holder(
    home: Path, holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(HomeBusyError) as caught:
        lock_home(home, "privacykit access")
    message = str(caught.value)
    assert message.startswith(f"{home} is in use by `privacykit erase` (pid {holder.pid}, since ")
    assert message.endswith(": wait for it to finish, or run again with --wait")
    assert caught.value.exit_code == 2 and caught.value.command == "privacykit erase"
    # Opening the ledger for writing is refused the same way (nothing is created).
    with pytest.raises(HomeBusyError):
        Ledger.open(home)
    assert not (home / "ledger.sqlite3").exists()
    writer = home_writer(home)
    assert writer is not None and (writer.command, writer.pid) == ("privacykit erase", holder.pid)


def test_cli_writer_exits_2_with_one_line(home: Path, holder: subprocess.Popen[bytes]) -> None:
    result = CliRunner().invoke(cli, ["ledger", "checkpoint"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: {home} is in use by `privacykit erase` (pid ")


def test_waiting_writer_proceeds_when_the_holder_ends(
    home: Path, holder: subprocess.Popen[bytes]
) -> None:
    waited: list[Any] = []
    got = threading.Event()

    waiting = threading.Event()

    def noted(writer: Any) -> None:
        waited.append(writer)
        waiting.set()

    def second() -> None:
        with hold_home(home, "privacykit access", wait=True, on_wait=noted):
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert waiting.wait(30)  # it found the home held by the other process...
        assert not got.is_set()  # ...and waits
        assert holder.stdin is not None
        holder.stdin.close()  # the holder finishes
        thread.join(timeout=30)
        assert got.is_set()
    finally:
        thread.join(timeout=30)
    assert [w.command for w in waited] == ["privacykit erase"]


def test_a_killed_holder_frees_the_home(home: Path, holder: subprocess.Popen[bytes]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert home_writer(home) is None  # its record names a dead process
    with hold_home(home, "privacykit erase"):
        writer = home_writer(home)
        assert writer is not None and writer.pid == os.getpid()


def test_threads_exclude_each_other_and_reenter_their_own(home: Path) -> None:
    outcome: dict[str, Any] = {}
    with hold_home(home, "privacykit audit"):
        with hold_home(home, "privacykit audit"):  # the same thread: re-entrant
            pass

        def other() -> None:
            try:
                lock_home(home, "privacykit erase")
            except HomeBusyError as exc:
                outcome["error"] = str(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
    assert "in use by `privacykit audit`" in outcome["error"]
    with hold_home(home, "privacykit erase"):  # free again
        pass


def test_readers_take_no_lock(home: Path, holder: subprocess.Popen[bytes], tmp_path: Path) -> None:
    # A ledger written before the holder started; the holder "is writing" an unsigned tail.
    other = tmp_path / "ledger-copy"
    with Ledger.open(other) as ledger:
        rid = ledger.create_request("erasure", ledger.subject_ref("x:1"), received_at="2026-01-02")
        ledger.checkpoint()
        ledger.record(rid, "note", "info", {"n": 1})
        ledger.close(checkpoint=False)
    for name in os.listdir(other):
        if name != "privacykit.lock":
            os.replace(other / name, home / name)
    runner = CliRunner()
    assert runner.invoke(cli, ["ledger", "list"]).exit_code == 0
    assert runner.invoke(cli, ["ledger", "show", rid]).exit_code == 0
    assert runner.invoke(cli, ["ledger", "export"]).exit_code == 0
    result = runner.invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert f"entries 2..2 are being written by `privacykit erase` (pid {holder.pid}" in (
        result.output
    )
    # Once the writer is gone without signing, the unsigned tail is a failure.
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    result = runner.invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 1
    assert "entry 2: entries 2..2 are not covered by any signed checkpoint" in result.output


# ------------------------------------------------------------------ two real erasures


def erase_process(
    home: Path, sb: SandboxServer, subjects: Path, *args: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "erase", "--from-file", str(subjects), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(home, sb.env()),
    )


def finish(child: subprocess.Popen[bytes], answer: bytes | None = None) -> tuple[int, str, str]:
    out, err = child.communicate(input=answer, timeout=120)
    return child.returncode, out.decode(), err.decode()


def test_two_erasures_at_once(home: Path, tmp_path: Path) -> None:
    with SandboxServer(seed="none", time_scale=600.0, rng_seed=3) as sb:
        emails = [f"twice{n}@example.com" for n in range(8)]
        later = [f"later{n}@example.com" for n in range(4)]
        ids = {e: sb.state.add_user(f"Person {e}", email=e)["id"] for e in emails + later}
        first_file, later_file = tmp_path / "subjects.txt", tmp_path / "later.txt"
        first_file.write_text("\n".join(emails) + "\n")
        later_file.write_text("\n".join(later) + "\n")

        # A: planned, holding the home, waiting at its confirmation prompt.
        a = erase_process(home, sb, first_file, "--no-report")
        assert a.stderr is not None and a.stdin is not None
        read_until(a.stderr, b"[y/N]: ")
        sent_before = len(sb.request_log())
        assert all(e["method"] == "GET" for e in sb.request_log())

        # B: the same file at the same time: refused at once, nothing sent or recorded.
        code, out, err = finish(erase_process(home, sb, first_file, "--yes", "--no-report"))
        assert code == 2, (out, err)
        assert err.count("\n") == 1
        assert err.startswith(f"Error: {home} is in use by `privacykit erase` (pid {a.pid}, ")
        assert len(sb.request_log()) == sent_before

        # C: waits for A, then runs its own subjects.
        c = erase_process(home, sb, later_file, "--yes", "--no-report", "--wait", "--json")
        assert c.stderr is not None
        waiting = read_until(c.stderr, b"to finish...\n").decode()
        assert f"waiting for `privacykit erase` (pid {a.pid}" in waiting
        code_a, out_a, err_a = finish(a, b"y\n")
        assert code_a == 0, (out_a, err_a)
        code_c, out_c, err_c = finish(c)
        assert code_c == 0, (out_c, err_c)

        deletions = Counter(
            int(e["path"].rsplit("/", 1)[1])
            for e in sb.request_log()
            if e["method"] == "DELETE" and e["path"].startswith("/api/v2/deleted_users/")
        )
        assert deletions == Counter(ids.values())  # every one sent exactly once
    with Ledger.open(home, readonly=True) as ledger:
        requests = ledger.list_requests(kind="erasure")
        assert len(requests) == len(ids)
        assert len({r.subject_ref for r in requests}) == len(ids)  # one request per subject
        assert {r.status for r in requests} <= {"completed", "pending_compliance"}
        ledger.verify()
    assert isinstance(json.loads(out_c), dict)  # --json output, undisturbed by the wait line


def test_a_file_system_without_locks_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import privacykit.ledger.lock as lock_module

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    with pytest.raises(LedgerError) as caught:
        lock_home(home, "privacykit erase")
    assert str(caught.value) == (
        f"cannot lock {home} (No locks available): privacykit needs a home on a file system "
        "with file locks"
    )
    monkeypatch.undo()
    with hold_home(home, "privacykit erase"):  # nothing was left held
        pass
