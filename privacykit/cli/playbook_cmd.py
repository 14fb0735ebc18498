"""`privacykit playbook`: list the available playbooks and validate playbook files.

Thin: one call into :mod:`privacykit.playbooks.loader` per command (imported inside the
command, so loading this module for ``--help`` stays cheap). With ``--json`` an invalid
playbook is still one JSON document on stdout (``valid: false`` with file, line, key and
message) besides the one ``Error:`` line on stderr and exit 2.
"""

from __future__ import annotations

import click

from privacykit.cli.output import domain_errors, echo_json, output_options, safe_text
from privacykit.errors import PlaybookError

__all__ = ["register"]


@click.group("playbook", short_help="List and validate playbook files.")
def playbook_group() -> None:
    """Work with playbooks: the YAML files that declare a request's steps and policy."""


@playbook_group.command(
    "list", short_help="List the available playbooks and whether they are valid."
)
@output_options
def list_command(as_json: bool, quiet: bool) -> None:
    """List the playbooks in $PRIVACYKIT_HOME/playbooks and the shipped ones.

    A copy in the home directory with the same file name takes precedence. Invalid
    playbooks are listed with their error; the exit code is 1 if any is invalid.
    """
    from privacykit.config import privacykit_home
    from privacykit.playbooks.loader import list_playbooks

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


@playbook_group.command(
    "validate", short_help="Check a playbook file (exit 2 naming file, line, key)."
)
@click.argument("file", type=click.Path(dir_okay=False))
@output_options
def validate_command(file: str, as_json: bool, quiet: bool) -> None:
    """Check a playbook FILE: YAML syntax, schema, step order and policy.

    Exit 0 when valid; otherwise one line naming the file, line and key, exit 2 (with
    --json also a JSON document on stdout with "valid": false, line, key and error).
    """
    from privacykit.playbooks.loader import load_playbook

    with domain_errors():
        try:
            book = load_playbook(file)
        except PlaybookError as exc:
            if as_json:
                echo_json(_invalid_document(file, exc))
            raise
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


def _invalid_document(file: str, exc: PlaybookError) -> dict[str, object]:
    """The ``--json`` answer for an invalid playbook: where and what, as the error line."""
    return {
        "file": file,
        "valid": False,
        "line": exc.line,
        "key": exc.key,
        "error": safe_text(str(exc)).replace("\n", " "),
    }


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(playbook_group)
