"""Rollup-backed answers equal calls-scan answers: spend, every insights endpoint, latency histograms.

A store is seeded in SQL with varied calls (NULL dimensions, errors with and without a status,
unpriced calls, tiers, batch, tags, users, rate-limit headers) over ten days, rolled up, then given
more calls in a rolled day (dirty) and today (dirty): each routed query must equal the same query
read from ``calls`` only (``dirty=None``), row for row, with exact money and counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from spendscope.collector import insights as ins
from spendscope.collector.queries import Query, build_spend, fetch_dicts, run_latency, snapshot, to_json_value
from spendscope.collector.rollups import DAILY, INSIGHTS, roll_dirty_days
from spendscope.collector.store import Store

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
T0 = datetime.combine(NOW.date() - timedelta(days=9), time(), tzinfo=UTC)

# Calls spread over [T0, NOW): the columns vary with i so that every NULL and edge case shows up.
_GENERATE = """
INSERT INTO calls (trace_id, span_id, start_time, end_time, day, service, provider, operation, api,
    request_model, response_model, model, project, organization, user_id, feature, tags, stream,
    status_code, is_error, error_type, duration_s, ttfc_s, input_tokens, cached_input_tokens,
    output_tokens, reasoning_tokens, service_tier, batch, ratelimit_limit_requests,
    ratelimit_remaining_requests, ratelimit_limit_tokens, ratelimit_remaining_tokens, cost_usd,
    ingested_at)
SELECT printf('%032x', i + $salt), printf('%016x', i + $salt), ts, ts + to_microseconds(lat_us), ts::DATE,
    CASE WHEN i % 11 = 0 THEN NULL ELSE 'svc-' || (i % 3) END,
    'openai', 'chat', CASE WHEN i % 5 = 0 THEN 'responses' ELSE 'chat_completions' END,
    'm-' || (i % 4), 'm-' || (i % 4) || '-2025', 'm-' || (i % 4) || '-2025',
    CASE WHEN i % 13 = 0 THEN NULL ELSE 'proj_' || (i % 5) END, 'org',
    CASE WHEN i % 7 = 0 THEN NULL ELSE 'u-' || (i % 17) END,
    CASE WHEN i % 6 = 0 THEN NULL ELSE 'feat-' || (i % 4) END,
    CASE WHEN i % 9 = 0 THEN MAP {'team': 'team-' || (i % 2), 'env': 'prod'} END,
    i % 3 = 0,
    CASE WHEN i % 23 = 0 THEN NULL WHEN i % 19 = 0 THEN 429 WHEN i % 29 = 0 THEN 500 ELSE 200 END,
    i % 23 = 0 OR i % 19 = 0 OR i % 29 = 0,
    CASE WHEN i % 23 = 0 THEN 'ConnectError' WHEN i % 19 = 0 THEN 'rate_limit_exceeded' END,
    lat_us / 1e6, CASE WHEN i % 3 = 0 THEN lat_us / 5e6 END,
    CASE WHEN i % 19 <> 0 AND i % 23 <> 0 THEN 100 + i % 900 END,
    CASE WHEN i % 19 <> 0 AND i % 23 <> 0 THEN (i % 4) * 32 END,
    CASE WHEN i % 19 <> 0 AND i % 23 <> 0 THEN 10 + i % 300 END,
    CASE WHEN i % 8 = 0 THEN i % 50 END,
    CASE WHEN i % 10 = 0 THEN 'flex' WHEN i % 10 = 1 THEN NULL ELSE 'default' END,
    i % 15 = 0,
    CASE WHEN i % 4 <> 0 THEN 500 + (i % 3) * 100 END,
    CASE WHEN i % 4 <> 0 THEN (i * 7) % 500 END,
    CASE WHEN i % 4 <> 0 THEN 100000 END,
    CASE WHEN i % 4 <> 0 THEN (i * 31) % 100000 END,
    CASE WHEN i % 19 = 0 OR i % 23 = 0 THEN 0 WHEN i % 4 = 3 THEN NULL
        ELSE ((100 + i % 900) * 0.0000025 + (10 + i % 300) * 0.00001) END::DECIMAL(38, 12),
    $t0
