"""The ``privacykit`` command line: a thin layer over the library.

Each command group lives in its own module (``<group>_cmd.py``, with a ``register(cli)``
function) and calls one library function per command; domain errors become one-line
messages with meaningful exit codes (0 ok, 1 operational failure or findings, 2 usage /
bad input).

Start-up is part of every cron run and every resumed erasure, so the root group loads
command modules lazily (click's documented lazy-loading group): :data:`COMMANDS` names each
top-level command's module, attribute and short help, and ``privacykit --help`` is printed
from that table without importing any command module (and so without reportlab, pyHanko,
httpx or sqlite-utils). A command module is imported only when its command runs or its own
``--help`` is asked for. A new command is one entry in :data:`COMMANDS` plus its module's
``register`` (``tests/test_docs.py`` checks the two agree).

Usage errors (unknown option, bad choice, missing argument) are one ``Error: ...`` line on
stderr with exit 2, like every other error, instead of click's three-line form.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import IO, Any

import click

from privacykit import __version__

__all__ = ["COMMANDS", "LazyCommand", "OneLineUsageError", "PrivacykitGroup", "cli", "main"]


@dataclass(frozen=True)
class LazyCommand:
    """Where a top-level command lives, and its short help (shown without importing it)."""

    module: str
    attribute: str
    short_help: str


# Short help is written to survive on one line of `privacykit --help` (click cuts a
# docstring's first sentence at "Art." otherwise); each command declares the same text as
# its ``short_help=``, and a test keeps the two equal.
COMMANDS: dict[str, LazyCommand] = {
    "access": LazyCommand(
        "privacykit.cli.access_cmd",
        "access",
        "Export a person's data, read-only (GDPR Art. 15/20).",
    ),
    "audit": LazyCommand(
        "privacykit.cli.audit_cmd", "audit", "Check compliance now, read-only (exit 1: findings)."
    ),
    "erase": LazyCommand(
        "privacykit.cli.erase_cmd", "erase_command", "Erase people from Zendesk (GDPR Art. 17)."
    ),
    "evidence": LazyCommand(
        "privacykit.cli.evidence_cmd",
        "evidence_group",
        "Signed PDF reports and bundles that verify offline.",
    ),
    "keys": LazyCommand(
        "privacykit.cli.keys_cmd", "keys_group", "The evidence signing key and certificate."
    ),
    "ledger": LazyCommand(
        "privacykit.cli.ledger_cmd", "ledger_group", "The tamper-evident record of every request."
    ),
    "playbook": LazyCommand(
        "privacykit.cli.playbook_cmd", "playbook_group", "List and validate playbook files."
    ),
    "request": LazyCommand(
        "privacykit.cli.request_cmd",
        "request_group",
        "Close a request: withdrawn, refused or a mistake.",
    ),
    "sandbox": LazyCommand(
        "privacykit.cli.sandbox_cmd", "sandbox", "A faithful local Zendesk for tests and demos."
    ),
}


class OneLineUsageError(click.UsageError):
    """A click usage error shown as one ``Error: ...`` line naming where help is, exit 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        message = " ".join(self.format_message().split())
        if self.ctx is not None and self.ctx.command.get_help_option(self.ctx) is not None:
            message += f" (see '{self.ctx.command_path} --help')"
        click.echo(f"Error: {message}", file=file, err=file is None)


def _one_line(exc: click.UsageError) -> click.UsageError:
    # `privacykit` with no arguments shows the help (click's NoArgsIsHelpError): keep it.
    if isinstance(exc, click.exceptions.NoArgsIsHelpError | OneLineUsageError):
        return exc
    return OneLineUsageError(exc.format_message(), ctx=exc.ctx)


class PrivacykitGroup(click.Group):
    """The root group: lazily loaded commands and one-line usage errors."""

    def __init__(self, *args: Any, lazy: dict[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy:
            return command
        entry = self.lazy[cmd_name]
        loaded = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        self.add_command(loaded, cmd_name)
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The documented lazy pattern still imports every command to ask for its short
        # help; the table already has it, so listing commands imports nothing.
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(formatter.width)))
            else:
                rows.append((name, self.lazy[name].short_help))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        # Sub-commands parse their arguments inside the parent's invoke: one place catches
        # every usage error below the root.
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None


@click.group(
    cls=PrivacykitGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="privacykit")
def cli() -> None:
    """GDPR/privacy compliance automation for Zendesk.

    Erase (Art. 17) and export (Art. 15/20) a person's data from Zendesk with
    playbooks, keep a tamper-evident ledger of every step, audit compliance, and
    hand regulators signed evidence they can verify offline.
    """


def main() -> None:
    cli(prog_name="privacykit")
