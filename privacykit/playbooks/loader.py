"""Playbook files: YAML loading and validation, with errors that name file, line and key.

Owns the playbook file format (``schema: privacykit.playbook/1``), the registry of playbook
kinds (:func:`register_kind`; each kind declares its steps and its policy schema) and where
playbooks are found (:func:`builtin_playbook_dir`, :func:`resolve_playbook`,
:func:`list_playbooks`). The schema language (:class:`Struct`, :class:`Field`, :class:`Str`,
...) lives in :mod:`privacykit.playbooks.schema` and is re-exported here.

Playbooks stay plain data: the loader never constructs Python objects from YAML tags
(``SafeLoader`` only) and never generates code. Step names map to functions the engine
already has; a playbook can only choose, order and configure them.

A playbook may come from anyone who can write to ``$PRIVACYKIT_HOME/playbooks/``, so reading
one is bounded before any YAML is parsed: at most :data:`MAX_PLAYBOOK_BYTES`, a regular file,
no anchors or aliases (a 500-byte "billion laughs" would otherwise expand to gigabytes; no
playbook needs them) and at most :data:`MAX_PLAYBOOK_DEPTH` levels of nesting (deeper input
would exhaust Python's recursion). Each refusal is a :class:`PlaybookError` (exit 2, one
line) within a fraction of a second.

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
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from privacykit.errors import PlaybookError
from privacykit.playbooks.schema import (
    Bool,
    Ctx,
    Field,
    Int,
    KeyPath,
    ListOf,
    MapOf,
    Number,
    OneOf,
    Spec,
    Str,
    Struct,
    dotted,
    kind_of,
)
from privacykit.shipped import shipped_dir

__all__ = [
    "MAX_PLAYBOOK_BYTES",
    "MAX_PLAYBOOK_DEPTH",
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
# The shipped playbooks are about 4 KiB and nest 5 levels deep. Pure-Python YAML parses
# 64 KiB of the worst shape (one long flow list) in well under a second on a slow machine.
MAX_PLAYBOOK_BYTES = 64 * 1024
MAX_PLAYBOOK_DEPTH = 32

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
    validate: Callable[[dict[str, Any], Callable[[KeyPath, str], PlaybookError]], None] | None = (
        None
    )


_KINDS: dict[str, KindSchema] = {}
# Kinds whose schema lives in a module that registers it on import; loaded on first use so
# that validating a playbook never needs the module to be imported by hand.
_KIND_MODULES = {
    "erasure": "privacykit.playbooks.policy",
    "access": "privacykit.playbooks.access.kind",
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


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses anchors and aliases and bounds nesting while composing,
    i.e. before anything could be expanded or recursed into."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise PlaybookError(
                "YAML anchors and aliases (&name, *name) are not allowed in a playbook",
                file=self.file,
                line=line,
            )
        if self.depth >= MAX_PLAYBOOK_DEPTH:
            raise PlaybookError(
                f"nested deeper than {MAX_PLAYBOOK_DEPTH} levels", file=self.file, line=line
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str, file: str) -> tuple[Any, dict[KeyPath, int], dict[KeyPath, int]]:
    """Parse YAML into plain data plus the line of every value and every key (1-based)."""
    # Characters never outnumber UTF-8 bytes: the cheap test first, then the exact one.
    if len(text) > MAX_PLAYBOOK_BYTES or len(text.encode("utf-8", "surrogatepass")) > (
        MAX_PLAYBOOK_BYTES
    ):
        raise PlaybookError(f"playbook is larger than {MAX_PLAYBOOK_BYTES // 1024} KiB", file=file)
    lines: dict[KeyPath, int] = {}
    key_lines: dict[KeyPath, int] = {}
    loader = _BoundedLoader(text, file)
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

        def walk(node: yaml.Node, path: KeyPath) -> Any:
            lines[path] = node.start_mark.line + 1
            if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
                # Plain data only: a tag like !!python/object must not even look valid.
                raise PlaybookError(
                    f"unsupported YAML tag {node.tag}",
                    file=file,
                    line=node.start_mark.line + 1,
                    key=dotted(path),
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
                            key=dotted(path),
                        )
                    key = str(loader.construct_object(key_node))
                    child = (*path, key)
                    if key in out:
                        raise PlaybookError(
                            "duplicate key",
                            file=file,
                            line=key_node.start_mark.line + 1,
                            key=dotted(child),
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
                    key=dotted(path),
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
    ctx = Ctx(file, lines, key_lines)
    if not isinstance(data, dict):
        raise ctx.error((), f"a playbook is a mapping, got {kind_of(data)}")
    kind_name = data.get("kind")
    if not isinstance(kind_name, str):
        if "kind" not in data:
            raise ctx.error(("kind",), "required key is missing", key=True)
        raise ctx.error(("kind",), f"expected a string, got {kind_of(kind_name)}")
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

    def check(self, value: Any, path: KeyPath, ctx: Ctx) -> Any:
        if isinstance(value, str):
            name, options = value, {}
        elif isinstance(value, dict):
            if "step" not in value:
                raise ctx.error((*path, "step"), "a step mapping needs a 'step' key", key=True)
            name = value["step"]
            if not isinstance(name, str):
                raise ctx.error((*path, "step"), f"expected a step name, got {kind_of(name)}")
            options = {k: v for k, v in value.items() if k != "step"}
        else:
            raise ctx.error(path, f"expected {self.description}, got {kind_of(value)}")
        schema = self.kind.steps.get(name)
        if schema is None:
            known = ", ".join(self.kind.steps)
            where = (*path, "step") if isinstance(value, dict) else path
            raise ctx.error(where, f"unknown {self.kind.kind} step {name!r} (known: {known})")
        return {"step": name, "options": schema.options.check(options, path, ctx)}


def _check_step_order(steps: Sequence[Step], kind: KindSchema, ctx: Ctx) -> None:
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


class _NotRegularFile(OSError):
    pass


def _read_regular_file(path: str | Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a regular file. Opened non-blocking and checked before
    reading, so a FIFO, a device such as /dev/zero or a directory is refused at once."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _NotRegularFile(path)
        return handle.read(limit + 1)


def load_playbook(path: str | Path) -> Playbook:
    """Load and validate a playbook file. Errors name the file, line and key."""
    file = str(path)
    try:
        raw = _read_regular_file(path, MAX_PLAYBOOK_BYTES)
    except FileNotFoundError:
        raise PlaybookError("playbook file not found", file=file) from None
    except _NotRegularFile:
        raise PlaybookError("playbook is not a regular file", file=file) from None
    except OSError as exc:
        raise PlaybookError(f"cannot read playbook: {exc.strerror}", file=file) from None
    if len(raw) > MAX_PLAYBOOK_BYTES:
        raise PlaybookError(f"playbook is larger than {MAX_PLAYBOOK_BYTES // 1024} KiB", file=file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlaybookError("playbook is not UTF-8 text", file=file) from None
    return load_playbook_text(text, file=file, path=Path(path))


# --- where playbooks live ----------------------------------------------------------------


def builtin_playbook_dir() -> Path:
    """The shipped playbooks: ``playbooks/`` at the top of a source checkout, a copy inside
    the package in an installed wheel (:func:`privacykit.shipped.shipped_dir`);
    ``PRIVACYKIT_PLAYBOOKS`` overrides."""
    override = os.environ.get("PRIVACYKIT_PLAYBOOKS", "").strip()
    if override:
        return Path(override).expanduser()
    return shipped_dir("playbooks")


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
