"""``create_app(ctx)``: the Starlette application: the receiver and every component's endpoints,
behind the request policy (Host, Origin, content type, bearer token, requests in flight)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spendscope.collector import components
from spendscope.collector.context import CollectorContext
from spendscope.collector.lake.replica import LakeUnavailable
from spendscope.collector.policy import RequestPolicy, is_loopback
from spendscope.collector.receiver import TracesEndpoint
from spendscope.collector.web import routes

__all__ = ["create_app"]


async def _lake_unavailable(request: Request, exc: Exception) -> Response:
    """A read while the lake cannot answer: 503 saying why (ingest still works)."""
    body = {"error": str(exc)}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def create_app(
    ctx: CollectorContext,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[Any]] | None = None,
) -> Starlette:
    """Build the app: the OTLP receiver and every component's endpoints, behind the policy."""
    traces = ctx.traces = TracesEndpoint(ctx)
    endpoints = [e for part in components.load() for e in part.endpoints]
    app = Starlette(
        routes=[Route("/v1/traces", traces.handle, methods=["POST"]), *routes(ctx, endpoints)],
        lifespan=lifespan,
        exception_handlers={LakeUnavailable: _lake_unavailable},
    )
    settings = ctx.config.collector
    app.add_middleware(
        RequestPolicy,
        token=ctx.config.token,
        loopback_only=is_loopback(settings.host),
        allowed_hosts=settings.allowed_hosts,
        max_inflight=settings.max_inflight_requests,
        retry_after_s=settings.retry_after_s,
    )
    return app
