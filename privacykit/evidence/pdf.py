"""Report markup -> reportlab PDF: fonts, styles, tables, charts, page layout.

The only module of privacykit that imports reportlab; it is imported by
:func:`privacykit.evidence.render.markup_to_pdf` when a report is laid out, so commands
that never render (``privacykit --help``, ``ledger``, ``evidence verify``) never load it.

The markup (see :mod:`privacykit.evidence.render`) is parsed with the standard XML
parser (DOCTYPE and entity declarations refused) and each text node is re-escaped for
reportlab, so a name such as ``<font size=90>`` or ``<img src=...>`` prints literally and
fetches nothing. Table columns are sized from their content and ids are broken only
after separators (:mod:`privacykit.evidence.tablelayout`).
"""

from __future__ import annotations

import io
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, Group, String
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

from privacykit.errors import EvidenceError
from privacykit.evidence.tablelayout import Extent, Run, allocate, fit_text, measure
from privacykit.evidence.templating import visible

__all__ = ["FontSet", "fonts", "layout_pdf", "parse_markup"]

# reportlab keeps process-wide state (font registry, paragraph caches) and does not promise
# thread safety; the erasure engine produces reports from worker threads, so layout is
# serialised. It takes tens of milliseconds, next to seconds of Zendesk round trips.
_LAYOUT_LOCK = threading.RLock()

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


def _width_of(text: str, font: str, size: float) -> float:
    return float(pdfmetrics.stringWidth(text, font, size))


# --- styles ------------------------------------------------------------------------------

_INLINE = {"b", "i", "code", "br"}
_FORBIDDEN_DECL = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_CODE_SIZE = 7.5  # slightly smaller, so a 64-character hash fits a table column
_PADDING = 3.0  # left and right cell padding, points
_FIT_SLACK = 1.0  # points kept free so rounding never pushes a fitted line over


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
            "splitLongWords": 1,  # last resort for a token wider than its whole column
            "spaceAfter": 3,
        }
        base.update(kw)
        return ParagraphStyle(name, **base)

    heading = {"keepWithNext": 1, "fontName": f.bold}
    return _Styles(
        fonts=f,
        title=style("title", fontName=f.bold, fontSize=17, leading=21, spaceAfter=4),
        h1=style("h1", **heading, fontSize=14, leading=18, spaceBefore=8, spaceAfter=4),
        h2=style("h2", **heading, fontSize=11.5, leading=15, spaceBefore=9, spaceAfter=3),
        h3=style("h3", **heading, fontSize=10, leading=13, spaceBefore=6, spaceAfter=2),
        body=style("body"),
        small=style("small", fontSize=8, leading=10, textColor=colors.HexColor("#444444")),
        note=style("note", fontName=f.italic, fontSize=9, leading=12),
        warning=style("warning", fontName=f.bold, textColor=colors.HexColor("#9a1c1c")),
        cell=style("cell", fontSize=8, leading=10, spaceAfter=0),
        head=style("head", fontName=f.bold, fontSize=8, leading=10, spaceAfter=0),
        key=style("key", fontName=f.bold, fontSize=8.5, leading=11, spaceAfter=0),
    )


# --- inline text -------------------------------------------------------------------------


def _child_font(tag: str, font: str, size: float, st: _Styles) -> tuple[str, float]:
    if tag == "b":
        return st.fonts.bold, size
    if tag == "i":
        return st.fonts.italic, size
    if tag == "code":
        return st.fonts.mono, min(size, _CODE_SIZE)
    return font, size


def _runs(element: ET.Element, st: _Styles, font: str, size: float) -> list[Run]:
    """The element's text as ``(text, font, size)`` runs, ``"\\n"`` for ``<br/>``."""
    out: list[Run] = [(element.text or "", font, size)]
    for child in element:
        if child.tag == "br":
            out.append(("\n", font, size))
        else:
            child_font, child_size = _child_font(child.tag, font, size, st)
            out.extend(_runs(child, st, child_font, child_size))
        out.append((child.tail or "", font, size))
    return [r for r in out if r[0]]


def _text(text: str, font: str, size: float, width: float | None) -> str:
    if width is None:
        return xml_escape(text)
    return "<br/>".join(xml_escape(line) for line in fit_text(text, font, size, width, _width_of))


