"""SQL for the query API: pure builders (``build_*`` → SQL and parameters) and thin runners.

Spend over long ranges reads the daily rollup for whole days that are rolled up and clean, and the
``calls`` table for partial edge days and days with calls newer than their rollup, so answers are
exact and still fast. Group keys are whitelisted: user input never reaches the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.pricing import money_str

__all__ = [
    "GROUP_KEYS",
    "LATENCY_GROUP_KEYS",
    "ROLLUP_KEYS",
    "Query",
    "build_errors",
    "build_latency",
    "build_ratelimits",
    "build_spend",
    "fetch_dicts",
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
_DIRTY = "(SELECT day FROM rollup_state WHERE dirty)"


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


def build_spend(start: datetime, end: datetime, keys: Sequence[str], *, use_rollup: bool = True) -> Query:
    """Spend, tokens, calls and errors grouped by ``keys`` for calls with start in [start, end)."""
    sel = _select_keys(keys)
    base_metrics = (
        "count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, "
        + "".join(f"sum({t}) AS {t}, " for t in _TOKENS)
        + "sum(cost_usd) AS cost_usd, count(cost_usd) AS priced_calls, "
        "count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls"
    )
    base_where = "start_time >= $start AND start_time < $end"
    params: dict[str, Any] = {"start": start, "end": end}
    d0, d1 = _day_ceil(start), end.date()
    if not use_rollup or not set(keys) <= ROLLUP_KEYS or d0 >= d1:
        sql = f"SELECT {sel}{base_metrics} FROM calls WHERE {base_where}{_group(keys)}{_order(keys)}"
        return Query(sql, params)
    params.update(d0=d0, d1=d1)
    roll_metrics = (
        "sum(calls) AS calls, sum(errors) AS errors, "
        + "".join(f"sum({t}) AS {t}, " for t in _TOKENS)
        + "sum(cost_usd) AS cost_usd, sum(priced_calls) AS priced_calls, "
        "sum(unpriced_calls) AS unpriced_calls"
    )
    plain = "".join(f"{k}, " for k in keys)
    roll_keys = "".join(f"{k}, " for k in keys)
    sql = (
        f"WITH parts AS ("
        f"SELECT {roll_keys}{roll_metrics} FROM rollup_daily "
        f"WHERE day >= $d0 AND day < $d1 AND day NOT IN {_DIRTY}{_group(keys)} "
        f"UNION ALL BY NAME "
        f"SELECT {sel}{base_metrics} FROM calls WHERE {base_where} "
        f"AND (day < $d0 OR day >= $d1 OR day IN {_DIRTY}){_group(keys)}) "
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
    table = con.sql(q.sql, params=q.params).to_arrow_table()
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


def run_spend(con: duckdb.DuckDBPyConnection, q: Query) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return spend_rows(fetch_dicts(con, q))
