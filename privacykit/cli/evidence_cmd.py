"""`privacykit evidence`: signed reports and evidence bundles for regulators.

Thin: each command makes one call into :mod:`privacykit.evidence`. ``verify`` needs no
ledger and no PRIVACYKIT_HOME: it is what a regulator runs on a bundle. Exit codes: 0 ok;
1 the bundle does not verify (the message names the first problem) or evidence cannot
be produced; 2 bad input (unknown request id, unreadable or absent zip).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

# The package re-exports lazily: reportlab and pyHanko load when a command calls into it,
# not when this module is imported for `evidence --help`.
from privacykit import evidence
from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import domain_errors, echo_json, output_options, safe_text
from privacykit.errors import UsageError

if TYPE_CHECKING:
    from privacykit.ledger import Ledger

__all__ = ["register"]


@contextmanager
def _open_ledger(*, readonly: bool = False) -> Iterator[Ledger]:
    from privacykit.ledger import Ledger

    # These commands name requests of an existing ledger: a home holding none is "no
    # ledger at ..." (exit 2), never a new, empty one (bad input changes nothing).
    ledger = Ledger.open(readonly=True)
    if not readonly:
        ledger.close()
        ledger = Ledger.open()
    try:
        yield ledger
    finally:
        ledger.close()


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError("--since must be a date like 2024-05-31") from None


@click.group("evidence", short_help="Signed PDF reports and bundles that verify offline.")
def evidence_group() -> None:
    """Signed PDF evidence reports and bundles a regulator verifies offline."""


@evidence_group.command("export", short_help="Write an evidence bundle for a regulator.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The bundle to write (a .zip; replaced if it exists).",
)
@click.option(
    "--request",
    "request_ids",
    multiple=True,
    metavar="ID",
    help="Export this request (repeatable).",
)
@click.option("--since", metavar="DATE", help="Export every request received on or after DATE.")
@output_options
@writes_home("evidence export")
def export_command(
    out: Path, request_ids: tuple[str, ...], since: str | None, as_json: bool, quiet: bool
) -> None:
    """Write an evidence bundle: signed reports, the requests' ledger entries with Merkle
    inclusion proofs, a fresh signed checkpoint, certificates, manifest and VERIFY.txt."""
    with domain_errors():
        since_date = _parse_date(since)
        if not request_ids and since_date is None:
            raise UsageError("say which requests to export: --request ID or --since DATE")
        with _open_ledger() as ledger:
            result = evidence.export_bundle(
                ledger, out, request_ids=list(request_ids) or None, since=since_date
            )
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"wrote {click.format_filename(result.path)}")
    click.echo(
        f"  {len(result.requests)} request(s), {result.entries} ledger entries, "
        f"{result.reports} signed report(s); checkpoint tree size {result.checkpoint_size}"
    )
    click.echo(f"  sha256 {result.sha256}")


@evidence_group.command(
    "verify", short_help="Verify an evidence bundle offline (exit 1: it does not)."
)
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@output_options
def verify_command(bundle: Path, as_json: bool, quiet: bool) -> None:
    """Verify an evidence bundle offline: manifest hashes and signature, the checkpoint
    signature, every inclusion proof, every manifest fact against the entries, and every
    PDF signature against the certificate named for it (printed per report). Exit 1 names
    the first problem; exit 2 when the file is absent or not a zip."""
    with domain_errors():
        report = evidence.verify_bundle(bundle)
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"OK {click.format_filename(report.path)}")
    click.echo(
        f"  {len(report.requests)} request(s), {report.entries} ledger entries with valid "
        f"inclusion proofs, {report.reports} signed report(s) intact and trusted"
    )
    click.echo(f"  checkpoint tree size {report.checkpoint_size}, root {report.checkpoint_root}")
    click.echo(f"  manifest signed by certificate SHA-256 {report.manifest_signer}")
    for checked in report.report_files:
        other = "" if checked["signer"] == report.manifest_signer else " (another certificate)"
        click.echo(
            f"  {safe_text(checked['file'])} signed by certificate SHA-256 "
            f"{checked['signer']}{other}"
        )
    click.echo("  compare these fingerprints with the ones the controller gives you out of band")


@evidence_group.command("show", short_help="List a request's signed reports.")
@click.argument("request_id")
@output_options
def show_command(request_id: str, as_json: bool, quiet: bool) -> None:
    """List the signed reports stored for REQUEST_ID, with their paths and sha256."""
    # Read-only: no writer lock, so it answers while an erasure runs.
    with domain_errors(), _open_ledger(readonly=True) as ledger:
        reports = evidence.request_reports(ledger, request_id)
    if as_json:
        echo_json({"request_id": request_id, "reports": reports})
        return
    if not reports:
        click.echo(f"no signed report for {safe_text(request_id)} yet")
        return
    for report in reports:
        click.echo(f"{report['created_at']}  entry {report['seq']}  {report['path']}")
        click.echo(f"    sha256 {report['sha256']}")


@evidence_group.command("report", short_help="Produce a request's signed report again.")
@click.argument("request_id")
@click.option(
    "--tsa-url",
    metavar="URL",
    help="RFC 3161 timestamp authority to timestamp the signature (PAdES B-T).",
)
@output_options
@writes_home("evidence report")
def report_command(request_id: str, tsa_url: str | None, as_json: bool, quiet: bool) -> None:
    """Produce REQUEST_ID's signed report again from the evidence record in the ledger
    (e.g. with a timestamp, or after editing the templates). The old report is kept."""
    with domain_errors(), _open_ledger() as ledger:
        report = evidence.reproduce_report(ledger, request_id, tsa_url=tsa_url)
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"signed report: {click.format_filename(report.path)}")
    click.echo(f"  sha256 {report.sha256}")
    if report.restored_texts:
        click.echo(
            f"  {report.restored_texts} text(s) the ledger withheld restored from the playbook"
        )
    if report.unrecovered_texts:
        click.echo(
            f"  {report.unrecovered_texts} text(s) the ledger withheld could not be restored "
            "(the request's playbook copy is missing)"
        )


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(evidence_group)
