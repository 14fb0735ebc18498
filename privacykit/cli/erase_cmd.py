"""`privacykit erase`: erase people from Zendesk (GDPR Art. 17) with the erasure playbook.

Thin: one call to :func:`privacykit.playbooks.erasure.run_erase`; this module turns options
into a command, shows the plan and asks for confirmation, draws progress on stderr and
prints the results. Output names subjects by position and form, never by value.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from privacykit.cli.output import (
    DomainClickException,
    domain_errors,
    echo_json,
    output_options,
    progress,
    safe_text,
)
from privacykit.playbooks.erasure import (
    BatchProgress,
    EraseCommand,
    EraseReport,
    ErasureJob,
    run_erase,
)

__all__ = ["register"]

# Beyond this many subjects the plan shows one line per subject instead of every record.
_DETAILED_PLAN = 20


def _plan_lines(report: EraseReport) -> list[str]:
    lines = []
    detailed = len(report.jobs) <= _DETAILED_PLAN
    for job in report.jobs:
        lines.extend(_plan_job(job, detailed))
    counts: dict[str, int] = {}
    for job in report.jobs:
        would = _would(job)
        counts[would] = counts.get(would, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines.append(f"{len(report.jobs)} subject(s): {summary}")
    return lines


def _would(job: ErasureJob) -> str:
    if job.plan_error:
        return "to discover again"
    if job.halt is None:
        return "to erase"
    return "with no data" if job.halt.outcome == "no_data_found" else "stopped for review"


def _plan_job(job: ErasureJob, detailed: bool) -> list[str]:
    head = job.label() + (f" (continues {job.request_id})" if job.resumed else "")
    if job.plan_error:
        return [f"{head}: discovery failed ({job.plan_error}); it is tried again when erasing"]
    halt = job.halt
    counts = job.result()["counts"]
    found = (
        f"{counts['users']} user(s), {counts['identities']} identities, "
        f"{counts['profiles']} profile(s)"
    )
    if halt is not None and halt.outcome == "no_data_found":
        systems = ", ".join(job.searched.get("systems", []))
        return [f"{head}: no data found (searched {systems})"]
    if halt is not None:
        return [f"{head}: {found}; stops for review:"] + [f"    - {r}" for r in halt.reasons]
    lines = [f"{head}: {found}"]
    if detailed:
        for user in job.users.values():
            steps = []
            if not user.soft_deleted:
                steps.append("soft delete")
            if not user.permanently_deleted:
                steps.append("permanently delete")
            lines.append(f"    user {user.user_id} ({user.role}): {', '.join(steps) or 'done'}")
        for profile in job.profiles.values():
            action = {
                "delete": "delete",
                "scrub_then_delete": f"replace keeping {profile.identifiers_kept} identifier(s), "
                "then delete",
                "scrub": f"replace keeping {profile.identifiers_kept} identifier(s) (kept: "
                f"{profile.why})",
                "retain": f"keep unchanged ({profile.why})",
            }.get(profile.action, profile.action)
            owner = f"user {profile.user_id}" if profile.user_id is not None else "no user"
            lines.append(
                f"    profile {profile.profile_id} {profile.source_type} ({owner}): {action}"
            )
    return lines


def _result_line(job: ErasureJob) -> list[str]:
    counts = job.evidence["counts"] if job.evidence else job.result()["counts"]
    head = f"{job.label()} {job.request_id or '-'}: {(job.outcome or 'not run').replace('_', ' ')}"
    if job.outcome == "no_data_found":
        line = f"{head} (searched {', '.join(job.searched.get('systems', []))})"
    else:
        line = (
            f"{head} (users {counts.get('users_permanently_deleted', 0)}/{counts.get('users', 0)} "
            f"permanently deleted, profiles {counts.get('profiles_deleted', 0)} deleted / "
            f"{counts.get('profiles_scrubbed', 0)} scrubbed / {counts.get('profiles', 0)})"
        )
    lines = [line]
    if job.report_path:
        lines.append(f"    report: {job.report_path}")
    lines.extend(f"    - {reason}" for reason in job.reasons)
    return lines


def _print_results(report: EraseReport, quiet: bool) -> None:
    for job in report.jobs:
        if quiet and job.outcome in ("erased", "no_data_found", "pending_compliance"):
            continue
        for line in _result_line(job):
            click.echo(safe_text(line))
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.summary().items())
    stats = report.stats
    click.echo(
        safe_text(
            f"{len(report.jobs)} request(s): {summary or 'nothing to do'} "
            f"({stats.get('requests', 0)} Zendesk requests, {stats.get('rate_limited', 0)} "
            f"answered 429, {report.elapsed:.1f} s)"
        )
    )
    if any(job.outcome == "pending_compliance" for job in report.jobs):
        click.echo(
            "Zendesk is still completing compliance deletions; "
            "run `privacykit erase --resume` later to record completion."
        )


@click.command("erase", short_help="Erase people from Zendesk (GDPR Art. 17).")
@click.argument("subjects", nargs=-1, metavar="[SUBJECT]...")
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Subjects, one per line or a CSV with a 'subject' column; '-' reads standard "
    "input, which keeps them out of ps and shell history.",
)
@click.option(
    "--playbook",
    metavar="NAME|FILE",
    default="erasure",
    show_default=True,
    help="Erasure playbook: a file, or a name in $PRIVACYKIT_HOME/playbooks or the shipped ones.",
)
@click.option("--dry-run", is_flag=True, help="Show the plan; send no changing request.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--resume",
    is_flag=True,
    help="Also continue every open erasure request (interrupted runs, pending compliance).",
)
@click.option(
    "--confirm-ambiguous",
    is_flag=True,
    help="You checked that every user found is the same person; erase anyway.",
)
@click.option(
    "--concurrency",
    type=int,
    default=8,
    show_default=True,
    help="Subjects prepared in parallel (discovery, profiles, soft deletion).",
)
@click.option("--received", metavar="DATE", help="When the request arrived (default: today).")
@click.option(
    "--no-report",
    is_flag=True,
    help="Record the evidence in the ledger but skip the signed PDF "
    "(make it later with the evidence commands).",
)
@output_options
def erase_command(
    subjects: tuple[str, ...],
    from_file: Path | None,
    playbook: str,
    dry_run: bool,
    yes: bool,
    resume: bool,
    confirm_ambiguous: bool,
    concurrency: int,
    received: str | None,
    no_report: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Erase people from Zendesk (GDPR Art. 17), with evidence.

    \b
    Give subjects on standard input, so they stay out of ps and shell history:
      privacykit erase --from-file - --dry-run < subjects.txt
      privacykit erase --from-file - --yes < subjects.txt

    SUBJECT is an email address, user:<zendesk id>, ext:<external_id> or a profile
    identifier query source:type:identifier_type:value. For each subject: find every
    user, identity and profile; remove profiles; soft-delete and permanently delete every
    user (at most 700 per 10 minutes); record every step in the ledger; produce the
    evidence. Agents, admins and the account owner are never erased by default.

    Without --yes the plan is shown and you are asked to confirm (so subjects on standard
    input need --yes or --dry-run). Exit 0 when every
    subject was erased, had no data, or awaits Zendesk's compliance deletion; 1 when some
    need review (or you declined); 2 for bad input (nothing was sent).
    """
    command = EraseCommand(
        subjects=subjects,
        from_file=from_file,
        playbook=playbook,
        dry_run=dry_run,
        yes=yes,
        resume=resume,
        confirm_ambiguous=confirm_ambiguous,
        concurrency=concurrency,
        received=received,
        produce_reports=not no_report,
    )

    if from_file is not None and str(from_file) == "-" and not (yes or dry_run):
        # The confirmation would be read from the same standard input as the subjects.
        raise DomainClickException(
            "--from-file - reads subjects from standard input, so the confirmation cannot "
            "be asked there: check the plan with --dry-run, then run with --yes",
            2,
        )

    def confirm(plan: EraseReport) -> bool:
        for line in _plan_lines(plan):
            click.echo(safe_text(line), err=as_json)
        if not any(job.would_change() for job in plan.jobs):
            return True  # nothing destructive would happen: just record the outcomes
        try:
            return click.confirm("Erase now? This cannot be undone", default=False, err=True)
        except click.Abort:
            return False

    with ExitStack() as stack:
        state: dict[str, Any] = {"done": 0}

        def on_progress(p: BatchProgress) -> None:
            if "bar" not in state:
                state["bar"] = stack.enter_context(
                    progress(length=p.total, label="erasing", quiet=quiet or as_json)
                )
            bar = state["bar"]
            bar.label = p.label()
            bar.update(p.finished - state["done"])
            state["done"] = p.finished

        with domain_errors():
            report = run_erase(command, confirm=confirm, on_progress=on_progress)

    if as_json:
        echo_json(report.as_dict())
    elif report.dry_run:
        for line in _plan_lines(report):
            click.echo(safe_text(line))
        click.echo("dry run: nothing was changed")
    elif not report.confirmed:
        click.echo("not confirmed: nothing was changed", err=True)
    else:
        _print_results(report, quiet)
    raise click.exceptions.Exit(1 if not report.confirmed else report.exit_code)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(erase_command)
