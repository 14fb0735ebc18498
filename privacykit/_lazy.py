"""Lazy re-exports for package ``__init__`` modules.

A package's public names stay importable from the package (``from privacykit.ledger import
Ledger``), but the module that defines a name is imported only when the name is first used,
so importing one light submodule (or running ``privacykit --help``) never drags in
reportlab, pyHanko, httpx or sqlite-utils through a package ``__init__``. Each package keeps
an explicit ``__all__`` and, for type checkers, the same imports under ``TYPE_CHECKING``,
then calls :func:`lazy_exports` (outside ``TYPE_CHECKING``, so mypy still flags unknown
names).

One difference from eager imports has to be undone: when a submodule is imported, Python
binds it on its package under its own name, which would hide an exported function of the
same name (``privacykit.playbooks.access.collect``, the function, defined in the submodule
``collect``). The package's module class therefore keeps such an export bound to the
exported object, exactly as the eager ``from .collect import collect`` did.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import Any

__all__ = ["lazy_exports"]


class _LazyPackage(types.ModuleType):
    """A package module whose exported names load on first access."""

    _lazy_where: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        where = self.__dict__.get("_lazy_where", {})
        module_name = where.get(name)
        if module_name is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        if module_name == self.__name__:  # `from package import submodule`
            value: Any = importlib.import_module(f"{self.__name__}.{name}")
        else:
            value = getattr(importlib.import_module(module_name), name)
        # Cache on the package so the next lookup is an ordinary attribute access.
        types.ModuleType.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        where = self.__dict__.get("_lazy_where", {})
        source = where.get(name)
        if (
            isinstance(value, types.ModuleType)
            and source is not None
            and source != self.__name__
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            # The import system binding the submodule `name`: keep the export instead.
            value = getattr(importlib.import_module(source), name)
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self.__dict__.get("_lazy_where", {})))


def lazy_exports(package: str, exports: Mapping[str, tuple[str, ...]]) -> None:
    """Make ``package`` (a package ``__init__`` calling this with ``__name__``) export each
    ``{module: (name, ...)}`` lazily. ``{package: ("sub",)}`` re-exports the submodule
    ``package.sub`` itself, as ``from package import sub`` would."""
    where: dict[str, str] = {}
    for module_name, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = module_name
    module = sys.modules[package]
    types.ModuleType.__setattr__(module, "_lazy_where", where)
    module.__class__ = _LazyPackage
    # An export already bound (a submodule imported while the package initialised) is
    # rebound to the exported object.
    for name, source in where.items():
        bound = module.__dict__.get(name)
        if isinstance(bound, types.ModuleType) and source != package:
            setattr(module, name, bound)