FROM (SELECT range AS i, $t0::TIMESTAMPTZ + to_microseconds(range * $step) AS ts,
             50000 + (range * 7919) % 3000000 AS lat_us FROM range($n))
"""


def _seed(con: duckdb.DuckDBPyConnection, t0: datetime, t1: datetime, n: int, salt: int) -> None:
    step = int((t1 - t0).total_seconds() * 1e6) // n
    con.execute(_GENERATE, {"t0": t0, "step": step, "n": n, "salt": salt})
    # What ingest does: flag the days the new calls fall on.
    con.execute(
        "INSERT INTO rollup_state (day, dirty) SELECT DISTINCT day, true FROM calls "
        "WHERE start_time >= $t0 AND start_time < $t1 ON CONFLICT (day) DO UPDATE SET dirty = true",
        {"t0": t0, "t1": t1},
    )


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    store = Store(str(Path(tmp_path_factory.mktemp("routing")) / "r.duckdb"))
    store.migrate()
    c = store.connection
    _seed(c, T0, NOW, 6000, 0)
    assert roll_dirty_days(c, NOW) == 10
    # Late calls in a rolled-up day (it turns dirty) and more calls today.
    _seed(c, T0 + timedelta(days=4, hours=2), T0 + timedelta(days=4, hours=20), 300, 10**6)
    _seed(c, NOW - timedelta(hours=3), NOW, 200, 2 * 10**6)
    yield c
    store.close()


def _rolled_store(path: Path, n: int) -> Store:
    """A migrated database file with ``n`` seeded calls over [T0, NOW), every day rolled up."""
    store = Store(str(path))
    store.migrate()
    _seed(store.connection, T0, NOW, n, 0)
    roll_dirty_days(store.connection, NOW)
    return store


def _dirty(con: duckdb.DuckDBPyConnection) -> list[date]:
    with snapshot(con) as dirty:
        return dirty


def test_the_seed_has_clean_and_dirty_days(con: duckdb.DuckDBPyConnection) -> None:
    assert sorted(_dirty(con)) == [(T0 + timedelta(days=4)).date(), NOW.date()]
    assert con.execute("SELECT count(*) FROM rollup_insights_daily").fetchone() != (0,)


# Ranges: whole days, partial edge days, one that starts in a dirty day, one shorter than a day.
RANGES = [
    (T0, NOW + timedelta(hours=1)),
    (T0 + timedelta(hours=5), NOW),
    (T0 + timedelta(days=4, hours=3), T0 + timedelta(days=7, hours=1)),
    (T0 + timedelta(days=2, hours=1), T0 + timedelta(days=2, hours=9)),
]
FILTERS: list[dict[str, tuple[str, ...]]] = [
    {},
    {"model": ("m-1-2025", "m-2-2025")},
    {"project": ("proj_1",), "service": ("svc-0", "svc-2")},
    {"feature": ("feat-1",)},
    {"user": ("u-3", "u-5")},  # the rollup has no user: calls only
]


def _both(con: duckdb.DuckDBPyConnection, build: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    routed = build(_dirty(con))
    return fetch_dicts(con, routed), fetch_dicts(con, build(None))


def _scopes() -> Iterator[ins.Scope]:
    for start, end in RANGES:
        for f in FILTERS:
            yield ins.Scope(start, end, f)


@pytest.mark.parametrize("key", sorted(ins.BREAKDOWN_KEYS))
def test_breakdown(con: duckdb.DuckDBPyConnection, key: str) -> None:
    for scope in _scopes():
        fast, slow = _both(con, lambda d, s=scope: ins.build_breakdown(s, key, d))
        assert fast == slow and slow, (key, scope)


@pytest.mark.parametrize("bucket", ["day", "hour"])
@pytest.mark.parametrize("split", ["model", "project", "user", "day", "service_tier", "api"])
def test_timeseries(con: duckdb.DuckDBPyConnection, bucket: str, split: str) -> None:
    for scope in _scopes():
        fast, slow = _both(con, lambda d, s=scope: ins.build_timeseries(s, bucket, split, d))
        assert fast == slow and slow, (bucket, split, scope)


@pytest.mark.parametrize("bucket", ["day", "hour"])
def test_headroom_and_error_rate(con: duckdb.DuckDBPyConnection, bucket: str) -> None:
    for scope in _scopes():
        fast, slow = _both(con, lambda d, s=scope: ins.build_headroom(s, bucket, d))
        assert fast == slow and slow, scope
        fast, slow = _both(con, lambda d, s=scope: ins.build_error_rate(s, bucket, d))
        assert fast == slow and slow, scope


def test_errors_summary_dimensions_savings(con: duckdb.DuckDBPyConnection) -> None:
    for scope in _scopes():
        for build in (
            lambda d, s=scope: ins.build_errors(s, d),
            lambda d, s=scope: ins.build_summary(s, NOW, d),
            lambda d, s=scope: ins.build_summary(s, NOW - timedelta(hours=1), d),
            lambda d, s=scope: ins.build_dimensions(s, d),
            lambda d, s=scope: ins.build_savings_groups(s, d),
        ):
            fast, slow = _both(con, build)
            assert fast == slow and slow, scope
    errors = fetch_dicts(con, ins.build_errors(ins.Scope(T0, NOW, {}), _dirty(con)))
    assert {(r["error_type"], r["status_code"]) for r in errors} == {
        ("rate_limit_exceeded", 429),
        ("unknown", 500),
        ("ConnectError", None),
    }


def test_the_old_calls_queries_agree(con: duckdb.DuckDBPyConnection) -> None:
    """The calls-only reference equals the queries the endpoints ran before the rollup existed."""
    start, end = RANGES[1]
    where = "start_time >= $s AND start_time < $e"
    p = {"s": start, "e": end}
    old_breakdown = fetch_dicts_sql(
        con,
        "SELECT model AS key, count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, "
        "coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens, "
        "coalesce(sum(cached_input_tokens), 0)::BIGINT AS cached_input_tokens, "
        "coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens, "
        "coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens, "
        # Since issue 18 a group whose priced calls cost 0 beside unpriced ones has no definite cost.
        "CASE WHEN count(*) FILTER (WHERE cost_usd IS NULL) > 0 AND sum(cost_usd) = 0 THEN NULL "
        "ELSE sum(cost_usd) END AS cost_usd, "
        "count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls "
        f"FROM calls WHERE {where} GROUP BY 1 ORDER BY cost_usd DESC NULLS LAST, calls DESC, key NULLS LAST",
        p,
    )
    scope = ins.Scope(start, end, {})
    assert fetch_dicts(con, ins.build_breakdown(scope, "model", _dirty(con))) == old_breakdown
    old_series = fetch_dicts_sql(
        con,
        "SELECT date_trunc('hour', start_time) AS bucket, count(*) AS calls, "
        "count(*) FILTER (WHERE is_error) AS errors, "
        "count(*) FILTER (WHERE status_code = 429) AS rate_limited, "
        "count(*) FILTER (WHERE is_error) / count(*) AS error_rate "
        f"FROM calls WHERE {where} GROUP BY ALL ORDER BY bucket",
        p,
    )
    assert fetch_dicts(con, ins.build_error_rate(scope, "hour", _dirty(con))) == old_series
    old_days = fetch_dicts_sql(
        con,
        "SELECT date_trunc('day', start_time) AS bucket, model, "
        "min(ratelimit_remaining_requests / nullif(ratelimit_limit_requests, 0)) AS pct "
        f"FROM calls WHERE {where} GROUP BY ALL ORDER BY bucket, model",
        p,
    )
    head = fetch_dicts(con, ins.build_headroom(scope, "day", _dirty(con)))
    assert [(r["bucket"], r["model"], r["requests_headroom_pct"]) for r in head] == [
        (r["bucket"], r["model"], r["pct"]) for r in old_days
    ]


def fetch_dicts_sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return fetch_dicts(con, Query(sql, params))


def test_routed_queries_read_the_rollup(con: duckdb.DuckDBPyConnection) -> None:
    dirty = _dirty(con)
    month = ins.Scope(T0, NOW, {"model": ("m-1-2025",)})
    for q in (
        ins.build_breakdown(month, "service_tier", dirty),
        ins.build_timeseries(month, "day", "model", dirty),
        ins.build_headroom(month, "day", dirty),
        ins.build_errors(month, dirty),
        ins.build_summary(month, NOW, dirty),
        ins.build_savings_groups(month, dirty),
    ):
        assert "rollup_insights_daily" in q.sql
    by_user = ins.Scope(T0, NOW, {"user": ("u-1",)})
    assert "rollup_insights_daily" not in ins.build_breakdown(by_user, "model", dirty).sql
    assert "rollup_insights_daily" not in ins.build_breakdown(month, "user", dirty).sql
    assert "rollup_insights_daily" not in ins.build_timeseries(month, "hour", "model", dirty).sql
    # The dirty day and the partial edge days are read from calls, one range each.
    q = ins.build_breakdown(ins.Scope(T0 + timedelta(hours=1), NOW, {}), "model", dirty)
    ranges = sorted((v, q.params[k.replace("lo", "hi")]) for k, v in q.params.items() if k.startswith("lo"))
    day4 = T0 + timedelta(days=4)
    assert ranges == [
        (T0 + timedelta(hours=1), T0 + timedelta(days=1)),
        (day4, day4 + timedelta(days=1)),
        (datetime.combine(NOW.date(), time(), tzinfo=UTC), NOW),
    ]


def test_spend_with_filters(con: duckdb.DuckDBPyConnection) -> None:
    dirty = _dirty(con)
    for start, end in RANGES:
        for keys in (["day", "model"], ["project"], [], ["user"]):
            for filters in ({}, {"model": ["m-0-2025"]}, {"project": ["proj_2", "proj_3"]}):
                fast = fetch_dicts(con, build_spend(start, end, keys, dirty, filters))
                slow = fetch_dicts(con, build_spend(start, end, keys, None, filters))
                assert fast == slow, (keys, filters)


def test_latency_histograms_are_within_their_precision(con: duckdb.DuckDBPyConnection) -> None:
    dirty = _dirty(con)
    for start, end in RANGES[:3]:
        for bucket in (None, "day"):
            for f in ({}, {"model": ("m-1-2025", "m-3-2025")}):
                scope = ins.Scope(start, end, f)
                assert ins.latency_uses_histograms(scope, "model", bucket)
                approx = ins.latency_from_histograms(con, scope, bucket, dirty)
                exact = fetch_dicts(con, ins.build_latency(scope, "model", bucket))
                assert [(r.get("bucket"), r["key"], r["calls"]) for r in approx] == [
                    (r.get("bucket"), r["key"], r["calls"]) for r in exact
                ]
                for a, e in zip(approx, exact, strict=True):
                    for k in ("p50_s", "p95_s", "p99_s", "ttfc_p50_s", "ttfc_p95_s", "ttfc_p99_s"):
                        # Nearest rank in 1/16-octave buckets against interpolation between samples.
                        assert abs(a[k] - e[k]) <= 0.03 * e[k] + 0.01, (k, a, e)
    assert not ins.latency_uses_histograms(ins.Scope(T0, NOW, {"user": ("u-1",)}), "model", None)
    assert not ins.latency_uses_histograms(ins.Scope(T0, NOW, {}), "model", "hour")
    assert not ins.latency_uses_histograms(ins.Scope(T0, NOW, {}), "project", None)
    rows = run_latency(con, T0, NOW, ["model"])
    assert rows and "ttfc_p99_s" not in rows[0]


def test_hour_buckets_equal_date_trunc(con: duckdb.DuckDBPyConnection) -> None:
    same = con.execute(
        f"SELECT bool_and({ins._HOUR_SQL} = date_trunc('hour', start_time)), count(*) FROM calls"
    ).fetchone()
    assert same is not None and same[0] is True and same[1] > 6000


def test_rollup_tables_match_their_declarations(con: duckdb.DuckDBPyConnection) -> None:
    for rollup in (DAILY, INSIGHTS):
        cols = [r[0] for r in con.execute(f"DESCRIBE {rollup.table}").fetchall()]
        assert cols == [*rollup.keys, *rollup.measures]


def test_the_migration_backfills_the_insights_rollup(tmp_path: Path) -> None:
    """A database rolled up before migration 006: its days turn dirty and the next roll fills them."""
    store = _rolled_store(tmp_path / "m.duckdb", 500)
    c = store.connection
    c.execute("DROP TABLE rollup_insights_daily")
    c.execute("DELETE FROM schema_migrations WHERE version = 6")
    assert _dirty(c) == []
    assert store.migrate() == ["006_insights_rollup.sql"]
    assert len(_dirty(c)) == 10
    scope = ins.Scope(T0, NOW, {})
    assert fetch_dicts(c, ins.build_breakdown(scope, "model", _dirty(c))) == fetch_dicts(
        c, ins.build_breakdown(scope, "model", None)
    )
    assert roll_dirty_days(c, NOW) == 10
    assert fetch_dicts(c, ins.build_breakdown(scope, "model", [])) == fetch_dicts(
        c, ins.build_breakdown(scope, "model", None)
    )
    store.close()


def test_fetch_dicts_converts_like_to_json_value(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT day, start_time, start_time::TIMESTAMP AS naive, cost_usd, input_tokens::HUGEINT AS big, "
        "model, is_error, duration_s, [duration_s, ttfc_s] AS pair, [start_time] AS times, tags "
        "FROM calls ORDER BY start_time LIMIT 300"
    )
    expected = [
        {k: to_json_value(v) for k, v in row.items()} for row in con.sql(sql).to_arrow_table().to_pylist()
    ]
    assert fetch_dicts(con, Query(sql, {})) == expected
    assert any(r["cost_usd"] is None for r in expected) and any(r["tags"] for r in expected)
    assert fetch_dicts(con, Query("SELECT 1 AS x WHERE false", {})) == []


def test_migration_007_derives_stored_percentiles_from_the_histograms(tmp_path: Path) -> None:
    store = _rolled_store(tmp_path / "p.duckdb", 800)
    c = store.connection
    rolled = sorted(c.execute("SELECT * FROM rollup_latency_pct_daily").fetchall(), key=str)
    assert len(rolled) == 10 * 4 * 2  # days × models × metrics
    c.execute("DROP TABLE rollup_latency_pct_daily")
    c.execute("DELETE FROM schema_migrations WHERE version = 7")
    assert store.migrate() == ["007_latency_percentiles.sql"]
    assert sorted(c.execute("SELECT * FROM rollup_latency_pct_daily").fetchall(), key=str) == rolled
    store.close()


def test_retention_covers_the_new_rollups(tmp_path: Path) -> None:
    from spendscope.collector.config import RetentionSettings
    from spendscope.collector.rollups import apply_retention

    store = _rolled_store(tmp_path / "t.duckdb", 500)
    c = store.connection
    apply_retention(c, NOW, RetentionSettings(calls_days=3, rejected_days=None, rollup_days=3))
    for table in ("rollup_insights_daily", "rollup_latency_pct_daily"):
        first = c.execute(f"SELECT min(day) FROM {table}").fetchone()
        assert first is not None and first[0] == NOW.date() - timedelta(days=3), table
    store.close()
