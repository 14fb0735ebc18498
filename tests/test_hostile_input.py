"""Hostile local input (#14): YAML bombs, deep nesting, huge or odd files, and subjects kept
out of ``ps`` and shell history with ``--from-file -``.

Every refusal is one ``Error:`` line on stderr with exit 2 and no request sent; the bombs
below would take seconds and gigabytes (or a ``RecursionError``) if they were parsed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from privacykit.cli import cli
from privacykit.errors import PlaybookError, SubjectError
from privacykit.playbooks import subjects as subjects_mod
from privacykit.playbooks.loader import (
    MAX_PLAYBOOK_BYTES,
    builtin_playbook_dir,
    list_playbooks,
    load_playbook_text,
)
from privacykit.playbooks.subjects import MAX_SUBJECTS_LINES, read_subjects

# "Billion laughs": 10 levels of 10 aliases, about 500 bytes, 10^10 strings once expanded.
ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(ord('b') + i)}: &{chr(ord('b') + i)} [{', '.join(['*' + chr(ord('a') + i)] * 10)}]\n"
    for i in range(9)
)
DEEP_FLOW = "[" * 20_000 + "]" * 20_000 + "\n"
DEEP_MAPPING = "a: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n"  # 50 KB
ERASURE = (builtin_playbook_dir() / "erasure.yaml").read_text(encoding="utf-8")


def _one_error_line(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    return result.stderr


def test_the_alias_bomb_is_small() -> None:
    assert len(ALIAS_BOMB) < 600 and ALIAS_BOMB.count("*") == 90


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (ALIAS_BOMB, 1, "YAML anchors and aliases (&name, *name) are not allowed in a playbook"),
        (ERASURE.replace("profiles: delete", "profiles: &p delete", 1), None, "anchors"),
        (DEEP_FLOW, 1, "nested deeper than 32 levels"),
        (DEEP_MAPPING, 1, "nested deeper than 32 levels"),
        ("x" * (MAX_PLAYBOOK_BYTES + 1), None, "playbook is larger than 64 KiB"),
    ],
    ids=["alias-bomb", "anchor", "deep-flow", "deep-mapping", "too-large"],
)
def test_library_refuses_before_expanding(text: str, line: int | None, message: str) -> None:
    with pytest.raises(PlaybookError) as info:
        load_playbook_text(text, file="pb.yaml")
    assert message in str(info.value)
    if line is not None:
        assert info.value.line == line


def test_validate_alias_bomb_exact_output(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    result = CliRunner().invoke(cli, ["playbook", "validate", str(path)])
    assert _one_error_line(result) == (
        f"Error: {path}:1: YAML anchors and aliases (&name, *name) are not allowed in a playbook\n"
    )
    assert result.stdout == ""


def test_validate_json_on_an_invalid_file_prints_a_json_document(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    result = CliRunner().invoke(cli, ["playbook", "validate", "--json", str(path)])
    _one_error_line(result)
    assert json.loads(result.stdout) == {
        "file": str(path),
        "valid": False,
        "line": 1,
        "key": None,
        "error": f"{path}:1: YAML anchors and aliases (&name, *name) are not allowed in a playbook",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP_FLOW, ":1: nested deeper than 32 levels"),
        ("a: 1\n" * 20_000, ": playbook is larger than 64 KiB"),
    ],
    ids=["deep", "large"],
)
def test_validate_deep_and_large_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["playbook", "validate", str(path)])
    assert _one_error_line(result) == f"Error: {path}{message}\n"


def test_validate_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    # A real process with a timeout: opening a FIFO for reading would block forever.
    done = subprocess.run(
        [sys.executable, "-m", "privacykit", "playbook", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"Error: {fifo}: playbook is not a regular file\n"


def test_playbook_list_marks_a_bomb_in_the_home_invalid(home: Path) -> None:
    (home / "playbooks").mkdir()
    (home / "playbooks" / "bomb.yaml").write_text(ALIAS_BOMB)
    (home / "playbooks" / "deep.yaml").write_text(DEEP_FLOW)
    result = CliRunner().invoke(cli, ["playbook", "list"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert (
        "bomb             INVALID  "
        f"{home / 'playbooks' / 'bomb.yaml'}:1: YAML anchors and aliases (&name, *name) are "
        "not allowed in a playbook"
    ) in lines
    assert (
        f"deep             INVALID  {home / 'playbooks' / 'deep.yaml'}:1: nested deeper "
        "than 32 levels" in lines
    )
    assert {info.name for info in list_playbooks(home) if info.error is None} >= {
        "erasure",
        "access",
    }


@pytest.mark.parametrize("command", ["erase", "access"])
def test_a_bomb_given_as_playbook_sends_nothing(
    command: str, zendesk_env: dict[str, str], sandbox: Any, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    args = [command, "a@example.com", "--playbook", str(path)]
    args += ["--yes"] if command == "erase" else ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert "YAML anchors and aliases" in _one_error_line(result)
    assert sandbox.request_log() == []


# --- subjects -------------------------------------------------------------------------------


def test_read_subjects_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"b@example.com\n# note\nuser:42\nB@example.com\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    found = read_subjects(["a@example.com"], "-")
    assert [s.key for s in found] == ["email:a@example.com", "email:b@example.com", "user:42"]


def test_stdin_errors_name_stdin_and_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a@example.com\nnope\n")))
    with pytest.raises(SubjectError) as info:
        read_subjects([], "-")
    assert str(info.value) == (
        "stdin:2: not a subject; expected an email, user:<id>, ext:<external_id> or "
        "source:type:identifier_type:value"
    )


def test_subjects_file_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real bound is 16 MiB; 1 MiB keeps the test small, the code path is the same.
    monkeypatch.setattr(subjects_mod, "MAX_SUBJECTS_FILE_BYTES", 2**20)
    path = tmp_path / "big.txt"
    path.write_text("a@example.com\n" * 80_000)  # 1.1 MiB, 80,000 lines: only the size is over
    with pytest.raises(SubjectError) as info:
        read_subjects([], path)
    assert str(info.value) == (
        f"{path}: subjects file is larger than 1 MiB; split it into several batches"
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_subjects_file_line_count_is_bounded(tmp_path: Path, newline: str) -> None:
    path = tmp_path / "many.txt"
    path.write_bytes((newline * (MAX_SUBJECTS_LINES + 1)).encode())
    with pytest.raises(SubjectError) as info:
        read_subjects([], path)
    assert str(info.value) == (
        f"{path}: subjects file has more than 100,000 lines; split it into several batches"
    )
    path.write_bytes((newline * MAX_SUBJECTS_LINES).encode())
    assert read_subjects([], path) == []  # exactly at the bound: read (and empty)


def test_erase_from_stdin_dry_run(zendesk_env: dict[str, str], sandbox: Any, home: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["erase", "--from-file", "-", "--dry-run", "--json"],
        input="nobody.one@example.com\nnobody.two@example.com\n",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    assert len(document["requests"]) == 2
    assert "nobody.one" not in result.output  # output names subjects by position, not value
    assert len(sandbox.request_log()) > 0


def test_erase_from_stdin_needs_yes_or_dry_run(
    zendesk_env: dict[str, str], sandbox: Any, home: Path
) -> None:
    result = CliRunner().invoke(cli, ["erase", "--from-file", "-"], input="a@example.com\n")
    assert _one_error_line(result) == (
        "Error: --from-file - reads subjects from standard input, so the confirmation cannot "
        "be asked there: check the plan with --dry-run, then run with --yes\n"
    )
    assert result.stdout == ""
    assert sandbox.request_log() == []


@pytest.mark.parametrize("command", ["erase", "access"])
def test_bad_stdin_subject_is_one_line_and_sends_nothing(
    command: str, zendesk_env: dict[str, str], sandbox: Any, home: Path, tmp_path: Path
) -> None:
    args = [command, "--from-file", "-"]
    args += ["--yes"] if command == "erase" else ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args, input="a@example.com\nuser:abc\n")
    assert _one_error_line(result) == (
        "Error: stdin:2: user:<id> needs a positive numeric Zendesk user id\n"
    )
    assert sandbox.request_log() == []


def test_access_from_stdin(
    zendesk_env: dict[str, str], sandbox: Any, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answer"
    result = CliRunner().invoke(
        cli,
        ["access", "--from-file", "-", "--out", str(out), "--json"],
        input="nobody@example.com\n",
    )
    assert result.exit_code == 0, result.output
    assert [r["outcome"] for r in json.loads(result.stdout)["requests"]] == ["no_data_found"]
