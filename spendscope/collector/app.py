"""``create_app(ctx)``: the Starlette application with auth and the receiver, API and component routes."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from spendscope.collector import components
from spendscope.collector.context import CollectorContext
from spendscope.collector.receiver import TracesEndpoint
from spendscope.collector.web import routes

__all__ = ["PROTECTED", "BearerAuth", "create_app"]

# Paths behind the token when one is set (``/healthz`` stays open for probes).
PROTECTED = ("/v1/", "/api/", "/metrics")


class BearerAuth:
    """Require ``Authorization: Bearer <token>`` on the :data:`PROTECTED` paths."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED):
            given = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, self._expected):
                body = json.dumps({"error": "missing or invalid bearer token"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="spendscope"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def create_app(
    ctx: CollectorContext,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[Any]] | None = None,
) -> Starlette:
    """Build the app: the OTLP receiver and every component's endpoints, behind the token if set."""
    traces = ctx.traces = TracesEndpoint(ctx)
    endpoints = [e for part in components.load() for e in part.endpoints]
    app = Starlette(
        routes=[Route("/v1/traces", traces.handle, methods=["POST"]), *routes(ctx, endpoints)],
        lifespan=lifespan,
    )
    if ctx.config.token:
        app.add_middleware(BearerAuth, token=ctx.config.token)
    return app
