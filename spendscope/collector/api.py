"""The JSON query API (``/api/v1/*``) and ``/healthz``.

Every list endpoint answers ``{"rows": [...], ...}``; money is a plain decimal string; bad input
answers 400 with ``{"error": "..."}`` naming the parameter and the problem.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spendscope.collector import queries as q
from spendscope.collector.context import CollectorContext
from spendscope.collector.reprice import reprice

__all__ = ["BadRequest", "api_routes", "parse_group_by", "parse_time"]

log = logging.getLogger("spendscope.collector.api")

_MAX_JSON_BODY = 1 << 20
_DEFAULT_RANGE = timedelta(days=30)


class BadRequest(ValueError):
    """Invalid query input; the message is returned to the client with status 400."""


def parse_time(name: str, value: str | None, default: datetime | None = None) -> datetime:
    """ISO 8601 with a zone (``Z`` or an offset), or a bare date meaning that UTC day's start."""
    if value is None or value == "":
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        t = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not an ISO 8601 date or time") from None
    if t.tzinfo is None:
        raise BadRequest(f"{name}: {value!r} has no time zone; add Z or an offset such as +00:00")
    return t.astimezone(UTC)


def parse_group_by(value: str | None, allowed: frozenset[str] | None = None) -> list[str]:
    keys = [k.strip() for k in (value or "").split(",") if k.strip()]
    valid = allowed if allowed is not None else frozenset(q.GROUP_KEYS)
    for k in keys:
        if k not in valid:
            raise BadRequest(f"group_by: unknown key {k!r}; use any of {', '.join(sorted(valid))}")
    if len(set(keys)) != len(keys):
        raise BadRequest("group_by: a key is repeated")
    return keys


def _range(ctx: CollectorContext, request: Request) -> tuple[datetime, datetime]:
    params = request.query_params
    end = parse_time("end", params.get("end"), ctx.clock())
    start = parse_time("start", params.get("start"), end - _DEFAULT_RANGE)
    if start >= end:
        raise BadRequest("start must be before end")
    return start, end


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


Handler = Callable[[Request], Awaitable[Response]]


def _guard(fn: Callable[[CollectorContext, Request], Awaitable[Response]], ctx: CollectorContext) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            return await fn(ctx, request)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return handler


def _read(ctx: CollectorContext, query: q.Query) -> list[dict[str, Any]]:
    cur = ctx.store.cursor()
    try:
        return q.fetch_dicts(cur, query)
    finally:
        cur.close()


async def spend(ctx: CollectorContext, request: Request) -> Response:
    start, end = _range(ctx, request)
    keys = parse_group_by(request.query_params.get("group_by"))
    use_rollup = request.query_params.get("rollup") != "false"

    def read() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        cur = ctx.store.cursor()
        try:
            return q.run_spend(cur, start, end, keys, use_rollup=use_rollup)
        finally:
            cur.close()

    rows, totals = await run_in_threadpool(read)
    return JSONResponse(
        {"start": _iso(start), "end": _iso(end), "group_by": keys, "rows": rows, "totals": totals}
    )


async def latency(ctx: CollectorContext, request: Request) -> Response:
    start, end = _range(ctx, request)
    keys = parse_group_by(request.query_params.get("group_by", "model"), q.LATENCY_GROUP_KEYS)
    exact = request.query_params.get("exact") == "true"

    def read() -> list[dict[str, Any]]:
        cur = ctx.store.cursor()
        try:
            return q.run_latency(cur, start, end, keys, exact=exact)
        finally:
            cur.close()

    rows = await run_in_threadpool(read)
    approximate = not exact and set(keys) <= q.HIST_KEYS
    return JSONResponse(
        {"start": _iso(start), "end": _iso(end), "group_by": keys, "approximate": approximate, "rows": rows}
    )


async def errors(ctx: CollectorContext, request: Request) -> Response:
    start, end = _range(ctx, request)
    keys = parse_group_by(request.query_params.get("group_by", "error_type"))
    rows = await run_in_threadpool(_read, ctx, q.build_errors(start, end, keys))
    return JSONResponse({"start": _iso(start), "end": _iso(end), "group_by": keys, "rows": rows})


