"""Report rendering: jinja2 templates -> a small restricted markup -> a reportlab PDF.

The two halves live in their own modules: :mod:`privacykit.evidence.templating` (template
lookup, sanitising, the sandboxed jinja2 environment) and :mod:`privacykit.evidence.pdf`
(reportlab: fonts, tables sized from their content, charts, pages). This module joins
them and is what the rest of privacykit calls; reportlab is imported only when a PDF is
actually laid out.

Why a markup in between: the templates decide wording and structure, but they never
produce reportlab's own Paragraph markup. They produce a tiny XML vocabulary (below),
rendered by a *sandboxed, autoescaping* jinja2 environment, so every value from Zendesk
or the user arrives as XML text. We parse it with the standard XML parser (DOCTYPE and
entity declarations refused) and re-escape each text node for reportlab, so a name such
as ``<font size=90>`` or ``<img src=...>`` prints literally and fetches nothing.

Markup vocabulary (root ``<report title=".." footer="..">``)::

    <title> <h1> <h2> <h3> <p class="small|note|warning">   inline: <b> <i> <code> <br/>
    <kv><row><k>..</k><v>..</v></row></kv>           key/value table
    <table widths="2,1,1"><tr><th>..</th></tr><tr><td>..</td></tr></table>
    <ul><li>..</li></ul>   <section>..</section>   <spacer/> <hr/> <pagebreak/>
    <chart title=".." ylabel=".."><bar label=".." value="3"/></chart>   bar chart

Table columns are sized from their content (``widths`` only shares out the room left
once every column fits its longest word); ids are broken only after separators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from privacykit.evidence.templating import (
    MAX_LIST_ITEMS,
    MAX_VALUE_CHARS,
    render_markup,
    sanitise,
    template_dirs,
)

if TYPE_CHECKING:
    from privacykit.evidence.pdf import FontSet

__all__ = [
    "MAX_LIST_ITEMS",
    "MAX_VALUE_CHARS",
    "fonts",
    "markup_to_pdf",
    "render_markup",
    "render_pdf",
    "sanitise",
    "template_dirs",
]


def fonts() -> FontSet:
    """The report fonts (registers them on first use; imports reportlab)."""
    from privacykit.evidence.pdf import fonts as pdf_fonts

    return pdf_fonts()


def markup_to_pdf(markup: str, *, author: str = "privacykit", subject: str = "") -> bytes:
    """Lay out report markup as an (unsigned) PDF. Deterministic for the same input."""
    from privacykit.evidence.pdf import layout_pdf, parse_markup

    return layout_pdf(parse_markup(markup), author=author, subject=subject)


def render_pdf(template_name: str, context: Mapping[str, Any], *, subject: str = "") -> bytes:
    """Template -> markup -> unsigned PDF bytes."""
    return markup_to_pdf(render_markup(template_name, context), subject=subject)
