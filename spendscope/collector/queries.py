"""SQL for the query API: pure builders (``build_*`` → SQL and parameters) and thin runners.

Long ranges read a daily rollup for whole days that are rolled up and clean, and the ``calls`` table
for partial edge days and days with calls newer than their rollup, so answers are exact and still
fast: :func:`build_union` is that routing, for any rollup declared in :mod:`rollups`. Group keys are
whitelisted: user input never reaches the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from spendscope.collector.rollups import DAILY, LATENCY_BUCKET_SQL, Combine, Rollup, percentile_buckets_sql
from spendscope.collector.schema import TOKEN_FIELDS
from spendscope.pricing import money_str

__all__ = [
    "DIRTY_DAYS_SQL",
    "GROUP_KEYS",
    "HIST_KEYS",
    "LATENCY_GROUP_KEYS",
    "ROLLUP_KEYS",
    "Agg",
    "Col",
    "Query",
    "bucket_seconds",
    "build_errors",
    "build_latency",
    "build_latency_hist",
    "build_ratelimits",
    "build_spend",
    "build_union",
    "fetch_dicts",
    "fetch_rows",
    "filter_conds",
    "key_col",
    "latency_from_hist",
    "measure",
    "run_latency",
    "run_spend",
    "snapshot",
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
ROLLUP_KEYS = frozenset(k for k, col in GROUP_KEYS.items() if col in DAILY.keys)
LATENCY_GROUP_KEYS = frozenset(
    {"day", "model", "request_model", "project", "feature", "service", "api", "user"}
)

DIRTY_DAYS_SQL = "SELECT day FROM rollup_state WHERE dirty"


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Col:
    """A group key named ``name``: its SQL over ``calls`` rows and over rollup rows (None: only calls)."""

    name: str
    calls_sql: str
    rollup_sql: str | None


@dataclass(frozen=True, slots=True)
class Agg:
    """A measure named ``name``: its aggregate over ``calls`` rows and over rollup rows (None: only
    calls), and how the partial results of the parts combine."""

    name: str
    calls_sql: str
    rollup_sql: str | None
    combine: Combine


def key_col(name: str, column: str, rollup: Rollup) -> Col:
    """The key ``name`` on a ``calls`` column, answered by ``rollup`` when the rollup keeps it."""
    return Col(name, column, column if column in rollup.keys else None)


def measure(rollup: Rollup, column: str, name: str | None = None) -> Agg:
    """A measure the rollup declares (see :class:`~spendscope.collector.rollups.Rollup`)."""
    m = rollup.measures[column]
    return Agg(name or column, m.calls_sql, f"{m.combine}({column})", m.combine)


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


def filter_conds(filters: Mapping[str, Sequence[Any]], prefix: str, params: dict[str, Any]) -> list[str]:
    """``list_contains`` conditions for exact-match filters (column → values); adds their params."""
    conds = []
    for i, (column, values) in enumerate(filters.items()):
        params[f"{prefix}f{i}"] = list(values)
        conds.append(f"list_contains(${prefix}f{i}, {column})")
    return conds


def _part(select: Sequence[str], source: str, conds: Sequence[str]) -> str:
    return f"SELECT {', '.join(select)} FROM {source} WHERE {' AND '.join(conds)} GROUP BY ALL"


def build_union(
    rollup: Rollup,
    start: datetime,
    end: datetime,
    keys: Sequence[Col],
    aggs: Sequence[Agg],
    dirty_days: Collection[date] | None,
    filters: Mapping[str, Sequence[Any]] | None = None,
    *,
    prefix: str = "",
) -> Query:
    """``keys`` and ``aggs`` over the calls with start in [start, end) that match ``filters``.

    Whole clean days come from ``rollup``; partial edge days and ``dirty_days`` (see
    :data:`DIRTY_DAYS_SQL`) from ``calls``, one start-time range per run of days so each part skips
    row groups by its zone maps; the parts' partial aggregates are then combined. ``dirty_days=None``,
    or a key, measure or filter the rollup lacks, reads ``calls`` only. ``prefix`` keeps parameter
    names apart when several unions share a statement.
    """
    filters = filters or {}
    params: dict[str, Any] = {}
    conds = filter_conds(filters, prefix, params)
    d0, d1 = _day_ceil(start), end.date()
    parts: list[str] = []
    ranges = [(start, end)]
    if (
        dirty_days is not None
        and d0 < d1
        and all(k.rollup_sql is not None for k in keys)
        and all(a.rollup_sql is not None for a in aggs)
        and set(filters) <= set(rollup.keys)
    ):
        stale = sorted(d for d in dirty_days if d0 <= d < d1)
        params.update({f"{prefix}d0": d0, f"{prefix}d1": d1, f"{prefix}stale": stale})
        select = [f"{k.rollup_sql} AS {k.name}" for k in keys] + [f"{a.rollup_sql} AS {a.name}" for a in aggs]
        days = [
            f"day >= ${prefix}d0",
            f"day < ${prefix}d1",
            f"NOT list_contains(${prefix}stale::DATE[], day)",
        ]
        parts.append(_part(select, rollup.table, days + conds))
        ranges = _base_ranges(start, end, d0, d1, stale)
    select = [f"{k.calls_sql} AS {k.name}" for k in keys] + [f"{a.calls_sql} AS {a.name}" for a in aggs]
    for i, (lo, hi) in enumerate(ranges):
        params[f"{prefix}lo{i}"], params[f"{prefix}hi{i}"] = lo, hi
        times = [f"start_time >= ${prefix}lo{i}", f"start_time < ${prefix}hi{i}"]
        parts.append(_part(select, "calls", times + conds))
    names = [k.name for k in keys]
    combined = ", ".join(f"{a.combine}({a.name}) AS {a.name}" for a in aggs)
    sql = (
        f"SELECT {''.join(f'{n}, ' for n in names)}{combined} "
        f"FROM ({' UNION ALL BY NAME '.join(parts)}){_group(names)}"
    )
    return Query(sql, params)


def _spend_cols(keys: Sequence[str]) -> list[Col]:
    return [key_col(k, GROUP_KEYS[k], DAILY) for k in keys]


def build_spend(
    start: datetime,
    end: datetime,
    keys: Sequence[str],
    dirty_days: Collection[date] | None = None,
    filters: Mapping[str, Sequence[Any]] | None = None,
) -> Query:
    """Spend, tokens, calls and errors grouped by ``keys`` for calls with start in [start, end).

    With ``dirty_days`` whole clean days come from ``rollup_daily`` (:func:`build_union`); ``None``
    reads ``calls`` only. ``filters`` maps calls columns to the values kept.
    """
    u = build_union(
        DAILY, start, end, _spend_cols(keys), [measure(DAILY, m) for m in DAILY.measures], dirty_days, filters
    )
    # Counts as BIGINT; token sums as HUGEINT, which no sum of stored counts can overflow (they
    # arrive as decimals of scale 0 and leave as JSON integers, see fetch_dicts).
    counts = ("calls", "errors", "priced_calls", "unpriced_calls")

    def final(m: str) -> str:
        if m in counts:
            return f"coalesce({m}, 0)::BIGINT AS {m}"
        return f"{m}::HUGEINT AS {m}" if m in TOKEN_FIELDS else m

    metrics = ", ".join(final(m) for m in DAILY.measures)
    sql = f"SELECT {''.join(f'{k}, ' for k in keys)}{metrics} FROM ({u.sql}){_order(keys)}"
    return Query(sql, u.params)


def build_latency(start: datetime, end: datetime, keys: Sequence[str]) -> Query:
    """Latency and time-to-first-chunk percentiles of successful calls (exact ``quantile_cont``)."""
    sql = (
        f"SELECT {_select_keys(keys)}count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, "
        "quantile_cont(duration_s, [0.5, 0.95, 0.99]) FILTER (WHERE NOT is_error) AS latency, "
        "quantile_cont(ttfc_s, [0.5, 0.95]) FILTER (WHERE NOT is_error) AS ttfc "
        f"FROM calls WHERE start_time >= $start AND start_time < $end{_group(keys)}{_order(keys)}"
    )
    return Query(sql, {"start": start, "end": end})


HIST_KEYS = frozenset({"day", "model"})


def build_latency_hist(
    start: datetime,
    end: datetime,
    keys: Sequence[str],
    dirty_days: Collection[date],
    models: Sequence[str] | None = None,
) -> Query:
    """Approximate percentiles (±2.2%) from the daily latency histograms plus live buckets.

    Clean whole days come from ``rollup_latency_daily``; edge and dirty days are bucketed from
    ``calls`` on the fly, by start-time range. By day and model each group is one day's histogram,
    so clean days read their stored percentiles (``rollup_latency_pct_daily``). ``models`` keeps only
    those models. Answers ``keys``, ``metric`` and the bucket of each percentile (see
    :func:`bucket_seconds`).
    """
    d0, d1 = _day_ceil(start), end.date()
    stale = sorted(d for d in dirty_days if d0 <= d < d1)
    params: dict[str, Any] = {"d0": d0, "d1": d1, "stale": stale}
    conds = filter_conds({"model": models} if models else {}, "h", params)
    clean = " AND ".join(["day >= $d0", "day < $d1", "NOT list_contains($stale::DATE[], day)", *conds])
    sel = _select_keys(keys)
    plain = "".join(f"{k}, " for k in keys)
    live = []
    ranges = _base_ranges(start, end, d0, d1, stale) if d0 < d1 else [(start, end)]
    for i, (lo, hi) in enumerate(ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
        for metric, col in (("duration", "duration_s"), ("ttfc", "ttfc_s")):
            where = [f"start_time >= $lo{i}", f"start_time < $hi{i}", "NOT is_error", f"{col} IS NOT NULL"]
            live.append(
                f"SELECT {sel}'{metric}' AS metric, {LATENCY_BUCKET_SQL.format(x=col)} AS bucket, "
                f"count(*) AS n FROM calls WHERE {' AND '.join(where + conds)} GROUP BY ALL"
            )

    def pct(parts: Sequence[str]) -> str:
        union = " UNION ALL BY NAME ".join(parts)
        return percentile_buckets_sql(
            f"(SELECT {plain}metric, bucket, sum(n) AS n FROM ({union}) GROUP BY ALL)", keys
        )

    if set(keys) == {"day", "model"}:
        stored = f"SELECT {plain}metric, b50, b95, b99 FROM rollup_latency_pct_daily WHERE {clean}"
        return Query(f"{stored} UNION ALL BY NAME ({pct(live)})" if live else stored, params)
    hist = f"SELECT {plain}metric, bucket, n FROM rollup_latency_daily WHERE {clean}"
    return Query(pct([hist, *live]), params)


def bucket_seconds(bucket: int | None) -> float | None:
    """The geometric middle of a latency bucket, in seconds."""
    return None if bucket is None else float(2 ** ((bucket + 0.5) / 16) / 1000)


def latency_from_hist(
    con: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    keys: Sequence[str],
    dirty_days: Collection[date],
    models: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per ``keys`` (within :data:`HIST_KEYS`): exact ``calls`` and ``errors`` from the spend rollup,
    and p50/p95/p99 of duration and time to first chunk from the latency histograms."""
    counts = fetch_dicts(
        con, build_spend(start, end, keys, dirty_days, {"model": models} if models else None)
    )
    hist = fetch_dicts(con, build_latency_hist(start, end, keys, dirty_days, models))
    pcts = ("p50_s", "p95_s", "p99_s", "ttfc_p50_s", "ttfc_p95_s", "ttfc_p99_s")
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in counts:
        by_key[tuple(r[x] for x in keys)] = {
            **{x: r[x] for x in keys},
            "calls": r["calls"],
            "errors": r["errors"],
            **dict.fromkeys(pcts),
        }
    for h in hist:
        row = by_key.get(tuple(h[x] for x in keys))
        if row is not None:
            prefix = "" if h["metric"] == "duration" else "ttfc_"
            for p in ("50", "95", "99"):
                row[f"{prefix}p{p}_s"] = bucket_seconds(h[f"b{p}"])
    return list(by_key.values())


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
    with snapshot(con) as dirty:
        rows = latency_from_hist(con, start, end, keys, dirty)
    for r in rows:
        del r["ttfc_p99_s"]  # not in this endpoint's contract (nor in its exact answer)
    return rows


