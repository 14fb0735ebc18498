"""Well-formed Zendesk records for respx tests: the minimum each endpoint's schema
(``privacykit.zendesk.schemas``) requires, plus whatever a test overrides."""

from __future__ import annotations

from typing import Any

BASE = "https://acme.zendesk.com"


def user(uid: int, **fields: Any) -> dict[str, Any]:
    return {"id": uid, "role": "end-user", "active": True, "name": f"User {uid}", **fields}


def deleted_user(uid: int, **fields: Any) -> dict[str, Any]:
    return {"id": uid, "name": f"User {uid}", "active": False, **fields}


def identity(iid: int, uid: int = 5, **fields: Any) -> dict[str, Any]:
    value = f"person{iid}@example.org"
    return {"id": iid, "user_id": uid, "type": "email", "value": value, **fields}


def profile(pid: str, **fields: Any) -> dict[str, Any]:
    return {"id": pid, "source": "shop", "type": "customer", "identifiers": [], **fields}


def job(jid: str, status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {"id": jid, "status": status, **fields}


def ticket(tid: int, status: str = "open", requester_id: int = 5, **fields: Any) -> dict[str, Any]:
    return {"id": tid, "status": status, "requester_id": requester_id, **fields}


def comment(cid: int, author_id: int = 5, **fields: Any) -> dict[str, Any]:
    return {"id": cid, "author_id": author_id, "public": True, "attachments": [], **fields}


def attachment(aid: int, url: str | None = None, **fields: Any) -> dict[str, Any]:
    content_url = url or f"{BASE}/attachments/token/tok{aid}/?name=f{aid}.txt"
    return {"id": aid, "content_url": content_url, "file_name": f"f{aid}.txt", **fields}


def last_page(key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: items, "meta": {"has_more": False, "after_cursor": None}, "links": {"next": None}}
