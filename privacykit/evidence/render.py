"""Report rendering: jinja2 templates -> a small restricted markup -> a reportlab PDF.

Owns the template lookup (``report_templates/`` next to the package, overridable per file
by ``$PRIVACYKIT_TEMPLATES`` so a DPO can change wording without Python), the sanitising
of every value before a template sees it, the restricted markup language the templates
emit, and its conversion into reportlab platypus flowables.

Why a markup in between: the templates decide wording and structure, but they never
produce reportlab's own Paragraph markup. They produce a tiny XML vocabulary (below),
rendered by a *sandboxed, autoescaping* jinja2 environment, so every value from Zendesk
or the user arrives as XML text. We parse it with the standard XML parser (DOCTYPE and
entity declarations refused) and re-escape each text node for reportlab, so a name such
as ``<font size=90>`` or ``<img src=...>`` prints literally and fetches nothing.

Markup vocabulary (root ``<report title=".." footer="..">``)::

    <h1> <h2> <h3> <p class="small|note|warning">   inline: <b> <i> <code> <br/>
    <kv><row><k>..</k><v>..</v></row></kv>           key/value table
    <table widths="2,1,1"><tr><th>..</th></tr><tr><td>..</td></tr></table>
    <ul><li>..</li></ul>   <section>..</section>   <spacer/> <hr/> <pagebreak/>
    <chart title=".." ylabel=".."><bar label=".." value="3"/></chart>   bar chart
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import LayoutError

from privacykit.errors import ConfigError, EvidenceError

__all__ = [
    "MAX_LIST_ITEMS",
    "MAX_VALUE_CHARS",
    "FontSet",
    "fonts",
    "markup_to_pdf",
    "render_markup",
    "render_pdf",
    "sanitise",
    "template_dirs",
]

TEMPLATES_ENV = "PRIVACYKIT_TEMPLATES"
# reportlab keeps process-wide state (font registry, paragraph caches) and does not promise
# thread safety; the erasure engine produces reports from worker threads, so layout is
# serialised. It takes tens of milliseconds, next to seconds of Zendesk round trips.
_LAYOUT_LOCK = threading.RLock()
# A report is evidence for a person, not a dump: a single value longer than this is cut
# (with a visible marker), so one hostile field cannot blow a table row past a page.
MAX_VALUE_CHARS = 1500
MAX_LIST_ITEMS = 5000
_MAX_DEPTH = 12


# --- values ------------------------------------------------------------------------------


def _visible(text: str) -> str:
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
        return _truncate(_visible(text))
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


def _fmt(value: Any) -> str:
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
            return ", ".join(_fmt(v) for v in value)
        return _truncate(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))
    return _truncate(_visible(str(value)))


def _finalize(value: Any) -> Any:
    # Runs on every {{ expression }} before autoescaping: undefined/None print as a dash,
    # strings have control characters made visible (XML 1.0 cannot carry most of them).
    if isinstance(value, jinja2.Undefined) or value is None:
        return "—"
    if isinstance(value, Markup):  # macro output: already markup
        return value
    if isinstance(value, str):
        return _visible(value)
    return _fmt(value)


def _humanize(key: Any) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


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
        fmt=_fmt, humanize=_humanize, columns=_columns, without=_without, visible=_visible
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


# --- fonts -------------------------------------------------------------------------------

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)


@dataclass(frozen=True)
class FontSet:
    """The faces reports use, and a note saying which they are (printed in the report)."""

    regular: str
    bold: str
    italic: str
    mono: str
    note: str
    unicode: bool


def _find(names: Sequence[str]) -> Path | None:
    for directory in _FONT_DIRS:
        for name in names:
            candidate = Path(directory) / name
            if candidate.is_file():
                return candidate
    return None


def fonts() -> FontSet:
    """The report fonts (registered once, under the layout lock)."""
    with _LAYOUT_LOCK:
        return _register_fonts()


@lru_cache(maxsize=1)
def _register_fonts() -> FontSet:
    """Register and return the report fonts: DejaVu (broad Unicode: Latin, Greek, Cyrillic,
    Hebrew, Arabic) when the system has it, else reportlab's bundled Vera (Latin only;
    other scripts then show as empty boxes rather than failing). Fonts are embedded."""
    regular = _find(["DejaVuSans.ttf"])
    if regular is not None:
        bold = _find(["DejaVuSans-Bold.ttf"]) or regular
        italic = _find(["DejaVuSans-Oblique.ttf"]) or regular
        mono = _find(["DejaVuSansMono.ttf"]) or regular
        faces = {"PK-Regular": regular, "PK-Bold": bold, "PK-Italic": italic, "PK-Mono": mono}
        try:
            for name, path in faces.items():
                pdfmetrics.registerFont(TTFont(name, str(path)))
        except Exception:  # noqa: BLE001 - a broken system font must not stop evidence
            regular = None
        else:
            pdfmetrics.registerFontFamily(
                "PK-Regular",
                normal="PK-Regular",
                bold="PK-Bold",
                italic="PK-Italic",
                boldItalic="PK-Bold",
            )
            return FontSet(
                "PK-Regular", "PK-Bold", "PK-Italic", "PK-Mono", "DejaVu Sans (embedded)", True
            )
    import reportlab

    base = Path(reportlab.__file__).parent / "fonts"
    try:
        for name, file in (
            ("PK-Regular", "Vera.ttf"),
            ("PK-Bold", "VeraBd.ttf"),
            ("PK-Italic", "VeraIt.ttf"),
        ):
            pdfmetrics.registerFont(TTFont(name, str(base / file)))
        pdfmetrics.registerFontFamily(
            "PK-Regular", normal="PK-Regular", bold="PK-Bold", italic="PK-Italic"
        )
        return FontSet(
            "PK-Regular",
            "PK-Bold",
            "PK-Italic",
            "Courier",
            "Bitstream Vera (embedded; DejaVu not found, non-Latin scripts may show as boxes)",
            False,
        )
    except Exception:  # noqa: BLE001
        return FontSet(
            "Helvetica",
            "Helvetica-Bold",
            "Helvetica-Oblique",
            "Courier",
            "Helvetica (standard font; non-Latin scripts may show as boxes)",
            False,
        )


# --- markup -> flowables -----------------------------------------------------------------

_INLINE = {"b", "i", "code", "br"}
_FORBIDDEN_DECL = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class _Styles:
    fonts: FontSet
    title: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    h3: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    note: ParagraphStyle
    warning: ParagraphStyle
    cell: ParagraphStyle
    head: ParagraphStyle
    key: ParagraphStyle


def _styles() -> _Styles:
    f = fonts()

    def style(name: str, **kw: Any) -> ParagraphStyle:
        base: dict[str, Any] = {
            "fontName": f.regular,
            "fontSize": 9.5,
            "leading": 12.5,
            "splitLongWords": 1,  # break a 300-character token instead of overflowing
            "spaceAfter": 3,
        }
        base.update(kw)
        return ParagraphStyle(name, **base)

    return _Styles(
        fonts=f,
        title=style("title", fontName=f.bold, fontSize=17, leading=21, spaceAfter=4),
        h1=style(
            "h1",
            keepWithNext=1,
            fontName=f.bold,
            fontSize=14,
            leading=18,
            spaceBefore=8,
            spaceAfter=4,
        ),
        h2=style(
            "h2",
            keepWithNext=1,
            fontName=f.bold,
            fontSize=11.5,
            leading=15,
            spaceBefore=9,
            spaceAfter=3,
        ),
        h3=style(
            "h3",
            keepWithNext=1,
            fontName=f.bold,
            fontSize=10,
            leading=13,
            spaceBefore=6,
            spaceAfter=2,
        ),
        body=style("body"),
        small=style("small", fontSize=8, leading=10, textColor=colors.HexColor("#444444")),
        note=style("note", fontName=f.italic, fontSize=9, leading=12),
        warning=style("warning", fontName=f.bold, textColor=colors.HexColor("#9a1c1c")),
        cell=style("cell", fontSize=8, leading=10, spaceAfter=0),
        head=style("head", fontName=f.bold, fontSize=8, leading=10, spaceAfter=0),
        key=style("key", fontName=f.bold, fontSize=8.5, leading=11, spaceAfter=0),
    )


def _inline(element: ET.Element, mono: str, code_size: float = 7.5) -> str:
    """reportlab Paragraph markup for an element's content: every text node escaped,
    only <b>/<i>/<code>/<br/> turned into formatting."""
    parts = [xml_escape(element.text or "")]
    for child in element:
        if child.tag not in _INLINE:
            raise EvidenceError(f"report markup: <{child.tag}> is not allowed inside text")
        inner = _inline(child, mono, code_size)
        if child.tag == "b":
            parts.append(f"<b>{inner}</b>")
        elif child.tag == "i":
            parts.append(f"<i>{inner}</i>")
        elif child.tag == "code":
            # Slightly smaller, so a 64-character hash fits a table column on one line.
            parts.append(f'<font face="{mono}" size="{code_size:g}">{inner}</font>')
        else:
            parts.append("<br/>")
        parts.append(xml_escape(child.tail or ""))
    return "".join(parts).strip()


_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b0b0")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
]


def _widths(spec: str | None, columns: int, total: float) -> list[float]:
    weights: list[float] = []
    if spec:
        try:
            weights = [float(w) for w in spec.split(",")]
        except ValueError:
            raise EvidenceError("report markup: table widths must be numbers") from None
    if len(weights) != columns or any(w <= 0 for w in weights):
        weights = [1.0] * columns
    scale = total / sum(weights)
    return [w * scale for w in weights]


def _kv(element: ET.Element, st: _Styles, width: float) -> Flowable | None:
    rows = []
    for row in element:
        if row.tag != "row":
            raise EvidenceError("report markup: <kv> holds only <row> elements")
        key = row.find("k")
        value = row.find("v")
        rows.append(
            [
                Paragraph(_inline(key, st.fonts.mono) if key is not None else "", st.key),
                Paragraph(_inline(value, st.fonts.mono) if value is not None else "", st.cell),
            ]
        )
    if not rows:
        return None
    table = Table(
        rows, colWidths=_widths("1,2.3", 2, width), splitByRow=1, splitInRow=1, hAlign="LEFT"
    )
    table.setStyle(
        TableStyle([*_GRID, ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f3f6"))])
    )
    return table


def _table(element: ET.Element, st: _Styles, width: float) -> Flowable | None:
    rows: list[list[Paragraph]] = []
    header_rows = 0
    for tr in element:
        if tr.tag != "tr":
            raise EvidenceError("report markup: <table> holds only <tr> elements")
        cells = []
        all_head = True
        for cell in tr:
            if cell.tag not in ("th", "td"):
                raise EvidenceError("report markup: <tr> holds only <th> and <td> elements")
            all_head = all_head and cell.tag == "th"
            style = st.head if cell.tag == "th" else st.cell
            cells.append(Paragraph(_inline(cell, st.fonts.mono), style))
        if cells:
            if all_head and header_rows == len(rows):
                header_rows += 1
            rows.append(cells)
    if not rows:
        return None
    columns = max(len(r) for r in rows)
    for r in rows:
        r.extend(Paragraph("", st.cell) for _ in range(columns - len(r)))
    table = Table(
        rows,
        colWidths=_widths(element.get("widths"), columns, width),
        repeatRows=header_rows,
        splitByRow=1,
        splitInRow=1,
        hAlign="LEFT",
    )
    commands = list(_GRID)
    if header_rows:
        commands.append(("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#e4e8ee")))
    table.setStyle(TableStyle(commands))
    return table


def _chart(element: ET.Element, st: _Styles, width: float) -> Flowable:
    labels: list[str] = []
    values: list[float] = []
    for bar in element:
        if bar.tag != "bar":
            raise EvidenceError("report markup: <chart> holds only <bar> elements")
        try:
            value = float(bar.get("value", "0"))
        except ValueError:
            raise EvidenceError("report markup: <bar value> must be a number") from None
        labels.append(_visible(bar.get("label", ""))[:24])
        values.append(max(value, 0.0))
    height = 62 * mm
    drawing = Drawing(width, height)
    title = _visible(element.get("title", ""))[:120]
    if title:
        drawing.add(String(0, height - 10, title, fontName=st.fonts.bold, fontSize=9))
    chart = VerticalBarChart()
    chart.x, chart.y = 14 * mm, 12 * mm
    chart.width, chart.height = width - 20 * mm, height - 28 * mm
    chart.data = [values or [0.0]]
    chart.categoryAxis.categoryNames = labels or [""]
    chart.categoryAxis.labels.fontName = st.fonts.regular
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = st.fonts.regular
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    top = max(values, default=0.0)
    chart.valueAxis.valueMax = max(1.0, top * 1.15)
    chart.valueAxis.valueStep = max(1.0, float(int(max(1.0, top) / 5) or 1))
    chart.bars[0].fillColor = colors.HexColor("#4a6fa5")
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = st.fonts.regular
    chart.barLabels.fontSize = 7
    chart.barLabels.nudge = 6
    drawing.add(chart)
    ylabel = _visible(element.get("ylabel", ""))[:40]
    if ylabel:
        drawing.add(
            String(0, 12 * mm + chart.height / 2, ylabel, fontName=st.fonts.regular, fontSize=7)
        )
    return drawing


def _flowables(parent: ET.Element, st: _Styles, width: float) -> list[Flowable]:
    out: list[Flowable] = []
    paragraph_styles = {"h1": st.h1, "h2": st.h2, "h3": st.h3}
    for element in parent:
        tag = element.tag
        if tag in paragraph_styles:
            out.append(Paragraph(_inline(element, st.fonts.mono), paragraph_styles[tag]))
        elif tag == "title":
            out.append(Paragraph(_inline(element, st.fonts.mono), st.title))
        elif tag == "p":
            style = {"small": st.small, "note": st.note, "warning": st.warning}.get(
                element.get("class", ""), st.body
            )
            text = _inline(element, st.fonts.mono)
            if text:
                out.append(Paragraph(text, style))
        elif tag == "kv":
            flowable = _kv(element, st, width)
            if flowable is not None:
                out.extend([flowable, Spacer(1, 2 * mm)])
        elif tag == "table":
            flowable = _table(element, st, width)
            if flowable is not None:
                out.extend([flowable, Spacer(1, 2 * mm)])
        elif tag == "ul":
            for item in element:
                if item.tag != "li":
                    raise EvidenceError("report markup: <ul> holds only <li> elements")
                out.append(Paragraph(_inline(item, st.fonts.mono), st.body, bulletText="•"))
        elif tag == "section":
            out.extend(_flowables(element, st, width))
        elif tag == "chart":
            out.extend([_chart(element, st, width), Spacer(1, 2 * mm)])
        elif tag == "spacer":
            out.append(Spacer(1, 4 * mm))
        elif tag == "hr":
            out.append(HRFlowable(width="100%", thickness=0.5, color=colors.HexColor("#999999")))
        elif tag == "pagebreak":
            out.append(PageBreak())
        else:
            raise EvidenceError(f"report markup: unknown element <{tag}>")
    return out


def parse_markup(markup: str) -> ET.Element:
    """Parse report markup with the standard parser; DOCTYPE/ENTITY declarations (the
    only way XML can expand or fetch anything) are refused outright."""
    if _FORBIDDEN_DECL.search(markup):
        raise EvidenceError("report markup must not contain DOCTYPE or ENTITY declarations")
    try:
        root = ET.fromstring(markup)
    except ET.ParseError as exc:
        raise EvidenceError(f"report template produced malformed markup: {exc}") from None
    if root.tag != "report":
        raise EvidenceError("report markup must have a <report> root element")
    return root


def markup_to_pdf(markup: str, *, author: str = "privacykit", subject: str = "") -> bytes:
    """Lay out report markup as an (unsigned) PDF. Deterministic for the same input."""
    root = parse_markup(markup)
    with _LAYOUT_LOCK:
        return _layout(root, author=author, subject=subject)


def _layout(root: ET.Element, *, author: str, subject: str) -> bytes:
    st = _styles()
    title = _visible(root.get("title", "privacykit report"))[:200]
    footer = _visible(root.get("footer", ""))[:160]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=17 * mm,
        rightMargin=17 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=author,
        subject=subject,
        creator="privacykit",
        producer="privacykit (reportlab)",
        invariant=1,  # no timestamps or random ids: same input, same bytes
    )
    story = _flowables(root, st, doc.width)

    def footer_on_page(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(st.fonts.regular, 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(doc.leftMargin, 10 * mm, footer)
        canvas.drawRightString(A4[0] - doc.rightMargin, 10 * mm, f"page {document.page}")
        canvas.restoreState()

    try:
        doc.build(story, onFirstPage=footer_on_page, onLaterPages=footer_on_page)
    except LayoutError as exc:
        raise EvidenceError(f"report layout failed: {str(exc)[:200]}") from None
    return buffer.getvalue()


def render_pdf(template_name: str, context: Mapping[str, Any], *, subject: str = "") -> bytes:
    """Template -> markup -> unsigned PDF bytes."""
    return markup_to_pdf(render_markup(template_name, context), subject=subject)
