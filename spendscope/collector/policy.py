"""Who may talk to the collector, and how: one ASGI middleware in front of every route.

In order, for each HTTP request:

1. **Host** (DNS rebinding). A collector bound to loopback answers only loopback host names
   (``localhost``, ``127.0.0.1``, ``::1``) and ``collector.allowed_hosts``: a web page that rebinds
   its own name to 127.0.0.1 cannot read the API through the victim's browser.
2. **Origin** (cross-site requests). A state-changing request (anything but GET/HEAD/OPTIONS) that
   carries an ``Origin`` other than the collector's own is refused: browsers send it, exporters and
   the CLI do not.
3. **Content type**. A POST to ``/api/`` must be ``application/json``: a cross-site form or
   ``text/plain`` fetch (no CORS preflight) cannot reach a handler. ``/v1/traces`` checks its own.
4. **Bearer token** on ``/v1/``, ``/api/`` and ``/metrics`` when ``SPENDSCOPE_TOKEN`` is set
   (constant-time comparison); ``/healthz`` stays open for probes.
5. **Requests in flight**: past ``collector.max_inflight_requests``, 503 with ``Retry-After``;
   ``/healthz`` is always answered.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_NAMES", "PROTECTED", "RequestPolicy", "is_loopback"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Behind the token when one is set (the API document says so too).
PROTECTED = ("/v1/", "/api/", "/metrics")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name stays on this machine."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The name part of a ``Host`` header or an origin's netloc (no port, no brackets), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class RequestPolicy:
    """The checks above, as one ASGI middleware (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        loopback_only: bool,
        allowed_hosts: Collection[str] = (),
        max_inflight: int = 256,
        retry_after_s: int = 1,
    ) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else None
        self._hosts = (
            frozenset(LOOPBACK_NAMES | {h.lower() for h in allowed_hosts}) if loopback_only else None
        )
        self._max_inflight = max_inflight
        self._retry_after = str(retry_after_s).encode()
        self.inflight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        problem = self._problem(scope, path)
        if problem is not None:
            status, message, headers = problem
            await _answer(send, status, message, headers)
            return
        if path == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.inflight >= self._max_inflight:
            self.refused += 1
            await _answer(
                send, 503, "too many requests in flight, retry later", [(b"retry-after", self._retry_after)]
            )
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1

    def _problem(self, scope: Scope, path: str) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        host = _header(scope, b"host") or ""
        if (
            self._hosts is not None
            and _host_name(host) not in self._hosts
            and not is_loopback(_host_name(host))
        ):
            return 403, f"Host {host[:100]!r} is not allowed (collector.allowed_hosts)", []
        method: str = scope["method"]
        if method not in _SAFE_METHODS:
            origin = _header(scope, b"origin")
            if origin is not None and origin != "null" and urlsplit(origin).netloc.lower() != host.lower():
                return 403, f"cross-origin {method} from {origin[:100]!r} is refused", []
            if origin == "null":
                return 403, f"{method} from an opaque origin is refused", []
            if method == "POST" and path.startswith("/api/"):
                ctype = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
                if ctype != "application/json":
                    return 415, f"Content-Type must be application/json, not {ctype[:60]!r}", []
        if self._expected is not None and path.startswith(PROTECTED):
            given = (_header(scope, b"authorization") or "").encode("latin-1")
            if not hmac.compare_digest(given, self._expected):
                return (
                    401,
                    "missing or invalid bearer token",
                    [(b"www-authenticate", b'Bearer realm="spendscope"')],
                )
        return None


async def _answer(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
