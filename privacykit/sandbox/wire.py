"""The sandbox's HTTP plumbing: the threaded loopback server and the request handler.

Owns :class:`LoopbackHTTPServer` (stdlib ``ThreadingHTTPServer`` with a bound on
concurrent connections and a way to close idle keep-alive connections on stop) and
:class:`ApiHandler`, which turns one HTTP/1.1 request into: control endpoint or API call;
authentication; routing (paths with and without ``.json``); forced 429s; the rate-limit
budget; random faults; the route's answer; a malformed body; the request log; and the
bytes on the wire (at once, or dripped).
"""

from __future__ import annotations

import http
import ipaddress
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from privacykit.sandbox.control import control
from privacykit.sandbox.faults import SLOW_FAULT_SECONDS, Drip, malform
from privacykit.sandbox.model import ApiError
from privacykit.sandbox.routing import Call, Reply, Route, endpoint_key, throttled

if TYPE_CHECKING:
    from privacykit.sandbox.server import SandboxServer

__all__ = ["ApiHandler", "BaseHandler", "LoopbackHTTPServer", "is_loopback"]

_NOT_FOUND = {"error": "InvalidEndpoint", "description": "Not found"}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_error_body(status: int, html: bool) -> tuple[bytes, str]:
    phrase = http.HTTPStatus(status).phrase
    if html:
        title = f"<title>{status} {phrase}</title>"
        text = f"<html><head>{title}</head><body><h1>{phrase}</h1></body></html>"
        return text.encode(), "text/html; charset=utf-8"
    body = {"error": phrase.replace(" ", ""), "description": "Sandbox injected fault"}
    return json.dumps(body).encode(), "application/json; charset=utf-8"