def _inline(
    element: ET.Element,
    st: _Styles,
    style: ParagraphStyle | None = None,
    width: float | None = None,
    _font: tuple[str, float] | None = None,
) -> str:
    """reportlab Paragraph markup for an element's content: every text node escaped, only
    <b>/<i>/<code>/<br/> turned into formatting. With ``width`` (a table cell's), a token
    wider than the cell is broken after a separator rather than between two letters."""
    font, size = _font or ((style.fontName, style.fontSize) if style else (st.fonts.regular, 9.5))
    parts = [_text(element.text or "", font, size, width)]
    for child in element:
        if child.tag not in _INLINE:
            raise EvidenceError(f"report markup: <{child.tag}> is not allowed inside text")
        child_font = _child_font(child.tag, font, size, st)
        inner = _inline(child, st, width=width, _font=child_font)
        if child.tag == "b":
            parts.append(f"<b>{inner}</b>")
        elif child.tag == "i":
            parts.append(f"<i>{inner}</i>")
        elif child.tag == "code":
            parts.append(f'<font face="{st.fonts.mono}" size="{child_font[1]:g}">{inner}</font>')
        else:
            parts.append("<br/>")
        parts.append(_text(child.tail or "", font, size, width))
    return "".join(parts).strip()


# --- tables ------------------------------------------------------------------------------

_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b0b0")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), _PADDING),
    ("RIGHTPADDING", (0, 0), (-1, -1), _PADDING),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
]


def _weights(spec: str | None) -> list[float] | None:
    if not spec:
        return None
    try:
        return [float(w) for w in spec.split(",")]
    except ValueError:
        raise EvidenceError("report markup: table widths must be numbers") from None


def _cells_to_paragraphs(
    grid: list[list[tuple[ET.Element | None, ParagraphStyle]]], widths: list[float], st: _Styles
) -> list[list[Paragraph]]:
    rows = []
    for row in grid:
        cells = []
        for (cell, style), width in zip(row, widths, strict=True):
            room = width - 2 * _PADDING - _FIT_SLACK
            text = "" if cell is None else _inline(cell, st, style, room)
            cells.append(Paragraph(text, style))
        rows.append(cells)
    return rows


def _sized_columns(
    grid: list[list[tuple[ET.Element | None, ParagraphStyle]]],
    st: _Styles,
    width: float,
    weights: list[float] | None,
) -> list[float]:
    columns = len(grid[0])
    extents: list[Extent] = []
    for c in range(columns):
        cells = [
            _runs(cell, st, style.fontName, style.fontSize)
            for cell, style in (row[c] for row in grid)
            if cell is not None
        ]
        extents.append(measure(cells, _width_of))
    return allocate(extents, width, 2 * _PADDING + _FIT_SLACK, weights)


