"""Pagination: iterate every record of a cursor- or offset-paginated Zendesk list.

Owns how a next page is found, and that an answer *says* whether there is one. The
iterators never follow a ``next`` URL blindly (it could point anywhere, and the client
would send credentials there): they take only the page parameters out of it and ask the
same path again through the client. Every loop is bounded: a repeated cursor or page
stops it, and so does ``max_pages``.

Cursor pagination (Zendesk's recommended form)::

    GET /api/v2/users?page[size]=100
    {"users": [...], "meta": {"has_more": true, "after_cursor": "xyz"},
     "links": {"next": "https://.../api/v2/users?page[after]=xyz&page[size]=100"}}

Some endpoints (the profile events read endpoint) send ``links`` as an array of objects,
``[{"next": "..."}]``; both shapes are understood. Offset pagination (search, and lists
without cursor support) uses ``page``/``per_page`` and a ``next_page`` URL.

Fail closed: a page that does not say whether more follow (no ``meta.has_more``, no
``next_page`` key, no ``links.next`` key), says "more" without a usable cursor, or lacks
its records array is a :class:`~privacykit.errors.MalformedResponseError` naming the
endpoint; it is never read as "end of list".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from privacykit.errors import MalformedResponseError, ZendeskError

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


def records(
    body: Mapping[str, Any], keys: str | Sequence[str], endpoint: str = "unknown endpoint"
) -> list[dict[str, Any]]:
    """The records of a page body: the array under the first of ``keys`` present, every
    item an object; else :class:`MalformedResponseError`."""
    names = (keys,) if isinstance(keys, str) else tuple(keys)
    for key in names:
        if key in body:
            value = body[key]
            if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
                raise _malformed(endpoint, f"'{key}' is not an array of objects")
            return value
    raise _malformed(endpoint, f"no '{names[0]}' array")


def _malformed(endpoint: str, what: str) -> MalformedResponseError:
    return MalformedResponseError(f"{endpoint}: malformed answer: {what}", endpoint=endpoint)


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


def _has_next_key(body: Mapping[str, Any]) -> bool:
    links = body.get("links")
    if isinstance(links, Mapping):
        return "next" in links
    if isinstance(links, list):
        return any(isinstance(item, Mapping) and "next" in item for item in links)
    return False


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
    endpoint: str = "unknown endpoint",
) -> Iterator[dict[str, Any]]:
    """Every record of a cursor-paginated list, page after page.

    The next page comes from ``meta.after_cursor`` when ``meta.has_more`` is true, else
    from the ``page[after]`` of ``links.next``. A server answering with offset pagination
    instead (``next_page``) is followed too. A cursor seen twice ends the iteration with
    an error (the server is looping), so the loop is bounded even against a faulty server.
    """
    base = dict(params or {})
    if page_size is not None:
        base["page[size]"] = page_size
    seen: set[str] = set()
    page = dict(base)
    for _ in range(max_pages):
        body = fetch(page)
        yield from records(body, keys, endpoint)
        kind, value = _next_page(body, endpoint)
        if kind == "end":
            return
        marker = f"{kind}={value}"
        if marker in seen:
            raise ZendeskError(f"{endpoint}: pagination stopped: the server repeated a page")
        seen.add(marker)
        if kind == "cursor":
            page = {**base, "page[after]": value}
        else:
            # Offset pagination instead. Assumption: the server keeps the filters we sent.
            page = {k: v for k, v in base.items() if not k.startswith("page[")}
            page["page"] = value
    raise ZendeskError(f"{endpoint}: pagination stopped after {max_pages} pages")


def _next_page(body: Mapping[str, Any], endpoint: str) -> tuple[str, Any]:
    """("cursor", after) / ("offset", page number) / ("end", None), from what the page
    says; a page that says nothing usable is malformed."""
    meta = body.get("meta")
    if isinstance(meta, Mapping) and "has_more" in meta:
        has_more = meta["has_more"]
        if not isinstance(has_more, bool):
            raise _malformed(endpoint, "meta.has_more is not a boolean")
        if not has_more:
            return "end", None
        after = meta.get("after_cursor")
        if isinstance(after, str) and after:
            return "cursor", after
        link = next_link(body)
        linked = _page_params(link, ("page[after]",)).get("page[after]") if link else None
        if linked:
            return "cursor", linked
        raise _malformed(endpoint, "meta.has_more is true but there is no cursor")
    if "next_page" in body:
        number = _offset_number(body["next_page"], endpoint)
        return ("end", None) if number is None else ("offset", number)
    if _has_next_key(body):
        link = next_link(body)
        if link is None:
            return "end", None
        linked = _page_params(link, ("page[after]",)).get("page[after]")
        if linked:
            return "cursor", linked
        raise _malformed(endpoint, "links.next has no page[after]")
    raise _malformed(endpoint, "no pagination fields (meta.has_more, next_page or links.next)")


def _offset_number(next_page: Any, endpoint: str) -> int | None:
    if next_page is None:
        return None
    if not isinstance(next_page, str) or not next_page:
        raise _malformed(endpoint, "next_page is neither a URL nor null")
    raw = _page_params(next_page, ("page",)).get("page")
    if raw is None or not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise _malformed(endpoint, "next_page has no page number")
    return int(raw)


def iter_offset(
    fetch: Fetch,
    keys: str | Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    per_page: int | None = 100,
    max_pages: int = DEFAULT_MAX_PAGES,
    endpoint: str = "unknown endpoint",
) -> Iterator[dict[str, Any]]:
    """Every record of an offset-paginated list (``page``/``per_page``/``next_page``).
    Each page must carry ``next_page`` (a URL, or ``null`` on the last page)."""
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
        yield from records(body, keys, endpoint)
        if "next_page" not in body:
            raise _malformed(endpoint, "no next_page")
        following = _offset_number(body["next_page"], endpoint)
        if following is None:
            return
        if following in seen or following <= page_number:
            raise ZendeskError(f"{endpoint}: pagination stopped: the server repeated a page")
        seen.add(following)
        page_number = following
    raise ZendeskError(f"{endpoint}: pagination stopped after {max_pages} pages")