def _loggable(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, silent, one write per answer."""

    protocol_version = "HTTP/1.1"
    server_version = "ZendeskSandbox/1"
    sys_version = ""
    # One write per answer and no Nagle: no 40 ms delayed-ACK stalls on keep-alive.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 120
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Silence: never write request lines (or headers) anywhere.
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _head(
        self, status: int, length: int, content_type: str | None, headers: Iterable[tuple[str, str]]
    ) -> bytes:
        phrase = http.HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {status} {phrase}", f"Server: {self.server_version}"]
        if status != 204:
            # 204 has no body and must not carry Content-Length; all else always does.
            lines.append(f"Content-Length: {length}")
            if content_type:
                lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        body = b"" if status == 204 else body
        self.wfile.write(self._head(status, len(body), content_type, headers) + body)

    def _drop(self) -> None:
        """Close the connection without answering."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ApiHandler(BaseHandler):
    """The Zendesk API and the ``/_sandbox/`` control endpoints."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    @property
    def sandbox(self) -> SandboxServer:
        owner: SandboxServer = self.server.owner
        return owner

    def _reply_bytes(self, reply: Reply) -> tuple[bytes, str]:
        if reply.text is not None:
            return reply.text, reply.content_type
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        return body, "application/json; charset=utf-8"

    def _send_reply(
        self, reply: Reply, headers: list[tuple[str, str]], drip: Drip | None = None
    ) -> None:
        body, ctype = self._reply_bytes(reply)
        all_headers = [*headers, *reply.headers]
        if drip is None:
            self._send(reply.status, body, ctype, all_headers)
            return
        body = b"" if reply.status == 204 else body
        data = self._head(reply.status, len(body), ctype, all_headers) + body
        self._drip(data, 0 if drip.part == "head" else len(data) - len(body), drip)

    def _drip(self, data: bytes, start: int, drip: Drip) -> None:
        """Write ``data[:start]`` at once, then one byte per interval (at most
        ``max_bytes``), then the rest; stops early when the client hangs up or the
        sandbox stops."""
        sb = self.sandbox
        pause = sb.clock.to_real(drip.interval)
        self.wfile.write(data[:start])
        end = min(len(data), start + drip.max_bytes)
        for index in range(start, end):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            if sb.stopping.wait(pause):
                self.close_connection = True
                return
        self.wfile.write(data[end:])

    def _dispatch(self) -> None:
        sb = self.sandbox
        method = self.command
        raw_path, _, query = self.path.partition("?")
        path = unquote(raw_path)
        if path.endswith(".json"):
            path = path[: -len(".json")]
        if len(path) > 1:
            path = path.rstrip("/")
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, b'{"error": "bad request body"}', "application/json")
            return
        params = parse_qs(query, keep_blank_values=True)
        if path.startswith("/_sandbox/"):
            if not is_loopback(self.client_address[0]):
                self._send(
                    403, b'{"error": "control endpoints are loopback only"}', "application/json"
                )
                return
            self._send_reply(control(sb, method, path, params, raw), [])
            return

        log_body = _loggable(raw)

        def record(status: int | None, fault: str | None) -> None:
            sb.record(method, raw_path, query, status, fault, log_body)

        if not sb.authorized(self.headers.get("Authorization")):
            record(401, None)
            self._send(
                401, b'{"error": "Couldn\'t authenticate you"}', "application/json; charset=utf-8"
            )
            return
        if not path.startswith("/api/v2/"):
            record(404, None)
            self._send_reply(Reply(404, _NOT_FOUND), [])
            return
        found = sb.find_route(method, path)
        route, call = (None, None) if found is None else found
        if call is not None:
            call.params, call.raw_body = params, raw
        endpoints = [endpoint_key(f"{method} {path}")]
        if route is not None:
            endpoints.insert(0, endpoint_key(route.endpoint))
        if sb.faults.throttled(endpoints):
            record(429, "throttle")
            self._send_reply(throttled(sb.retry_after_header(1.0)), [])
            return
        scopes = route.scopes(call) if route is not None and route.scopes and call else []
        decision = sb.limiter.acquire(scopes)
        if not decision.allowed:
            record(429, None)
            wait = sb.retry_after_header(None, decision.retry_after)
            self._send_reply(throttled(wait), decision.headers)
            return
        fault, roll = sb.faults.pick_random()
        if fault == "drop_before":
            record(None, fault)
            self._drop()
            return
        if fault == "error":
            status = (500, 502, 503)[int(roll * 3) % 3]
            body, ctype = _server_error_body(status, html=int(roll * 6) % 2 == 1)
            record(status, fault)
            self._send(status, body, ctype, decision.headers)
            return
        if fault == "slow":
            low, high = SLOW_FAULT_SECONDS
            time.sleep(low + (high - low) * roll)
        reply = self._answer(sb, route, call)
        if reply.status == 429:
            # A refusal the route decided (the queued-jobs cap): the configured value wins.
            reply.headers = [
                (name, sb.retry_after_header(None, value) if name == "Retry-After" else value)
                for name, value in reply.headers
            ]
        if 200 <= reply.status < 300:
            kind = sb.faults.malformed_for(endpoints)
            if kind is not None:
                reply = malform(kind, reply)
                fault = f"malformed:{kind}"
        drip = sb.faults.drip_for(endpoints)
        if drip is not None and fault is None:
            fault = "slow_drip"
        record(reply.status, fault)
        if fault == "drop_after":
            # The action happened; only the answer is lost.
            self._drop()
            return
        self._send_reply(reply, decision.headers, drip)

    def _answer(self, sb: SandboxServer, route: Route | None, call: Call | None) -> Reply:
        if route is None or call is None:
            return Reply(404, _NOT_FOUND)
        try:
            sb.state.settle()
            return route.func(sb, call)
        except ApiError as exc:
            return Reply(exc.status, exc.body)
        except Exception:  # a sandbox bug must answer, not kill the connection thread
            traceback.print_exc(file=sys.stderr)
            return Reply(500, {"error": "InternalError", "description": "sandbox bug"})


class LoopbackHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a bound on concurrent connections, daemon threads, and
    a way to close idle keep-alive connections on stop. ``owner`` is what the handler
    serves (the :class:`SandboxServer`, or the attachments host)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: Any,
        max_connections: int,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.owner = owner
        self.max_connections = max_connections
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if len(self._connections) >= self.max_connections:
                self.shutdown_request(request)
                return
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name="sandbox-conn",
                daemon=True,
            )
            self._connections[request] = thread
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is normal; anything else is a sandbox bug.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            items = list(self._connections.items())
        for sock, _ in items:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in items:
            thread.join(timeout=2)
