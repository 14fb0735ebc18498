"""`privacykit audit`: the scheduled compliance checks, for cron and monitoring.

Thin: parses options, calls :func:`privacykit.audit.run_audit` once, prints a short
table (or one JSON document with ``--json``) and exits 0 all clear, 1 findings,
2 could not run. Any error that stops the audit is "could not run" (exit 2), one
line on stderr, whatever its kind: monitoring must never read it as "all clear" nor
confuse it with a finding.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import click

from privacykit.audit.options import (
    DEFAULT_DUE_WITHIN_DAYS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_SOFT_DELETE_GRACE_HOURS,
    DEFAULT_STUCK_AFTER_DAYS,
)
from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import (
    DomainClickException,
    domain_errors,
    echo_json,
    output_options,
    safe_text,
)
from privacykit.cli.request_options import bounds_options

if TYPE_CHECKING:
    from privacykit.audit import AuditResult

__all__ = ["register"]


@click.group(
    "audit",
    invoke_without_command=True,
    short_help="Check compliance now, read-only (exit 1: findings).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Also write a signed audit PDF (stored as an artifact of the audit's ledger entry).",
)
@click.option(
    "--due-within",
    type=click.IntRange(min=0),
    default=DEFAULT_DUE_WITHIN_DAYS,
    show_default=True,
    metavar="DAYS",
    help="Report open requests due within this many days (deadline.due_soon).",
)
@click.option(
    "--stuck-after",
    type=click.IntRange(min=0),
    default=DEFAULT_STUCK_AFTER_DAYS,
    show_default=True,
    metavar="DAYS",
    help="Compliance deletion still pending after this many days is stuck.",
)
@click.option(
    "--max-requests",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_REQUESTS,
    show_default=True,
    metavar="N",
    help="At most this many Zendesk API requests per run; completed erasures are "
    "re-checked in rotation, continuing where the last run stopped.",
)
@click.option(
    "--soft-delete-grace",
    type=click.IntRange(min=0),
    default=DEFAULT_SOFT_DELETE_GRACE_HOURS,
    show_default=True,
    metavar="HOURS",
    help="A user still only soft-deleted this many hours after privacykit soft-deleted "
    "it is lingering (0: report at once).",
)
@bounds_options
@output_options
@click.option(
    "--wait",
    "wait_for_home",
    is_flag=True,
    help="If another privacykit command is writing to PRIVACYKIT_HOME, wait for it "
    "instead of exiting 2.",
)
@click.pass_context
def audit(
    ctx: click.Context,
    wait_for_home: bool,
    as_json: bool,
    quiet: bool,
    report: bool,
    due_within: int,
    stuck_after: int,
    max_requests: int,
    soft_delete_grace: int,
    max_wait: float | None,
    request_deadline: float | None,
) -> None:
    """Check that we are compliant right now (read-only against Zendesk).

    Re-checks that erased people are gone from Zendesk, polls pending compliance
    deletions, finds lingering soft deletions and requests due soon or overdue
    (Art. 12(3)), and verifies the ledger. The run is recorded in the ledger.
    Exit status: 0 all clear, 1 findings, 2 could not run. `audit history` lists the
    past runs.
    """
    if ctx.invoked_subcommand is not None:
        return  # `audit history`: read-only, no audit run and no lock
    _run_audit(
        wait_for_home=wait_for_home,
        as_json=as_json,
        quiet=quiet,
        report=report,
        due_within=due_within,
        stuck_after=stuck_after,
        max_requests=max_requests,
        soft_delete_grace=soft_delete_grace,
        max_wait=max_wait,
        request_deadline=request_deadline,
    )


@writes_home("audit")
def _run_audit(
    *,
    wait_for_home: bool = False,  # taken by writes_home (the lock); never reaches here
    as_json: bool,
    quiet: bool,
    report: bool,
    due_within: int,
    stuck_after: int,
    max_requests: int,
    soft_delete_grace: int,
    max_wait: float | None,
    request_deadline: float | None,
) -> None:
    """The audit run itself, holding the home's writer lock."""
    from privacykit.audit import AuditOptions, run_audit

    del wait_for_home, quiet  # no progress display to hide: the audit is built to run unattended
    options = AuditOptions(
        due_within_days=due_within,
        stuck_after_days=stuck_after,
        max_requests=max_requests,
        soft_delete_grace_hours=soft_delete_grace,
        report=report,
    )
    try:
        with domain_errors():
            result = run_audit(options, max_wait=max_wait, request_deadline=request_deadline)
    except DomainClickException as exc:
        # The audit's contract: whatever stopped it, it "could not run".
        raise DomainClickException(f"audit could not run: {exc.message}", 2) from None
    if as_json:
        echo_json(result.to_document())
    else:
        _print_table(result)
    for error in result.errors:
        click.echo(_line(f"audit incomplete: {error.check}: {error.reason}"), err=True)
    click.get_current_context().exit(result.exit_code)


