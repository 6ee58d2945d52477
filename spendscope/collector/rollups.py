"""Daily rollups and retention: jobs that run in the writer thread on the scheduler's clock.

A rollup is declared once (:class:`Rollup`: its table, group keys, and per measure the aggregate
over ``calls`` and how partial values combine). The rollup job and the query side
(:func:`spendscope.collector.queries.build_union`) both read that declaration, so a measure answered
from the rollup is, by construction, the one computed from ``calls``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

import duckdb

from spendscope.collector.config import RetentionSettings
from spendscope.collector.schema import TOKEN_FIELDS

__all__ = [
    "DAILY",
    "INSIGHTS",
    "INSIGHT_TOKENS",
    "LATENCY_BUCKET_SQL",
    "ROLLUPS",
    "Measure",
    "Rollup",
    "apply_retention",
    "mark_dirty",
    "percentile_buckets_sql",
    "roll_dirty_days",
]

log = logging.getLogger("spendscope.collector.rollups")

Combine = Literal["sum", "min", "max"]


class Measure(NamedTuple):
    calls_sql: str  # the aggregate over calls rows
    combine: Combine  # how partial values combine: sum of sums (counts too), min of mins, max of maxes


@dataclass(frozen=True, slots=True)
class Rollup:
    """A daily rollup table: group keys (``calls`` columns, ``day`` first) and measure columns."""

    table: str
    keys: tuple[str, ...]
    measures: Mapping[str, Measure]

    def roll_sql(self) -> str:
        """Recompute the rows of the days listed in the temp table ``dirty_days``."""
        keys = ", ".join(self.keys)
        aggs = ", ".join(m.calls_sql for m in self.measures.values())
        return (
            f"INSERT INTO {self.table} ({keys}, {', '.join(self.measures)}) SELECT {keys}, {aggs} "
            f"FROM calls WHERE day IN (SELECT day FROM dirty_days) GROUP BY {keys}"
        )


def _sums(*cols: str) -> dict[str, Measure]:
    return {c: Measure(f"sum({c})", "sum") for c in cols}


# The token sums the insights rollup keeps (the dashboard shows no cache writes or audio).
INSIGHT_TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens")

# /api/v1/spend (migrations 003, 030). user_id is left out: its cardinality would make it as large as
# calls. A model's calls almost always share one price origin, so that key adds few rows.
DAILY = Rollup(
    "rollup_daily",
    ("day", "service", "provider", "api", "model", "request_model", "project", "feature", "price_origin"),
    {
        "calls": Measure("count(*)", "sum"),
        "errors": Measure("count(*) FILTER (WHERE is_error)", "sum"),
        **_sums(*TOKEN_FIELDS, "cost_usd"),
        "priced_calls": Measure("count(cost_usd)", "sum"),
        "unpriced_calls": Measure("count(*) FILTER (WHERE cost_usd IS NULL)", "sum"),
    },
)

# /api/v1/insights/* (migration 006): every filter and breakdown dimension but user_id and tags, plus
# status and error type (few values per day) so the reliability views read it too.
_PRICED = "FILTER (WHERE cost_usd IS NOT NULL)"
INSIGHTS = Rollup(
    "rollup_insights_daily",
    (
        "day",
        "service",
        "api",
        "model",
        "project",
        "feature",
        "service_tier",
        "batch",
        "status_code",
        "error_type",
    ),
    {
        "calls": Measure("count(*)", "sum"),
        "errors": Measure("count(*) FILTER (WHERE is_error)", "sum"),
        "rate_limited": Measure("count(*) FILTER (WHERE status_code = 429)", "sum"),
        **_sums(*INSIGHT_TOKENS, "cost_usd"),
        "priced_calls": Measure("count(cost_usd)", "sum"),
        "unpriced_calls": Measure("count(*) FILTER (WHERE cost_usd IS NULL)", "sum"),
        # Savings price only the tokens of priced calls.
        **{f"priced_{t}": Measure(f"sum({t}) {_PRICED}", "sum") for t in INSIGHT_TOKENS[:3]},
        "first_error_at": Measure("min(start_time) FILTER (WHERE is_error)", "min"),
        "last_error_at": Measure("max(start_time) FILTER (WHERE is_error)", "max"),
        "limit_requests": Measure("max(ratelimit_limit_requests)", "max"),
        "min_remaining_requests": Measure("min(ratelimit_remaining_requests)", "min"),
        "limit_tokens": Measure("max(ratelimit_limit_tokens)", "max"),
        "min_remaining_tokens": Measure("min(ratelimit_remaining_tokens)", "min"),
        "requests_headroom_pct": Measure(
            "min(ratelimit_remaining_requests / nullif(ratelimit_limit_requests, 0))", "min"
        ),
        "tokens_headroom_pct": Measure(
            "min(ratelimit_remaining_tokens / nullif(ratelimit_limit_tokens, 0))", "min"
        ),
    },
)

ROLLUPS: tuple[Rollup, ...] = (DAILY, INSIGHTS)

# Shared with the query side: the histogram bucket of a duration in seconds.
LATENCY_BUCKET_SQL = "CAST(floor(16 * log2(greatest({x}, 0.000001) * 1000)) AS SMALLINT)"
_LATENCY_SQL = (
    "INSERT INTO rollup_latency_daily "
    f"SELECT day, model, 'duration', {LATENCY_BUCKET_SQL.format(x='duration_s')} AS b, count(*) FROM calls "
    "WHERE day IN (SELECT day FROM dirty_days) AND NOT is_error AND duration_s IS NOT NULL GROUP BY ALL "
    f"UNION ALL SELECT day, model, 'ttfc', {LATENCY_BUCKET_SQL.format(x='ttfc_s')} AS b, count(*) FROM calls "
    "WHERE day IN (SELECT day FROM dirty_days) AND NOT is_error AND ttfc_s IS NOT NULL GROUP BY ALL"
)


def percentile_buckets_sql(source: str, keys: Sequence[str]) -> str:
    """p50/p95/p99 buckets per ``keys`` and metric of a histogram ``source`` (rows of ``keys``,
    ``metric``, ``bucket``, ``n``), by nearest rank: the smallest bucket whose cumulative count
    reaches p of the total."""
    plain = "".join(f"{k}, " for k in keys)
    part = f"PARTITION BY {plain}metric"
    return (
        f"WITH c AS (SELECT *, sum(n) OVER ({part} ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS cum, "
        f"sum(n) OVER ({part}) AS tot FROM {source}) "
        f"SELECT {plain}metric, min(bucket) FILTER (WHERE cum >= 0.5 * tot) AS b50, "
        "min(bucket) FILTER (WHERE cum >= 0.95 * tot) AS b95, "
        "min(bucket) FILTER (WHERE cum >= 0.99 * tot) AS b99 FROM c GROUP BY ALL"
    )


_LATENCY_PCT_SQL = "INSERT INTO rollup_latency_pct_daily " + percentile_buckets_sql(
    "(SELECT * FROM rollup_latency_daily WHERE day IN (SELECT day FROM dirty_days))", ("day", "model")
)
_DAY_TABLES = (*(r.table for r in ROLLUPS), "rollup_latency_daily", "rollup_latency_pct_daily")


def mark_dirty(con: duckdb.DuckDBPyConnection, days: Sequence[date], lake_table: str | None = None) -> None:
    """Flag ``days`` for the rollup job, in the caller's transaction. The local ``rollup_state`` has
    a key to upsert on; the lake's (``lake_table``, as ``con`` names it) has none and keeps when a
    day was marked, so there each day's flag is replaced."""
    if not days:
        return
    params = {"days": list(days)}
    if lake_table is None:
        con.execute(
            "INSERT INTO rollup_state (day, dirty) SELECT unnest($days::DATE[]), true "
            "ON CONFLICT (day) DO UPDATE SET dirty = true",
            params,
        )
        return
    con.execute(f"DELETE FROM {lake_table} WHERE list_contains($days::DATE[], day)", params)
    con.execute(f"INSERT INTO {lake_table} SELECT unnest($days::DATE[]), true, NULL, now()", params)


