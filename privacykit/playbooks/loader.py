"""Playbook files: YAML loading and validation, with errors that name file, line and key.

Owns the playbook file format (``schema: privacykit.playbook/1``), the small declarative
schema language used to check it (:class:`Struct`, :class:`Field`, :class:`Str`, ...), the
registry of playbook kinds (:func:`register_kind`; each kind declares its steps and its
policy schema) and where playbooks are found (:func:`builtin_playbook_dir`,
:func:`resolve_playbook`, :func:`list_playbooks`).

Playbooks stay plain data: the loader never constructs Python objects from YAML tags
(``SafeLoader`` only) and never generates code. Step names map to functions the engine
already has; a playbook can only choose, order and configure them.

Common layout::

    schema: privacykit.playbook/1
    name: erasure
    kind: erasure            # a registered kind: its steps and policy schema apply
    description: ...
    steps:                   # names, or mappings {step: name, <options>}
      - discover
      - {step: replace_profiles}
    policy: {...}            # checked against the kind's policy schema, defaults filled in
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from privacykit.errors import PlaybookError

__all__ = [
    "PLAYBOOK_SCHEMA",
    "Bool",
    "Field",
    "Int",
    "KindSchema",
    "ListOf",
    "MapOf",
    "Number",
    "OneOf",
    "Playbook",
    "PlaybookInfo",
    "Spec",
    "Step",
    "StepSchema",
    "Str",
    "Struct",
    "builtin_playbook_dir",
    "list_playbooks",
    "load_playbook",
    "load_playbook_text",
    "register_kind",
    "registered_kinds",
    "resolve_playbook",
]

PLAYBOOK_SCHEMA = "privacykit.playbook/1"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

Path_ = tuple[str | int, ...]


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(document)"


class _Ctx:
    """Where we are while validating: the file name and the line of every node."""

    def __init__(self, file: str, lines: dict[Path_, int], key_lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines
        self.key_lines = key_lines

    def line(self, path: Path_, *, key: bool = False) -> int | None:
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

    def error(self, path: Path_, message: str, *, key: bool = False) -> PlaybookError:
        return PlaybookError(
            message, file=self.file, line=self.line(path, key=key), key=_dotted(path)
        )


# --- the schema language -----------------------------------------------------------------


class Spec:
    """A value's expected shape. ``check`` returns the value normalised (defaults filled)."""

    description = "a value"

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:  # pragma: no cover - abstract
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if not isinstance(value, str):
            raise ctx.error(path, f"expected {self.description}, got {_kind_of(value)}")
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(path, f"expected an integer, got {_kind_of(value)}")
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.error(path, f"expected a number, got {_kind_of(value)}")
        if self.min is not None and value < self.min:
            raise ctx.error(path, f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise ctx.error(path, f"must be at most {self.max}, got {value}")
        return value


@dataclass(frozen=True)
class Bool(Spec):
    description = "true or false"

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if not isinstance(value, bool):
            raise ctx.error(path, f"expected true or false, got {_kind_of(value)}")
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if not isinstance(value, list):
            raise ctx.error(path, f"expected a list, got {_kind_of(value)}")
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if not isinstance(value, dict):
            raise ctx.error(path, f"expected a mapping, got {_kind_of(value)}")
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
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

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ctx.error(path, f"expected a mapping, got {_kind_of(value)}")
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
                out[name] = _copy(default)
        return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _kind_of(value: Any) -> str:
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


# --- kinds and steps ---------------------------------------------------------------------


@dataclass(frozen=True)
class StepSchema:
    """One step a kind's engine knows. ``after``: steps that must come earlier when present;
    ``needs``: steps that must be present (and earlier) for this one to make sense."""

    options: Struct = field(default_factory=lambda: Struct({}))
    after: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    required: bool = False
    last: bool = False
    doc: str = ""


@dataclass(frozen=True)
class KindSchema:
    """What a playbook of one kind may contain: its steps, its policy, extra top-level keys,
    and an optional cross-field check (``validate(playbook_data, error)``)."""

    kind: str
    steps: Mapping[str, StepSchema]
    policy: Struct
    extra: Mapping[str, Field] = field(default_factory=dict)
    validate: Callable[[dict[str, Any], Callable[[Path_, str], PlaybookError]], None] | None = None


_KINDS: dict[str, KindSchema] = {}
# Kinds whose schema lives in a module that registers it on import; loaded on first use so
# that validating a playbook never needs the module to be imported by hand.
_KIND_MODULES = {
    "erasure": "privacykit.playbooks.policy",
    "access": "privacykit.playbooks.access",
}


def register_kind(schema: KindSchema) -> None:
    """Make a playbook kind known to the loader (called at import by the kind's module)."""
    _KINDS[schema.kind] = schema


def _kind(name: str) -> KindSchema | None:
    if name not in _KINDS and name in _KIND_MODULES:
        try:
            importlib.import_module(_KIND_MODULES[name])
        except ImportError:
            return None
    return _KINDS.get(name)


def registered_kinds() -> list[str]:
    """Names of the playbook kinds that can be loaded."""
    return sorted(k for k in set(_KINDS) | set(_KIND_MODULES) if _kind(k) is not None)


# --- the playbook ------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of a playbook: its name, options (defaults filled) and line in the file."""

    name: str
    options: Mapping[str, Any]
    line: int | None = None


@dataclass(frozen=True)
class Playbook:
    """A validated playbook: plain data plus where it came from."""

    name: str
    kind: str
    description: str
    steps: tuple[Step, ...]
    policy: Mapping[str, Any]
    data: Mapping[str, Any]
    sha256: str
    path: Path | None = None

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def has_step(self, name: str) -> bool:
        return any(step.name == name for step in self.steps)

    def step(self, name: str) -> Step | None:
        return next((step for step in self.steps if step.name == name), None)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


def _compose(text: str, file: str) -> tuple[Any, dict[Path_, int], dict[Path_, int]]:
    """Parse YAML into plain data plus the line of every value and every key (1-based)."""
    lines: dict[Path_, int] = {}
    key_lines: dict[Path_, int] = {}
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = exc.problem or exc.context or "invalid YAML"
            raise PlaybookError(f"YAML syntax error: {problem}", file=file, line=line) from None
        except yaml.YAMLError as exc:
            raise PlaybookError(f"YAML error: {type(exc).__name__}", file=file) from None
        if node is None:
            raise PlaybookError("the playbook is empty", file=file, line=1)

        def walk(node: yaml.Node, path: Path_) -> Any:
            lines[path] = node.start_mark.line + 1
            if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
                # Plain data only: a tag like !!python/object must not even look valid.
                raise PlaybookError(
                    f"unsupported YAML tag {node.tag}",
                    file=file,
                    line=node.start_mark.line + 1,
                    key=_dotted(path),
                )
            if isinstance(node, yaml.MappingNode):
                loader.flatten_mapping(node)
                out: dict[str, Any] = {}
                for key_node, value_node in node.value:
                    if not isinstance(key_node, yaml.ScalarNode):
                        raise PlaybookError(
                            "mapping keys must be plain strings",
                            file=file,
                            line=key_node.start_mark.line + 1,
                            key=_dotted(path),
                        )
                    key = str(loader.construct_object(key_node))
                    child = (*path, key)
                    if key in out:
                        raise PlaybookError(
                            "duplicate key",
                            file=file,
                            line=key_node.start_mark.line + 1,
                            key=_dotted(child),
                        )
                    key_lines[child] = key_node.start_mark.line + 1
                    out[key] = walk(value_node, child)
                return out
            if isinstance(node, yaml.SequenceNode):
                return [walk(item, (*path, i)) for i, item in enumerate(node.value)]
            try:
                return loader.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as exc:
                raise PlaybookError(
                    f"unsupported YAML value ({exc.problem})",
                    file=file,
                    line=node.start_mark.line + 1,
                    key=_dotted(path),
                ) from None

        return walk(node, ()), lines, key_lines
    finally:
        loader.dispose()


_TOP = {
    "schema": Field(Str(choices=(PLAYBOOK_SCHEMA,)), required=True),
    "name": Field(
        Str(pattern=_NAME.pattern, pattern_help="a lowercase name (a-z, 0-9, '_', '-')"),
        required=True,
    ),
    "kind": Field(Str(), required=True),
    "description": Field(Str(allow_empty=True), default=""),
    "steps": Field(ListOf(OneOf((Str(), Struct({})))), required=True),
    "policy": Field(Struct({})),
}


def load_playbook_text(
    text: str, *, file: str = "<playbook>", path: Path | None = None
) -> Playbook:
    """Validate playbook YAML text. Raises :class:`PlaybookError` naming file, line and key."""
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    data, lines, key_lines = _compose(text, file)
    ctx = _Ctx(file, lines, key_lines)
    if not isinstance(data, dict):
        raise ctx.error((), f"a playbook is a mapping, got {_kind_of(data)}")
    kind_name = data.get("kind")
    if not isinstance(kind_name, str):
        if "kind" not in data:
            raise ctx.error(("kind",), "required key is missing", key=True)
        raise ctx.error(("kind",), f"expected a string, got {_kind_of(kind_name)}")
    kind = _kind(kind_name)
    if kind is None:
        known = ", ".join(registered_kinds()) or "none"
        raise ctx.error(("kind",), f"unknown playbook kind {kind_name!r} (known: {known})")

    top_fields = dict(_TOP)
    top_fields["policy"] = Field(kind.policy)
    top_fields["steps"] = Field(ListOf(_StepItem(kind), min_items=1), required=True)
    top_fields.update(kind.extra)
    checked = Struct(top_fields).check(data, (), ctx)

    steps = tuple(
        Step(item["step"], item["options"], ctx.line(("steps", i)))
        for i, item in enumerate(checked["steps"])
    )
    _check_step_order(steps, kind, ctx)
    if kind.validate is not None:
        kind.validate(checked, lambda p, m: ctx.error(p, m))
    return Playbook(
        name=checked["name"],
        kind=kind_name,
        description=checked["description"],
        steps=steps,
        policy=checked["policy"],
        data=checked,
        sha256=sha256,
        path=path,
    )


@dataclass(frozen=True)
class _StepItem(Spec):
    kind: KindSchema
    description = "a step name or a mapping with a 'step' key"

    def check(self, value: Any, path: Path_, ctx: _Ctx) -> Any:
        if isinstance(value, str):
            name, options = value, {}
        elif isinstance(value, dict):
            if "step" not in value:
                raise ctx.error((*path, "step"), "a step mapping needs a 'step' key", key=True)
            name = value["step"]
            if not isinstance(name, str):
                raise ctx.error((*path, "step"), f"expected a step name, got {_kind_of(name)}")
            options = {k: v for k, v in value.items() if k != "step"}
        else:
            raise ctx.error(path, f"expected {self.description}, got {_kind_of(value)}")
        schema = self.kind.steps.get(name)
        if schema is None:
            known = ", ".join(self.kind.steps)
            where = (*path, "step") if isinstance(value, dict) else path
            raise ctx.error(where, f"unknown {self.kind.kind} step {name!r} (known: {known})")
        return {"step": name, "options": schema.options.check(options, path, ctx)}


def _check_step_order(steps: Sequence[Step], kind: KindSchema, ctx: _Ctx) -> None:
    position: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.name in position:
            raise ctx.error(("steps", i), f"step {step.name!r} appears twice")
        position[step.name] = i
    for name, schema in kind.steps.items():
        if schema.required and name not in position:
            raise ctx.error(("steps",), f"required step {name!r} is missing")
    for i, step in enumerate(steps):
        schema = kind.steps[step.name]
        for needed in schema.needs:
            if needed not in position:
                raise ctx.error(("steps", i), f"step {step.name!r} needs step {needed!r} before it")
        for earlier in (*schema.needs, *schema.after):
            if earlier in position and position[earlier] > i:
                raise ctx.error(("steps", i), f"step {step.name!r} must come after {earlier!r}")
        if schema.last and i != len(steps) - 1:
            raise ctx.error(("steps", i), f"step {step.name!r} must be the last step")


def load_playbook(path: str | Path) -> Playbook:
    """Load and validate a playbook file. Errors name the file, line and key."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError("playbook file not found", file=file) from None
    except UnicodeDecodeError:
        raise PlaybookError("playbook is not UTF-8 text", file=file) from None
    except OSError as exc:
        raise PlaybookError(f"cannot read playbook: {exc.strerror}", file=file) from None
    return load_playbook_text(text, file=file, path=Path(path))


# --- where playbooks live ----------------------------------------------------------------


def builtin_playbook_dir() -> Path:
    """The shipped playbooks (``playbooks/`` next to the package in a source checkout;
    ``PRIVACYKIT_PLAYBOOKS`` overrides)."""
    override = os.environ.get("PRIVACYKIT_PLAYBOOKS", "").strip()
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent.parent / "playbooks"


def _search_dirs(home: Path | None) -> list[tuple[str, Path]]:
    dirs = []
    if home is not None:
        dirs.append(("home", home / "playbooks"))
    dirs.append(("builtin", builtin_playbook_dir()))
    return dirs


def resolve_playbook(name_or_path: str | Path, *, home: Path | None = None) -> Path:
    """A playbook file from a path, or a name looked up in ``<home>/playbooks/`` (an
    operator's adapted copies win) and then the shipped playbooks."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix in (".yaml", ".yml") or os.sep in text or candidate.exists():
        if not candidate.is_file():
            raise PlaybookError("playbook file not found", file=text)
        return candidate
    if not _NAME.match(text):
        raise PlaybookError("not a playbook name or file", file=text)
    for _origin, directory in _search_dirs(home):
        for suffix in (".yaml", ".yml"):
            path = directory / f"{text}{suffix}"
            if path.is_file():
                return path
    raise PlaybookError(f"no playbook named {text!r}", file=text)


@dataclass(frozen=True)
class PlaybookInfo:
    """One entry of ``playbook list``: a playbook file and whether it validates."""

    name: str
    kind: str | None
    description: str
    path: Path
    origin: str
    steps: list[str]
    sha256: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "path": str(self.path),
            "origin": self.origin,
            "steps": self.steps,
            "sha256": self.sha256,
            "valid": self.error is None,
            "error": self.error,
        }


def list_playbooks(home: Path | None = None) -> list[PlaybookInfo]:
    """Every playbook in the search directories, validated (invalid ones listed with their
    error). A home copy with the same file name shadows the shipped one."""
    seen: set[str] = set()
    found: list[PlaybookInfo] = []
    for origin, directory in _search_dirs(home):
        for path in _yaml_files(directory):
            if path.stem in seen:
                continue
            seen.add(path.stem)
            try:
                book = load_playbook(path)
            except PlaybookError as exc:
                found.append(PlaybookInfo(path.stem, None, "", path, origin, [], None, str(exc)))
            else:
                found.append(
                    PlaybookInfo(
                        book.name,
                        book.kind,
                        book.description,
                        path,
                        origin,
                        book.step_names(),
                        book.sha256,
                        None,
                    )
                )
    return sorted(found, key=lambda info: (info.name, info.origin))


def _yaml_files(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return iter(())
    return iter(
        sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    )