def _kv(element: ET.Element, st: _Styles, width: float) -> Flowable | None:
    grid: list[list[tuple[ET.Element | None, ParagraphStyle]]] = []
    for row in element:
        if row.tag != "row":
            raise EvidenceError("report markup: <kv> holds only <row> elements")
        grid.append([(row.find("k"), st.key), (row.find("v"), st.cell)])
    if not grid:
        return None
    # Keys are short labels: the same share of the width in every key/value table (so they
    # line up), wider only when a key's longest word would not fit.
    keys = measure(
        [_runs(r[0][0], st, st.key.fontName, st.key.fontSize) for r in grid if r[0][0] is not None],
        _width_of,
    )
    key = max(width * 0.3, min(keys.word + 2 * _PADDING + _FIT_SLACK, width * 0.5))
    widths = [key, width - key]
    table = Table(
        _cells_to_paragraphs(grid, widths, st),
        colWidths=widths,
        splitByRow=1,
        splitInRow=1,
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle([*_GRID, ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f3f6"))])
    )
    return table


def _table(element: ET.Element, st: _Styles, width: float) -> Flowable | None:
    grid: list[list[tuple[ET.Element | None, ParagraphStyle]]] = []
    header_rows = 0
    for tr in element:
        if tr.tag != "tr":
            raise EvidenceError("report markup: <table> holds only <tr> elements")
        cells: list[tuple[ET.Element | None, ParagraphStyle]] = []
        all_head = True
        for cell in tr:
            if cell.tag not in ("th", "td"):
                raise EvidenceError("report markup: <tr> holds only <th> and <td> elements")
            all_head = all_head and cell.tag == "th"
            cells.append((cell, st.head if cell.tag == "th" else st.cell))
        if cells:
            if all_head and header_rows == len(grid):
                header_rows += 1
            grid.append(cells)
    if not grid:
        return None
    columns = max(len(r) for r in grid)
    for r in grid:
        r.extend((None, st.cell) for _ in range(columns - len(r)))
    widths = _sized_columns(grid, st, width, _weights(element.get("widths")))
    table = Table(
        _cells_to_paragraphs(grid, widths, st),
        colWidths=widths,
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


# --- chart -------------------------------------------------------------------------------


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
        labels.append(visible(bar.get("label", ""))[:24])
        values.append(max(value, 0.0))
    height = 62 * mm
    drawing = Drawing(width, height)
    title = visible(element.get("title", ""))[:120]
    if title:
        drawing.add(String(0, height - 10, title, fontName=st.fonts.bold, fontSize=9))
    top = max(values, default=0.0)
    step = max(1.0, float(int(max(1.0, top) / 5) or 1))
    value_max = max(1.0, top * 1.15)
    # Room on the left for the rotated axis label, then the widest tick label, so the
    # two never overlap (the label used to be drawn across the ticks).
    tick_width = max(_width_of(f"{int(v)}", st.fonts.regular, 7) for v in (0, value_max))
    label_room = 12.0
    chart = VerticalBarChart()
    chart.x = label_room + tick_width + 8
    chart.y = 12 * mm
    chart.width, chart.height = width - chart.x - 6 * mm, height - 28 * mm
    chart.data = [values or [0.0]]
    chart.categoryAxis.categoryNames = labels or [""]
    chart.categoryAxis.labels.fontName = st.fonts.regular
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = st.fonts.regular
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = value_max
    chart.valueAxis.valueStep = step
    chart.bars[0].fillColor = colors.HexColor("#4a6fa5")
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = st.fonts.regular
    chart.barLabels.fontSize = 7
    chart.barLabels.nudge = 6
    drawing.add(chart)
    ylabel = visible(element.get("ylabel", ""))[:40]
    if ylabel:
        label = Group(
            String(0, 0, ylabel, fontName=st.fonts.regular, fontSize=7, textAnchor="middle")
        )
        # Rotated a quarter turn, centred on the value axis, left of its tick labels.
        label.transform = (0, 1, -1, 0, 7, chart.y + chart.height / 2)
        drawing.add(label)
    return drawing


# --- document ----------------------------------------------------------------------------


def _flowables(parent: ET.Element, st: _Styles, width: float) -> list[Flowable]:
    out: list[Flowable] = []
    paragraph_styles = {"h1": st.h1, "h2": st.h2, "h3": st.h3, "title": st.title}
    for element in parent:
        tag = element.tag
        if tag in paragraph_styles:
            style = paragraph_styles[tag]
            out.append(Paragraph(_inline(element, st, style), style))
        elif tag == "p":
            style = {"small": st.small, "note": st.note, "warning": st.warning}.get(
                element.get("class", ""), st.body
            )
            text = _inline(element, st, style)
            if text:
                out.append(Paragraph(text, style))
        elif tag in ("kv", "table"):
            flowable = _kv(element, st, width) if tag == "kv" else _table(element, st, width)
            if flowable is not None:
                out.extend([flowable, Spacer(1, 2 * mm)])
        elif tag == "ul":
            for item in element:
                if item.tag != "li":
                    raise EvidenceError("report markup: <ul> holds only <li> elements")
                out.append(Paragraph(_inline(item, st, st.body), st.body, bulletText="•"))
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


def layout_pdf(root: ET.Element, *, author: str, subject: str) -> bytes:
    """Lay out parsed report markup as an (unsigned) PDF. Deterministic for the same
    input."""
    with _LAYOUT_LOCK:
        return _layout(root, author=author, subject=subject)


def _layout(root: ET.Element, *, author: str, subject: str) -> bytes:
    st = _styles()
    title = visible(root.get("title", "privacykit report"))[:200]
    footer = visible(root.get("footer", ""))[:160]
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
    except RecursionError:
        raise EvidenceError("report layout failed: content nested too deeply") from None
    return buffer.getvalue()
