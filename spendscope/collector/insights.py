"""Query endpoints the dashboard needs beyond the core API: ``/api/v1/insights/*``.

Every endpoint takes ``start``/``end`` (ISO 8601 with a zone, end exclusive) and optional exact-match
filters ``project``, ``model``, ``service``, ``user``, ``feature`` (comma lists), aggregates in DuckDB
and answers ``{"rows": [...], ...}`` with money as decimal strings. Filter columns and group keys are
whitelisted; user input only ever reaches the SQL as parameters.

Clean whole days are read from ``rollup_insights_daily`` and the rest from ``calls``
(:func:`~spendscope.collector.queries.build_union`), so answers equal a scan of ``calls``. What the
rollup cannot answer reads ``calls``: a ``user`` filter or key, tags, hour buckets, unpriced calls,
and exact latency percentiles (by model they come from the daily latency histograms, ±2.2%).
Each ``build_*`` takes the dirty days; ``None`` reads ``calls`` only (the reference answer).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

import duckdb
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from spendscope.collector import schemas as s
from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext
from spendscope.collector.queries import (
    Agg,
    Col,
    Query,
    build_union,
    fetch_dicts,
    filter_conds,
    key_col,
    latency_from_hist,
    measure,
    snapshot,
)
from spendscope.collector.rollups import INSIGHT_TOKENS, INSIGHTS
from spendscope.collector.web import Choice, Endpoint, TimeRange, Values
from spendscope.dimensions import DIMENSIONS
from spendscope.isotime import format_time
from spendscope.pricing import PriceTable, Usage, money_str, price_usage

__all__ = [
    "BREAKDOWN_KEYS",
    "COMPONENT",
    "ENDPOINTS",
    "FILTER_COLUMNS",
    "Scope",
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
    "latency_from_histograms",
    "latency_uses_histograms",
    "savings_by_model",
]

# Filter parameter → calls column.
FILTER_COLUMNS: dict[str, str] = DIMENSIONS
# Breakdown key → SQL expression; "tag" is handled by unnesting the tags map.
BREAKDOWN_KEYS: dict[str, str] = {
    **FILTER_COLUMNS,
    "day": "day",
    "api": "api",
    "service_tier": "service_tier",
    "tag": "tag",
}
_BUCKETS = frozenset({"hour", "day"})
_MONEY_COLS = "sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls"
_TOKEN_COLS = ", ".join(f"coalesce(sum({t}), 0)::HUGEINT AS {t}" for t in INSIGHT_TOKENS)


@dataclass(frozen=True, slots=True)
class Scope:
    start: datetime
    end: datetime
    filters: Mapping[str, tuple[str, ...]]


def _filter_columns(scope: Scope) -> dict[str, tuple[str, ...]]:
    return {FILTER_COLUMNS[name]: values for name, values in scope.filters.items()}


def filter_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """``WHERE`` text over ``calls`` for the range and filters, and its parameters (calls-only reads)."""
    params: dict[str, Any] = {"start": scope.start, "end": scope.end}
    conds = filter_conds(_filter_columns(scope), "f_", params)
    return " AND ".join(["start_time >= $start", "start_time < $end", *conds]), params


# --- routing: clean whole days from rollup_insights_daily, the rest from calls ---------------------

# Hour buckets come from calls only (there is no hourly rollup); integer arithmetic on the epoch is
# several times faster than date_trunc on TIMESTAMPTZ and equal to it in UTC (times are after 1970).
_HOUR_SQL = "make_timestamptz(epoch_us(start_time) // 3600000000 * 3600000000)"
_DAY_SQL = "day::TIMESTAMPTZ"
_COUNTS = frozenset({"calls", "errors", "rate_limited", "unpriced_calls"})


def _bucket_col(bucket: str) -> Col:
    return Col("bucket", _DAY_SQL, _DAY_SQL) if bucket == "day" else Col("bucket", _HOUR_SQL, None)


def _key_col(name: str, key: str) -> Col:
    """The API key ``key`` (see :data:`BREAKDOWN_KEYS`) as the column ``name``."""
    return key_col(name, BREAKDOWN_KEYS[key], INSIGHTS)


def _col(column: str) -> Col:
    return key_col(column, column, INSIGHTS)


def _measures(*columns: str) -> list[Agg]:
    return [measure(INSIGHTS, c) for c in columns]


def _union(
    scope: Scope, keys: Sequence[Col], aggs: Sequence[Agg], dirty: Collection[date] | None, prefix: str = ""
) -> Query:
    """``keys`` and ``aggs`` over the scope; ``dirty=None`` reads calls only (the reference answer)."""
    return build_union(
        INSIGHTS, scope.start, scope.end, keys, aggs, dirty, _filter_columns(scope), prefix=prefix
    )


def _out(*columns: str) -> str:
    """The final form of combined measures: counts as BIGINT, token sums as HUGEINT (0 when none;
    a sum of stored counts never overflows)."""

    def final(c: str) -> str:
        if c in _COUNTS:
            return f"{c}::BIGINT AS {c}"
        return f"coalesce({c}, 0)::HUGEINT AS {c}" if c in INSIGHT_TOKENS else c

    return ", ".join(final(c) for c in columns)


_SUMMARY_METRICS = ("cost_usd", "calls", "unpriced_calls", "errors", "rate_limited")
_PERIODS = ("today", "month", "range")


def build_summary(scope: Scope, now: datetime, dirty: Collection[date] | None = None) -> Query:
    """Today, month to date and the selected range, each with cost, calls and unpriced calls."""
    # "Up to now" includes now itself, unless the range ends at or before it (the window ends there).
    upto = now + timedelta(microseconds=1) if scope.end > now else now
    blocks = {
        "today": (datetime.combine(now.date(), time(), tzinfo=UTC), upto),
        "month": (_month_start(now), upto),
        "range": (scope.start, scope.end),
    }
    metrics = _SUMMARY_METRICS
    select, sources, params = [], [], {}
    for name, (lo, hi) in blocks.items():
        u = _union(Scope(lo, hi, scope.filters), [], _measures(*metrics), dirty, prefix=name[0])
        params.update(u.params)
        sources.append(f"({u.sql}) AS {name}")
        select += [
            f"{name}.cost_usd AS {name}_cost_usd",
            *(f"coalesce({name}.{m}, 0)::BIGINT AS {name}_{m}" for m in metrics[1:]),
        ]
    return Query(f"SELECT {', '.join(select)} FROM {', '.join(sources)}", params)


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


_BREAKDOWN_METRICS = ("calls", "errors", *INSIGHT_TOKENS, "cost_usd", "unpriced_calls")


def build_breakdown(scope: Scope, key: str, dirty: Collection[date] | None = None) -> Query:
    """Spend, tokens, calls and errors per value of ``key``; ``tag`` rows are ``key=value`` per tag."""
    order = " ORDER BY cost_usd DESC NULLS LAST, calls DESC, key NULLS LAST"
    if key == "tag":  # tags are a map: only calls have them
        where, params = filter_sql(scope)
        metrics = (
            "count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, "
            + "".join(f"coalesce(sum({t}), 0)::HUGEINT AS {t}, " for t in INSIGHT_TOKENS)
            + "sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls"
        )
        source = f"(SELECT *, unnest(map_entries(tags)) AS t FROM calls WHERE {where} AND tags IS NOT NULL)"
        return Query(
            f"SELECT t.key || '=' || t.value AS key, {metrics} FROM {source} GROUP BY 1{order}", params
        )
    u = _union(scope, [_key_col("key", key)], _measures(*_BREAKDOWN_METRICS), dirty)
    return Query(f"SELECT key, {_out(*_BREAKDOWN_METRICS)} FROM ({u.sql}){order}", u.params)


def build_timeseries(scope: Scope, bucket: str, split: str, dirty: Collection[date] | None = None) -> Query:
    metrics = ("calls", "errors", "cost_usd", "unpriced_calls")
    keys = [_bucket_col(bucket), _key_col("key", split if split != "tag" else "feature")]
    u = _union(scope, keys, _measures(*metrics), dirty)
    sql = f"SELECT bucket, key, {_out(*metrics)} FROM ({u.sql}) ORDER BY bucket, key NULLS LAST"
    return Query(sql, u.params)


_HEADROOM_METRICS = (
    "calls",
    "rate_limited",
    "limit_requests",
    "min_remaining_requests",
    "limit_tokens",
    "min_remaining_tokens",
    "requests_headroom_pct",
    "tokens_headroom_pct",
)


def build_headroom(scope: Scope, bucket: str, dirty: Collection[date] | None = None) -> Query:
    """Per bucket and model: the limit and the lowest remaining requests/tokens seen, and 429s."""
    metrics = _HEADROOM_METRICS
    u = _union(scope, [_bucket_col(bucket), _key_col("model", "model")], _measures(*metrics), dirty)
    return Query(f"SELECT bucket, model, {_out(*metrics)} FROM ({u.sql}) ORDER BY bucket, model", u.params)


def build_errors(scope: Scope, dirty: Collection[date] | None = None) -> Query:
    """Errors by type and status, with each one's share of all calls in scope."""
    keys = [_col("error_type"), _col("status_code")]
    aggs = [
        measure(INSIGHTS, "calls", "n_calls"),
        measure(INSIGHTS, "errors", "n_errors"),
        *_measures("first_error_at", "last_error_at"),
    ]
    u = _union(scope, keys, aggs, dirty)
    sql = (
        f"WITH g AS ({u.sql}), n AS (SELECT sum(n_calls)::BIGINT AS total FROM g) "
        "SELECT coalesce(error_type, 'unknown') AS error_type, status_code, sum(n_errors)::BIGINT AS errors, "
        "sum(n_errors)::BIGINT / any_value(n.total) AS share_of_calls, min(first_error_at) AS first_seen, "
        "max(last_error_at) AS last_seen FROM g, n WHERE n_errors > 0 GROUP BY ALL "
        "ORDER BY errors DESC, error_type, status_code NULLS LAST"
    )
    return Query(sql, u.params)


