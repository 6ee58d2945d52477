"""Query endpoints the dashboard needs beyond the core API: ``/api/v1/insights/*``.

Every endpoint takes ``start``/``end`` (ISO 8601 with a zone, end exclusive) and optional exact-match
filters ``project``, ``model``, ``service``, ``user``, ``feature`` (comma lists), aggregates in DuckDB
and answers ``{"rows": [...], ...}`` with money as decimal strings. Filter columns and group keys are
whitelisted; user input only ever reaches the SQL as parameters.
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spendscope.collector.api import BadRequest, parse_time
from spendscope.collector.context import CollectorContext
from spendscope.collector.queries import Query, fetch_dicts
from spendscope.pricing import PriceTable, Usage, money_str, price_usage

__all__ = [
    "BREAKDOWN_KEYS",
    "FILTER_COLUMNS",
    "BadInput",
    "build_breakdown",
    "build_dimensions",
    "build_error_rate",
    "build_errors",
    "build_headroom",
    "build_latency",
    "build_savings_groups",
    "build_summary",
    "build_timeseries",
    "build_unpriced",
    "filter_sql",
    "insights_routes",
    "parse_filters",
    "savings_by_model",
    "setup",
]

# Filter parameter → calls column.
FILTER_COLUMNS: dict[str, str] = {
    "project": "project",
    "model": "model",
    "service": "service",
    "user": "user_id",
    "feature": "feature",
}
# Breakdown key → SQL expression; "tag" is handled by unnesting the tags map.
BREAKDOWN_KEYS: dict[str, str] = {
    **FILTER_COLUMNS,
    "day": "day",
    "api": "api",
    "service_tier": "service_tier",
    "tag": "tag",
}
_BUCKETS = frozenset({"hour", "day"})
_MAX_VALUES = 50  # values per filter
_DEFAULT_RANGE = timedelta(days=30)
_MONEY_COLS = "sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls"
_TOKEN_COLS = (
    "coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens, "
    "coalesce(sum(cached_input_tokens), 0)::BIGINT AS cached_input_tokens, "
    "coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens, "
    "coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens"
)


# One notion of bad query input and one ISO-time parser for the whole query API.
BadInput = BadRequest


@dataclass(frozen=True, slots=True)
class Scope:
    start: datetime
    end: datetime
    filters: Mapping[str, tuple[str, ...]]


def parse_filters(params: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name in FILTER_COLUMNS:
        raw = params.get(name)
        if raw:
            values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
            if len(values) > _MAX_VALUES:
                raise BadInput(f"{name}: at most {_MAX_VALUES} values")
            if values:
                out[name] = values
    return out


def _scope(ctx: CollectorContext, params: Mapping[str, str]) -> Scope:
    end = parse_time("end", params.get("end") or None, ctx.clock())
    start = parse_time("start", params.get("start") or None, end - _DEFAULT_RANGE)
    if start >= end:
        raise BadInput("start must be before end")
    return Scope(start, end, parse_filters(params))


def _choice(
    params: Mapping[str, str], name: str, allowed: Mapping[str, str] | frozenset[str], default: str
) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise BadInput(f"{name}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def filter_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """``WHERE`` text over ``calls`` for the range and filters, and its parameters."""
    parts = ["start_time >= $start", "start_time < $end"]
    params: dict[str, Any] = {"start": scope.start, "end": scope.end}
    for name, values in scope.filters.items():
        parts.append(f"list_contains($f_{name}, {FILTER_COLUMNS[name]})")
        params[f"f_{name}"] = list(values)
    return " AND ".join(parts), params


def build_summary(scope: Scope, now: datetime) -> Query:
    """Today, month to date and the selected range, each with cost, calls and unpriced calls."""
    where, params = filter_sql(Scope(min(scope.start, _month_start(now)), max(scope.end, now), scope.filters))
    params.update(
        today=datetime.combine(now.date(), time(), tzinfo=UTC),
        month=_month_start(now),
        now=now,
        r0=scope.start,
        r1=scope.end,
    )

    def block(prefix: str, cond: str) -> str:
        return (
            f"sum(cost_usd) FILTER (WHERE {cond}) AS {prefix}_cost_usd, "
            f"count(*) FILTER (WHERE {cond}) AS {prefix}_calls, "
            f"count(*) FILTER (WHERE {cond} AND cost_usd IS NULL) AS {prefix}_unpriced_calls, "
            f"count(*) FILTER (WHERE {cond} AND is_error) AS {prefix}_errors, "
            f"count(*) FILTER (WHERE {cond} AND status_code = 429) AS {prefix}_rate_limited"
        )

    sql = (
        "SELECT "
        + block("today", "start_time >= $today AND start_time <= $now")
        + ", "
        + block("month", "start_time >= $month AND start_time <= $now")
        + ", "
        + block("range", "start_time >= $r0 AND start_time < $r1")
        + f" FROM calls WHERE {where}"
    )
    return Query(sql, params)


def _month_start(now: datetime) -> datetime:
    return datetime.combine(now.date().replace(day=1), time(), tzinfo=UTC)


def _project(month_cost: Decimal | None, now: datetime) -> Decimal | None:
    if month_cost is None:
        return None
    start = _month_start(now)
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now - start).total_seconds()
    if elapsed <= 0:
        return month_cost
    projected = month_cost * Decimal(days * 86_400) / Decimal(str(elapsed))
    return projected.quantize(Decimal("0.000001"))


def build_breakdown(scope: Scope, key: str) -> Query:
    """Spend, tokens, calls and errors per value of ``key``; ``tag`` rows are ``key=value`` per tag."""
    where, params = filter_sql(scope)
    metrics = f"count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, {_TOKEN_COLS}, {_MONEY_COLS}"
    if key == "tag":
        source = f"(SELECT *, unnest(map_entries(tags)) AS t FROM calls WHERE {where} AND tags IS NOT NULL)"
        sql = f"SELECT t.key || '=' || t.value AS key, {metrics} FROM {source} GROUP BY 1"
    else:
        sql = f"SELECT {BREAKDOWN_KEYS[key]} AS key, {metrics} FROM calls WHERE {where} GROUP BY 1"
    return Query(f"{sql} ORDER BY cost_usd DESC NULLS LAST, calls DESC, key NULLS LAST", params)


def build_timeseries(scope: Scope, bucket: str, split: str) -> Query:
    where, params = filter_sql(scope)
    col = BREAKDOWN_KEYS[split] if split != "tag" else "feature"
    sql = (
        f"SELECT date_trunc('{bucket}', start_time) AS bucket, {col} AS key, count(*) AS calls, "
        f"count(*) FILTER (WHERE is_error) AS errors, {_MONEY_COLS} "
        f"FROM calls WHERE {where} GROUP BY ALL ORDER BY bucket, key NULLS LAST"
    )
    return Query(sql, params)


def build_headroom(scope: Scope, bucket: str) -> Query:
    """Per bucket and model: the limit and the lowest remaining requests/tokens seen, and 429s."""
    where, params = filter_sql(scope)
    sql = (
        f"SELECT date_trunc('{bucket}', start_time) AS bucket, model, count(*) AS calls, "
        "count(*) FILTER (WHERE status_code = 429) AS rate_limited, "
        "max(ratelimit_limit_requests) AS limit_requests, "
        "min(ratelimit_remaining_requests) AS min_remaining_requests, "
        "max(ratelimit_limit_tokens) AS limit_tokens, "
        "min(ratelimit_remaining_tokens) AS min_remaining_tokens, "
        "min(ratelimit_remaining_requests / nullif(ratelimit_limit_requests, 0)) AS requests_headroom_pct, "
        "min(ratelimit_remaining_tokens / nullif(ratelimit_limit_tokens, 0)) AS tokens_headroom_pct "
        f"FROM calls WHERE {where} GROUP BY ALL ORDER BY bucket, model"
    )
    return Query(sql, params)


def build_errors(scope: Scope) -> Query:
    """Errors by type and status, with each one's share of all calls in scope."""
    where, params = filter_sql(scope)
    sql = (
        "WITH s AS (SELECT * FROM calls WHERE " + where + "), "
        "n AS (SELECT count(*) AS total FROM s) "
        "SELECT coalesce(error_type, 'unknown') AS error_type, status_code, count(*) AS errors, "
        "count(*) / any_value(n.total) AS share_of_calls, min(start_time) AS first_seen, "
        "max(start_time) AS last_seen FROM s, n WHERE is_error GROUP BY ALL "
        "ORDER BY errors DESC, error_type, status_code NULLS LAST"
    )
    return Query(sql, params)


