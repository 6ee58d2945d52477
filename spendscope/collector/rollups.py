"""Daily rollups and retention: jobs that run in the writer thread on the scheduler's clock."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import duckdb

from spendscope.collector.config import RetentionSettings

__all__ = ["LATENCY_BUCKET_SQL", "apply_retention", "roll_dirty_days"]

log = logging.getLogger("spendscope.collector.rollups")

_ROLLUP_KEYS = "day, service, provider, api, model, request_model, project, feature"
_ROLLUP_SQL = (
    f"INSERT INTO rollup_daily SELECT {_ROLLUP_KEYS}, count(*), count(*) FILTER (WHERE is_error), "
    "sum(input_tokens), sum(cached_input_tokens), sum(cache_write_input_tokens), sum(output_tokens), "
    "sum(reasoning_tokens), sum(input_audio_tokens), sum(output_audio_tokens), sum(cost_usd), "
    "count(cost_usd), count(*) FILTER (WHERE cost_usd IS NULL) "
    "FROM calls WHERE day IN (SELECT day FROM dirty_days) "
    f"GROUP BY {_ROLLUP_KEYS}"
)


# Shared with the query side: the histogram bucket of a duration in seconds.
LATENCY_BUCKET_SQL = "CAST(floor(16 * log2(greatest({x}, 0.000001) * 1000)) AS SMALLINT)"
_LATENCY_SQL = (
    "INSERT INTO rollup_latency_daily "
    f"SELECT day, model, 'duration', {LATENCY_BUCKET_SQL.format(x='duration_s')} AS b, count(*) FROM calls "
    "WHERE day IN (SELECT day FROM dirty_days) AND NOT is_error AND duration_s IS NOT NULL GROUP BY ALL "
    f"UNION ALL SELECT day, model, 'ttfc', {LATENCY_BUCKET_SQL.format(x='ttfc_s')} AS b, count(*) FROM calls "
    "WHERE day IN (SELECT day FROM dirty_days) AND NOT is_error AND ttfc_s IS NOT NULL GROUP BY ALL"
)


def roll_dirty_days(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Recompute the rollup of every dirty day in one transaction; return how many days."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE dirty_days AS SELECT day FROM rollup_state WHERE dirty")
        row = con.execute("SELECT count(*) FROM dirty_days").fetchone()
        n = int(row[0]) if row else 0
        if n:
            con.execute("DELETE FROM rollup_daily WHERE day IN (SELECT day FROM dirty_days)")
            con.execute(_ROLLUP_SQL)
            con.execute("DELETE FROM rollup_latency_daily WHERE day IN (SELECT day FROM dirty_days)")
            con.execute(_LATENCY_SQL)
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
            con.execute("DELETE FROM rollup_latency_daily WHERE day < $d", {"d": cutoff})
            con.execute("DELETE FROM rollup_state WHERE day < $d", {"d": cutoff})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if any(deleted.values()):
        log.info("retention deleted %s", deleted)
    return deleted
