"""Every command has help that survives one line, is registered lazily with the same short
help, and is documented in the README (sqlite-utils style)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from privacykit.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI_MODULES = sorted(p.stem for p in (ROOT / "privacykit" / "cli").glob("*_cmd.py"))
# Short help is shown beside the command name in an 80-column help listing: it must fit.
MAX_SHORT_HELP = 60


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    ctx = click.Context(group, info_name="privacykit")
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"`privacykit {prefix}{name}` is listed but cannot be loaded"
        full = f"{prefix}{name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, full + " "))
    return found


COMMANDS_FOUND = _commands(cli)


def test_there_are_commands() -> None:
    assert COMMANDS_FOUND, "the CLI registers no commands"


@pytest.mark.parametrize(("name", "command"), COMMANDS_FOUND, ids=[n for n, _ in COMMANDS_FOUND])
def test_command_has_help(name: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"`privacykit {name}` has no help text"
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("name", "command"), COMMANDS_FOUND, ids=[n for n, _ in COMMANDS_FOUND])
def test_command_has_a_short_help_that_fits_one_line(name: str, command: click.Command) -> None:
    # click derives a summary from the docstring's first sentence, which ends at "Art." and
    # is cut at the terminal width: every command says what it does in its own words.
    short = command.short_help or ""
    assert short.strip(), f"`privacykit {name}` has no short_help="
    assert len(short) <= MAX_SHORT_HELP, f"`privacykit {name}` short help is too long"
    assert short.endswith((".", ")")) and not short.endswith(("Art.", "...")), short


@pytest.mark.parametrize(
    "group", ["", *(n for n, c in COMMANDS_FOUND if isinstance(c, click.Group))]
)
def test_help_listings_show_whole_summaries(group: str) -> None:
    result = CliRunner().invoke(cli, [*group.split(), "--help"])
    assert result.exit_code == 0, result.output
    listing = result.stdout.split("Commands:\n", 1)[1]
    lines = listing.splitlines()
    assert lines and all(re.fullmatch(r"  \S+ +\S.*", line) for line in lines), listing
    assert "..." not in listing and not re.search(r"Art\.$", listing, re.M), listing


@pytest.mark.parametrize(("name", "command"), COMMANDS_FOUND, ids=[n for n, _ in COMMANDS_FOUND])
def test_command_documented_in_readme(name: str, command: click.Command) -> None:
    assert re.search(rf"`privacykit {re.escape(name)}\b", README), (
        f"README does not document `privacykit {name}`"
    )


@pytest.mark.parametrize("module_name", CLI_MODULES)
def test_every_command_module_is_registered_lazily_with_its_short_help(module_name: str) -> None:
    """The lazy table in ``privacykit.cli`` and each module's ``register`` must agree: a
    command added to a module but not to the table would silently never be reachable."""
    module = importlib.import_module(f"privacykit.cli.{module_name}")
    registered = click.Group("probe")
    module.register(registered)
    expected = {
        name: entry
        for name, entry in COMMANDS.items()
        if entry.module == f"privacykit.cli.{module_name}"
    }
    assert set(registered.commands) == set(expected), module_name
    for name, command in registered.commands.items():
        entry = expected[name]
        assert getattr(module, entry.attribute) is command
        assert command.short_help == entry.short_help, name