def build_error_rate(scope: Scope, bucket: str, dirty: Collection[date] | None = None) -> Query:
    u = _union(scope, [_bucket_col(bucket)], _measures("calls", "errors", "rate_limited"), dirty)
    sql = (
        f"SELECT bucket, {_out('calls', 'errors', 'rate_limited')}, "
        f"errors::BIGINT / calls::BIGINT AS error_rate FROM ({u.sql}) ORDER BY bucket"
    )
    return Query(sql, u.params)


def build_latency(scope: Scope, key: str, bucket: str | None) -> Query:
    """Exact percentiles of duration and time to first chunk over successful calls (from calls)."""
    where, params = filter_sql(scope)
    b = f"{_bucket_col(bucket).calls_sql} AS bucket, " if bucket else ""
    order = "bucket, key" if bucket else "key"
    sql = (
        f"SELECT {b}{BREAKDOWN_KEYS[key]} AS key, count(*) AS calls, "
        "quantile_cont(duration_s, 0.5) AS p50_s, quantile_cont(duration_s, 0.95) AS p95_s, "
        "quantile_cont(duration_s, 0.99) AS p99_s, quantile_cont(ttfc_s, 0.5) AS ttfc_p50_s, "
        "quantile_cont(ttfc_s, 0.95) AS ttfc_p95_s, quantile_cont(ttfc_s, 0.99) AS ttfc_p99_s "
        f"FROM calls WHERE {where} AND NOT is_error GROUP BY ALL ORDER BY {order} NULLS LAST"
    )
    return Query(sql, params)


