"""HTTP routes of the sync: run it now, reconcile, and read what it stored.

``POST /api/v1/sync`` is synchronous: 200 ``{"ok": true, ...counts}`` or a non-2xx status with
``{"ok": false, "error": ...}`` (503 when no admin key is configured, 502 when OpenAI refused the key
or failed, 409 when a run is already going and does not finish in time).
"""

from __future__ import annotations

from typing import Annotated, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from spendscope.collector import schemas as s
from spendscope.collector.context import CollectorContext
from spendscope.collector.sync import reconcile as rec
from spendscope.collector.sync.db import RUN_COLUMNS, RUN_COUNTS
from spendscope.collector.sync.job import SyncBusyError, SyncJob
from spendscope.collector.web import ApiError, Endpoint, Keys, Limit, Params, TimeRange
from spendscope.isotime import format_time

__all__ = ["ENDPOINTS"]

_MANUAL_WAIT_S = 300.0


def _job(ctx: CollectorContext) -> SyncJob:
    if ctx.sync is None:
        raise ApiError(503, "the sync is not set up in this collector", ok=False)
    return ctx.sync


def _range(p: TimeRange) -> dict[str, str]:
    return {"start": format_time(p.start), "end": format_time(p.end)}


async def sync_now(ctx: CollectorContext, p: Params) -> JSONResponse:
    job = _job(ctx)
    try:
        result = await run_in_threadpool(job.run, "manual", _MANUAL_WAIT_S)
    except SyncBusyError as exc:
        raise ApiError(409, str(exc), ok=False) from None
    body = result.as_dict()
    if result.status == "ok":
        return JSONResponse(body)
    return JSONResponse(body, status_code=503 if not job.settings.configured else 502)


class ReconciliationParams(TimeRange):
    group_by: Annotated[tuple[str, ...], Keys(rec.GROUP_KEYS)] = ("day",)


async def reconciliation(ctx: CollectorContext, p: ReconciliationParams) -> dict[str, Any]:
    doc = await run_in_threadpool(ctx.store.read, lambda c: rec.reconcile(c, p.start, p.end, p.group_by))
    return {**_range(p), "group_by": p.group_by, **doc}


class UsageParams(TimeRange):
    group_by: Annotated[tuple[str, ...], Keys(rec.USAGE_KEYS)] = ("model",)


async def usage(ctx: CollectorContext, p: UsageParams) -> dict[str, Any]:
    rows = await run_in_threadpool(ctx.store.read, lambda c: rec.usage_summary(c, p.start, p.end, p.group_by))
    return {**_range(p), "group_by": p.group_by, "rows": rows}


class CostsParams(TimeRange):
    group_by: Annotated[tuple[str, ...], Keys(rec.COST_KEYS)] = ("day",)


async def costs(ctx: CollectorContext, p: CostsParams) -> dict[str, Any]:
    rows = await run_in_threadpool(ctx.store.read, lambda c: rec.costs_summary(c, p.start, p.end, p.group_by))
    return {**_range(p), "group_by": p.group_by, "rows": rows}


class RunsParams(Params):
    limit: Annotated[int, Limit(1000)] = 20


async def runs(ctx: CollectorContext, p: RunsParams) -> dict[str, Any]:
    return {"rows": await run_in_threadpool(ctx.store.read, lambda c: _runs(c, p.limit))}


# --- answers (JSON Schema, for the API document) ---------------------------------------------------

_COUNTS = dict.fromkeys(RUN_COUNTS, s.COUNT)
_TEXT = s.nullable(s.STRING)
_EPOCH = s.nullable(s.INT)
_RUN = s.obj(
    {
        "ok": s.BOOL,
        "run_id": s.INT,
        "trigger": s.STRING,
        "status": s.STRING,
        "error": _TEXT,
        "window_start": s.nullable(s.TIME),
        "window_end": s.nullable(s.TIME),
        "duration_s": s.NUMBER,
        **_COUNTS,
        "errors": s.COUNT,
        "endpoints": s.array(
            s.obj(
                {
                    "endpoint": s.STRING,
                    "window_start": _EPOCH,
                    "window_end": _EPOCH,
                    "resumed": s.BOOL,
                    **_COUNTS,
                    "error": _TEXT,
                }
            )
        ),
    }
)
_RUNS = s.rows(
    s.obj(
        {
            "run_id": s.INT,
            "trigger": s.STRING,
            "status": s.STRING,
            "started_at": s.TIME,
            "finished_at": s.nullable(s.TIME),
            "duration_s": s.nullable(s.NUMBER),
            "window_start": s.nullable(s.TIME),
            "window_end": s.nullable(s.TIME),
            **_COUNTS,
            "errors": s.COUNT,
            "error": _TEXT,
        }
    )
)
_RECONCILED = {
    "tracked_usd": s.MONEY,
    "billed_usd": s.MONEY_OR_NULL,
    "capture_rate": s.RATIO_OR_NULL,
    "estimated_usd": s.MONEY_OR_NULL,
}
_RECONCILIATION = s.rows(
    s.obj(
        _RECONCILED
        | {"untracked_usd": s.MONEY_OR_NULL, "token_capture_rate": s.RATIO_OR_NULL}
        | dict.fromkeys(
            (
                "calls",
                "unpriced_calls",
                "unpriced_usage_rows",
                "tracked_input_tokens",
                "tracked_output_tokens",
                "tracked_cached_input_tokens",
                "usage_requests",
                "usage_input_tokens",
                "usage_output_tokens",
                "usage_cached_input_tokens",
            ),
            s.COUNT,
        ),
        others=s.KEY_VALUE,
    ),
    **s.RANGE,
    group_by=s.STRINGS,
    totals=s.obj(_RECONCILED),
)
_USAGE = s.rows(
    s.obj(
        dict.fromkeys(("requests", "input_tokens", "cached_input_tokens", "output_tokens"), s.COUNT)
        | {"estimated_usd": s.MONEY_OR_NULL, "unpriced_rows": s.COUNT},
        others=s.KEY_VALUE,
    ),
    **s.RANGE,
    group_by=s.STRINGS,
)
_COSTS = s.rows(
    s.obj({"billed_usd": s.MONEY, "results": s.COUNT}, others=s.KEY_VALUE), **s.RANGE, group_by=s.STRINGS
)

ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/v1/sync",
        sync_now,
        summary="Run a Usage/Costs sync now and say what it read and wrote",
        response=_RUN,
        errors={
            409: "a sync is already running and did not finish in time",
            502: ("OpenAI refused the admin key or failed: the run, ok false", _RUN),
            503: ("no admin key is configured", {"anyOf": [s.ERROR, _RUN]}),
        },
        tag="sync",
    ),
    Endpoint("GET", "/api/v1/sync/runs", runs, RunsParams, "Recent sync runs", _RUNS, tag="sync"),
    Endpoint(
        "GET",
        "/api/v1/reconciliation",
        reconciliation,
        ReconciliationParams,
        "Tracked spend against billed spend",
        _RECONCILIATION,
        tag="sync",
    ),
    Endpoint("GET", "/api/v1/usage", usage, UsageParams, "What the Usage API reported", _USAGE, tag="sync"),
    Endpoint("GET", "/api/v1/costs", costs, CostsParams, "What the Costs API billed", _COSTS, tag="sync"),
)


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