async def ratelimits(ctx: CollectorContext, request: Request) -> Response:
    now = ctx.clock()
    since = parse_time("since", request.query_params.get("since"), now - timedelta(hours=24))
    rows = await run_in_threadpool(_read, ctx, q.build_ratelimits(since))
    return JSONResponse({"since": _iso(since), "rows": rows})


async def prices(ctx: CollectorContext, request: Request) -> Response:
    at_param = request.query_params.get("at")
    at = parse_time("at", at_param) if at_param else None
    rows = ctx.prices.rows(at=at)
    return JSONResponse({"version": ctx.prices.version, "at": _iso(at) if at else None, "rows": rows})


async def reprice_endpoint(ctx: CollectorContext, request: Request) -> Response:
    body = await request.body()
    if len(body) > _MAX_JSON_BODY:
        return JSONResponse({"error": "body too large"}, status_code=413)
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest('body must be JSON such as {"since": "2026-01-01T00:00:00Z"}') from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    since = parse_time("since", doc.get("since"))
    result = await run_in_threadpool(reprice, ctx, since)
    return JSONResponse(result)


async def alerts_placeholder(ctx: CollectorContext, request: Request) -> Response:
    state = request.query_params.get("state", "firing")
    if state not in ("firing", "resolved", "all"):
        raise BadRequest("state must be firing, resolved or all")
    return JSONResponse({"rows": []})


def _limit(request: Request, default: int = 100, maximum: int = 10_000) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise BadRequest(f"limit: {raw!r} is not an integer") from None
    if not 1 <= n <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}")
    return n


async def rejected(ctx: CollectorContext, request: Request) -> Response:
    limit = _limit(request)
    query = q.Query(
        "SELECT received_at, trace_id, span_id, service, span_name, reason, attributes "
        "FROM rejected_spans ORDER BY received_at DESC LIMIT $limit",
        {"limit": limit},
    )
    rows = await run_in_threadpool(_read, ctx, query)
    return JSONResponse({"rows": rows})


async def calls(ctx: CollectorContext, request: Request) -> Response:
    start, end = _range(ctx, request)
    limit = _limit(request)
    query = q.Query(
        "SELECT * EXCLUDE (tags), map_keys(tags) AS tag_keys, map_values(tags) AS tag_values FROM calls "
        "WHERE start_time >= $start AND start_time < $end ORDER BY start_time DESC LIMIT $limit",
        {"start": start, "end": end, "limit": limit},
    )
    raw = await run_in_threadpool(_read, ctx, query)
    for r in raw:
        keys, values = r.pop("tag_keys") or [], r.pop("tag_values") or []
        r["tags"] = dict(zip(keys, values, strict=False))
    return JSONResponse({"rows": raw})


def healthz_payload(ctx: CollectorContext) -> dict[str, Any]:
    w = ctx.writer
    return {
        "ok": w is not None and not ctx.store.closed,
        "db": ctx.store.path,
        "queue_spans": w.pending_spans if w else 0,
        "last_commit": _iso(w.last_commit) if w and w.last_commit else None,
        "commits": w.commits if w else 0,
        "rows_committed": w.rows_committed if w else 0,
        "rejected_committed": w.rejected_committed if w else 0,
        "requests": getattr(ctx.extras.get("traces_endpoint"), "requests", 0),
        "refused_requests": getattr(ctx.extras.get("traces_endpoint"), "refused", 0),
        "price_version": ctx.prices.version,
        "started_at": _iso(ctx.started_at),
    }


async def healthz(ctx: CollectorContext, request: Request) -> Response:
    payload = healthz_payload(ctx)
    return JSONResponse(payload, status_code=200 if payload["ok"] else 503)


def api_routes(ctx: CollectorContext) -> list[Route]:
    def r(
        path: str, fn: Callable[[CollectorContext, Request], Awaitable[Response]], method: str = "GET"
    ) -> Route:
        return Route(path, _guard(fn, ctx), methods=[method])

    return [
        r("/healthz", healthz),
        r("/api/v1/spend", spend),
        r("/api/v1/latency", latency),
        r("/api/v1/errors", errors),
        r("/api/v1/ratelimits", ratelimits),
        r("/api/v1/prices", prices),
        r("/api/v1/prices/reprice", reprice_endpoint, "POST"),
        r("/api/v1/rejected", rejected),
        r("/api/v1/calls", calls),
        r("/api/v1/alerts", alerts_placeholder),
    ]
