"""`privacykit erase`: erase people from Zendesk (GDPR Art. 17) with the erasure playbook.

Thin: parses options into an :class:`EraseCommand`, opens the batch
(:func:`privacykit.playbooks.erasure.open_erasure`), shows the plan the library returns and
asks for confirmation, runs it, and prints the library's views -- the text plan and the
``--json`` plan come from the same view. Output names subjects by position and form,
never by value.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import (
    DomainClickException,
    domain_errors,
    echo_json,
    output_options,
    progress,
    safe_text,
)
from privacykit.cli.request_options import (
    bounds_options,
    from_file_option,
    identity_options,
    no_report_option,
    received_option,
)

__all__ = ["register"]

# Beyond this many subjects the plan shows one line per subject instead of every record.
_DETAILED_PLAN = 20

_WOULD = {
    "retry discovery": "to discover again",
    "erase": "to erase",
    "nothing: no data found": "with no data",
    "stop for review": "stopped for review",
}


def _plan_lines(views: list[dict[str, Any]]) -> list[str]:
    lines = []
    detailed = len(views) <= _DETAILED_PLAN
    for view in views:
        lines.extend(_plan_job(view, detailed))
    counts: dict[str, int] = {}
    for view in views:
        would = _WOULD.get(view["would"], view["would"])
        counts[would] = counts.get(would, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines.append(f"{len(views)} subject(s): {summary}")
    return lines


def _plan_job(view: dict[str, Any], detailed: bool) -> list[str]:
    head = view["label"] + (f" (continues {view['request_id']})" if view["resumed"] else "")
    if view["error"]:
        return [f"{head}: discovery failed ({view['error']}); it is tried again when erasing"]
    counts = view["counts"]
    found = (
        f"{counts['users']} user(s), {counts['identities']} identities, "
        f"{counts['profiles']} profile(s)"
    )
    if view["would"] == "nothing: no data found":
        systems = ", ".join(view["searched"].get("systems", []))
        return [f"{head}: no data found (searched {systems})"]
    tickets = view.get("tickets")
    if view["would"] == "stop for review":
        lines = [f"{head}: {found}; stops for review:"] + [f"    - {r}" for r in view["reasons"]]
        if tickets and detailed:
            lines.append(f"    tickets: {tickets['summary']}")
        return lines
    lines = [f"{head}: {found}"]
    if detailed:
        for user in view["users"]:
            steps = [
                {"soft_delete": "soft delete", "permanent_delete": "permanently delete"}[a]
                for a in user["actions"]
            ]
            lines.append(
                f"    user {user['user_id']} ({user['role']}): {', '.join(steps) or 'done'}"
            )
        for profile in view["profiles"]:
            kept = profile["identifiers_kept"]
            action = {
                "delete": "delete",
                "scrub_then_delete": f"replace keeping {kept} identifier(s), then delete",
                "scrub": f"replace keeping {kept} identifier(s) (kept: {profile['why']})",
                "retain": f"keep unchanged ({profile['why']})",
            }.get(profile["action"], profile["action"])
            owner = f"user {profile['user_id']}" if profile["user_id"] is not None else "no user"
            lines.append(
                f"    profile {profile['profile_id']} {profile['source_type']} ({owner}): {action}"
            )
        if tickets:
            kept = f" (kept: {tickets['kept_why']})" if tickets["kept_why"] else ""
            lines.append(f"    tickets: {tickets['summary']}{kept}")
    return lines


def _skipped_lines(skipped: list[dict[str, Any]]) -> list[str]:
    """Subjects not run because their erasure already finished, then how to override."""
    if not skipped:
        return []
    lines = [f"{view['label']}: {view['text']}; skipped" for view in skipped]
    erased = sum(1 for view in skipped if view["skipped"] == "already_erased")
    if erased:
        lines.append(
            f"{erased} subject(s) skipped as already erased (--new-request if a person asked again)"
        )
    if len(skipped) > erased:
        lines.append(f"{len(skipped) - erased} subject(s) skipped as finished in this batch")
    return lines


def _continue_command(from_file: Path | None, with_subjects: bool) -> str:
    """The command that continues an interrupted batch (the subjects stay the DPO's)."""
    if not with_subjects:
        return "privacykit erase --resume --yes"
    if from_file is None:
        return "privacykit erase --resume --yes SUBJECT... (the same subjects)"
    if str(from_file) == "-":
        return "privacykit erase --resume --yes --from-file - < SUBJECTS_FILE (the same file)"
    return f"privacykit erase --resume --yes --from-file {click.format_filename(from_file)}"


def _interrupted_lines(document: dict[str, Any], from_file: Path | None) -> list[str]:
    """What an interrupted run did and how to continue it."""
    summary = document["summary"]
    finished = sum(n for k, n in summary.items() if k not in ("interrupted", "not_started"))
    mid, left = summary.get("interrupted", 0), document["not_started"]
    lines = [
        f"Interrupted: {finished} request(s) finished, {mid} stopped mid-way (recorded; "
        f"nothing half-done is lost), {left} subject(s) not started (batch {document['batch_id']})."
    ]
    # A request stopped before its discovery finished needs its subject again too.
    again = left > 0 or document.get("needs_subjects", 0) > 0
    lines.append("Continue with: " + _continue_command(from_file, again))
    return lines


def _waiting_lines(waiting: list[dict[str, Any]]) -> list[str]:
    return [
        f"batch {w['batch_id']}: {w['not_started']} of {w['subjects']} subject(s) not started; "
        "continue it with: privacykit erase --resume --yes --from-file ITS_SUBJECTS_FILE"
        for w in waiting
        if not w["given_now"]
    ]


def _result_lines(view: dict[str, Any]) -> list[str]:
    counts = view["counts"]
    if view["outcome"] is None and view.get("state") in ("interrupted", "not_started"):
        if view["state"] == "not_started":
            return [f"{view['label']} -: not started"]
        return [f"{view['label']} {view['request_id']}: interrupted (continues with --resume)"]
    outcome = (view["outcome"] or "not run").replace("_", " ")
    head = f"{view['label']} {view['request_id'] or '-'}: {outcome}"
    if view["outcome"] == "no_data_found":
        line = f"{head} (searched {', '.join(view['searched'].get('systems', []))})"
    else:
        line = (
            f"{head} (users {counts.get('users_permanently_deleted', 0)}/{counts.get('users', 0)} "
            f"permanently deleted, profiles {counts.get('profiles_deleted', 0)} deleted / "
            f"{counts.get('profiles_scrubbed', 0)} scrubbed / {counts.get('profiles', 0)}"
            + (
                f", tickets {counts.get('tickets_permanently_deleted', 0)} deleted / "
                f"{counts.get('tickets_redacted', 0)} redacted / "
                f"{counts.get('tickets_kept', 0)} kept / {counts['tickets']}"
                if counts.get("tickets")
                else ""
            )
            + ")"
        )
    lines = [line]
    if view["report"]:
        lines.append(f"    report: {view['report']}")
    if view["report_error"]:
        lines.append(f"    no signed report: {view['report_error']}")
    lines.extend(f"    - {reason}" for reason in view["reasons"])
    return lines


def _print_results(document: dict[str, Any], elapsed: float, quiet: bool) -> None:
    views = document["requests"]
    for view in views:
        if quiet and view["outcome"] in ("erased", "no_data_found", "pending_compliance"):
            continue
        if document.get("interrupted") and view["outcome"] is None:
            view = {**view, "state": "interrupted" if view["request_id"] else "not_started"}
        for line in _result_lines(view):
            click.echo(safe_text(line))
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in document["summary"].items())
    stats = document["stats"]
    click.echo(
        safe_text(
            f"{len(views)} request(s): {summary or 'nothing to do'} "
            f"({stats.get('requests', 0)} Zendesk requests, {stats.get('rate_limited', 0)} "
            f"answered 429, {elapsed:.1f} s)"
        )
    )
    if any(view["outcome"] == "pending_compliance" for view in views) and not document.get(
        "interrupted"
    ):
        click.echo(
            "Zendesk is still completing compliance deletions; "
            "run `privacykit erase --resume` later to record completion."
        )


