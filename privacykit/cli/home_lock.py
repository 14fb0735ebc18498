"""``@writes_home("erase")``: the one decorator every command that writes to PRIVACYKIT_HOME
wears.

It adds ``--wait`` and runs the command holding the home's writer lock
(:func:`privacykit.ledger.lock.hold_home`): a second writer exits 2 at once with one line
naming the command that holds the home, or, with ``--wait``, waits for it. Commands that
only read (``ledger list/show/verify``, ``evidence verify``) do not wear it.

Kept light (click only at import time): the lock module is imported when the command
runs, so ``privacykit --help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from privacykit.cli.output import domain_errors

__all__ = ["writes_home"]

F = TypeVar("F", bound=Callable[..., Any])


def _say_waiting(writer: Any) -> None:
    who = writer.describe() if writer is not None else "another privacykit command"
    click.echo(f"waiting for {who} to finish...", err=True)


def writes_home(command: str) -> Callable[[F], F]:
    """Decorate a click command callback (below ``@click.command``) so it holds the home."""

    def decorate(func: F) -> F:
        @click.option(
            "--wait",
            "wait_for_home",
            is_flag=True,
            help="If another privacykit command is writing to PRIVACYKIT_HOME, wait for it "
            "instead of exiting 2.",
        )
        @functools.wraps(func)
        def wrapper(*args: Any, wait_for_home: bool = False, **kwargs: Any) -> Any:
            from privacykit.config import privacykit_home
            from privacykit.ledger.lock import lock_home

            with domain_errors():
                home = privacykit_home(create=False)
                # A home that does not exist yet has nothing to protect (and a command that
                # fails on bad input must not create it): the ledger takes the lock when it
                # creates the home.
                lock = (
                    lock_home(
                        home, f"privacykit {command}", wait=wait_for_home, on_wait=_say_waiting
                    )
                    if home.is_dir()
                    else None
                )
            try:
                return func(*args, **kwargs)
            finally:
                if lock is not None:
                    lock.release()

        return wrapper  # type: ignore[return-value]

    return decorate
