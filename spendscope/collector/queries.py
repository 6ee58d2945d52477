"""SQL for the query API: pure builders (``build_*`` → SQL and parameters) and thin runners.

Spend over long ranges reads the daily rollup for whole days that are rolled up and clean, and the
``calls`` table for partial edge days and days with calls newer than their rollup, so answers are
exact and still fast. Group keys are whitelisted: user input never reaches the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.pricing import money_str

__all__ = [
    "DIRTY_DAYS_SQL",
    "GROUP_KEYS",
    "HIST_KEYS",
    "LATENCY_GROUP_KEYS",
    "ROLLUP_KEYS",
    "Query",
    "bucket_seconds",
    "build_errors",
    "build_latency",
    "build_latency_hist",
    "build_ratelimits",
    "build_spend",
    "fetch_dicts",
    "run_latency",
    "run_spend",
    "spend_rows",
    "to_json_value",
]

# API key → calls column.
GROUP_KEYS: dict[str, str] = {
    "day": "day",
    "model": "model",
    "request_model": "request_model",
    "project": "project",
    "user": "user_id",
    "feature": "feature",
    "service": "service",
    "api": "api",
    "provider": "provider",
    "operation": "operation",
    "organization": "organization",
    "service_tier": "service_tier",
    "error_type": "error_type",
    "status_code": "status_code",
}
ROLLUP_KEYS = frozenset({"day", "model", "request_model", "project", "feature", "service", "api", "provider"})
LATENCY_GROUP_KEYS = frozenset(
    {"day", "model", "request_model", "project", "feature", "service", "api", "user"}
)

_TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
)
DIRTY_DAYS_SQL = "SELECT day FROM rollup_state WHERE dirty"


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: dict[str, Any]


def _select_keys(keys: Sequence[str]) -> str:
    return "".join(f"{GROUP_KEYS[k]} AS {k}, " for k in keys)


def _group(keys: Sequence[str]) -> str:
    return f" GROUP BY {', '.join(keys)}" if keys else ""


def _order(keys: Sequence[str]) -> str:
    return f" ORDER BY {', '.join(f'{k} NULLS LAST' for k in keys)}" if keys else ""


def _day_ceil(t: datetime) -> date:
    d = t.date()
    return d if t.time() == datetime.min.time() else d + timedelta(days=1)


def _base_ranges(
    start: datetime, end: datetime, d0: date, d1: date, dirty: Collection[date]
) -> list[tuple[datetime, datetime]]:
    """Time ranges to read from ``calls``: partial edge days and dirty whole days, merged."""

    def at(d: date) -> datetime:
        return datetime.combine(d, time(), tzinfo=UTC)

    ranges: list[tuple[datetime, datetime]] = []
    if start < at(d0):
        ranges.append((start, min(end, at(d0))))
    for d in sorted(x for x in dirty if d0 <= x < d1):
        lo, hi = at(d), at(d) + timedelta(days=1)
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    if at(d1) < end and d0 <= d1:
        lo = max(start, at(d1))
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((lo, end))
    return ranges


def build_spend(
    start: datetime, end: datetime, keys: Sequence[str], dirty_days: Collection[date] | None = None
) -> Query:
    """Spend, tokens, calls and errors grouped by ``keys`` for calls with start in [start, end).

    With ``dirty_days`` (the days whose rollup is stale, see :data:`DIRTY_DAYS_SQL`) whole clean days
    come from ``rollup_daily`` and the rest from ``calls``, one time range per run of days, so each
    part can skip row groups by its start-time zone maps. ``None`` reads ``calls`` only.
    """
    sel = _select_keys(keys)
    base_metrics = (
        "count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, "
        + "".join(f"sum({t}) AS {t}, " for t in _TOKENS)
        + "sum(cost_usd) AS cost_usd, count(cost_usd) AS priced_calls, "
        "count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls"
    )
    params: dict[str, Any] = {"start": start, "end": end}
    d0, d1 = _day_ceil(start), end.date()
    if dirty_days is None or not set(keys) <= ROLLUP_KEYS or d0 >= d1:
        sql = (
            f"SELECT {sel}{base_metrics} FROM calls WHERE start_time >= $start AND start_time < $end"
            f"{_group(keys)}{_order(keys)}"
        )
        return Query(sql, params)
    stale = sorted(d for d in dirty_days if d0 <= d < d1)
    params.update(d0=d0, d1=d1, stale=stale)
    roll_metrics = (
        "sum(calls) AS calls, sum(errors) AS errors, "
        + "".join(f"sum({t}) AS {t}, " for t in _TOKENS)
        + "sum(cost_usd) AS cost_usd, sum(priced_calls) AS priced_calls, "
        "sum(unpriced_calls) AS unpriced_calls"
    )
    plain = "".join(f"{k}, " for k in keys)
    parts = [
        f"SELECT {plain}{roll_metrics} FROM rollup_daily WHERE day >= $d0 AND day < $d1 "
        f"AND NOT list_contains($stale::DATE[], day){_group(keys)}"
    ]
    for i, (lo, hi) in enumerate(_base_ranges(start, end, d0, d1, stale)):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
        parts.append(
            f"SELECT {sel}{base_metrics} FROM calls "
            f"WHERE start_time >= $lo{i} AND start_time < $hi{i}{_group(keys)}"
        )
    sql = (
        f"WITH parts AS ({' UNION ALL BY NAME '.join(parts)}) "
        f"SELECT {plain}sum(calls)::BIGINT AS calls, sum(errors)::BIGINT AS errors, "
        + "".join(f"sum({t})::HUGEINT AS {t}, " for t in _TOKENS)
        + "sum(cost_usd) AS cost_usd, sum(priced_calls)::BIGINT AS priced_calls, "
        f"sum(unpriced_calls)::BIGINT AS unpriced_calls FROM parts{_group(keys)}{_order(keys)}"
    )
    return Query(sql, params)


def build_latency(start: datetime, end: datetime, keys: Sequence[str]) -> Query:
    """Latency and time-to-first-chunk percentiles of successful calls (exact ``quantile_cont``)."""
    sel = "".join(f"{GROUP_KEYS[k]} AS {k}, " for k in keys)
    sql = (
        f"SELECT {sel}count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, "
        "quantile_cont(duration_s, [0.5, 0.95, 0.99]) FILTER (WHERE NOT is_error) AS latency, "
        "quantile_cont(ttfc_s, [0.5, 0.95]) FILTER (WHERE NOT is_error) AS ttfc "
        f"FROM calls WHERE start_time >= $start AND start_time < $end{_group(keys)}{_order(keys)}"
    )
    return Query(sql, {"start": start, "end": end})


HIST_KEYS = frozenset({"day", "model"})


def build_latency_hist(
    start: datetime, end: datetime, keys: Sequence[str], dirty_days: Collection[date]
) -> Query:
    """Approximate percentiles (±2.2%) from the daily latency histograms plus live buckets.

    Clean whole days come from ``rollup_latency_daily``; edge and dirty days are bucketed from
    ``calls`` on the fly, by start-time range. Answers ``keys``, ``metric`` and the bucket of each
    percentile (see :func:`bucket_seconds`).
    """
    from spendscope.collector.rollups import LATENCY_BUCKET_SQL

    d0, d1 = _day_ceil(start), end.date()
    stale = sorted(d for d in dirty_days if d0 <= d < d1)
    params: dict[str, Any] = {"d0": d0, "d1": d1, "stale": stale}
    sel = "".join(f"{GROUP_KEYS[k]} AS {k}, " for k in keys)
    plain = "".join(f"{k}, " for k in keys)
    parts = [
        f"SELECT {plain}metric, bucket, n FROM rollup_latency_daily WHERE day >= $d0 AND day < $d1 "
        "AND NOT list_contains($stale::DATE[], day)"
    ]
    ranges = _base_ranges(start, end, d0, d1, stale) if d0 < d1 else [(start, end)]
    for i, (lo, hi) in enumerate(ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
        for metric, col in (("duration", "duration_s"), ("ttfc", "ttfc_s")):
            parts.append(
                f"SELECT {sel}'{metric}' AS metric, {LATENCY_BUCKET_SQL.format(x=col)} AS bucket, "
                "count(*) AS n "
                f"FROM calls WHERE start_time >= $lo{i} AND start_time < $hi{i} AND NOT is_error "
                f"AND {col} IS NOT NULL GROUP BY ALL"
            )
    part = f"PARTITION BY {plain}metric"
    sql = (
        f"WITH h AS (SELECT {plain}metric, bucket, sum(n) AS n FROM ({' UNION ALL BY NAME '.join(parts)}) "
        f"GROUP BY ALL), c AS (SELECT *, "
        f"sum(n) OVER ({part} ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS cum, "
        f"sum(n) OVER ({part}) AS tot FROM h) "
        f"SELECT {plain}metric, min(bucket) FILTER (WHERE cum >= 0.5 * tot) AS b50, "
        "min(bucket) FILTER (WHERE cum >= 0.95 * tot) AS b95, "
        "min(bucket) FILTER (WHERE cum >= 0.99 * tot) AS b99 "
        "FROM c GROUP BY ALL"
    )
    return Query(sql, params)


def bucket_seconds(bucket: int | None) -> float | None:
    """The geometric middle of a latency bucket, in seconds."""
    return None if bucket is None else float(2 ** ((bucket + 0.5) / 16) / 1000)


def run_latency(
    con: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    keys: Sequence[str],
    *,
    exact: bool = False,
) -> list[dict[str, Any]]:
    """Latency rows: exact ``quantile_cont`` on calls, or histogram percentiles when the keys allow."""
    if exact or not set(keys) <= HIST_KEYS:
        rows = []
        for r in fetch_dicts(con, build_latency(start, end, keys)):
            lat, ttfc = r.pop("latency") or [None] * 3, r.pop("ttfc") or [None] * 2
            r.update(p50_s=lat[0], p95_s=lat[1], p99_s=lat[2], ttfc_p50_s=ttfc[0], ttfc_p95_s=ttfc[1])
            rows.append(r)
        return rows
    dirty = [r[0] for r in con.execute(DIRTY_DAYS_SQL).fetchall()]
    counts = fetch_dicts(con, build_spend(start, end, keys, dirty))
    hist = fetch_dicts(con, build_latency_hist(start, end, keys, dirty))
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in counts:
        k = tuple(r[x] for x in keys)
        by_key[k] = {
            **{x: r[x] for x in keys},
            "calls": r["calls"],
            "errors": r["errors"],
            "p50_s": None,
            "p95_s": None,
            "p99_s": None,
            "ttfc_p50_s": None,
            "ttfc_p95_s": None,
        }
    for h in hist:
        row = by_key.get(tuple(h[x] for x in keys))
        if row is None:
            continue
        if h["metric"] == "duration":
            row.update(
                p50_s=bucket_seconds(h["b50"]), p95_s=bucket_seconds(h["b95"]), p99_s=bucket_seconds(h["b99"])
            )
        else:
            row.update(ttfc_p50_s=bucket_seconds(h["b50"]), ttfc_p95_s=bucket_seconds(h["b95"]))
    return list(by_key.values())


def build_errors(start: datetime, end: datetime, keys: Sequence[str]) -> Query:
    sel = "".join(f"{GROUP_KEYS[k]} AS {k}, " for k in keys)
    sql = (
        f"SELECT {sel}count(*) AS errors, count(*) FILTER (WHERE status_code = 429) AS rate_limited "
        f"FROM calls WHERE start_time >= $start AND start_time < $end AND is_error{_group(keys)}"
        f"{_order(keys)}"
    )
    return Query(sql, {"start": start, "end": end})


def build_ratelimits(since: datetime) -> Query:
    """The latest rate-limit headers seen per model and project, with 429 counts in the window."""
    sql = (
        "WITH latest AS (SELECT model, project, ratelimit_limit_requests AS limit_requests, "
        "ratelimit_remaining_requests AS remaining_requests, ratelimit_limit_tokens AS limit_tokens, "
        "ratelimit_remaining_tokens AS remaining_tokens, ratelimit_reset_requests_s AS reset_requests_s, "
        "ratelimit_reset_tokens_s AS reset_tokens_s, start_time AS observed_at FROM calls "
        "WHERE start_time >= $since AND (ratelimit_limit_requests IS NOT NULL "
        "OR ratelimit_limit_tokens IS NOT NULL) "
        "QUALIFY row_number() OVER (PARTITION BY model, project ORDER BY start_time DESC) = 1), "
        "counts AS (SELECT model, project, count(*) AS calls, count(*) FILTER (WHERE status_code = 429) "
        "AS rate_limited_calls FROM calls WHERE start_time >= $since GROUP BY model, project) "
        "SELECT l.*, c.calls, c.rate_limited_calls FROM latest l LEFT JOIN counts c "
        "ON l.model = c.model AND l.project IS NOT DISTINCT FROM c.project "
        "ORDER BY l.model, l.project NULLS LAST"
    )
    return Query(sql, {"since": since})


def to_json_value(v: Any) -> Any:
    """A DuckDB value as JSON: money and other decimals as plain strings, times as ISO."""
    if isinstance(v, Decimal):
        return money_str(v)
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list):
        return [to_json_value(x) for x in v]
    return v


def fetch_dicts(con: duckdb.DuckDBPyConnection, q: Query) -> list[dict[str, Any]]:
    # Through Arrow: DuckDB's own Python conversion of TIMESTAMPTZ needs pytz, Arrow uses zoneinfo.
    # DuckDB refuses named parameters the statement does not use; builders may leave some unused.
    params = {k: v for k, v in q.params.items() if re.search(rf"\${k}\b", q.sql)}
    table = con.sql(q.sql, params=params).to_arrow_table()
    return [{k: to_json_value(v) for k, v in row.items()} for row in table.to_pylist()]


def spend_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Shape spend rows for the API and compute totals (cost stays null when nothing is priced)."""
    totals: dict[str, Any] = {"calls": 0, "errors": 0, **dict.fromkeys(_TOKENS, 0)}
    cost: Decimal | None = None
    unpriced = 0
    for r in rows:
        totals["calls"] += r["calls"] or 0
        totals["errors"] += r["errors"] or 0
        for t in _TOKENS:
            r[t] = int(r[t] or 0)
            totals[t] += r[t]
        if r["cost_usd"] is not None:
            cost = (cost or Decimal(0)) + Decimal(r["cost_usd"])
        unpriced += r["unpriced_calls"] or 0
        r.pop("priced_calls", None)
    totals["cost_usd"] = money_str(cost)
    totals["unpriced_calls"] = unpriced
    return rows, totals


def run_spend(
    con: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    keys: Sequence[str],
    *,
    use_rollup: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dirty = [r[0] for r in con.execute(DIRTY_DAYS_SQL).fetchall()] if use_rollup else None
    return spend_rows(fetch_dicts(con, build_spend(start, end, keys, dirty)))