def build_error_rate(scope: Scope, bucket: str) -> Query:
    where, params = filter_sql(scope)
    sql = (
        f"SELECT date_trunc('{bucket}', start_time) AS bucket, count(*) AS calls, "
        "count(*) FILTER (WHERE is_error) AS errors, "
        "count(*) FILTER (WHERE status_code = 429) AS rate_limited, "
        "count(*) FILTER (WHERE is_error) / count(*) AS error_rate "
        f"FROM calls WHERE {where} GROUP BY ALL ORDER BY bucket"
    )
    return Query(sql, params)


def build_latency(scope: Scope, key: str, bucket: str | None) -> Query:
    """Exact percentiles of duration and time to first chunk over successful calls."""
    where, params = filter_sql(scope)
    b = f"date_trunc('{bucket}', start_time) AS bucket, " if bucket else ""
    order = "bucket, key" if bucket else "key"
    sql = (
        f"SELECT {b}{BREAKDOWN_KEYS[key]} AS key, count(*) AS calls, "
        "quantile_cont(duration_s, 0.5) AS p50_s, quantile_cont(duration_s, 0.95) AS p95_s, "
        "quantile_cont(duration_s, 0.99) AS p99_s, quantile_cont(ttfc_s, 0.5) AS ttfc_p50_s, "
        "quantile_cont(ttfc_s, 0.95) AS ttfc_p95_s, quantile_cont(ttfc_s, 0.99) AS ttfc_p99_s "
        f"FROM calls WHERE {where} AND NOT is_error GROUP BY ALL ORDER BY {order} NULLS LAST"
    )
    return Query(sql, params)


