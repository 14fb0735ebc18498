"""One writer at a time: an OS file lock on PRIVACYKIT_HOME.

Owns ``<home>/privacykit.lock``. Every command that writes to the home (erase, access,
audit, evidence export/report, keys init, ledger extend/checkpoint, ...) holds it for its
whole run through :func:`hold_home`, and :meth:`Ledger.open` takes it too, so a writer that
forgot cannot slip past. A second writer gets :class:`~privacykit.errors.HomeBusyError`
(exit 2, one line naming the command that holds the home) at once, or waits with
``wait=True``. Readers (``ledger list/show/verify``, ``evidence verify``) never take it.

Why an OS lock (``fcntl.flock``) and not a lock file that merely exists: the kernel
releases it when the holder dies, even by ``kill -9``, so a crash never leaves the home
locked. The holder writes who it is into the file (command, pid, start time) for the
busy message and for :func:`home_writer`, which tells a reader whether a run is in
progress without taking the lock (a reader that briefly took it would make a writer
starting at that instant fail with a confusing "busy").

Inside one process the lock is re-entrant for the thread that holds it (the CLI takes it,
then the library opens the ledger) and exclusive between threads, like between processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from privacykit.errors import HomeBusyError, LedgerError

__all__ = ["LOCK_FILE", "HomeLock", "Writer", "hold_home", "home_writer", "lock_home"]

LOCK_FILE = "privacykit.lock"


@dataclass(frozen=True)
class Writer:
    """Who holds (or last held) the home: from the lock file, so possibly stale."""

    command: str
    pid: int
    since: str

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid}, since {self.since})"


class _Holder:
    def __init__(self, thread: int, command: str) -> None:
        self.thread = thread
        self.command = command
        self.depth = 1
        self.fd: int | None = None
        #: Facts every user of this hold shares (the ledger's size when the run began).
        self.shared: dict[str, object] = {}


_registry = threading.Condition(threading.Lock())
_held: dict[str, _Holder] = {}


class HomeLock:
    """A held lock on a home; :meth:`release` (or leaving :func:`hold_home`) gives it back."""

    def __init__(self, key: str, holder: _Holder) -> None:
        self._key = key
        self._holder = holder
        self._released = False

    @property
    def command(self) -> str:
        return self._holder.command

    @property
    def shared(self) -> dict[str, object]:
        """State shared by every re-entrant holder of this lock in this thread (one run)."""
        return self._holder.shared

    def release(self) -> None:
        with _registry:
            if self._released:
                return
            self._released = True
            holder = self._holder
            holder.depth -= 1
            if holder.depth > 0:
                return
            fd = holder.fd
            if fd is not None:
                try:
                    os.ftruncate(fd, 0)  # no stale "who" once it is free
                except OSError:
                    pass
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            del _held[self._key]
            _registry.notify_all()

    def __enter__(self) -> HomeLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _default_command() -> str:
    # The click command path ("privacykit erase") when running under the CLI: it holds only
    # command names, never an argument (which could be a subject's address).
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except ImportError:  # pragma: no cover - click is a dependency
        ctx = None
    return ctx.command_path if ctx is not None else "privacykit"


def _busy(home: Path, writer: Writer | None, command: str | None = None) -> HomeBusyError:
    who = writer.describe() if writer else f"`{command}`" if command else "another command"
    return HomeBusyError(
        f"{home} is in use by {who}: wait for it to finish, or run again with --wait",
        command=writer.command if writer else command,
    )


def _read_writer(path: Path) -> Writer | None:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    command, pid, since = data.get("command"), data.get("pid"), data.get("since")
    if not isinstance(command, str) or not isinstance(pid, int) or not isinstance(since, str):
        return None
    return Writer(command, pid, since)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    except OSError:
        return False
    return True


def home_writer(home: Path | str) -> Writer | None:
    """The command writing to ``home`` right now, or None. Lock-free (reads the holder's
    record and checks its process is alive), so a reader never disturbs a writer; a
    recycled pid can make a crashed writer look alive, never the other way round."""
    home = Path(home)
    key = os.path.realpath(home)
    with _registry:
        holder = _held.get(key)
        if holder is not None:
            return Writer(holder.command, os.getpid(), "now")
    writer = _read_writer(home / LOCK_FILE)
    if writer is None or not _alive(writer.pid):
        return None
    return writer


def lock_home(
    home: Path | str,
    command: str | None = None,
    *,
    wait: bool = False,
    on_wait: Callable[[Writer | None], None] | None = None,
) -> HomeLock:
    """Take the home's writer lock and return it (release it with :meth:`HomeLock.release`).

    ``command`` names this writer in the message a second writer gets (default: the click
    command path, else ``privacykit``). Without ``wait`` a busy home raises
    :class:`HomeBusyError` at once; with it, this blocks until the holder finishes (the
    kernel frees the lock even if the holder is killed, so the wait is bounded by the
    holder's run); ``on_wait`` is called once with the holder before waiting (the CLI says
    whom it waits for). The home directory must exist."""
    home = Path(home)
    command = command or _default_command()
    key = os.path.realpath(home)
    me = threading.get_ident()
    with _registry:
        while True:
            holder = _held.get(key)
            if holder is None:
                break
            if holder.thread == me:
                holder.depth += 1
                return HomeLock(key, holder)
            if not wait:
                raise _busy(home, None, holder.command)
            if on_wait is not None:
                on_wait(Writer(holder.command, os.getpid(), "now"))
                on_wait = None
            _registry.wait()
        holder = _Holder(me, command)
        _held[key] = holder  # other threads now queue behind us while we take the OS lock
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        _forget(key)
        raise LedgerError(f"cannot lock {home}: {exc.strerror}") from None
    try:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise _busy(home, _read_writer(home / LOCK_FILE)) from None
                if on_wait is not None:
                    on_wait(_read_writer(home / LOCK_FILE))
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            # E.g. a network file system without locks: never run unprotected, say why.
            raise LedgerError(
                f"cannot lock {home} ({exc.strerror or exc}): privacykit needs a home on a "
                "file system with file locks"
            ) from None
        record = {
            "command": command,
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    except BaseException:
        os.close(fd)
        _forget(key)
        raise
    holder.fd = fd
    return HomeLock(key, holder)


def _forget(key: str) -> None:
    with _registry:
        _held.pop(key, None)
        _registry.notify_all()


@contextmanager
def hold_home(
    home: Path | str,
    command: str | None = None,
    *,
    wait: bool = False,
    on_wait: Callable[[Writer | None], None] | None = None,
) -> Iterator[HomeLock]:
    """Hold the home's writer lock for the block (see :func:`lock_home`)::

    with hold_home(home, "privacykit erase"):
        ...  # the only writer of this home until the block ends
    """
    lock = lock_home(home, command, wait=wait, on_wait=on_wait)
    try:
        yield lock
    finally:
        lock.release()
