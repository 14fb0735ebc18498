"""`privacykit playbook list/validate`: exact output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.playbooks.loader import builtin_playbook_dir

ERASURE = builtin_playbook_dir() / "erasure.yaml"
MINIMAL = """\
schema: privacykit.playbook/1
name: tiny
kind: erasure
art19_recipients:
  none_reason: no recipients
steps:
  - resolve_subject
  - discover
  - check_safety
  - evidence
"""


def test_cli_validate_ok() -> None:
    result = CliRunner().invoke(cli, ["playbook", "validate", str(ERASURE)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"{ERASURE}: valid erasure playbook 'erasure' (11 steps, sha256 "
    )


def test_cli_validate_error_exact_output(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL + "policy:\n  profiles: shred\n")
    result = CliRunner().invoke(cli, ["playbook", "validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {path}:12: policy.profiles: "
        "expected one of 'delete', 'keep_scrubbed', got 'shred'\n"
    )


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["playbook", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope.yaml'}: playbook file not found\n"


def test_cli_list_includes_home_copies(home: Path) -> None:
    (home / "playbooks").mkdir()
    (home / "playbooks" / "tiny.yaml").write_text(MINIMAL)
    result = CliRunner().invoke(cli, ["playbook", "list", "--json"])
    assert result.exit_code == 0, result.output
    books = {b["name"]: b for b in json.loads(result.stdout)["playbooks"]}
    assert books["erasure"]["origin"] == "builtin" and books["erasure"]["valid"]
    assert books["tiny"]["origin"] == "home"


def test_cli_list_flags_invalid_playbooks(home: Path) -> None:
    (home / "playbooks").mkdir()
    (home / "playbooks" / "broken.yaml").write_text("schema: nope\n")
    result = CliRunner().invoke(cli, ["playbook", "list"])
    assert result.exit_code == 1
    assert "broken           INVALID" in result.stdout
