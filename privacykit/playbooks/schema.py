"""The small declarative schema language playbooks are checked with.

Owns :class:`Spec` and its kinds (:class:`Str`, :class:`Int`, :class:`Number`,
:class:`Bool`, :class:`ListOf`, :class:`MapOf`, :class:`OneOf`, :class:`Struct` of
:class:`Field`), and :class:`Ctx`, which turns a failed check into a
:class:`~privacykit.errors.PlaybookError` naming the file, the line and the dotted key. Each
``check`` returns the value normalised (defaults filled in). Pure: no I/O, no YAML; the
loader (:mod:`privacykit.playbooks.loader`) parses the file and re-exports these names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacykit.errors import PlaybookError

__all__ = [
    "Bool",
    "Ctx",
    "Field",
    "Int",
    "KeyPath",
    "ListOf",
    "MapOf",
    "Number",
    "OneOf",
    "Spec",
    "Str",
    "Struct",
    "copy_data",
    "dotted",
    "kind_of",
]

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(document)"


class Ctx:
    """Where we are while validating: the file name and the line of every node."""

    def __init__(self, file: str, lines: dict[KeyPath, int], key_lines: dict[KeyPath, int]) -> None:
        self.file = file
        self.lines = lines
        self.key_lines = key_lines

    def line(self, path: KeyPath, *, key: bool = False) -> int | None:
        probe = path
        while True:
            table = self.key_lines if key else self.lines
            if probe in table:
                return table[probe]
            if key and probe in self.lines:
                return self.lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def error(self, path: KeyPath, message: str, *, key: bool = False) -> PlaybookError:
        return PlaybookError(
            message, file=self.file, line=self.line(path, key=key), key=dotted(path)
        )


class Spec:
    """A value's expected shape. ``check`` returns the value normalised (defaults filled)."""

    description = "a value"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Spec):
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    pattern_help: str = ""
    allow_empty: bool = False
    max_length: int = 2000

    @property
    def description(self) -> str:  # type: ignore[override]
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return self.pattern_help or "a string"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if not isinstance(value, str):
            raise ctx.error(path, f"expected {self.description}, got {kind_of(value)}")
        if not value.strip() and not self.allow_empty:
            raise ctx.error(path, "must not be empty")
        if len(value) > self.max_length:
            raise ctx.error(path, f"longer than {self.max_length} characters")
        if self.choices is not None and value not in self.choices:
            raise ctx.error(path, f"expected {self.description}, got {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ctx.error(path, f"expected {self.description}, got {value!r}")
        return value


@dataclass(frozen=True)
class Int(Spec):
    min: int | None = None
    max: int | None = None
    description = "an integer"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(path, f"expected an integer, got {kind_of(value)}")
        if self.min is not None and value < self.min:
            raise ctx.error(path, f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise ctx.error(path, f"must be at most {self.max}, got {value}")
        return value


@dataclass(frozen=True)
class Number(Spec):
    min: float | None = None
    max: float | None = None
    description = "a number"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.error(path, f"expected a number, got {kind_of(value)}")
        if self.min is not None and value < self.min:
            raise ctx.error(path, f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise ctx.error(path, f"must be at most {self.max}, got {value}")
        return value


@dataclass(frozen=True)
class Bool(Spec):
    description = "true or false"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if not isinstance(value, bool):
            raise ctx.error(path, f"expected true or false, got {kind_of(value)}")
        return value


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    min_items: int = 0
    unique: bool = False
    unique_by: str | None = None

    @property
    def description(self) -> str:  # type: ignore[override]
        return "a list"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if not isinstance(value, list):
            raise ctx.error(path, f"expected a list, got {kind_of(value)}")
        if len(value) < self.min_items:
            raise ctx.error(path, f"needs at least {self.min_items} item(s)")
        out = [self.item.check(item, (*path, i), ctx) for i, item in enumerate(value)]
        if self.unique or self.unique_by:
            seen: set[Any] = set()
            for i, item in enumerate(out):
                marker = item.get(self.unique_by) if self.unique_by else item
                marker = repr(marker)
                if marker in seen:
                    raise ctx.error((*path, i), "duplicate entry")
                seen.add(marker)
        return out


@dataclass(frozen=True)
class MapOf(Spec):
    """A mapping with free keys (matching ``key_pattern``) whose values all follow ``value``."""

    value: Spec
    key_pattern: str = r"[A-Za-z0-9_.:-]{1,100}"
    description = "a mapping"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            raise ctx.error(path, f"expected a mapping, got {kind_of(value)}")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or not re.fullmatch(self.key_pattern, key):
                raise ctx.error((*path, str(key)), "invalid key", key=True)
            out[key] = self.value.check(item, (*path, key), ctx)
        return out


@dataclass(frozen=True)
class OneOf(Spec):
    options: tuple[Spec, ...]

    @property
    def description(self) -> str:  # type: ignore[override]
        return " or ".join(option.description for option in self.options)

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        first: PlaybookError | None = None
        for option in self.options:
            try:
                return option.check(value, path, ctx)
            except PlaybookError as exc:
                first = first or exc
        raise ctx.error(path, f"expected {self.description}") from first


@dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class Struct(Spec):
    fields: Mapping[str, Field]
    description = "a mapping"

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ctx.error(path, f"expected a mapping, got {kind_of(value)}")
        for key in value:
            if key not in self.fields:
                known = ", ".join(sorted(self.fields)) or "none"
                raise ctx.error((*path, str(key)), f"unknown key (known: {known})", key=True)
        out: dict[str, Any] = {}
        for name, spec_field in self.fields.items():
            if name in value:
                out[name] = spec_field.spec.check(value[name], (*path, name), ctx)
            elif spec_field.required:
                raise ctx.error((*path, name), "required key is missing", key=True)
            else:
                default = spec_field.default
                if isinstance(spec_field.spec, Struct) and default is None:
                    default = spec_field.spec.check({}, (*path, name), ctx)
                out[name] = copy_data(default)
        return out


def copy_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
