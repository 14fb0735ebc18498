"""The wheel carries what the code looks for (#11): the shipped data folders are found in a
checkout and inside an installed package, and the build hook ships every file in them.
The whole path (build, install into a clean venv, erase from outside the checkout) is
``.ci/wheel-check``, run by ``.ci/run``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from privacykit import shipped
from privacykit.evidence.render import template_dirs
from privacykit.playbooks.loader import builtin_playbook_dir

ROOT = Path(__file__).resolve().parent.parent


def _setup_shipped() -> dict[str, tuple[str, ...]]:
    """``SHIPPED`` from setup.py, read without running the build."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SHIPPED":
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError("setup.py has no SHIPPED")


def test_a_checkout_uses_the_top_level_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIVACYKIT_PLAYBOOKS", raising=False)
    monkeypatch.delenv("PRIVACYKIT_TEMPLATES", raising=False)
    assert shipped.shipped_dir("playbooks") == ROOT / "playbooks"
    assert builtin_playbook_dir() == ROOT / "playbooks"
    assert template_dirs({}) == [ROOT / "report_templates"]


def test_an_installed_package_uses_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site-packages" / "privacykit"
    (package / "_data" / "playbooks").mkdir(parents=True)
    (package / "_data" / "report_templates").mkdir(parents=True)
    monkeypatch.setattr(shipped, "_PACKAGE", package)
    monkeypatch.delenv("PRIVACYKIT_PLAYBOOKS", raising=False)
    assert builtin_playbook_dir() == package / "_data" / "playbooks"
    assert template_dirs({}) == [package / "_data" / "report_templates"]


def test_the_build_hook_ships_every_file_of_the_data_folders() -> None:
    folders = _setup_shipped()
    assert set(folders) == {"playbooks", "report_templates"}
    for folder, patterns in folders.items():
        present = {p.name for p in (ROOT / folder).iterdir() if p.is_file()}
        matched = {p.name for pattern in patterns for p in (ROOT / folder).glob(pattern)}
        assert present and matched == present, f"{folder}/: not shipped {present - matched}"


def test_the_source_distribution_carries_the_data_folders() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8").split()
    for folder in _setup_shipped():
        assert folder in manifest
