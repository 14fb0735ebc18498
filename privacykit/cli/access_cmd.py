"""`privacykit access`: answer access requests (GDPR Art. 15/20) from Zendesk, read-only.

Thin: one call to :func:`privacykit.playbooks.access.access_request`; this module only
turns options into arguments, draws progress and prints the lines the result gives.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import domain_errors, echo_json, output_options, progress, safe_text
from privacykit.cli.request_options import (
    bounds_options,
    from_file_option,
    identity_options,
    no_report_option,
    received_option,
)
from privacykit.playbooks.access import SubjectResult, access_request

__all__ = ["register"]


@click.command("access", short_help="Export a person's data, read-only (GDPR Art. 15/20).")
@click.argument("subjects", nargs=-1, metavar="[SUBJECT]...")
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for the answer (created owner-only). Several subjects: one "
    "subdirectory per request id (or case reference).",
)
@from_file_option
@click.option(
    "--playbook",
    metavar="NAME|FILE",
    help="Access playbook to use (default: 'access').",
)
@click.option("--force", is_flag=True, help="Write into a non-empty --out directory.")
@click.option(
    "--confirm-ambiguous",
    is_flag=True,
    help="You checked that every user found is the same person; deliver anyway.",
)
@received_option
@bounds_options
@no_report_option
@click.option(
    "--from-ticket",
    metavar="ID",
    help="Take the request from this Zendesk DSAR ticket: its requester is the subject, "
    "its creation date the received date, its id the case reference; the outcome is "
    "added as an internal note.",
)
@identity_options
@output_options
@writes_home("access")
def access(
    subjects: tuple[str, ...],
    out: Path | None,
    from_file: Path | None,
    playbook: str | None,
    force: bool,
    confirm_ambiguous: bool,
    received: str | None,
    max_wait: float | None,
    request_deadline: float | None,
    no_report: bool,
    from_ticket: str | None,
    case_ref: str | None,
    identity_verified: str | None,
    identity_method: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Export everything Zendesk holds on a person (GDPR Art. 15/20), read-only.

    \b
    Give subjects on standard input, so they stay out of ps and shell history:
      privacykit access --from-file - --out DIR < subjects.txt

    SUBJECT is an email address, user:<zendesk id>, ext:<external_id> or a profile
    identifier query source:type:identifier_type:value. Prepares in --out: index.html
    (the answer to read), data.json (schema privacykit.access-export/2), one CSV per
    record type, the attached files and the signed access report. Only GET requests are
    sent to Zendesk (with --from-ticket, one internal note on the ticket too). Exit 0
    when every subject got an answer (including "nothing found"), 1 when some need
    review or failed, or the run stopped at --max-wait (an --out directory this run
    created and left empty is removed again).
    """
    with ExitStack() as stack:
        bar: dict[str, Any] = {}

        def on_start(total: int) -> None:
            bar["bar"] = stack.enter_context(
                progress(length=total, label="access requests", quiet=quiet or as_json)
            )

        def on_result(_result: SubjectResult) -> None:
            if "bar" in bar:
                bar["bar"].update(1)

        with domain_errors():
            run = access_request(
                subjects,
                out=out,
                from_file=from_file,
                playbook=playbook,
                force=force,
                confirm_ambiguous=confirm_ambiguous,
                received=received,
                produce_reports=not no_report,
                on_start=on_start,
                on_result=on_result,
                case_ref=case_ref,
                identity_verified=identity_verified,
                identity_method=identity_method,
                from_ticket=from_ticket,
                max_wait=max_wait,
                request_deadline=request_deadline,
            )
    if as_json:
        echo_json(run.as_dict())
    else:
        for line in run.lines():
            click.echo(safe_text(line))
    raise click.exceptions.Exit(run.exit_code)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(access)