def latency_uses_histograms(scope: Scope, key: str, bucket: str | None) -> bool:
    """The daily latency histograms hold day and model only: other keys, filters or hours read calls."""
    return key == "model" and bucket in (None, "day") and set(scope.filters) <= {"model"}


def latency_from_histograms(
    con: duckdb.DuckDBPyConnection, scope: Scope, bucket: str | None, dirty: Collection[date]
) -> list[dict[str, Any]]:
    """:func:`build_latency`'s rows by model (and day), percentiles from the histograms (±2.2%)."""
    keys = ["day", "model"] if bucket else ["model"]
    rows = latency_from_hist(con, scope.start, scope.end, keys, dirty, scope.filters.get("model"))
    out = []
    for r in rows:
        ok = r.pop("calls") - r.pop("errors")
        if ok > 0:  # like the exact query: successful calls only
            day = r.pop("day", None)
            start = datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC) if day else None
            b = {"bucket": format_time(start)} if start else {}
            out.append({**b, "key": r.pop("model"), "calls": ok, **r})
    return out


def build_dimensions(scope: Scope, dirty: Collection[date] | None = None, limit: int = 200) -> Query:
    """Values seen per filter dimension (most used first), to fill the dashboard's pickers."""
    unfiltered = Scope(scope.start, scope.end, {})
    columns = [c for c in FILTER_COLUMNS.values() if c in INSIGHTS.keys]
    u = _union(unfiltered, [_col(c) for c in columns], _measures("calls"), dirty)
    parts = [
        f"SELECT '{name}' AS dimension, {col} AS value, sum(calls)::BIGINT AS calls FROM g "
        f"WHERE {col} IS NOT NULL GROUP BY ALL"
        for name, col in FILTER_COLUMNS.items()
        if col in columns
    ]
    where, params = filter_sql(unfiltered)
    parts += [  # the rollup leaves user_id out (its cardinality): read calls
        f"SELECT '{name}' AS dimension, {col} AS value, count(*) AS calls FROM calls "
        f"WHERE {where} AND {col} IS NOT NULL GROUP BY ALL"
        for name, col in FILTER_COLUMNS.items()
        if col not in columns
    ]
    sql = (
        f"WITH g AS ({u.sql}) SELECT dimension, value, calls FROM (" + " UNION ALL ".join(parts) + ") "
        "QUALIFY row_number() OVER (PARTITION BY dimension ORDER BY calls DESC, value) <= $limit "
        "ORDER BY dimension, calls DESC, value"
    )
    return Query(sql, {**u.params, **params, "limit": limit})


