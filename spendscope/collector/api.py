"""The core JSON query API (``/api/v1/*``) and ``/healthz``.

Every list endpoint answers ``{"rows": [...], ...}``; money is a plain decimal string; bad input
answers 400 with ``{"error": "..."}`` naming the parameter and the problem (see :mod:`web`).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from spendscope.collector import queries as q
from spendscope.collector import schemas as s
from spendscope.collector.context import CollectorContext
from spendscope.collector.redact import redact_attributes, redact_text
from spendscope.collector.reprice import reprice
from spendscope.collector.schema import COLUMNS, TOKEN_FIELDS, Column
from spendscope.collector.web import Endpoint, Keys, Limit, Params, TimeRange, Timestamp
from spendscope.isotime import format_time
from spendscope.pricing.model import MONEY_FIELDS, TIERS

__all__ = ["ENDPOINTS", "SPEND_MEASURES", "healthz_payload"]

log = logging.getLogger("spendscope.collector.api")


def _fetch(ctx: CollectorContext, query: q.Query) -> list[dict[str, Any]]:
    return ctx.store.read(lambda cur: q.fetch_dicts(cur, query))


def _range(p: TimeRange) -> dict[str, str]:
    return {"start": format_time(p.start), "end": format_time(p.end)}


class SpendParams(TimeRange):
    group_by: Annotated[tuple[str, ...], Keys(q.GROUP_KEYS)] = ()
    rollup: bool = Field(True, description="false reads calls only (the reference answer)")


async def spend(ctx: CollectorContext, p: SpendParams) -> dict[str, Any]:
    rows, totals = await run_in_threadpool(
        ctx.store.read, lambda cur: q.run_spend(cur, p.start, p.end, p.group_by, use_rollup=p.rollup)
    )
    return {**_range(p), "group_by": p.group_by, "rows": rows, "totals": totals}


class LatencyParams(TimeRange):
    group_by: Annotated[tuple[str, ...], Keys(q.LATENCY_GROUP_KEYS)] = ("model",)
    exact: bool = Field(False, description="exact percentiles from calls instead of the daily histograms")


async def latency(ctx: CollectorContext, p: LatencyParams) -> dict[str, Any]:
    rows = await run_in_threadpool(
        ctx.store.read, lambda cur: q.run_latency(cur, p.start, p.end, p.group_by, exact=p.exact)
    )
    approximate = not p.exact and set(p.group_by) <= q.HIST_KEYS
    return {**_range(p), "group_by": p.group_by, "approximate": approximate, "rows": rows}


class ErrorsParams(TimeRange):
    group_by: Annotated[tuple[str, ...], Keys(q.GROUP_KEYS)] = ("error_type",)


async def errors(ctx: CollectorContext, p: ErrorsParams) -> dict[str, Any]:
    rows = await run_in_threadpool(_fetch, ctx, q.build_errors(p.start, p.end, p.group_by))
    return {**_range(p), "group_by": p.group_by, "rows": rows}


class RatelimitsParams(Params):
    since: Timestamp | None = Field(None, description="default 24 hours ago")


async def ratelimits(ctx: CollectorContext, p: RatelimitsParams) -> dict[str, Any]:
    since = p.since or ctx.clock() - timedelta(hours=24)
    rows = await run_in_threadpool(_fetch, ctx, q.build_ratelimits(since))
    return {"since": format_time(since), "rows": rows}


class PricesParams(Params):
    at: Timestamp | None = Field(None, description="the prices in force then; default every version")


async def prices(ctx: CollectorContext, p: PricesParams) -> dict[str, Any]:
    rows = ctx.prices.rows(at=p.at)
    return {"version": ctx.prices.version, "at": format_time(p.at) if p.at else None, "rows": rows}


class RepriceBody(Params):
    since: Timestamp = Field(description="re-price calls that started at or after this time")


async def reprice_endpoint(ctx: CollectorContext, p: RepriceBody) -> dict[str, Any]:
    result: dict[str, Any] = await run_in_threadpool(reprice, ctx, p.since)
    return result


class RejectedParams(Params):
    limit: Annotated[int, Limit()] = 100


async def rejected(ctx: CollectorContext, p: RejectedParams) -> dict[str, Any]:
    query = q.Query(
        "SELECT received_at, trace_id, span_id, service, span_name, reason, attributes "
        "FROM rejected_spans ORDER BY received_at DESC LIMIT $limit",
        {"limit": p.limit},
    )
    rows = await run_in_threadpool(_fetch, ctx, query)
    for r in rows:  # rows stored before redaction existed are redacted on the way out
        r["attributes"] = _redacted_json(r["attributes"])
    return {"rows": rows}


def _redacted_json(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return redact_text(text)
    return json.dumps(redact_attributes(doc) if isinstance(doc, dict) else doc)


class CallsParams(TimeRange):
    limit: Annotated[int, Limit()] = 100


async def calls(ctx: CollectorContext, p: CallsParams) -> dict[str, Any]:
    query = q.Query(
        "SELECT * EXCLUDE (tags), map_keys(tags) AS tag_keys, map_values(tags) AS tag_values FROM calls "
        "WHERE start_time >= $start AND start_time < $end ORDER BY start_time DESC LIMIT $limit",
        {"start": p.start, "end": p.end, "limit": p.limit},
    )
    raw = await run_in_threadpool(_fetch, ctx, query)
    for r in raw:
        keys, values = r.pop("tag_keys") or [], r.pop("tag_values") or []
        r["tags"] = dict(zip(keys, values, strict=False))
    return {"rows": raw}


def _time(t: datetime | None) -> str | None:
    return format_time(t) if t else None


def healthz_payload(ctx: CollectorContext) -> dict[str, Any]:
    w = ctx.writer
    traces = ctx.traces
    return {
        "ok": w is not None and not ctx.store.closed,
        "db": ctx.store.path,
        "queue_spans": w.pending_spans if w else 0,
        "last_commit": _time(w.last_commit) if w else None,
        "commits": w.commits if w else 0,
        "rows_committed": w.rows_committed if w else 0,
        "rejected_committed": w.rejected_committed if w else 0,
        "requests": traces.requests if traces else 0,
        "refused_requests": traces.refused if traces else 0,
        "bodies_in_memory": traces.bodies_in_memory if traces else 0,
        "price_version": ctx.prices.version,
        "started_at": format_time(ctx.started_at),
        **({"lake": _lake_block(ctx)} if ctx.lake is not None else {}),
    }


def _lake_block(ctx: CollectorContext) -> dict[str, Any]:
    assert ctx.lake is not None
    try:
        return ctx.lake.status()
    except Exception as exc:  # health must answer whatever the lake does
        return {"replica": ctx.lake.replica, "error": str(exc)[:500]}


async def healthz(ctx: CollectorContext, p: Params) -> JSONResponse:
    payload = healthz_payload(ctx)
    return JSONResponse(payload, status_code=200 if payload["ok"] else 503)


# --- answers (JSON Schema, for the API document) ---------------------------------------------------

SPEND_MEASURES: dict[str, s.Schema] = {
    "calls": s.COUNT,
    "errors": s.COUNT,
    **{t: s.COUNT for t in TOKEN_FIELDS},
    "cost_usd": s.MONEY_OR_NULL,
    "unpriced_calls": s.COUNT,
}
_SPEND = s.rows(
    s.obj(SPEND_MEASURES, others=s.KEY_VALUE),
    **s.RANGE,
    group_by=s.STRINGS,
    totals=s.obj(SPEND_MEASURES),
)
_SECONDS = s.nullable(s.NUMBER)
_LATENCY = s.rows(
    s.obj(
        {"calls": s.COUNT, "errors": s.COUNT}
        | dict.fromkeys(("p50_s", "p95_s", "p99_s", "ttfc_p50_s", "ttfc_p95_s"), _SECONDS),
        others=s.KEY_VALUE,
    ),
    **s.RANGE,
    group_by=s.STRINGS,
    approximate=s.BOOL,
)
_ERRORS = s.rows(
    s.obj({"errors": s.COUNT, "rate_limited": s.COUNT}, others=s.KEY_VALUE), **s.RANGE, group_by=s.STRINGS
)
_LIMIT = s.nullable(s.INT)
_RATELIMITS = s.rows(
    s.obj(
        {
            "model": s.STRING,
            "project": s.nullable(s.STRING),
            "limit_requests": _LIMIT,
            "remaining_requests": _LIMIT,
            "limit_tokens": _LIMIT,
            "remaining_tokens": _LIMIT,
            "reset_requests_s": _SECONDS,
            "reset_tokens_s": _SECONDS,
            "observed_at": s.TIME,
            "calls": s.COUNT,
            "rate_limited_calls": s.COUNT,
        }
    ),
    since=s.TIME,
)
_TEXT = s.nullable(s.STRING)
_PRICE_ROW = s.obj(
    {
        "model": s.STRING,
        "tier": {"enum": list(TIERS)},
        "batch": s.BOOL,
        "valid_from": s.DATE,
        "valid_to": s.nullable(s.DATE),
        **dict.fromkeys(MONEY_FIELDS, s.MONEY_OR_NULL),
        "long_context_threshold": _LIMIT,
        "per_image": s.nullable({"type": "object", "additionalProperties": s.MONEY}),
        "default_image": _TEXT,
        "source": s.STRING,
        "checked": s.DATE,
        "note": _TEXT,
        "origin": s.STRING,
        "price_id": s.STRING,
    },
    {"shadowed_by": s.STRING, "disagrees_on": s.STRINGS},
)
_PRICES = s.rows(_PRICE_ROW, version=s.STRING, at=s.nullable(s.TIME))
_REPRICE = s.obj(
    {
        "ok": s.BOOL,
        "since": s.TIME,
        "price_version": s.STRING,
        "calls_examined": s.COUNT,
        "calls_changed": s.COUNT,
        "cost_before_usd": s.MONEY,
        "cost_after_usd": s.MONEY,
        "days": s.COUNT,
        "changes": s.array(
            s.obj(
                {
                    "trace_id": s.STRING,
                    "span_id": s.STRING,
                    "model": s.STRING,
                    "price_id_before": _TEXT,
                    "price_id_after": _TEXT,
                    "cost_before": s.MONEY_OR_NULL,
                    "cost_after": s.MONEY_OR_NULL,
                }
            )
        ),
    }
)
_REJECTED = s.rows(
    s.obj(
        {
            "received_at": s.TIME,
            **dict.fromkeys(("trace_id", "span_id", "service", "span_name"), _TEXT),
            "reason": s.STRING,
            "attributes": _TEXT,
        }
    )
)
# Column types as the API writes them (see queries.to_json_value).
_SQL_TYPES: dict[str, s.Schema] = {
    "VARCHAR": s.STRING,
    "BIGINT": s.INT,
    "INTEGER": s.INT,
    "DOUBLE": s.NUMBER,
    "BOOLEAN": s.BOOL,
    "DATE": s.DATE,
    "TIMESTAMPTZ": s.TIME,
}


def _column(c: Column) -> s.Schema:
    base = s.MONEY if c.money else _SQL_TYPES[c.sql_type]
    return base if c.not_null else s.nullable(base)


_CALLS = s.rows(
    s.obj(
        {c.name: _column(c) for c in COLUMNS if c.name != "tags"}
        | {"tags": {"type": "object", "additionalProperties": s.STRING}}
    )
)
_HEALTH = s.obj(
    {
        "ok": s.BOOL,
        "db": s.STRING,
        "queue_spans": s.COUNT,
        "last_commit": s.nullable(s.TIME),
        "commits": s.COUNT,
        "rows_committed": s.COUNT,
        "rejected_committed": s.COUNT,
        "requests": s.COUNT,
        "refused_requests": s.COUNT,
        "price_version": s.STRING,
        "started_at": s.TIME,
    }
)

ENDPOINTS = (
    Endpoint(
        "GET",
        "/healthz",
        healthz,
        summary="Liveness and ingest counters (not behind the token)",
        response=_HEALTH,
        errors={503: ("the store is closed or ingest has stopped (the same body, ok false)", _HEALTH)},
        tag="operations",
    ),
    Endpoint(
        "GET",
        "/api/v1/spend",
        spend,
        SpendParams,
        "Spend, tokens and calls by any group keys",
        _SPEND,
    ),
    Endpoint("GET", "/api/v1/latency", latency, LatencyParams, "Latency and time to first chunk", _LATENCY),
    Endpoint("GET", "/api/v1/errors", errors, ErrorsParams, "Failed attempts by group keys", _ERRORS),
    Endpoint(
        "GET",
        "/api/v1/ratelimits",
        ratelimits,
        RatelimitsParams,
        "Latest rate-limit headroom per model and project",
        _RATELIMITS,
    ),
    Endpoint("GET", "/api/v1/prices", prices, PricesParams, "The price table", _PRICES, tag="pricing"),
    Endpoint(
        "POST",
        "/api/v1/prices/reprice",
        reprice_endpoint,
        RepriceBody,
        "Re-price stored calls with the table in force",
        _REPRICE,
        tag="pricing",
    ),
    Endpoint(
        "GET",
        "/api/v1/rejected",
        rejected,
        RejectedParams,
        "Spans refused at ingest, newest first",
        _REJECTED,
    ),
    Endpoint("GET", "/api/v1/calls", calls, CallsParams, "Stored calls, newest first", _CALLS),
)
