"""Table column widths from content, and line breaks only at separators.

Pure functions (the caller supplies ``width_of(text, font, size)``, reportlab's
``stringWidth`` in practice), so the rules are testable without laying out a PDF.

Why: equal or hand-picked column widths broke ids and words in the middle
(``webshop:custome`` / ``r``) and squeezed long messages into a narrow column. Here
every column is measured: its *natural* width (widest line unwrapped), its widest
*word* (text between white space) and its widest *piece* (text between white space or a
separator such as ``:`` ``/`` ``-`` ``_`` ``.``). Columns first get room for their widest
word (else their widest piece); what is left goes to the columns that have more to say.
A word that still does not fit its column is broken after a separator (:func:`fit_text`),
never inside a run of letters or digits unless one such run is wider than the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "MIN_CONTENT",
    "SEPARATORS",
    "Extent",
    "Run",
    "WidthOf",
    "allocate",
    "fit_text",
    "measure",
    "pieces",
]

#: Characters after which an id or a path may be broken across lines.
SEPARATORS = ":/-_.,;=?&@|+#)]}"
#: One piece of a cell's text in one font: ``(text, font name, font size)``; the text
#: ``"\n"`` is a forced line break.
Run = tuple[str, str, float]
#: Points of text every column keeps when the content cannot fit without breaking.
MIN_CONTENT = 30.0
WidthOf = Callable[[str, str, float], float]

_SPACE = re.compile(r"\s+")
_SEP_CLASS = re.escape(SEPARATORS)
_PIECE = re.compile(rf"[^{_SEP_CLASS}]*[{_SEP_CLASS}]+|[^{_SEP_CLASS}]+")


@dataclass(frozen=True)
class Extent:
    """How wide a column's content is, in points (without cell padding)."""

    natural: float = 0.0  # widest line, unwrapped
    word: float = 0.0  # widest text between white space
    piece: float = 0.0  # widest text between white space or separators


def pieces(token: str) -> list[str]:
    """``webshop:customer`` -> ``["webshop:", "customer"]``: the parts a token may be
    broken into, each keeping the separator(s) that end it."""
    return _PIECE.findall(token) or [token]


def measure(cells: Sequence[Sequence[Run]], width_of: WidthOf) -> Extent:
    """The extent of one column from the runs of each of its cells."""
    natural = word = piece = 0.0
    for runs in cells:
        line = 0.0
        for text, font, size in runs:
            if text == "\n":
                natural, line = max(natural, line), 0.0
                continue
            collapsed = _SPACE.sub(" ", text)
            if not collapsed.strip():
                line += width_of(" ", font, size) if line and collapsed else 0.0
                continue
            line += width_of(collapsed.strip() if not line else collapsed, font, size)
            for token in collapsed.split():
                word = max(word, width_of(token, font, size))
                for part in pieces(token):
                    piece = max(piece, width_of(part, font, size))
        natural = max(natural, line)
    return Extent(natural=natural, word=word, piece=piece)


def allocate(
    extents: Sequence[Extent],
    total: float,
    padding: float,
    weights: Sequence[float] | None = None,
) -> list[float]:
    """Column widths summing to ``total`` (each including ``padding``).

    When everything fits unwrapped, each column gets its natural width and the rest is
    shared in proportion to it. Otherwise each column gets at least its widest word (or,
    if even those do not fit, its widest piece) and the remaining room goes to the
    columns in proportion to how much more they would need to fit unwrapped; ``weights``
    (a template's ``widths``) replace that proportion when given."""
    n = len(extents)
    if n == 0:
        return []
    if weights is not None and (len(weights) != n or any(w <= 0 for w in weights)):
        weights = None
    natural = [e.natural + padding for e in extents]
    if sum(natural) <= total:
        share = list(weights) if weights is not None else natural
        return _spread(natural, total, share)
    for level in ("word", "piece"):
        minimum = [
            min(getattr(e, level) + padding, nat) for e, nat in zip(extents, natural, strict=True)
        ]
        if sum(minimum) <= total:
            want = [max(nat - low, 0.0) for nat, low in zip(natural, minimum, strict=True)]
            share = list(weights) if weights is not None else want
            return _spread(minimum, total, share)
    # Not even the pieces fit: every column keeps a readable floor and the rest goes to
    # the columns whose pieces are wider (one of them will be broken mid-piece).
    floor = [min(nat, padding + MIN_CONTENT) for nat in natural]
    if sum(floor) >= total:
        return [f * total / sum(floor) for f in floor]
    want = [max(e.piece + padding - f, 0.0) for e, f in zip(extents, floor, strict=True)]
    return _spread(floor, total, want)


def _spread(base: list[float], total: float, share: Sequence[float]) -> list[float]:
    slack = total - sum(base)
    weight = sum(share)
    if slack <= 0:
        return base
    if weight <= 0:
        share, weight = [1.0] * len(base), float(len(base))
    return [b + slack * s / weight for b, s in zip(base, share, strict=True)]


def fit_text(text: str, font: str, size: float, width: float, width_of: WidthOf) -> list[str]:
    """``text`` as lines to be joined by forced breaks, so that no token wider than
    ``width`` is left for the layout engine to break between two letters: such a token is
    broken after a separator instead. Returns ``[text]`` when nothing needs breaking."""
    if width <= 0 or width_of(text, font, size) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    for token in re.split(r"(\s+)", text):
        if not token or token.isspace() or width_of(token, font, size) <= width:
            current += token
            continue
        chunks: list[str] = []
        chunk = ""
        for part in pieces(token):
            if chunk and width_of(chunk + part, font, size) > width:
                chunks.append(chunk)
                chunk = part
            else:
                chunk += part
        chunks.append(chunk)
        # The first chunk continues the current line; the layout wraps it if needed.
        current += chunks[0]
        for chunk in chunks[1:]:
            lines.append(current)
            current = chunk
    lines.append(current)
    return lines