def build_unpriced(scope: Scope) -> Query:
    """Calls only: the rollup cannot split tokens and first/last seen by priced status, and unpriced
    calls are rare, so zone maps on cost_usd's NULLs keep this scan short."""
    where, params = filter_sql(scope)
    sql = (
        "SELECT model, count(*) AS calls, string_agg(DISTINCT request_model, ', ') AS request_models, "
        "coalesce(sum(input_tokens), 0)::HUGEINT AS input_tokens, "
        "coalesce(sum(output_tokens), 0)::HUGEINT AS output_tokens, "
        "min(start_time) AS first_seen, max(start_time) AS last_seen "
        f"FROM calls WHERE {where} AND cost_usd IS NULL GROUP BY model ORDER BY calls DESC, model"
    )
    return Query(sql, params)


def build_savings_groups(scope: Scope, dirty: Collection[date] | None = None) -> Query:
    """Priced calls' token sums per (model, tier, batch, day): the units the price table is linear over."""
    keys = [_col(c) for c in ("model", "service_tier", "batch", "day")]
    aggs = [
        measure(INSIGHTS, "priced_calls", "calls"),
        *(measure(INSIGHTS, f"priced_{t}", t) for t in INSIGHT_TOKENS[:3]),
        measure(INSIGHTS, "cost_usd"),
    ]
    u = _union(scope, keys, aggs, dirty)
    sql = (
        f"SELECT model, service_tier, batch, day, {_out('calls', *INSIGHT_TOKENS[:3])}, cost_usd "
        f"FROM ({u.sql}) "
        "WHERE calls > 0 ORDER BY model, day, service_tier NULLS LAST, batch"
    )
    return Query(sql, u.params)


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
    cache: dict[tuple[str, str | None, bool, str | None], tuple[Decimal | None, ...]] = {}

    def rates(model: str, tier: str | None, batch: bool, day: str) -> tuple[Decimal | None, ...]:
        at = datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC)
        # A rate is a function of the price row in force (none: unpriced): price each row once,
        # not once per day (a month is ~30 groups per model and tier).
        in_force = table.lookup(model, at, tier, batch)
        k = (model, tier, batch, in_force.price_id if in_force else None)
        if k not in cache:
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


