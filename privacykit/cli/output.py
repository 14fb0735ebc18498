"""Shared CLI plumbing: output options, JSON printing, progress bars, error mapping.

Every command takes its ``--json``/``--quiet`` flags from :func:`output_options`,
prints machine output through :func:`echo_json`, shows progress only through
:func:`progress` (which honours ``--quiet`` and non-terminals), and wraps its body in
:func:`domain_errors` so a :class:`~privacykit.errors.PrivacykitError` becomes one
line on stderr with its exit code (2 for bad input, 1 otherwise), never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from privacykit.errors import PrivacykitError

__all__ = [
    "DomainClickException",
    "domain_errors",
    "echo_json",
    "output_options",
    "progress",
    "safe_text",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class DomainClickException(click.ClickException):
    """A ClickException that keeps the domain error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a ClassVar


def safe_text(value: object) -> str:
    """Make text from Zendesk or the user safe for a terminal: control characters
    (including ESC, so no ANSI sequences) and bidi overrides are shown escaped."""
    text = str(value)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf") and ch not in ("\n", "\t"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn our domain errors into click exceptions with the right exit code."""
    try:
        yield
    except PrivacykitError as exc:
        message = safe_text(str(exc)).replace("\n", " ") or type(exc).__name__
        raise DomainClickException(message, exc.exit_code) from None


def output_options(func: F) -> F:
    """Add ``--json`` and ``--quiet`` to a command (passed as ``as_json`` and ``quiet``)."""

    @click.option(
        "--json", "as_json", is_flag=True, help="Print one machine-readable JSON document."
    )
    @click.option(
        "--quiet", "-q", is_flag=True, help="No progress display; only results and errors."
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def echo_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


@contextmanager
def progress(
    iterable: Iterable[T] | None = None,
    *,
    length: int | None = None,
    label: str = "",
    quiet: bool = False,
) -> Iterator[Any]:
    """The only progress bar: drawn on stderr, hidden with ``--quiet`` or when stderr is
    not a terminal, so JSON on stdout and logs stay clean."""
    hidden = quiet or not sys.stderr.isatty()
    if hidden:
        yield _NullBar(iterable)
        return
    with click.progressbar(iterable, length=length, label=label, file=sys.stderr) as bar:
        yield bar


class _NullBar:
    def __init__(self, iterable: Iterable[Any] | None) -> None:
        self._iterable = iterable if iterable is not None else ()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable)

    def update(self, n_steps: int, current_item: Any = None) -> None:
        pass

    label = ""
