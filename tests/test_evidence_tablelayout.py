"""Column widths from content and breaks only after separators (pure functions, measured
with a fixed-width stand-in for reportlab's stringWidth: every character 1 point)."""

from __future__ import annotations

from privacykit.evidence.tablelayout import Extent, allocate, fit_text, measure, pieces


def width(text: str, font: str = "", size: float = 1.0) -> float:
    return float(len(text)) * size


def test_pieces_keep_their_separators() -> None:
    assert pieces("webshop:customer") == ["webshop:", "customer"]
    assert pieces("GET /api/v2/users/{id}") == ["GET /", "api/", "v2/", "users/", "{id}"]
    assert pieces("01M8P1JWF0V3RS3DTR98H6BCFN") == ["01M8P1JWF0V3RS3DTR98H6BCFN"]


def test_measure_natural_word_and_piece() -> None:
    cells = [[("user 7: not deleted", "f", 1.0)], [("webshop:customer", "f", 1.0)]]
    extent = measure(cells, width)
    assert extent.natural == len("user 7: not deleted")
    assert extent.word == len("webshop:customer")
    assert extent.piece == len("customer")
    forced = measure([[("abc", "f", 1.0), ("\n", "f", 1.0), ("abcdefg", "f", 1.0)]], width)
    assert forced.natural == 7


def test_everything_fits_unwrapped_then_shares_the_rest() -> None:
    widths = allocate([Extent(10, 5, 3), Extent(30, 10, 4)], 100, 0)
    assert widths == [25.0, 75.0]


def test_long_text_gets_the_room_short_ids_keep_their_words() -> None:
    """The audit's findings table: the message column is the one that wraps."""
    request = Extent(natural=120, word=120, piece=40)  # an id: one word
    message = Extent(natural=900, word=60, piece=30)
    widths = allocate([request, message], 400, 6)
    assert widths[0] >= 126  # the id is never broken
    assert abs(sum(widths) - 400) < 1e-6
    assert widths[1] > widths[0]


def test_when_words_do_not_fit_pieces_do() -> None:
    widths = allocate([Extent(200, 200, 50), Extent(200, 200, 50)], 150, 0)
    assert all(w >= 50 for w in widths)


def test_fit_text_breaks_after_separators_only() -> None:
    assert fit_text("webshop:customer", "f", 1, 10, width) == ["webshop:", "customer"]
    assert fit_text("short", "f", 1, 10, width) == ["short"]
    lines = fit_text("profile:delete:01M8P1JWF0V3RS3DTR98H6BCFN", "f", 1, 30, width)
    assert lines == ["profile:delete:", "01M8P1JWF0V3RS3DTR98H6BCFN"]
    assert "".join(lines) == "profile:delete:01M8P1JWF0V3RS3DTR98H6BCFN"


def test_weights_share_the_room_left_after_the_minimum() -> None:
    widths = allocate([Extent(10, 10, 10), Extent(10, 10, 10)], 100, 0, weights=[3, 1])
    assert widths == [70.0, 30.0]
