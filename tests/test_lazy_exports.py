"""Package ``__init__``s re-export lazily (#11): every public name resolves to what the
defining module has, importing a package loads none of its heavy parts, and an exported
function named like its submodule keeps meaning the function (as an eager import did)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

LAZY_PACKAGES = [
    "privacykit.audit",
    "privacykit.evidence",
    "privacykit.ledger",
    "privacykit.playbooks.access",
    "privacykit.playbooks.erasure",
    "privacykit.sandbox",
    "privacykit.zendesk",
]


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_every_public_name_resolves_and_is_listed(name: str) -> None:
    package = importlib.import_module(name)
    where = package._lazy_where
    assert set(package.__all__) == set(where), "__all__ and the lazy table differ"
    for export in package.__all__:
        value = getattr(package, export)
        source = where[export]
        if source == name:
            assert isinstance(value, types.ModuleType)
        else:
            assert value is getattr(importlib.import_module(source), export)
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_importing_a_package_imports_none_of_its_modules(name: str) -> None:
    code = (
        f"import json, sys; import {name}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('privacykit'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = [m for m in json.loads(done.stdout) if m.startswith(name + ".")]
    assert loaded == []


def test_a_submodule_imported_first_does_not_hide_the_export_of_its_name() -> None:
    code = (
        "import sys\n"
        "import privacykit.playbooks.access.collect\n"  # binds the submodule on the package
        "from privacykit.playbooks.access import collect\n"
        "function = sys.modules['privacykit.playbooks.access.collect'].collect\n"
        "assert collect is function, collect\n"
    )
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)