class InsightsParams(TimeRange):
    """The range and the exact-match filters every insights endpoint takes."""

    project: Annotated[tuple[str, ...], Values()] = ()
    model: Annotated[tuple[str, ...], Values()] = ()
    service: Annotated[tuple[str, ...], Values()] = ()
    user: Annotated[tuple[str, ...], Values()] = ()
    feature: Annotated[tuple[str, ...], Values()] = ()

    @property
    def scope(self) -> Scope:
        filters = {name: getattr(self, name) for name in FILTER_COLUMNS}
        return Scope(self.start, self.end, {k: v for k, v in filters.items() if v})


assert set(FILTER_COLUMNS) <= set(InsightsParams.model_fields), "a filter dimension has no parameter"


class ByParams(InsightsParams):
    by: Annotated[str, Choice(BREAKDOWN_KEYS)] = "model"


class BucketParams(InsightsParams):
    bucket: Annotated[str, Choice(_BUCKETS)] = "hour"


class TimeseriesParams(InsightsParams):
    bucket: Annotated[str, Choice(_BUCKETS)] = "day"
    split: Annotated[str, Choice(set(BREAKDOWN_KEYS) - {"tag"})] = "model"


class LatencyParams(InsightsParams):
    by: Annotated[str, Choice(set(BREAKDOWN_KEYS) - {"tag"})] = "model"
    bucket: Annotated[str | None, Choice(_BUCKETS)] = None
    exact: bool = Field(False, description="exact percentiles from calls instead of the histograms")


Routed = Callable[[list[date]], Query]


