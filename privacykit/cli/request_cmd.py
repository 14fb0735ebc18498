"""`privacykit request`: manage a data subject request beyond running it.

Thin: ``request close`` is one call to :func:`privacykit.playbooks.closing.close_request`
under the home's writer lock. Exit codes: 0 closed; 1 the ledger or the report failed;
2 bad input (unknown request, a request that is not open -- a finished "no data found"
one only ``--as mistake`` --, a missing article, a reason that holds personal data), with
nothing recorded.
"""

from __future__ import annotations

import click

from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import domain_errors, echo_json, output_options, safe_text

__all__ = ["register"]


@click.group("request", short_help="Close a request: withdrawn, refused or a mistake.")
def request_group() -> None:
    """Manage a data subject request: close one that will not be carried out."""


@request_group.command("close", short_help="Close an open request with a ground and reason.")
@click.argument("request_id", metavar="REQUEST_ID")
@click.option(
    "--as",
    "ground",
    type=click.Choice(["withdrawn", "refused", "mistake"]),
    required=True,
    help="withdrawn by the subject; refused (with --article); opened by mistake.",
)
@click.option(
    "--reason",
    required=True,
    help="Why, in words the ledger may keep (no email address or phone number).",
)
@click.option(
    "--article",
    metavar="ART",
    help="For --as refused: 12(5) (manifestly unfounded or excessive) or, for an "
    "erasure, the Art. 17(3) exception 17(3)(a) to 17(3)(e).",
)
@click.option("--no-report", is_flag=True, help="Record the closing but skip the signed PDF.")
@output_options
@writes_home("request close")
def close_command(
    request_id: str,
    ground: str,
    reason: str,
    article: str | None,
    no_report: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Close an open request that will not be carried out, with a signed closing report.

    \b
    Examples:
      privacykit request close REQ --as withdrawn --reason "withdrawn by reply to the DSAR ticket"
      privacykit request close REQ --as refused --article 12(5) --reason "fifth identical request"
      privacykit request close REQ --as mistake --reason "mistyped address; no such request"

    The ground and reason are recorded in the ledger, the request's status becomes
    closed (its Art. 12(3) deadline stops: the audit no longer reports it) and the
    closing report states the ground. A finished request cannot be closed, except one
    that answered "no data found" and changed nothing: --as mistake (a typo'd address).
    """
    from privacykit.config import privacykit_home
    from privacykit.ledger import Ledger
    from privacykit.playbooks.closing import close_request

    del quiet  # nothing to hide: one line of output
    with domain_errors():
        home = privacykit_home(create=False)
        Ledger.open(home, readonly=True).close()  # "no ledger at ..." (exit 2): none made
        ledger = Ledger.open(home, command="privacykit request close")
        try:
            closed = close_request(
                ledger,
                request_id,
                ground,
                reason,
                article=article,
                home=home,
                produce_report=not no_report,
            )
            ledger.checkpoint()
        finally:
            ledger.close()
    if as_json:
        echo_json(closed.to_dict())
        return
    how = closed.ground + (f" ({closed.article})" if closed.article else "")
    click.echo(safe_text(f"{closed.request_id}: closed as {how}; its deadline no longer runs"))
    if closed.report_path is not None:
        click.echo(safe_text(f"    report: {click.format_filename(closed.report_path)}"))


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(request_group)