def build_dimensions(scope: Scope, limit: int = 200) -> Query:
    """Values seen per filter dimension (most used first), to fill the dashboard's pickers."""
    where, params = filter_sql(Scope(scope.start, scope.end, {}))
    parts = [
        f"SELECT '{name}' AS dimension, {col} AS value, count(*) AS calls FROM calls "
        f"WHERE {where} AND {col} IS NOT NULL GROUP BY ALL"
        for name, col in FILTER_COLUMNS.items()
    ]
    sql = (
        "SELECT dimension, value, calls FROM (" + " UNION ALL ".join(parts) + ") "
        "QUALIFY row_number() OVER (PARTITION BY dimension ORDER BY calls DESC, value) <= $limit "
        "ORDER BY dimension, calls DESC, value"
    )
    params["limit"] = limit
    return Query(sql, params)


def build_unpriced(scope: Scope) -> Query:
    where, params = filter_sql(scope)
    sql = (
        "SELECT model, count(*) AS calls, string_agg(DISTINCT request_model, ', ') AS request_models, "
        "coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens, "
        "coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens, "
        "min(start_time) AS first_seen, max(start_time) AS last_seen "
        f"FROM calls WHERE {where} AND cost_usd IS NULL GROUP BY model ORDER BY calls DESC, model"
    )
    return Query(sql, params)


def build_savings_groups(scope: Scope) -> Query:
    """Token sums per (model, tier, batch, day): the units the price table is linear over."""
    where, params = filter_sql(scope)
    sql = (
        "SELECT model, service_tier, batch, day, count(*) AS calls, "
        "coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens, "
        "coalesce(sum(cached_input_tokens), 0)::BIGINT AS cached_input_tokens, "
        "coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens, sum(cost_usd) AS cost_usd "
        f"FROM calls WHERE {where} AND cost_usd IS NOT NULL GROUP BY ALL ORDER BY model, day"
    )
    return Query(sql, params)