@audit.command("history", short_help="List past audit runs, newest first.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    metavar="N",
    help="Show the N most recent runs.",
)
@output_options
def history_command(limit: int, as_json: bool, quiet: bool) -> None:
    """List past audit runs, newest first: when, result, findings, incomplete checks and
    the signed report (audits are kept apart from `ledger list`, which lists requests)."""
    from privacykit.ledger import Ledger

    del quiet
    with domain_errors():
        ledger = Ledger.open(readonly=True)
        try:
            runs = ledger.audit_runs(limit)
        finally:
            ledger.close()
    if as_json:
        echo_json({"audits": [run.to_dict() for run in runs]})
        return
    if not runs:
        click.echo("No audit runs.")
        return
    rows = [["AUDIT", "STARTED", "STATUS", "FINDINGS", "INCOMPLETE", "REPORT"]]
    for run in runs:
        rows.append(
            [
                run.request_id,
                run.started_at[:19].replace("T", " "),
                run.status,
                "-" if run.findings is None else str(run.findings),
                "-" if run.incomplete_checks is None else str(run.incomplete_checks),
                f"{run.report_sha256[:12]}…" if run.report_sha256 else "-",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(_line(_row(row, widths).rstrip()))


def _print_table(result: AuditResult) -> None:
    """A short table of findings, then one summary line and what was checked."""
    findings = sorted(
        result.findings,
        key=lambda f: (_SEVERITY_ORDER.get(str(f.severity), 9), f.check, f.request_id or ""),
    )
    if findings:
        rows = [
            [safe_text(str(f.severity)), safe_text(f.check), safe_text(f.request_id or "-")]
            for f in findings
        ]
        headers = ["SEVERITY", "CHECK", "REQUEST"]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        click.echo(_row(headers, widths) + "  FINDING")
        for row, finding in zip(rows, findings, strict=True):
            click.echo(_row(row, widths) + "  " + _line(finding.message))
    counts = Counter(str(f.severity) for f in findings)
    summary = ", ".join(
        f"{counts[s]} {s}" for s in sorted(counts, key=lambda s: _SEVERITY_ORDER.get(s, 9))
    )
    status = {0: "all clear", 1: "FINDINGS", 2: "INCOMPLETE"}[result.exit_code]
    line = f"audit: {status}: {len(findings)} finding(s)" + (f" ({summary})" if summary else "")
    if result.errors:
        line += f", {len(result.errors)} check(s) could not complete"
    click.echo(_line(line))
    checked = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.checked.items())
    click.echo(_line(f"checked: {checked or 'nothing'}"))
    if result.home:
        click.echo(_line(f"ledger: {result.home}"))
    methods = ", ".join(f"{m} {n}" for m, n in result.zendesk_methods.items()) or "none sent"
    click.echo(_line(f"zendesk: {result.zendesk_requests} request(s), read-only ({methods})"))
    recorded = f"recorded: audit request {result.audit_request_id}"
    if result.checkpoint_size is not None:
        recorded += f", checkpoint at tree size {result.checkpoint_size}"
    elif result.checkpoint_skipped_reason:
        recorded += f", no checkpoint signed ({result.checkpoint_skipped_reason})"
    click.echo(_line(recorded))
    if result.report_path:
        click.echo(_line(f"report: {result.report_path} (sha256 {result.report_sha256})"))
    elif result.report_skipped_reason:
        click.echo(_line(f"report: not written ({result.report_skipped_reason})"))


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))


def _line(text: str) -> str:
    return safe_text(text).replace("\n", " ")


_SEVERITY_ORDER = {"critical": 0, "high": 1, "warning": 2}


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(audit)
