"""Build hook: ship the top-level ``playbooks/`` and ``report_templates/`` inside the wheel.

Everything else about the build is declared in pyproject.toml. The two folders stay where
the project layout puts them (the source of truth, edited there); a wheel build copies them
to ``privacykit/_data/<folder>/`` in the build tree, where :mod:`privacykit.shipped` finds
them in an installed wheel. An editable install needs no copy: it reads the folders in the
checkout directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"playbooks": ("*.yaml",), "report_templates": ("*.j2",)}


class BuildPyWithShippedData(build_py):
    """``build_py`` that also copies the shipped data folders into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder, patterns in SHIPPED.items():
            target = Path(self.build_lib) / "privacykit" / "_data" / folder
            if target.exists():
                shutil.rmtree(target)  # a stale copy must not ship a deleted file
            target.mkdir(parents=True)
            files = sorted({p for pattern in patterns for p in (ROOT / folder).glob(pattern)})
            if not files:
                raise SystemExit(f"setup.py: nothing to ship in {folder}/")
            for source in files:
                shutil.copy2(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithShippedData})
