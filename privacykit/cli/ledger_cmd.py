"""`privacykit ledger`: list, show, export, extend, checkpoint and verify the local ledger.

Thin: each command opens the ledger in ``PRIVACYKIT_HOME`` and makes one library call.
Reading commands (``list``, ``show``, ``export``, ``verify``) open it read-only and take no
lock; ``extend`` and ``checkpoint`` write and hold the home (``--wait``). A home without a
ledger is exit 2 ("no ledger at …"), never an empty success. Nothing personal is shown
because nothing personal is stored: subjects appear as keyed references. Exit codes: 0
ok; 1 verification failed (naming the first bad thing) or the ledger cannot be used; 2
bad input, including an unknown request id.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from privacykit import clock
from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import (
    DomainClickException,
    domain_errors,
    echo_json,
    output_options,
    safe_text,
)

if TYPE_CHECKING:
    from privacykit.ledger import Ledger, RequestRecord, VerifyReport

__all__ = ["due_text", "register"]

# Kept in step with privacykit.ledger.records (not imported: `--help` must stay fast).
STATUSES = (
    "open",
    "in_progress",
    "needs_review",
    "pending_compliance",
    "completed",
    "failed",
    "closed",
)
DSAR_KINDS = ("erasure", "access")
MAX_EXTENSION_MONTHS = 2
#: `ledger show` prints a step's data up to this many characters (all of it with --json).
DATA_WIDTH = 100


@contextmanager
def _open_ledger(*, readonly: bool, check: bool = True) -> Iterator[Ledger]:
    from privacykit.ledger import Ledger

    with domain_errors():
        ledger = Ledger.open(readonly=readonly, check=check)
        try:
            yield ledger
        finally:
            ledger.close()


def due_text(request: RequestRecord, today: date | None = None) -> str:
    """``12 days remaining`` / ``due today`` / ``overdue by 3 days`` / ``closed``."""
    if not request.is_open:
        return "closed"
    days = request.days_remaining(today)
    if days > 0:
        return f"{days} day{'s' if days != 1 else ''} remaining"
    if days == 0:
        return "due today"
    return f"overdue by {-days} day{'s' if days != -1 else ''}"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _short_ref(ref: str) -> str:
    return ref[:16] + "…" if len(ref) > 17 else ref


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip())


@click.group("ledger", short_help="The tamper-evident record of every request.")
def ledger_group() -> None:
    """The tamper-evident record of every request and step (PRIVACYKIT_HOME)."""


@ledger_group.command("list", short_help="List data subject requests and their deadlines.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only requests with this status (repeatable).",
)
@click.option("--kind", type=click.Choice(DSAR_KINDS), help="Only requests of this kind.")
@click.option("--overdue", is_flag=True, help="Only open requests past their due date.")
@click.option("--case", "case_ref", metavar="REF", help="Only requests with this case reference.")
@output_options
def list_command(
    statuses: tuple[str, ...],
    kind: str | None,
    overdue: bool,
    case_ref: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """List data subject requests with their due dates and days remaining."""
    today = clock.today()
    with _open_ledger(readonly=True) as ledger, domain_errors():
        requests = ledger.list_requests(
            statuses or None, kind or DSAR_KINDS, overdue, today=today, case_ref=case_ref
        )
    if as_json:
        echo_json({"requests": [r.to_dict(today) for r in requests]})
        return
    if not requests:
        click.echo("No requests.")
        return
    rows = [["REQUEST", "CASE", "KIND", "STATUS", "RECEIVED", "DUE", "REMAINING", "SUBJECT"]]
    for r in requests:
        rows.append(
            [
                r.request_id,
                r.case_ref or "-",
                r.kind,
                r.status,
                r.received_at.isoformat(),
                r.due_date.isoformat(),
                due_text(r, today),
                _short_ref(r.subject_ref),
            ]
        )
    _table([[safe_text(cell) for cell in row] for row in rows])


def _data_text(data: dict[str, Any], width: int | None) -> str:
    text = safe_text(json.dumps(data, sort_keys=True, separators=(", ", ": "), ensure_ascii=False))
    if width is None or len(text) <= width:
        return text
    return f"{text[: width - 1]}… ({len(text):,} characters; --full or --json for all)"


@ledger_group.command("show", short_help="Show one request and every recorded step.")
@click.argument("request_id")
@click.option("--full", is_flag=True, help="Print each step's data in full, however long.")
@output_options
def show_command(request_id: str, full: bool, as_json: bool, quiet: bool) -> None:
    """Show one request and every recorded step, with times (never personal data)."""
    today = clock.today()
    with _open_ledger(readonly=True) as ledger, domain_errors():
        request = ledger.get_request(request_id)
        entries = ledger.entries(request_id)
        artifacts = ledger.artifacts(request_id)
    if as_json:
        echo_json(
            {
                "request": request.to_dict(today),
                "entries": [e.to_dict() for e in entries],
                "artifacts": [a.to_dict() for a in artifacts],
            }
        )
        return
    extension = "none"
    if request.extension_months:
        extension = f"{request.extension_months} month(s): {request.extension_reason}"
    playbook = request.playbook_name or "-"
    if request.playbook_sha256:
        playbook += f" (sha256 {request.playbook_sha256[:12]}…)"
    if request.extension_notified_at:
        extension += f" (subject told {request.extension_notified_at.isoformat()})"
    status = request.status
    if request.closing_ground:
        status += f" as {request.closing_ground}"
        if request.closing_article:
            status += f" ({request.closing_article})"
    verified = request.identity_verified_at.isoformat() if request.identity_verified_at else "-"
    if request.identity_method:
        verified += f" ({request.identity_method})"
    fields = [
        ("Request", request.request_id),
        ("Case", request.case_ref or "-"),
        ("Kind", request.kind),
        ("Subject", request.subject_ref),
        ("Status", status + (f" ({request.status_reason})" if request.status_reason else "")),
        ("Received", request.received_at.isoformat()),
        ("Identity verified", verified),
        ("Due", f"{request.due_date.isoformat()} ({due_text(request, today)})"),
        ("Extension", extension),
        ("Operator", request.operator or "-"),
        ("Playbook", playbook),
        ("Tool version", request.tool_version),
        ("Batch", request.batch_id or "-"),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{name.ljust(width)}  {safe_text(value)}")
    click.echo("")
    click.echo(f"Steps ({_count(len(entries), 'entry', 'entries')})")
    rows = [["SEQ", "TIME", "STEP", "PHASE", "DATA"]]
    for e in entries:
        data = _data_text(e.data, None if full else DATA_WIDTH)
        rows.append([str(e.seq), e.ts, safe_text(e.step_key), e.phase, data])
    _table(rows)
    if artifacts:
        click.echo("")
        click.echo("Artifacts")
        for a in artifacts:
            click.echo(f"  {a.sha256}{a.suffix}  {safe_text(a.kind)}  {a.size} bytes")


@ledger_group.command("export", short_help="Export the requests table (CSV or JSON).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV (one row per request) or a JSON document.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (created 0600, refused if it exists) instead of stdout.",
)
@click.option("--kind", type=click.Choice(DSAR_KINDS), help="Only requests of this kind.")
def export_command(fmt: str, out: Path | None, kind: str | None) -> None:
    """Export the requests table (dates, statuses, deadlines, playbooks; no subject data)
    for the record of processing."""
    from privacykit.ledger.requests import EXPORT_COLUMNS

    with _open_ledger(readonly=True) as ledger, domain_errors():
        rows = list(ledger.export_requests(kind or DSAR_KINDS))
    if fmt == "json":
        text = json.dumps(
            {"schema": "privacykit.requests-export/1", "requests": rows}, indent=2, sort_keys=True
        )
        text += "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow([_csv_cell(row[column]) for column in EXPORT_COLUMNS])
        text = buffer.getvalue()
    if out is None:
        click.echo(text, nl=False)
        return
    with domain_errors():
        from privacykit.ledger.files import write_new_file

        write_new_file(out, text.encode("utf-8"))
    click.echo(f"{len(rows)} request(s) written to {click.format_filename(out)}", err=True)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a cell starting like a formula: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _verify_lines(report: VerifyReport) -> list[str]:
    counts = ", ".join(
        [
            _count(report.entries, "entry", "entries"),
            _count(report.requests, "request"),
            _count(report.checkpoints, "checkpoint"),
            _count(report.artifacts, "artifact"),
        ]
    )
    lines = [f"ok: {counts} verified", f"root {report.root.hex()} at size {report.entries}"]
    latest = report.latest_checkpoint
    if latest is not None:
        lines.append(f"latest checkpoint: size {latest.size}, entries up to {latest.ts}")
    else:
        lines.append("no checkpoint yet (one is signed at the end of every run)")
    if report.unsigned_from is not None:
        lines.append(
            f"entries {report.unsigned_from}..{report.entries} are being written by "
            f"{report.writer or 'a run in progress'} (signed when it ends)"
        )
    if report.witness is None:
        lines.append("witness: none (set PRIVACYKIT_WITNESS_DIR; see README, threat model)")
    else:
        lines.append(
            f"witness: {report.witnessed} checkpoint(s) in {report.witness}"
            + (f", latest size {report.latest_witnessed}" if report.witnessed else "")
        )
    return lines


@ledger_group.command("verify", short_help="Recompute every hash and signature (exit 1: bad).")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint note saved elsewhere, to detect a truncated ledger (repeatable).",
)
@output_options
def verify_command(checkpoint_files: tuple[Path, ...], as_json: bool, quiet: bool) -> None:
    """Recompute every hash, checkpoint signature and derived table, and check every
    checkpoint kept elsewhere; exit 1 naming the first bad thing."""
    from privacykit.config import describe_home
    from privacykit.errors import LedgerIntegrityError, UsageError
    from privacykit.ledger.checkpoints import read_note_file

    notes = []
    with domain_errors():
        for path in checkpoint_files:
            try:
                notes.append((f"--checkpoint {path.name}", read_note_file(path, str(path))))
            except LedgerIntegrityError as exc:
                raise UsageError(f"--checkpoint {exc}") from None
    with _open_ledger(readonly=True, check=False) as ledger:
        where = describe_home(ledger.home)
        try:
            report = ledger.verify(saved_checkpoints=notes)
        except LedgerIntegrityError as exc:
            message = safe_text(str(exc)).replace("\n", " ")
            if as_json:
                echo_json({"ok": False, "entry": exc.entry, "error": message, "home": where})
            raise DomainClickException(
                f"ledger verification failed in {safe_text(where)}: {message}", 1
            ) from None
    if as_json:
        document = report.to_dict()
        document["home"] = where
        echo_json(document)
        return
    click.echo(f"ledger {safe_text(where)}")
    for line in _verify_lines(report):
        click.echo(safe_text(line))


@ledger_group.command("extend", short_help="Extend a request's deadline by one or two months.")
@click.argument("request_id")
@click.option(
    "--months",
    type=click.IntRange(1, MAX_EXTENSION_MONTHS),
    required=True,
    help="Extra months (Art. 12(3): at most two in total).",
)
@click.option("--reason", required=True, help="Why (recorded; tell the subject too).")
@click.option(
    "--notified",
    metavar="DATE",
    required=True,
    help="When the subject was told of the extension and why (Art. 12(3): within one "
    "month of receipt).",
)
@output_options
@writes_home("ledger extend")
def extend_command(
    request_id: str, months: int, reason: str, notified: str, as_json: bool, quiet: bool
) -> None:
    """Extend a request's deadline by one or two months, with a recorded reason.

    Art. 12(3): the subject must be told of the extension, and why, within one month of
    receipt; an extension notified later is refused (exit 2).
    """
    from privacykit.errors import UsageError
    from privacykit.ledger.dates import parse_date

    today = clock.today()
    with _open_ledger(readonly=True):
        pass  # "no ledger at ..." (exit 2): a request cannot be named in a ledger not made
    with _open_ledger(readonly=False) as ledger, domain_errors():
        try:
            told = parse_date(notified.strip())
        except UsageError:
            raise UsageError("--notified must be a date like 2026-01-31") from None
        request = ledger.extend(request_id, months, reason, notified_at=told)
    if as_json:
        echo_json({"request": request.to_dict(today)})
        return
    click.echo(
        f"{request.request_id}: extended by {months} month{'s' if months != 1 else ''}, "
        f"due {request.due_date.isoformat()} ({due_text(request, today)}); "
        f"subject told on {told.isoformat()}"
    )


@ledger_group.command("checkpoint", short_help="Sign a checkpoint of the ledger now and print it.")
@output_options
@writes_home("ledger checkpoint")
def checkpoint_command(as_json: bool, quiet: bool) -> None:
    """Sign a checkpoint of the ledger now and print it (save it elsewhere to detect
    truncation later with `ledger verify --checkpoint`; PRIVACYKIT_WITNESS_DIR does it for
    every checkpoint)."""
    with _open_ledger(readonly=False) as ledger, domain_errors():
        checkpoint = ledger.checkpoint()
    if as_json:
        echo_json(checkpoint.to_dict())
        return
    click.echo(checkpoint.note, nl=False)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(ledger_group)
