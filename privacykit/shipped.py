"""Where the data files privacykit ships beside its code are found.

Owns :func:`shipped_dir`. The project keeps its shipped playbooks and report templates in
the top-level folders ``playbooks/`` and ``report_templates/`` (the source of truth). An
installed wheel carries copies inside the package, ``privacykit/_data/<folder>/`` (the
build hook in ``setup.py`` puts them there); a source checkout or an editable install has
no such copy and uses the top-level folders next to the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["ShippedFolder", "shipped_dir"]

ShippedFolder = Literal["playbooks", "report_templates"]

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(folder: ShippedFolder) -> Path:
    """The directory holding the shipped ``folder``: the wheel's copy inside the package if
    there is one, else the checkout's top-level folder (which may not exist: callers say
    what is missing)."""
    installed = _PACKAGE / "_data" / folder
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / folder
