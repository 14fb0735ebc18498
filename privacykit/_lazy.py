"""Lazy re-exports for package ``__init__`` modules (PEP 562 module ``__getattr__``).

A package's public names stay importable from the package (``from privacykit.ledger import
Ledger``), but the module that defines a name is imported only when the name is first used,
so importing one light submodule (or running ``privacykit --help``) never drags in
reportlab, pyHanko, httpx or sqlite-utils through a package ``__init__``. Each package keeps
an explicit ``__all__`` and, for type checkers, the same imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` from ``{module: (name, ...)}``.

    A name equal to a submodule's last component (``"merkle"`` for
    ``privacykit.ledger.merkle``) re-exports the module itself."""
    where: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = module

    def __getattr__(name: str) -> Any:
        module_name = where.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name)
        value = module if module_name == f"{package}.{name}" else getattr(module, name)
        # Cache on the package so the next lookup is an ordinary attribute access.
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        package_globals = vars(importlib.import_module(package))
        return sorted(set(package_globals) | set(where))

    return __getattr__, __dir__
