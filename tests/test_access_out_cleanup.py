"""An access run stopped by ``--max-wait`` leaves no empty ``--out`` folder behind (#14).

Only what this run created, and only while it is empty: a folder that existed before, or
one with anything in it, stays exactly as it was.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from privacykit.cli import cli
from privacykit.playbooks.access.files import output_dir
from privacykit.sandbox import SandboxServer

EMAIL = "asker@example.com"


@pytest.fixture
def sb(env_sandbox: Any, home: Path) -> SandboxServer:
    server: SandboxServer = env_sandbox(seed="none", time_scale=600.0, rng_seed=7)
    server.state.add_user("Asker", email=EMAIL)
    # Zendesk answers the first lookup with "come back in a day": past --max-wait.
    server.configure(
        {
            "throttle": {"endpoints": ["GET /api/v2/users/search"], "times": 1},
            "retry_after": 86400,
        }
    )
    return server


def access(out: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["access", EMAIL, "--out", str(out), *args])


def stopped(result: Any) -> None:
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert "would have to wait 86400s, longer than the 900s allowed" in line
    assert "Zendesk said to come back at 20" in line


def test_a_folder_this_run_created_is_removed_with_its_created_parents(
    sb: SandboxServer, tmp_path: Path
) -> None:
    out = tmp_path / "answers" / "2024" / "case-1"
    stopped(access(out))
    assert not (tmp_path / "answers").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pk-home", "pk-witness"]

    # The next run, once Zendesk lets us, answers into the same place.
    sb.configure({"retry_after": None})
    again = access(out)
    assert again.exit_code == 0, again.output
    assert (out / "index.html").is_file()


def test_a_folder_that_existed_is_kept_with_its_mode(sb: SandboxServer, tmp_path: Path) -> None:
    parent = tmp_path / "shared"
    parent.mkdir(mode=0o755)
    parent.chmod(0o755)
    out = parent / "new"
    stopped(access(out))
    assert parent.is_dir() and not out.exists()  # only the folder it created went
    assert stat.S_IMODE(parent.stat().st_mode) == 0o755

    out.mkdir()
    out.chmod(0o750)
    sb.configure({"throttle": {"endpoints": ["GET /api/v2/users/search"], "times": 1}})
    stopped(access(out))
    assert out.is_dir(), "an empty folder the operator made is theirs"
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_a_folder_with_content_is_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with pytest.raises(KeyboardInterrupt), output_dir(out):
        (out / "data.json").write_text("{}")
        raise KeyboardInterrupt
    assert (out / "data.json").read_text() == "{}"

    # Content in a created parent keeps that parent; the empty child still goes.
    other = tmp_path / "c" / "d"
    with pytest.raises(RuntimeError), output_dir(other):
        (tmp_path / "c" / "note.txt").write_text("theirs")
        raise RuntimeError("stop")
    assert not other.exists() and (tmp_path / "c" / "note.txt").is_file()


def test_a_run_that_finishes_keeps_its_folder_with_what_it_delivered(tmp_path: Path) -> None:
    out = tmp_path / "done"
    with output_dir(out) as path:
        (path / "data.json").write_text("{}", encoding="utf-8")
    assert out.is_dir() and stat.S_IMODE(out.stat().st_mode) == 0o700


def test_a_run_that_delivered_nothing_leaves_no_empty_folder(tmp_path: Path) -> None:
    # Every subject needed review: an empty folder would look like an (empty) answer.
    out = tmp_path / "parent" / "nothing"
    with output_dir(out):
        pass
    assert not (tmp_path / "parent").exists()
