"""HTTP routes of the sync: run it now, reconcile, and read what it stored.

``POST /api/v1/sync`` is synchronous: 200 ``{"ok": true, ...counts}`` or a non-2xx status with
``{"ok": false, "error": ...}`` (503 when no admin key is configured, 502 when OpenAI refused the key
or failed, 409 when a run is already going and does not finish in time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spendscope.collector.api import BadRequest, parse_group_by, parse_time
from spendscope.collector.context import CollectorContext
from spendscope.collector.sync import reconcile as rec
from spendscope.collector.sync.db import RUN_COLUMNS
from spendscope.collector.sync.job import SyncBusyError, SyncJob

__all__ = ["sync_routes"]

_DEFAULT_RANGE_DAYS = 30
_MANUAL_WAIT_S = 300.0


def _range(ctx: CollectorContext, request: Request) -> tuple[datetime, datetime]:
    params = request.query_params
    end = parse_time("end", params.get("end"), ctx.clock())
    start = parse_time("start", params.get("start"), end - timedelta(days=_DEFAULT_RANGE_DAYS))
    if start >= end:
        raise BadRequest("start must be before end")
    return start, end


def _read(ctx: CollectorContext, fn: Callable[[Any], Any]) -> Any:
    cur = ctx.store.cursor()
    try:
        return fn(cur)
    finally:
        cur.close()


def sync_routes(ctx: CollectorContext, job: SyncJob) -> list[Route]:
    def guard(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return handler

    async def sync_now(request: Request) -> Response:
        try:
            result = await run_in_threadpool(job.run, "manual", _MANUAL_WAIT_S)
        except SyncBusyError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        body = result.as_dict()
        if result.status == "ok":
            return JSONResponse(body)
        status = 503 if not job.settings.configured else 502
        return JSONResponse(body, status_code=status)

    async def reconciliation(request: Request) -> Response:
        start, end = _range(ctx, request)
        group_by = parse_group_by(request.query_params.get("group_by", "day"), frozenset(rec.GROUP_KEYS))
        doc = await run_in_threadpool(_read, ctx, lambda c: rec.reconcile(c, start, end, group_by))
        return JSONResponse({"start": _iso(start), "end": _iso(end), "group_by": group_by, **doc})

    async def usage(request: Request) -> Response:
        start, end = _range(ctx, request)
        group_by = parse_group_by(request.query_params.get("group_by", "model"), frozenset(rec.USAGE_KEYS))
        rows = await run_in_threadpool(_read, ctx, lambda c: rec.usage_summary(c, start, end, group_by))
        return JSONResponse({"start": _iso(start), "end": _iso(end), "group_by": group_by, "rows": rows})

    async def costs(request: Request) -> Response:
        start, end = _range(ctx, request)
        group_by = parse_group_by(request.query_params.get("group_by", "day"), frozenset(rec.COST_KEYS))
        rows = await run_in_threadpool(_read, ctx, lambda c: rec.costs_summary(c, start, end, group_by))
        return JSONResponse({"start": _iso(start), "end": _iso(end), "group_by": group_by, "rows": rows})

    async def runs(request: Request) -> Response:
        raw = request.query_params.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise BadRequest("limit must be an integer from 1 to 1000")
        rows = await run_in_threadpool(_read, ctx, lambda c: _runs(c, int(raw)))
        return JSONResponse({"rows": rows})

    return [
        Route("/api/v1/sync", guard(sync_now), methods=["POST"]),
        Route("/api/v1/sync/runs", guard(runs), methods=["GET"]),
        Route("/api/v1/reconciliation", guard(reconciliation), methods=["GET"]),
        Route("/api/v1/usage", guard(usage), methods=["GET"]),
        Route("/api/v1/costs", guard(costs), methods=["GET"]),
    ]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


# The listing leaves out the per-endpoint details (a JSON blob) to stay one flat row per run.
_LISTED = tuple(c for c in RUN_COLUMNS if c != "details")
_TIMES = frozenset({"started_at", "finished_at", "window_start", "window_end"})


def _runs(con: Any, limit: int) -> list[dict[str, Any]]:
    # TIMESTAMPTZ needs pytz to reach Python: format it in SQL instead.
    cols = ", ".join(
        f"strftime(timezone('UTC', {c}), '%Y-%m-%dT%H:%M:%SZ')" if c in _TIMES else c for c in _LISTED
    )
    rows = con.execute(f"SELECT {cols} FROM sync_runs ORDER BY run_id DESC LIMIT ?", [limit]).fetchall()
    return [dict(zip(_LISTED, r, strict=True)) for r in rows]
