"""The ``privacykit`` command line: a thin layer over the library.

Each command group lives in its own module and calls one library function per
command; domain errors become one-line messages with meaningful exit codes
(0 ok, 1 operational failure or findings, 2 usage / bad input).
"""

from __future__ import annotations

import click

from privacykit import __version__
from privacykit.cli import (
    access_cmd,
    audit_cmd,
    erase_cmd,
    evidence_cmd,
    keys_cmd,
    ledger_cmd,
    playbook_cmd,
    sandbox_cmd,
)

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="privacykit")
def cli() -> None:
    """GDPR/privacy compliance automation for Zendesk.

    Erase (Art. 17) and export (Art. 15/20) a person's data from Zendesk with
    playbooks, keep a tamper-evident ledger of every step, audit compliance, and
    hand regulators signed evidence they can verify offline.
    """


for _module in (
    sandbox_cmd,
    ledger_cmd,
    playbook_cmd,
    erase_cmd,
    access_cmd,
    audit_cmd,
    keys_cmd,
    evidence_cmd,
):
    _module.register(cli)


def main() -> None:
    cli(prog_name="privacykit")