_PROBE = 1000  # tokens per probe: small enough to stay below any long-context threshold


def _rate(
    table: PriceTable, model: str, at: datetime, usage: Usage, tier: str | None, batch: bool
) -> Decimal | None:
    try:
        return price_usage(table, model, at, usage, service_tier=tier, batch=batch).cost
    except (ValueError, TypeError):
        return None


def savings_by_model(table: PriceTable, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What prompt caching and the Batch API saved, per model.

    Savings are priced per token kind with the engine's own prices (a probe of 1,000 tokens per
    kind), so they follow tiers and effective dates exactly like ingest pricing does.
    """
    cache: dict[tuple[str, str | None, bool, str], tuple[Decimal | None, ...]] = {}

    def rates(model: str, tier: str | None, batch: bool, day: str) -> tuple[Decimal | None, ...]:
        k = (model, tier, batch, day)
        if k not in cache:
            at = datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC)
            cache[k] = (
                _rate(table, model, at, Usage(input_tokens=_PROBE), tier, batch),
                _rate(table, model, at, Usage(input_tokens=_PROBE, cached_input_tokens=_PROBE), tier, batch),
                _rate(table, model, at, Usage(output_tokens=_PROBE), tier, batch),
            )
        return cache[k]

    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        model, tier, batch, day = g["model"], g["service_tier"], bool(g["batch"]), str(g["day"])
        row = out.setdefault(
            model,
            {
                "model": model,
                "calls": 0,
                "cached_input_tokens": 0,
                "cache_savings_usd": Decimal(0),
                "batch_calls": 0,
                "batch_cost_usd": Decimal(0),
                "batch_savings_usd": Decimal(0),
                "unpriced_savings": False,
            },
        )
        row["calls"] += g["calls"]
        cached, inp, outp = g["cached_input_tokens"], g["input_tokens"], g["output_tokens"]
        r_in, r_cached, r_out = rates(model, None if batch else tier, batch, day)
        if cached:
            row["cached_input_tokens"] += cached
            if r_in is None or r_cached is None:
                row["unpriced_savings"] = True
            else:
                row["cache_savings_usd"] += (r_in - r_cached) * cached / _PROBE
        if batch:
            row["batch_calls"] += g["calls"]
            row["batch_cost_usd"] += Decimal(g["cost_usd"] or 0)
            s_in, s_cached, s_out = rates(model, None, False, day)
            if None in (r_in, r_cached, r_out, s_in, s_cached, s_out):
                row["unpriced_savings"] = True
            else:
                assert r_in is not None and r_cached is not None and r_out is not None
                assert s_in is not None and s_cached is not None and s_out is not None
                full = s_in * (inp - cached) + s_cached * cached + s_out * outp
                paid = r_in * (inp - cached) + r_cached * cached + r_out * outp
                row["batch_savings_usd"] += (full - paid) / _PROBE
    rows = sorted(
        out.values(), key=lambda r: (-(r["cache_savings_usd"] + r["batch_savings_usd"]), r["model"])
    )
    for r in rows:
        for m in ("cache_savings_usd", "batch_cost_usd", "batch_savings_usd"):
            r[m] = money_str(r[m])
    return rows


# --- HTTP -------------------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _read(ctx: CollectorContext, query: Query) -> list[dict[str, Any]]:
    cur = ctx.store.cursor()
    try:
        return fetch_dicts(cur, query)
    finally:
        cur.close()


def _envelope(scope: Scope, rows: list[dict[str, Any]], **extra: Any) -> JSONResponse:
    return JSONResponse(
        {
            "start": _iso(scope.start),
            "end": _iso(scope.end),
            "filters": {k: list(v) for k, v in scope.filters.items()},
            **extra,
            "rows": rows,
        }
    )


async def summary(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    now = ctx.clock().astimezone(UTC)
    row = (await run_in_threadpool(_read, ctx, build_summary(scope, now)))[0]
    out: dict[str, Any] = {}
    for period in ("today", "month", "range"):
        out[period] = {
            m: row[f"{period}_{m}"] for m in ("cost_usd", "calls", "unpriced_calls", "errors", "rate_limited")
        }
    month_cost = Decimal(row["month_cost_usd"]) if row["month_cost_usd"] is not None else None
    projected = _project(month_cost, now)
    return _envelope(
        scope,
        [{"period": k, **v} for k, v in out.items()],
        now=_iso(now),
        today=out["today"],
        month_to_date=out["month"],
        range=out["range"],
        projected_month_usd=money_str(projected) if projected is not None else None,
    )


async def breakdown(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    key = _choice(request.query_params, "by", BREAKDOWN_KEYS, "model")
    rows = await run_in_threadpool(_read, ctx, build_breakdown(scope, key))
    return _envelope(scope, rows, by=key)


async def timeseries(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    bucket = _choice(request.query_params, "bucket", _BUCKETS, "day")
    split = _choice(request.query_params, "split", BREAKDOWN_KEYS, "model")
    if split == "tag":
        raise BadInput("split: tag is not supported for time series; use breakdown?by=tag")
    rows = await run_in_threadpool(_read, ctx, build_timeseries(scope, bucket, split))
    return _envelope(scope, rows, bucket=bucket, split=split)


async def headroom(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    bucket = _choice(request.query_params, "bucket", _BUCKETS, "hour")
    rows = await run_in_threadpool(_read, ctx, build_headroom(scope, bucket))
    return _envelope(scope, rows, bucket=bucket)


async def errors(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    rows = await run_in_threadpool(_read, ctx, build_errors(scope))
    return _envelope(scope, rows)


async def error_rate(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    bucket = _choice(request.query_params, "bucket", _BUCKETS, "hour")
    rows = await run_in_threadpool(_read, ctx, build_error_rate(scope, bucket))
    return _envelope(scope, rows, bucket=bucket)


async def latency(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    key = _choice(request.query_params, "by", BREAKDOWN_KEYS, "model")
    if key == "tag":
        raise BadInput("by: tag is not supported for latency")
    raw_bucket = request.query_params.get("bucket")
    bucket = _choice(request.query_params, "bucket", _BUCKETS, "day") if raw_bucket else None
    rows = await run_in_threadpool(_read, ctx, build_latency(scope, key, bucket))
    return _envelope(scope, rows, by=key, bucket=bucket)


async def dimensions(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    rows = await run_in_threadpool(_read, ctx, build_dimensions(scope))
    return _envelope(scope, rows)


async def unpriced(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    rows = await run_in_threadpool(_read, ctx, build_unpriced(scope))
    return _envelope(scope, rows)


async def savings(ctx: CollectorContext, request: Request) -> Response:
    scope = _scope(ctx, request.query_params)
    groups = await run_in_threadpool(_read, ctx, build_savings_groups(scope))
    rows = await run_in_threadpool(savings_by_model, ctx.prices, groups)
    totals = {
        m: money_str(sum((Decimal(r[m]) for r in rows), Decimal(0)))
        for m in ("cache_savings_usd", "batch_cost_usd", "batch_savings_usd")
    }
    return _envelope(scope, rows, totals=totals)


Endpoint = Callable[[CollectorContext, Request], Awaitable[Response]]


def _guard(fn: Endpoint, ctx: CollectorContext) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        try:
            return await fn(ctx, request)
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return handler


_ENDPOINTS: dict[str, Endpoint] = {
    "summary": summary,
    "breakdown": breakdown,
    "timeseries": timeseries,
    "headroom": headroom,
    "errors": errors,
    "error_rate": error_rate,
    "latency": latency,
    "dimensions": dimensions,
    "unpriced": unpriced,
    "savings": savings,
}


def insights_routes(ctx: CollectorContext) -> list[Route]:
    return [
        Route(f"/api/v1/insights/{name}", _guard(fn, ctx), methods=["GET"]) for name, fn in _ENDPOINTS.items()
    ]


def setup(ctx: CollectorContext) -> None:
    """Collector component hook: add the insights routes (auth is the app's middleware)."""
    ctx.routes.extend(insights_routes(ctx))
