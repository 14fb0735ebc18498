"""`privacykit keys`: the installation's evidence signing key and certificate.

Thin: each command makes one call into :mod:`privacykit.evidence.keys`. Keys live in
``$PRIVACYKIT_HOME/keys`` (owner-only). A PKCS#12 passphrase is read from the
environment variable named by ``--passphrase-env``, never from the command line (where
it would land in shell history and process listings).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from privacykit.cli.home_lock import writes_home
from privacykit.cli.output import domain_errors, echo_json, output_options, safe_text
from privacykit.config import Secret, privacykit_home
from privacykit.errors import UsageError

if TYPE_CHECKING:
    from privacykit.evidence.keys import SigningKeys

__all__ = ["register"]

# privacykit.evidence.keys.DEFAULT_ORGANISATION, repeated so `--help` need not import
# cryptography (tests/test_evidence_cli.py checks the two agree).
DEFAULT_ORGANISATION = "privacykit installation"


def _print_keys(keys: SigningKeys, as_json: bool) -> None:
    if as_json:
        echo_json(keys.describe())
        return
    click.echo(f"fingerprint (SHA-256): {keys.fingerprint}")
    click.echo(f"subject:               {safe_text(keys.subject)}")
    click.echo(f"algorithm:             {keys.key_algorithm}")
    click.echo(f"valid until:           {keys.not_after.date().isoformat()}")
    click.echo(f"certificate:           {click.format_filename(keys.cert_path)}")


@click.group("keys", short_help="The evidence signing key and certificate.")
def keys_group() -> None:
    """The evidence signing key and certificate (in PRIVACYKIT_HOME/keys)."""


@keys_group.command("init", short_help="Create or import the evidence signing certificate.")
@click.option(
    "--organisation",
    default=DEFAULT_ORGANISATION,
    show_default=True,
    help="Organisation named in the self-signed certificate's subject.",
)
@click.option("--force", is_flag=True, help="Replace existing keys (the old certificate is kept).")
@click.option(
    "--pkcs12",
    "pkcs12_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Import the organisation's own key and certificate from this PKCS#12 file.",
)
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Name of the environment variable holding the PKCS#12 passphrase.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 36500),
    default=3650,
    show_default=True,
    help="Validity of a self-signed certificate, in days.",
)
@output_options
@writes_home("keys init")
def init_command(
    organisation: str,
    force: bool,
    pkcs12_file: Path | None,
    passphrase_env: str | None,
    days: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Create a self-signed ECDSA P-256 signing certificate, or import one (--pkcs12).

    Key usage digitalSignature + nonRepudiation; files are owner-only. Prints the
    certificate's SHA-256 fingerprint, which regulators compare out of band.
    """
    from privacykit.evidence.keys import init_keys

    with domain_errors():
        passphrase: Secret | None = None
        if passphrase_env is not None:
            if pkcs12_file is None:
                raise UsageError("--passphrase-env only makes sense with --pkcs12")
            value = os.environ.get(passphrase_env)
            if value is None:
                raise UsageError(f"environment variable {passphrase_env} is not set")
            passphrase = Secret(value)
        keys = init_keys(
            privacykit_home(create=False),  # created (0700) by init_keys once the input is good
            organisation=organisation,
            force=force,
            pkcs12_file=pkcs12_file,
            passphrase=passphrase,
            days=days,
        )
    _print_keys(keys, as_json)


@keys_group.command("show", short_help="Show the signing certificate's fingerprint and validity.")
@output_options
def show_command(as_json: bool, quiet: bool) -> None:
    """Print the signing certificate's SHA-256 fingerprint, subject and validity."""
    from privacykit.evidence.keys import load_keys

    with domain_errors():
        keys = load_keys(privacykit_home(create=False))
    _print_keys(keys, as_json)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(keys_group)