def build_errors(start: datetime, end: datetime, keys: Sequence[str]) -> Query:
    sql = (
        f"SELECT {_select_keys(keys)}count(*) AS errors, "
        "count(*) FILTER (WHERE status_code = 429) AS rate_limited "
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


@contextmanager
def snapshot(con: duckdb.DuckDBPyConnection) -> Iterator[list[date]]:
    """A read transaction yielding the dirty days: the routing and the reads it routes see one commit
    (a rollup committed in between cannot make a day count twice or not at all)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield sorted({r[0] for r in con.execute(DIRTY_DAYS_SQL).fetchall()})  # each day once
    finally:
        con.execute("ROLLBACK")  # nothing was written


def to_json_value(v: Any) -> Any:
    """A DuckDB value as JSON: money and other decimals as plain strings, times as ISO."""
    if isinstance(v, Decimal):
        # Scale 0 is a HUGEINT sum of counts (a whole number); any other decimal is money.
        return int(v) if v.as_tuple().exponent == 0 else money_str(v)
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list):
        return [to_json_value(x) for x in v]
    return v


def _json_column(column: Any) -> list[Any]:
    """An Arrow column's values as :func:`to_json_value` gives them. Numbers, strings and booleans
    are already JSON values, so only the other columns are converted value by value (answers have
    thousands of cells, mostly plain)."""
    values: list[Any] = column.to_pylist()
    kind = column.type
    if pa.types.is_decimal(kind) and kind.scale == 0:  # HUGEINT sums: whole numbers, not money
        return [None if v is None else int(v) for v in values]
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    ):
        return values
    return [to_json_value(v) for v in values]


def _used_params(q: Query) -> dict[str, Any]:
    # DuckDB refuses named parameters the statement does not use; builders may leave some unused.
    return {k: v for k, v in q.params.items() if re.search(rf"\${k}\b", q.sql)}


def fetch_rows(con: duckdb.DuckDBPyConnection, q: Query) -> list[tuple[Any, ...]]:
    """The rows as Python values (no TIMESTAMPTZ columns: DuckDB converts those through pytz)."""
    return con.execute(q.sql, _used_params(q)).fetchall()


def fetch_dicts(con: duckdb.DuckDBPyConnection, q: Query) -> list[dict[str, Any]]:
    # Through Arrow: DuckDB's own Python conversion of TIMESTAMPTZ needs pytz, Arrow uses zoneinfo.
    table = con.sql(q.sql, params=_used_params(q)).to_arrow_table()
    names = table.column_names
    columns = [_json_column(table.column(i)) for i in range(len(names))]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def spend_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Shape spend rows for the API and compute totals (cost stays null when nothing is priced)."""
    totals: dict[str, Any] = {"calls": 0, "errors": 0, **dict.fromkeys(TOKEN_FIELDS, 0)}
    cost: Decimal | None = None
    unpriced = 0
    for r in rows:
        totals["calls"] += r["calls"] or 0
        totals["errors"] += r["errors"] or 0
        for t in TOKEN_FIELDS:
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
    if not use_rollup:
        return spend_rows(fetch_dicts(con, build_spend(start, end, keys)))
    with snapshot(con) as dirty:
        return spend_rows(fetch_dicts(con, build_spend(start, end, keys, dirty)))
