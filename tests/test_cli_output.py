"""Shared CLI plumbing: terminal escaping and domain-error mapping."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from privacykit.cli.output import domain_errors, output_options, safe_text
from privacykit.errors import ConfigError, ServerError, ZendeskError


def test_safe_text_escapes_terminal_controls() -> None:
    assert safe_text("a\x1b[31mred") == "a\\u001b[31mred"
    assert safe_text("x\u202ey") == "x\\u202ey"  # right-to-left override
    assert safe_text("plain ünïcode שלום") == "plain ünïcode שלום"


@click.command()
@output_options
@click.argument("kind")
def _cmd(kind: str, as_json: bool, quiet: bool) -> None:
    with domain_errors():
        if kind == "usage":
            raise ConfigError("bad \x1b[2J input")
        if kind == "ops":
            raise ZendeskError("zendesk unreachable")
        click.echo(f"ok json={as_json} quiet={quiet}")


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["usage"], 2, "Error: bad \\u001b[2J input\n"),
        (["ops"], 1, "Error: zendesk unreachable\n"),
    ],
)
def test_domain_errors_map_to_exit_codes(args: list[str], code: int, stderr: str) -> None:
    result = CliRunner().invoke(_cmd, args)
    assert result.exit_code == code
    assert result.stderr == stderr
    assert result.stdout == ""


def test_output_options() -> None:
    result = CliRunner().invoke(_cmd, ["fine", "--json", "-q"])
    assert result.exit_code == 0
    assert result.stdout == "ok json=True quiet=True\n"


def test_server_error_is_operational() -> None:
    assert issubclass(ServerError, ZendeskError)