@click.command("erase", short_help="Erase people from Zendesk (GDPR Art. 17).")
@click.argument("subjects", nargs=-1, metavar="[SUBJECT]...")
@from_file_option
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
@received_option
@bounds_options
@no_report_option
@click.option(
    "--from-ticket",
    metavar="ID",
    help="Take the request from this Zendesk DSAR ticket: its requester is the subject, "
    "its creation date the received date, its id the case reference.",
)
@identity_options
@click.option(
    "--new-request",
    is_flag=True,
    help="A new request from people already erased: erase them again instead of skipping them.",
)
@output_options
@writes_home("erase")
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
    max_wait: float | None,
    request_deadline: float | None,
    no_report: bool,
    from_ticket: str | None,
    case_ref: str | None,
    identity_verified: str | None,
    identity_method: str | None,
    new_request: bool,
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
    from privacykit.playbooks.erasure import EraseCommand, open_erasure

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
        new_request=new_request,
        max_wait=max_wait,
        request_deadline=request_deadline,
        case_ref=case_ref,
        identity_verified=identity_verified,
        identity_method=identity_method,
        from_ticket=from_ticket,
    )

    if from_file is not None and str(from_file) == "-" and not (yes or dry_run):
        # The confirmation would be read from the same standard input as the subjects.
        raise DomainClickException(
            "--from-file - reads subjects from standard input, so the confirmation cannot "
            "be asked there: check the plan with --dry-run, then run with --yes",
            2,
        )

    try:
        with ExitStack() as stack:
            state: dict[str, Any] = {"done": 0}

            def on_progress(p: Any) -> None:
                if "bar" not in state:
                    state["bar"] = stack.enter_context(
                        progress(length=p.total, label="erasing", quiet=quiet or as_json)
                    )
                bar = state["bar"]
                bar.label = p.label()
                bar.update(p.finished - state["done"])
                state["done"] = p.finished

            with domain_errors(), open_erasure(command) as batch:
                skipped = list(batch.skipped)
                waiting = batch.tracker.waiting() if resume and not batch.jobs else []
                if not batch.jobs:
                    report = None
                elif dry_run:
                    report = batch.plan()
                else:
                    confirmed = True
                    if not yes:
                        plan = batch.plan()
                        for line in _plan_lines(plan.as_dict()["requests"]):
                            click.echo(safe_text(line), err=as_json)
                        # Nothing destructive would happen: just record the outcomes.
                        if plan.would_change:
                            try:
                                confirmed = click.confirm(
                                    "Erase now? This cannot be undone", default=False, err=True
                                )
                            except click.Abort:
                                confirmed = False
                    if confirmed:
                        report = batch.run(on_progress=on_progress)
                    else:
                        plan.dry_run, plan.confirmed = False, False
                        report = plan
    except KeyboardInterrupt:
        # Ctrl-C before the run started (planning, opening): planning is read-only.
        click.echo("Interrupted before erasing anything: nothing was changed.", err=True)
        raise click.exceptions.Exit(1) from None

    if report is None:
        document: dict[str, Any] = {
            "requests": [],
            "summary": {},
            "stats": {},
            "skipped": skipped,
            "exit_code": 0,
        }
        document["waiting_batches"] = waiting
        if as_json:
            echo_json(document)
        else:
            for line in _skipped_lines(skipped):
                click.echo(safe_text(line))
            click.echo("0 request(s): nothing to do")
            for line in _waiting_lines(waiting):
                click.echo(safe_text(line))
        raise click.exceptions.Exit(0)
    closed = batch.close_error()
    if closed is not None and report.executed:
        # The ledger's final checkpoint could not be signed (e.g. the disk is full): the
        # run's own results still print, then this one line, exit 1.
        report.interrupted = True
        report.stopped = report.stopped or f"stopped: {closed}; free space, then continue"
    document = report.as_dict()
    if not as_json:
        for line in _skipped_lines(skipped):
            click.echo(safe_text(line), err=not report.confirmed)
    if as_json:
        echo_json(document)
    elif report.dry_run:
        for line in _plan_lines(document["requests"]):
            click.echo(safe_text(line))
        click.echo("dry run: nothing was changed")
    elif not report.confirmed:
        click.echo("not confirmed: nothing was changed", err=True)
    else:
        _print_results(document, report.elapsed, quiet)
        if report.stopped:
            click.echo(safe_text(report.stopped), err=True)
        if report.interrupted:
            for line in _interrupted_lines(document, from_file):
                click.echo(safe_text(line))
        for line in _waiting_lines(document.get("waiting_batches", [])):
            click.echo(safe_text(line))
    raise click.exceptions.Exit(1 if not report.confirmed else report.exit_code)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(erase_command)
