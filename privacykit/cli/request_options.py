"""Options the data subject request commands (``erase``, ``access``) share, worded once.

Owns the click decorators :data:`from_file_option`, :data:`received_option`,
:data:`no_report_option`, :func:`identity_options` (``--case``,
``--identity-verified``, ``--method``) and :func:`bounds_options` (``--max-wait``,
``--request-deadline``, also on ``audit``): the same flag means the same thing, with the
same help, on every command that has it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = [
    "DEFAULT_MAX_WAIT",
    "DEFAULT_REQUEST_DEADLINE",
    "bounds_options",
    "from_file_option",
    "identity_options",
    "no_report_option",
    "received_option",
]

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


#: The Zendesk client's defaults (``Governor`` max_wait, ``transport.DEFAULT_DEADLINE``),
#: shown by ``--help`` (which must not import httpx); a test keeps them equal. An option
#: not given passes None, so the client's own default applies.
DEFAULT_MAX_WAIT: float = 900
DEFAULT_REQUEST_DEADLINE: float = 180

# Both at least one second: a shorter bound only turns a slow but healthy answer into a
# stop. The deadline need not exceed the per-read timeout (30 s): below it, the deadline
# simply ends the exchange first.
_BOUNDS = (
    click.option(
        "--max-wait",
        type=click.FloatRange(min=1),
        # None: the client's own default (one source of truth), shown in the help.
        default=None,
        metavar="SECONDS",
        help="Longest wait for Zendesk's rate limits; past it the run stops cleanly "
        "(everything recorded) and says when Zendesk said to come back.  "
        f"[default: {DEFAULT_MAX_WAIT:g}]",
    ),
    click.option(
        "--request-deadline",
        type=click.FloatRange(min=1),
        default=None,
        metavar="SECONDS",
        help="Longest time one request to Zendesk may take in all (connecting, sending, "
        "reading the whole answer), on top of the 30 s limit per read; past it that "
        "request has failed (a subject needs review, nothing is concluded).  "
        f"[default: {DEFAULT_REQUEST_DEADLINE:g}]",
    ),
)


def bounds_options(func: F) -> F:
    """``--max-wait`` and ``--request-deadline``, in that order in ``--help``."""
    for option in reversed(_BOUNDS):
        func = option(func)
    return func
