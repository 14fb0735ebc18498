"""Pagination: iterate every record of a cursor- or offset-paginated Zendesk list.

Owns how a next page is found. The iterators never follow a ``next`` URL blindly (it
could point anywhere, and the client would send credentials there): they take only the
page parameters out of it and ask the same path again through the client. Every loop
is bounded: a repeated cursor or page stops it, and so does ``max_pages``.

Cursor pagination (Zendesk's recommended form)::

    GET /api/v2/users?page[size]=100
    {"users": [...], "meta": {"has_more": true, "after_cursor": "xyz"},
     "links": {"next": "https://.../api/v2/users?page[after]=xyz&page[size]=100"}}

Some endpoints (the profile events read endpoint) send ``links`` as an array of objects,
``[{"next": "..."}]``; both shapes are understood. Offset pagination (search, and lists
without cursor support) uses ``page``/``per_page`` and a ``next_page`` URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from privacykit.errors import ZendeskError

__all__ = [
    "DEFAULT_MAX_PAGES",
    "Fetch",
    "iter_cursor",
    "iter_offset",
    "next_link",
    "records",
]

#: A page fetcher: page parameters in, parsed JSON body out (the client binds the path).
Fetch = Callable[[dict[str, Any]], Mapping[str, Any]]

DEFAULT_MAX_PAGES = 100_000


def records(body: Mapping[str, Any], keys: str | Sequence[str]) -> list[dict[str, Any]]:
    """The list of records in a page body under the first of ``keys`` present."""
    for key in (keys,) if isinstance(keys, str) else keys:
        value = body.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def next_link(body: Mapping[str, Any]) -> str | None:
    """``links.next`` whether ``links`` is an object or an array of objects."""
    links = body.get("links")
    candidates: list[Any] = []
    if isinstance(links, Mapping):
        candidates = [links]
    elif isinstance(links, list):
        candidates = [item for item in links if isinstance(item, Mapping)]
    for item in candidates:
        value = item.get("next")
        if isinstance(value, str) and value:
            return value
    return None


def _page_params(url: str, names: tuple[str, ...]) -> dict[str, str]:
    """The pagination parameters of a next-page URL (everything else is ours to set)."""
    query = urlsplit(url).query
    return {k: v for k, v in parse_qsl(query, keep_blank_values=True) if k in names}


def iter_cursor(
    fetch: Fetch,
    keys: str | Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    page_size: int | None = 100,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[dict[str, Any]]:
    """Every record of a cursor-paginated list, page after page.

    The next page comes from ``meta.after_cursor`` when ``meta.has_more`` is true, else
    from the ``page[after]`` of ``links.next``. A cursor seen twice ends the iteration with
    an error (the server is looping), so the loop is bounded even against a faulty server.
    """
    base = dict(params or {})
    if page_size is not None:
        base["page[size]"] = page_size
    seen: set[str] = set()
    page = dict(base)
    for _ in range(max_pages):
        body = fetch(page)
        yield from records(body, keys)
        cursor = _next_cursor(body)
        if cursor is not None:
            if cursor in seen:
                raise ZendeskError("pagination stopped: the server repeated a cursor")
            seen.add(cursor)
            page = {**base, "page[after]": cursor}
            continue
        # A server that answered with offset pagination instead (``next_page``): follow it
        # with the same bounds. Assumption: it keeps the filters we sent.
        offset = _next_offset(body)
        if offset is None:
            return
        marker = f"page={offset}"
        if marker in seen:
            raise ZendeskError("pagination stopped: the server repeated a page")
        seen.add(marker)
        page = {k: v for k, v in base.items() if not k.startswith("page[")}
        page["page"] = offset
    raise ZendeskError(f"pagination stopped after {max_pages} pages")


def _next_offset(body: Mapping[str, Any]) -> int | None:
    next_page = body.get("next_page")
    if not isinstance(next_page, str) or not next_page:
        return None
    raw = _page_params(next_page, ("page",)).get("page")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    meta = body.get("meta")
    link = next_link(body)
    if isinstance(meta, Mapping) and "has_more" in meta:
        if not meta.get("has_more"):
            return None
        after = meta.get("after_cursor")
        if isinstance(after, str) and after:
            return after
    if link is not None:
        after = _page_params(link, ("page[after]",)).get("page[after]")
        if after:
            return after
    return None


def iter_offset(
    fetch: Fetch,
    keys: str | Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    per_page: int | None = 100,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[dict[str, Any]]:
    """Every record of an offset-paginated list (``page``/``per_page``/``next_page``)."""
    base = dict(params or {})
    if per_page is not None:
        base["per_page"] = per_page
    page_number = 1
    seen: set[int] = set()
    for _ in range(max_pages):
        page = dict(base)
        if page_number > 1:
            page["page"] = page_number
        body = fetch(page)
        yield from records(body, keys)
        next_page = body.get("next_page")
        if not isinstance(next_page, str) or not next_page:
            return
        raw = _page_params(next_page, ("page",)).get("page")
        try:
            following = int(raw) if raw is not None else page_number + 1
        except ValueError:
            following = page_number + 1
        if following in seen or following <= page_number:
            raise ZendeskError("pagination stopped: the server repeated a page")
        seen.add(following)
        page_number = following
    raise ZendeskError(f"pagination stopped after {max_pages} pages")
