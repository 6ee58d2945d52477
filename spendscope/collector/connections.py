"""HTTP connections that cannot hold the server hostage: a deadline and a size cap for headers.

uvicorn closes an idle keep-alive connection after a response, but a connection that never sends
a complete request is kept forever, and until now counted against the concurrency limit, so a few
hundred idle sockets made every request, ``/healthz`` included, answer 503. This protocol is
uvicorn's httptools one with two rules: a request's headers must arrive within
``collector.header_timeout_s`` of the connection opening or of the request's first byte, and may
not exceed 64 KiB. A connection that breaks either is closed. Between requests, uvicorn's own
keep-alive timeout closes an idle connection. (The body of a request answered early, a 503 say,
still arrives after the answer: it is the same request, not the next one's headers.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEADER_BYTES", "guarded_protocol"]

MAX_HEADER_BYTES = 64 * 1024


class _Guarded(HttpToolsProtocol):
    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True
        self._header_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self._in_headers and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._in_headers:
            super().data_received(data)
            return
        # A read can hold the end of the headers and much of the body: judge after parsing it.
        self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            self._disarm()
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._arm()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(header_timeout_s: float) -> type[Any]:
    """The protocol class to give uvicorn (``Config(http=...)``) with this header deadline."""
    return type("GuardedHttpProtocol", (_Guarded,), {"header_timeout_s": float(header_timeout_s)})
