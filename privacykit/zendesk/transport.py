"""Bounded exchanges: a total deadline per request and a cap on the answer's size.

Owns :class:`DeadlineTransport` (the default transport of every client), the
:func:`deadline` context that arms it for one exchange, and :func:`read_bounded`.

Why a transport: httpx's timeouts are per socket operation, so a server that drips one
byte every 10 s never trips a 30 s read timeout and holds a run for ever. The transport
wraps httpcore's network backend so that every socket read, write and connect of the
exchange running on this thread gets ``min(its own timeout, time left before the
deadline)``: connect, request, response headers and body are all inside one deadline,
without a watchdog thread. :func:`read_bounded` checks the deadline between body chunks
as well, which is what bounds transports without sockets (tests' mock transports).
Assumption: httpcore's connection pools keep their backend in ``_network_backend``
(true for httpcore 1.x); if a future version does not, only the between-chunks check
remains and ``DeadlineTransport.socket_deadlines`` is false (a test watches this).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DeadlineTransport",
    "Overrun",
    "deadline",
    "deadline_passed",
    "read_bounded",
]

#: Total seconds one exchange may take (connect, send, headers, body).
DEFAULT_DEADLINE = 180.0
#: Largest answer kept (bytes, after content decoding): Zendesk pages are well under 1 MB.
DEFAULT_MAX_RESPONSE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class _Deadline:
    at: float
    clock: Callable[[], float]

    def left(self) -> float:
        return self.at - self.clock()


_local = threading.local()


@contextmanager
def deadline(at: float, clock: Callable[[], float]) -> Iterator[None]:
    """Every socket operation of this thread must end by ``at`` (on ``clock``)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = _Deadline(at, clock)
    try:
        yield
    finally:
        _local.deadline = previous


def deadline_passed() -> bool:
    current: _Deadline | None = getattr(_local, "deadline", None)
    return current is not None and current.left() <= 0


def _bounded(timeout: float | None, kind: type[Exception]) -> float | None:
    current: _Deadline | None = getattr(_local, "deadline", None)
    if current is None:
        return timeout
    left = current.left()
    if left <= 0:
        raise kind("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            _bounded(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, _bounded(timeout, httpcore.ConnectTimeout), socket_options=socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (same arguments) whose sockets obey :func:`deadline`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pool = getattr(self, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        self.socket_deadlines = isinstance(backend, httpcore.NetworkBackend)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(
            backend, _DeadlineBackend
        ):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


class Overrun(Exception):
    """Raised by :func:`read_bounded` (the caller maps it to a privacykit error)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "deadline" or "size"


def read_bounded(
    response: httpx.Response, *, max_bytes: int, sink: Callable[[bytes], None] | None = None
) -> int:
    """Read a streamed answer's (decoded) body, at most ``max_bytes``, and within the
    deadline armed on this thread. Without ``sink`` the body is kept on the response
    (``response.content`` works afterwards); with one, each chunk goes to it. Returns the
    byte count. Raises :class:`Overrun` (``"size"`` or ``"deadline"``); the caller closes
    the response."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise Overrun("size")
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise Overrun("size")
        if sink is None:
            chunks.append(chunk)
        else:
            sink(chunk)
        if deadline_passed():
            raise Overrun("deadline")
    if sink is None:
        # What httpx's own Response.read() does once the stream is consumed; done here so
        # the size cap applies while reading (a 400 MB answer never sits in memory).
        response._content = b"".join(chunks)
    return total
