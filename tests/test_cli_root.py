"""The root command: lazy loading (``--help`` imports no command module and no heavy
library), ``--version``, and usage errors as one ``Error:`` line with exit 2 (#11, #17)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacykit import __version__
from privacykit.cli import COMMANDS, cli

HEAVY = ("reportlab", "pyhanko", "httpx", "sqlite_utils", "cryptography", "jinja2", "yaml")

# Runs the real entry point in a fresh interpreter and reports what it imported.
_PROBE = """
import json, sys
from privacykit.cli import main
sys.argv = ["privacykit", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _probe(*args: str) -> tuple[int, str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stderr.rstrip("\n").rpartition("\n")[2])
    return report["code"], done.stdout, report["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    code, output, modules = _probe("--help")
    assert code == 0
    assert "Commands:" in output and "erase" in output
    assert _heavy(modules) == []
    assert [m for m in modules if m.startswith("privacykit.cli.")] == []
    # Nothing beyond the package root, its error tree and the CLI root.
    assert [m for m in modules if m.startswith("privacykit")] == [
        "privacykit",
        "privacykit.cli",
        "privacykit.errors",
    ]


def test_version_is_fast_too() -> None:
    code, output, modules = _probe("--version")
    assert code == 0
    assert output == f"privacykit, version {__version__}\n"
    assert _heavy(modules) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_leaves_the_heavy_libraries_alone(command: str) -> None:
    # Library imports live in the command callbacks: asking a command for its help loads
    # its module, never the PDF, signing, HTTP or SQLite stacks.
    code, output, modules = _probe(command, "--help")
    assert code == 0 and output.startswith(f"Usage: privacykit {command} ")
    assert not set(_heavy(modules)) & {"reportlab", "pyhanko", "httpx", "sqlite_utils"}


def test_group_help_loads_only_its_own_module() -> None:
    code, _output, modules = _probe("playbook", "--help")
    assert code == 0
    assert [m for m in modules if m.startswith("privacykit.cli.")] == [
        "privacykit.cli.output",
        "privacykit.cli.playbook_cmd",
    ]
    assert _heavy(modules) == []


def test_version_matches_the_package_metadata() -> None:
    from importlib.metadata import version

    assert version("privacykit") == __version__
    result = CliRunner().invoke(cli, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"privacykit, version {__version__}\n")


def test_root_help_lists_every_command_on_one_line_each() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert result.stdout.split("Commands:\n", 1)[1] == (
        "  access    Export a person's data, read-only (GDPR Art. 15/20).\n"
        "  audit     Check compliance now, read-only (exit 1: findings).\n"
        "  erase     Erase people from Zendesk (GDPR Art. 17).\n"
        "  evidence  Signed PDF reports and bundles that verify offline.\n"
        "  keys      The evidence signing key and certificate.\n"
        "  ledger    The tamper-evident record of every request.\n"
        "  playbook  List and validate playbook files.\n"
        "  request   Close a request: withdrawn, refused or a mistake.\n"
        "  sandbox   A faithful local Zendesk for tests and demos.\n"
    )


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ["erase", "--bogus"],
            "Error: No such option '--bogus'. (see 'privacykit erase --help')\n",
        ),
        (
            ["ledger", "list", "--kind", "nope"],
            "Error: Invalid value for '--kind': 'nope' is not one of 'erasure', 'access'. "
            "(see 'privacykit ledger list --help')\n",
        ),
        (
            ["ledger", "show"],
            "Error: Missing argument 'REQUEST_ID'. (see 'privacykit ledger show --help')\n",
        ),
        (
            ["sandbox", "serve", "--seed", "bogus"],
            "Error: Invalid value for '--seed': 'bogus' is not one of 'none', 'demo'. "
            "(see 'privacykit sandbox serve --help')\n",
        ),
        (["nosuch"], "Error: No such command 'nosuch'. (see 'privacykit --help')\n"),
        (["--bogus"], "Error: No such option '--bogus'. (see 'privacykit --help')\n"),
        (
            ["audit", "--due-within", "-1"],
            "Error: Invalid value for '--due-within': -1 is not in the range x>=0. "
            "(see 'privacykit audit --help')\n",
        ),
    ],
    ids=[
        "unknown-option",
        "bad-choice",
        "missing-argument",
        "bad-choice-sandbox",
        "unknown-command",
        "unknown-root-option",
        "out-of-range",
    ],
)
def test_usage_errors_are_one_line_exit_2(
    args: list[str], stderr: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVACYKIT_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(cli, args, prog_name="privacykit")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == stderr


def test_usage_error_in_a_real_process_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "privacykit", "playbook", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "Error: Missing argument 'FILE'. (see 'privacykit playbook validate --help')\n"
    )


def test_no_arguments_shows_the_help() -> None:
    result = CliRunner().invoke(cli, [], prog_name="privacykit")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: privacykit [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in result.stderr
