"""Report templates: lookup, the sandboxed jinja2 environment, and value sanitising.

Owns the template lookup (``report_templates/`` next to the package, overridable per file
by ``$PRIVACYKIT_TEMPLATES`` so a DPO can change wording without Python), the sanitising
of every value before a template sees it (:func:`sanitise`), the filters templates use,
and :func:`render_markup` (template -> report markup text). No reportlab here: turning
markup into a PDF is :mod:`privacykit.evidence.pdf`'s job, imported only when a report
is actually laid out.

Templates are rendered by a *sandboxed, autoescaping* environment: every value from
Zendesk or the user arrives in the markup as XML text, never as markup.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from privacykit.errors import ConfigError, EvidenceError

__all__ = [
    "MAX_LIST_ITEMS",
    "MAX_VALUE_CHARS",
    "TEMPLATES_ENV",
    "fmt",
    "humanize",
    "plural",
    "render_markup",
    "sanitise",
    "template_dirs",
    "visible",
]

TEMPLATES_ENV = "PRIVACYKIT_TEMPLATES"
# A report is evidence for a person, not a dump: a single value longer than this is cut
# (with a visible marker), so one hostile field cannot blow a table row past a page.
MAX_VALUE_CHARS = 1500
MAX_LIST_ITEMS = 5000
_MAX_DEPTH = 12


# --- values ------------------------------------------------------------------------------


def visible(text: str) -> str:
    """Show control and format characters (ESC, NUL, bidi overrides, zero-width marks) as
    ``\\uXXXX`` so they can neither break the XML nor silently reorder printed text."""
    if text.isprintable() and max(text, default=" ") <= "\uffff":
        return text
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04x}")
        elif ord(ch) > 0xFFFF:
            # Outside the BMP (emoji, rare ideographs): no embedded font has the glyphs, and
            # reportlab's ToUnicode map cannot express them; show the code point instead.
            out.append(f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def _truncate(text: str) -> str:
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return f"{text[:MAX_VALUE_CHARS]}… [{len(text) - MAX_VALUE_CHARS} more characters not shown]"


def sanitise(value: Any, scrub: Callable[[str], str] | None = None, _depth: int = 0) -> Any:
    """A copy of ``value`` (JSON-like data) safe to hand to a template: every string (keys
    too) passed through ``scrub`` (redaction), control characters made visible, long
    strings and lists cut with a marker, nesting bounded."""
    if _depth > _MAX_DEPTH:
        return "[nested too deeply to show]"
    if isinstance(value, str):
        text = scrub(value) if scrub is not None else value
        return _truncate(visible(text))
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            sanitise(str(k), scrub, _depth + 1): sanitise(v, scrub, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = [sanitise(v, scrub, _depth + 1) for v in list(value)[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"[{len(value) - MAX_LIST_ITEMS} more items not shown]")
        return items
    return sanitise(str(value), scrub, _depth + 1)


def fmt(value: Any) -> str:
    """One value as display text (templates: ``{{ x|fmt }}``)."""
    if value is None or isinstance(value, jinja2.Undefined):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        if not value:
            return "none"
        if isinstance(value, list | tuple) and all(
            not isinstance(v, Mapping | list | tuple) for v in value
        ):
            return ", ".join(fmt(v) for v in value)
        return _truncate(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))
    return _truncate(visible(str(value)))


def _finalize(value: Any) -> Any:
    # Runs on every {{ expression }} before autoescaping: undefined/None print as a dash,
    # strings have control characters made visible (XML 1.0 cannot carry most of them).
    if isinstance(value, jinja2.Undefined) or value is None:
        return "—"
    if isinstance(value, Markup):  # macro output: already markup
        return value
    if isinstance(value, str):
        return visible(value)
    return fmt(value)


def humanize(key: Any) -> str:
    """``soft_deleted_users`` -> ``Soft deleted users`` (a word repeated back to back is
    shown once)."""
    words = str(key).replace("_", " ").split()
    kept = [w for i, w in enumerate(words) if i == 0 or w.lower() != words[i - 1].lower()]
    text = " ".join(kept)
    return text[:1].upper() + text[1:]


def plural(count: Any, singular: str, plural_form: str | None = None) -> str:
    """``1 user``, ``2 users``, ``0 users`` (``{{ n|plural("entry", "entries") }}``). A
    value that is not a whole number is shown as it is, followed by the plural."""
    many = plural_form if plural_form is not None else f"{singular}s"
    if isinstance(count, bool) or not isinstance(count, int):
        return f"{fmt(count)} {many}"
    return f"{count} {singular if count == 1 else many}"


def _columns(rows: Any, limit: int = 8) -> list[str]:
    """Ordered union of the keys of a list of mappings (at most ``limit``)."""
    seen: list[str] = []
    if isinstance(rows, list | tuple):
        for row in rows:
            if isinstance(row, Mapping):
                for key in row:
                    if key not in seen:
                        seen.append(str(key))
    return seen[:limit]


def _without(mapping: Any, keys: Iterable[str]) -> list[tuple[str, Any]]:
    if not isinstance(mapping, Mapping):
        return []
    excluded = set(keys)
    return [(str(k), v) for k, v in mapping.items() if k not in excluded]


def _is_rows(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


# --- templates ---------------------------------------------------------------------------


def _default_template_dir() -> Path:
    # report_templates/ at the top of the repository in a checkout (and an editable
    # install), a copy inside the package in an installed wheel: privacykit.shipped knows.
    from privacykit.shipped import shipped_dir

    return shipped_dir("report_templates")


def template_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where templates are looked up, first match wins: ``$PRIVACYKIT_TEMPLATES`` (if set),
    then the shipped ``report_templates/``. A DPO may override a single file."""
    env = os.environ if env is None else env
    dirs: list[Path] = []
    override = env.get(TEMPLATES_ENV, "").strip()
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{TEMPLATES_ENV} is not a directory: {path}")
        dirs.append(path)
    default = _default_template_dir()
    if default.is_dir():
        dirs.append(default)
    if not dirs:
        raise ConfigError(f"report templates not found; set {TEMPLATES_ENV} to their directory")
    return dirs


@lru_cache(maxsize=8)
def _environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # a missing optional field renders as "—"
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        fmt=fmt,
        humanize=humanize,
        columns=_columns,
        without=_without,
        visible=visible,
        plural=plural,
    )
    environment.tests.update(rows=_is_rows, mapping_value=_is_mapping)
    return environment


def render_markup(template_name: str, context: Mapping[str, Any]) -> str:
    """Render ``template_name`` to report markup. Template errors are EvidenceErrors."""
    environment = _environment(tuple(template_dirs()))
    try:
        return environment.get_template(template_name).render(**context)
    except jinja2.TemplateNotFound:
        raise EvidenceError(f"report template not found: {template_name}") from None
    except jinja2.TemplateError as exc:
        lineno = getattr(exc, "lineno", None)
        where = f" (line {lineno})" if lineno else ""
        raise EvidenceError(f"report template {template_name}{where}: {exc.message}") from None
