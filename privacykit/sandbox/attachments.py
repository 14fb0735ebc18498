"""The attachments host: a second tiny loopback server that serves attachment content.

Owns :class:`AttachmentsHost`. Real accounts serve files from another host than the API
(so a client must not send Zendesk credentials there); the sandbox does the same: every
``content_url`` points here (``http://127.0.0.2:PORT/attachments/token/<token>/?name=…``,
a different host from the API's ``127.0.0.1``). It answers ``GET``/``HEAD`` without
authentication and logs, for each request, whether an ``Authorization`` header (or a
cookie) arrived — never its value — so tests can prove credentials stayed home.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from privacykit.sandbox.wire import BaseHandler, LoopbackHTTPServer

if TYPE_CHECKING:
    from privacykit.sandbox.state import SandboxState

__all__ = ["DEFAULT_HOST", "AttachmentsHost"]

_PATH = re.compile(r"^/attachments/token/([0-9a-z]+)/?$")
#: Where the attachments host binds by default: another loopback address than the API's.
DEFAULT_HOST = "127.0.0.2"


class _FilesHandler(BaseHandler):
    server_version = "ZendeskSandboxFiles/1"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, *, head: bool) -> None:
        host: AttachmentsHost = self.server.owner
        path = unquote(self.path.partition("?")[0])
        match = _PATH.match(path)
        found = None if match is None else host.state.attachment_by_token(match.group(1))
        status = 200 if found is not None else 404
        host.record(
            None if found is None else found[0],
            status,
            authorization="Authorization" in self.headers,
            cookie="Cookie" in self.headers,
        )
        if found is None:
            self._send(404, b"Not Found", "text/plain; charset=utf-8")
            return
        _, name, ctype, content = found
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        headers = [("Content-Disposition", disposition)]
        if head:
            self.wfile.write(self._head(200, len(content), ctype, headers))
            return
        self._send(200, content, ctype, headers)


class AttachmentsHost:
    """Serves ``state``'s attachments on its own loopback host and port."""

    def __init__(self, state: SandboxState, host: str = DEFAULT_HOST) -> None:
        self.state = state
        self.host = host
        self.port = 0
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        if self._httpd is not None:
            return
        try:
            httpd = LoopbackHTTPServer((self.host, 0), _FilesHandler, self, 64)
        except OSError:
            # Some systems route only 127.0.0.1 (macOS): bind there, but name the host
            # "localhost" in URLs, so it is still another host than the API's address.
            httpd = LoopbackHTTPServer(("127.0.0.1", 0), _FilesHandler, self, 64)
            self.host = "localhost"
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-files",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def record(
        self, attachment_id: int | None, status: int, *, authorization: bool, cookie: bool
    ) -> None:
        with self._lock:
            self._seq += 1
            # Never the token (the file's secret) nor any header value.
            self._log.append(
                {
                    "seq": self._seq,
                    "attachment_id": attachment_id,
                    "status": status,
                    "authorization": authorization,
                    "cookie": cookie,
                }
            )

    def log(self) -> list[dict[str, Any]]:
        """Every request: ``seq``, ``attachment_id`` (None if unknown), ``status``,
        ``authorization`` and ``cookie`` (whether such a header arrived)."""
        with self._lock:
            return [dict(entry) for entry in self._log]
