"""`privacykit playbook`: list the available playbooks and validate playbook files."""

from __future__ import annotations

import click

from privacykit.cli.output import domain_errors, echo_json, output_options, safe_text
from privacykit.config import privacykit_home
from privacykit.playbooks.loader import list_playbooks, load_playbook

__all__ = ["register"]


@click.group("playbook")
def playbook_group() -> None:
    """Work with playbooks: the YAML files that declare a request's steps and policy."""


@playbook_group.command("list")
@output_options
def list_command(as_json: bool, quiet: bool) -> None:
    """List the playbooks in $PRIVACYKIT_HOME/playbooks and the shipped ones.

    A copy in the home directory with the same file name takes precedence. Invalid
    playbooks are listed with their error; the exit code is 1 if any is invalid.
    """
    with domain_errors():
        infos = list_playbooks(privacykit_home(create=False))
    if as_json:
        echo_json({"playbooks": [info.as_dict() for info in infos]})
    else:
        if not infos:
            click.echo("no playbooks found")
        for info in infos:
            if info.error is None:
                click.echo(
                    f"{safe_text(info.name):<16} {info.kind:<8} {len(info.steps)} steps  "
                    f"{info.origin:<7}  {safe_text(info.path)}"
                )
            else:
                click.echo(f"{safe_text(info.name):<16} INVALID  {safe_text(info.error)}")
    if any(info.error is not None for info in infos):
        raise SystemExit(1)


@playbook_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@output_options
def validate_command(file: str, as_json: bool, quiet: bool) -> None:
    """Check a playbook FILE: YAML syntax, schema, step order and policy.

    Exit 0 when valid; otherwise one line naming the file, line and key, exit 2.
    """
    with domain_errors():
        book = load_playbook(file)
    if as_json:
        echo_json(
            {
                "file": file,
                "valid": True,
                "name": book.name,
                "kind": book.kind,
                "steps": book.step_names(),
                "sha256": book.sha256,
            }
        )
    else:
        click.echo(
            f"{safe_text(file)}: valid {book.kind} playbook '{safe_text(book.name)}' "
            f"({len(book.steps)} steps, sha256 {book.sha256[:16]})"
        )


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(playbook_group)
