"""Options the data subject request commands (``erase``, ``access``) share, worded once.

Owns the click decorators :data:`from_file_option`, :data:`received_option`,
:data:`no_report_option` and :func:`identity_options` (``--case``,
``--identity-verified``, ``--method``): the same flag means the same thing, with the same
help, on every request command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["from_file_option", "identity_options", "no_report_option", "received_option"]

F = TypeVar("F", bound=Callable[..., Any])

from_file_option = click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Subjects, one per line or a CSV with a 'subject' column; '-' reads standard "
    "input, which keeps them out of ps and shell history.",
)

received_option = click.option(
    "--received", metavar="DATE", help="When the request arrived (default: today)."
)

no_report_option = click.option(
    "--no-report",
    is_flag=True,
    help="Record the evidence in the ledger but skip the signed PDF "
    "(make it later with the evidence commands).",
)

_IDENTITY = (
    click.option(
        "--case",
        "case_ref",
        metavar="REF",
        help="Your own reference for this request (e.g. the DSAR ticket number); one SUBJECT.",
    ),
    click.option(
        "--identity-verified",
        metavar="DATE",
        help="When the subject's identity was verified (shown in the report); one SUBJECT.",
    ),
    click.option(
        "--method",
        "identity_method",
        metavar="TEXT",
        help="How the identity was verified (e.g. 'video call'), with --identity-verified.",
    ),
)


def identity_options(func: F) -> F:
    """``--case``, ``--identity-verified`` and ``--method``, in that order in ``--help``."""
    for option in reversed(_IDENTITY):
        func = option(func)
    return func