def roll_dirty_days(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    limit: int | None = None,
    skip: Collection[date] = (),
    fence: str | None = None,
) -> int:
    """Recompute every rollup of the dirty days (the newest ``limit`` of them, or all) in one
    transaction, leaving the days in ``skip`` dirty; return how many days. ``fence`` is run first
    in the transaction (the lake serialises its rollups with the shipments through it)."""
    pick = (
        "SELECT day FROM rollup_state WHERE dirty AND NOT list_contains($skip::DATE[], day) ORDER BY day DESC"
    )
    if limit is not None:
        pick += f" LIMIT {int(limit)}"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE dirty_days AS {pick}", {"skip": sorted(skip)})
        row = con.execute("SELECT count(*) FROM dirty_days").fetchone()
        n = int(row[0]) if row else 0
        if n:
            if fence is not None:
                con.execute(fence)
            for table in _DAY_TABLES:
                con.execute(f"DELETE FROM {table} WHERE day IN (SELECT day FROM dirty_days)")
            for rollup in ROLLUPS:
                con.execute(rollup.roll_sql())
            con.execute(_LATENCY_SQL)
            con.execute(_LATENCY_PCT_SQL)  # after the histograms it reads
            con.execute(
                "UPDATE rollup_state SET dirty = false, rolled_at = $now "
                "WHERE day IN (SELECT day FROM dirty_days)",
                {"now": now},
            )
        con.execute("DROP TABLE dirty_days")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if n:
        log.info("rolled up %d day(s)", n)
    return n


def _count(cur: duckdb.DuckDBPyConnection) -> int:
    # DuckDB answers DELETE/UPDATE with one row holding the number of rows affected.
    row = cur.fetchone()
    return int(row[0]) if row else 0


def apply_retention(
    con: duckdb.DuckDBPyConnection, now: datetime, settings: RetentionSettings
) -> dict[str, int]:
    """Delete what is older than the configured number of days; return rows deleted per table."""
    deleted: dict[str, int] = {}
    today = now.date()
    con.execute("BEGIN TRANSACTION")
    try:
        if settings.calls_days:
            cutoff = today - timedelta(days=settings.calls_days)
            deleted["calls"] = _count(con.execute("DELETE FROM calls WHERE day < $d", {"d": cutoff}))
        if settings.rejected_days:
            cutoff_ts = now - timedelta(days=settings.rejected_days)
            deleted["rejected_spans"] = _count(
                con.execute("DELETE FROM rejected_spans WHERE received_at < $t", {"t": cutoff_ts})
            )
        if settings.rollup_days:
            cutoff = today - timedelta(days=settings.rollup_days)
            deleted["rollup_daily"] = _count(
                con.execute("DELETE FROM rollup_daily WHERE day < $d", {"d": cutoff})
            )
            for table in (t for t in _DAY_TABLES if t != "rollup_daily"):
                con.execute(f"DELETE FROM {table} WHERE day < $d", {"d": cutoff})
            con.execute("DELETE FROM rollup_state WHERE day < $d", {"d": cutoff})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if any(deleted.values()):
        log.info("retention deleted %s", deleted)
    return deleted