def _read(ctx: CollectorContext, build: Routed) -> list[dict[str, Any]]:
    """Run ``build(dirty days)`` in one read snapshot (routing and reads see the same commit)."""

    def read(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        with snapshot(cur) as dirty:
            return fetch_dicts(cur, build(dirty))

    return ctx.store.read(read)


def _envelope(scope: Scope, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "start": format_time(scope.start),
        "end": format_time(scope.end),
        "filters": {k: list(v) for k, v in scope.filters.items()},
        **extra,
        "rows": rows,
    }


async def summary(ctx: CollectorContext, p: InsightsParams) -> dict[str, Any]:
    scope = p.scope
    now = ctx.clock().astimezone(UTC)
    row = (await run_in_threadpool(_read, ctx, lambda dirty: build_summary(scope, now, dirty)))[0]
    out: dict[str, Any] = {}
    for period in _PERIODS:
        out[period] = {m: row[f"{period}_{m}"] for m in _SUMMARY_METRICS}
    month_cost = Decimal(row["month_cost_usd"]) if row["month_cost_usd"] is not None else None
    projected = _project(month_cost, now)
    return _envelope(
        scope,
        [{"period": k, **v} for k, v in out.items()],
        now=format_time(now),
        today=out["today"],
        month_to_date=out["month"],
        range=out["range"],
        projected_month_usd=money_str(projected) if projected is not None else None,
    )


async def breakdown(ctx: CollectorContext, p: ByParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(_read, ctx, lambda dirty: build_breakdown(scope, p.by, dirty))
    return _envelope(scope, rows, by=p.by)


async def timeseries(ctx: CollectorContext, p: TimeseriesParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(
        _read, ctx, lambda dirty: build_timeseries(scope, p.bucket, p.split, dirty)
    )
    return _envelope(scope, rows, bucket=p.bucket, split=p.split)


async def headroom(ctx: CollectorContext, p: BucketParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(_read, ctx, lambda dirty: build_headroom(scope, p.bucket, dirty))
    return _envelope(scope, rows, bucket=p.bucket)


async def errors(ctx: CollectorContext, p: InsightsParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(_read, ctx, lambda dirty: build_errors(scope, dirty))
    return _envelope(scope, rows)


async def error_rate(ctx: CollectorContext, p: BucketParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(_read, ctx, lambda dirty: build_error_rate(scope, p.bucket, dirty))
    return _envelope(scope, rows, bucket=p.bucket)


def _latency_rows(
    ctx: CollectorContext, scope: Scope, key: str, bucket: str | None, approximate: bool
) -> list[dict[str, Any]]:
    if not approximate:
        return _read(ctx, lambda _dirty: build_latency(scope, key, bucket))

    def read(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        with snapshot(cur) as dirty:
            return latency_from_histograms(cur, scope, bucket, dirty)

    return ctx.store.read(read)


async def latency(ctx: CollectorContext, p: LatencyParams) -> dict[str, Any]:
    scope = p.scope
    approximate = not p.exact and latency_uses_histograms(scope, p.by, p.bucket)
    rows = await run_in_threadpool(_latency_rows, ctx, scope, p.by, p.bucket, approximate)
    return _envelope(scope, rows, by=p.by, bucket=p.bucket, approximate=approximate)


async def dimensions(ctx: CollectorContext, p: InsightsParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(_read, ctx, lambda dirty: build_dimensions(scope, dirty))
    return _envelope(scope, rows)


async def unpriced(ctx: CollectorContext, p: InsightsParams) -> dict[str, Any]:
    scope = p.scope
    rows = await run_in_threadpool(_read, ctx, lambda _dirty: build_unpriced(scope))
    return _envelope(scope, rows)


async def savings(ctx: CollectorContext, p: InsightsParams) -> dict[str, Any]:
    scope = p.scope
    groups = await run_in_threadpool(_read, ctx, lambda dirty: build_savings_groups(scope, dirty))
    rows = await run_in_threadpool(savings_by_model, ctx.prices, groups)
    totals = {
        m: money_str(sum((Decimal(r[m]) for r in rows), Decimal(0)))
        for m in ("cache_savings_usd", "batch_cost_usd", "batch_savings_usd")
    }
    return _envelope(scope, rows, totals=totals)


# --- answers (JSON Schema, for the API document) ---------------------------------------------------


def _answer(row: s.Schema, **extra: s.Schema) -> s.Schema:
    """The envelope every insights endpoint answers (see :func:`_envelope`)."""
    filters = {"type": "object", "additionalProperties": s.STRINGS}
    return s.rows(row, **s.RANGE, filters=filters, **extra)


_CALLS = dict.fromkeys(("calls", "errors"), s.COUNT)
_MONEY = {"cost_usd": s.MONEY_OR_NULL, "unpriced_calls": s.COUNT}
_PERIOD_MEASURES = {"cost_usd": s.MONEY_OR_NULL} | dict.fromkeys(_SUMMARY_METRICS[1:], s.COUNT)
_PERIOD = s.obj(_PERIOD_MEASURES)
_NUM = s.nullable(s.NUMBER)
_INT = s.nullable(s.INT)
_SEEN = dict.fromkeys(("first_seen", "last_seen"), s.nullable(s.TIME))
_PCTS = ("p50_s", "p95_s", "p99_s", "ttfc_p50_s", "ttfc_p95_s", "ttfc_p99_s")
_BUCKET = s.STRING

_SUMMARY = _answer(
    s.obj({"period": {"enum": list(_PERIODS)}, **_PERIOD_MEASURES}),
    now=s.TIME,
    today=_PERIOD,
    month_to_date=_PERIOD,
    range=_PERIOD,
    projected_month_usd=s.MONEY_OR_NULL,
)
_BREAKDOWN = _answer(
    s.obj({"key": s.KEY_VALUE, **_CALLS, **dict.fromkeys(INSIGHT_TOKENS, s.COUNT), **_MONEY}), by=s.STRING
)
_TIMESERIES = _answer(
    s.obj({"bucket": s.TIME, "key": s.KEY_VALUE, **_CALLS, **_MONEY}), bucket=_BUCKET, split=s.STRING
)
_HEADROOM = _answer(
    s.obj(
        {"bucket": s.TIME, "model": s.STRING, "calls": s.COUNT, "rate_limited": s.COUNT}
        | dict.fromkeys(_HEADROOM_METRICS[2:6], _INT)
        | dict.fromkeys(("requests_headroom_pct", "tokens_headroom_pct"), _NUM)
    ),
    bucket=_BUCKET,
)
_ERRORS = _answer(
    s.obj({"error_type": s.STRING, "status_code": _INT, "errors": s.COUNT, "share_of_calls": _NUM} | _SEEN)
)
_ERROR_RATE = _answer(
    s.obj({"bucket": s.TIME, **_CALLS, "rate_limited": s.COUNT, "error_rate": _NUM}), bucket=_BUCKET
)
_LATENCY = _answer(
    s.obj({"key": s.KEY_VALUE, "calls": s.COUNT} | dict.fromkeys(_PCTS, _NUM), {"bucket": s.TIME}),
    by=s.STRING,
    bucket=s.nullable(_BUCKET),
    approximate=s.BOOL,
)
_DIMENSIONS = _answer(s.obj({"dimension": s.STRING, "value": s.STRING, "calls": s.COUNT}))
_UNPRICED = _answer(
    s.obj(
        {
            "model": s.STRING,
            "calls": s.COUNT,
            "request_models": s.nullable(s.STRING),
            "input_tokens": s.COUNT,
            "output_tokens": s.COUNT,
        }
        | _SEEN
    )
)
_SAVINGS_TOTALS = ("cache_savings_usd", "batch_cost_usd", "batch_savings_usd")
_SAVINGS = _answer(
    s.obj(
        {"model": s.STRING, "calls": s.COUNT, "cached_input_tokens": s.COUNT, "batch_calls": s.COUNT}
        | dict.fromkeys(_SAVINGS_TOTALS, s.MONEY)
        | {"unpriced_savings": s.BOOL}
    ),
    totals=s.obj(dict.fromkeys(_SAVINGS_TOTALS, s.MONEY)),
)


def _endpoint(
    name: str, handler: Any, params: type[InsightsParams], summary: str, response: s.Schema
) -> Endpoint:
    return Endpoint("GET", f"/api/v1/insights/{name}", handler, params, summary, response, tag="insights")


ENDPOINTS = (
    _endpoint("summary", summary, InsightsParams, "Spend today, this month and in the range", _SUMMARY),
    _endpoint("breakdown", breakdown, ByParams, "Spend, tokens and calls by one dimension", _BREAKDOWN),
    _endpoint(
        "timeseries", timeseries, TimeseriesParams, "Spend over time, split by a dimension", _TIMESERIES
    ),
    _endpoint("headroom", headroom, BucketParams, "Rate-limit headroom and 429s over time", _HEADROOM),
    _endpoint("errors", errors, InsightsParams, "Errors by type, model and status", _ERRORS),
    _endpoint("error_rate", error_rate, BucketParams, "Error rate over time", _ERROR_RATE),
    _endpoint("latency", latency, LatencyParams, "Latency percentiles by a dimension", _LATENCY),
    _endpoint("dimensions", dimensions, InsightsParams, "Values seen per filter dimension", _DIMENSIONS),
    _endpoint("unpriced", unpriced, InsightsParams, "Calls without a price, by model", _UNPRICED),
    _endpoint("savings", savings, InsightsParams, "Savings from cached input and the Batch API", _SAVINGS),
)

COMPONENT = Component("insights", ENDPOINTS)
