"""DuckDB queries that feed the rules: one ``samples_<kind>`` per rule kind, read-only.

Windows over calls go through the query layer's rollup routing (:func:`queries.build_union`), like
the API: whole clean days of a month's budget come from the daily rollups, the rest from ``calls``.
Scope filters and group-by dimensions become SQL here; the values are bound as parameters, and tag
keys (``tag:<key>``) are checked against a strict pattern before they are inlined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.collector.alerts.config import DIMENSIONS, RuleConfig
from spendscope.collector.alerts.rules import (
    BudgetSample,
    CaptureSample,
    CountSample,
    HeadroomSample,
    LatencySample,
    Sample,
    Scope,
    SpikeSample,
    SyncSample,
    period_bounds,
)
from spendscope.collector.alerts.state import ts
from spendscope.collector.queries import Agg, Col, build_union, fetch_rows, measure, snapshot
from spendscope.collector.rollups import DAILY, INSIGHTS, Rollup

__all__ = ["samples", "table_exists"]

_UNPRICED_MODELS = (
    "string_agg(DISTINCT model, ', ' ORDER BY model) FILTER (WHERE pricing_status = 'unpriced')"
)
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")


def table_exists(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _dim_sql(dim: str) -> str:
    if dim.startswith("tag:"):
        key = dim[4:]
        if not _TAG_KEY.match(key):
            raise ValueError(f"tag key {key!r} has characters outside [A-Za-z0-9_.:/-]")
        return f"map_extract_value(tags, '{key}')"
    return DIMENSIONS[dim]


def _grouped(
    cur: duckdb.DuckDBPyConnection,
    rule: RuleConfig,
    start: datetime,
    end: datetime,
    aggs: Sequence[Agg],
    rollup: Rollup = INSIGHTS,
) -> list[tuple[Scope, tuple[Any, ...]]]:
    """Rows of ``(scope, aggregates)`` over calls in [start, end), one per group-by value."""
    dims = rule.group_by
    keys = []
    for i, d in enumerate(dims):
        col = _dim_sql(d)
        keys.append(Col(f"g{i}", col, col if col in rollup.keys else None))
    filters = {_dim_sql(d): [value] for d, value in sorted(rule.scope.items())}
    with snapshot(cur) as dirty:
        rows = fetch_rows(cur, build_union(rollup, start, end, keys, aggs, dirty, filters))
    out: list[tuple[Scope, tuple[Any, ...]]] = []
    for row in rows:
        values = row[len(dims) :]
        scope = tuple(
            sorted(
                {
                    **rule.scope,
                    **{d: str(k) if k is not None else "(none)" for d, k in zip(dims, row, strict=False)},
                }.items()
            )
        )
        out.append((scope, tuple(values)))
    return out


def _dec(v: Any) -> Decimal:
    return Decimal(v) if v is not None else Decimal(0)


def samples_budget(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    start, _ = period_bounds(rule.params["period"], now)
    # Unpriced calls (NULL cost) cannot count toward a budget; the unpriced_models rule reports them.
    rows = _grouped(cur, rule, start, now, [_COST], DAILY)
    return [BudgetSample(scope, _dec(v[0])) for scope, v in rows]


def samples_spend_spike(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    w = rule.params["window_s"]
    base_start = now - timedelta(days=rule.params["baseline_days"])
    cur_start = now - timedelta(seconds=w)
    current = dict(_grouped(cur, rule, cur_start, now, [_COST], DAILY))
    baseline = dict(_grouped(cur, rule, base_start, cur_start, [_COST], DAILY))
    windows = Decimal(max((cur_start - base_start).total_seconds() / w, 1.0))
    return [
        SpikeSample(scope, _dec(v[0]), _dec(baseline.get(scope, (None,))[0]) / windows)
        for scope, v in current.items()
    ]


_COST = measure(DAILY, "cost_usd")
_CALLS = measure(INSIGHTS, "calls")
# What a count rule counts, as a measure over calls and, where the rollup keeps it, over the rollup.
_HITS = {
    "error_rate": measure(INSIGHTS, "errors", "hits"),
    "rate_429": measure(INSIGHTS, "rate_limited", "hits"),
    "insufficient_quota": Agg(
        "hits",
        "count(*) FILTER (WHERE error_type = 'insufficient_quota')",
        "sum(calls) FILTER (WHERE error_type = 'insufficient_quota')",
        "sum",
    ),
    "unpriced_models": Agg("hits", "count(*) FILTER (WHERE pricing_status = 'unpriced')", None, "sum"),
}
# Rules that only speak up when something was hit.
_ONLY_HITS = frozenset({"insufficient_quota", "unpriced_models"})


def _counts(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    start = now - timedelta(seconds=rule.params["window_s"])
    aggs = [_CALLS, _HITS[rule.kind]]
    if rule.kind == "unpriced_models":
        aggs.append(Agg("detail", _UNPRICED_MODELS, None, "max"))
    rows = _grouped(cur, rule, start, now, aggs)
    out: list[Sample] = []
    for scope, v in rows:
        calls, hits = int(v[0] or 0), int(v[1] or 0)
        if rule.kind in _ONLY_HITS and not hits:
            continue
        out.append(CountSample(scope, calls, hits, (v[2] if len(v) > 2 else None) or ""))
    return out


def samples_headroom(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    start = now - timedelta(seconds=rule.params["window_s"])
    # The latest observation wins: headroom is a level, and an old low reading says nothing now.
    cols = [
        "ratelimit_limit_tokens",
        "ratelimit_remaining_tokens",
        "ratelimit_limit_requests",
        "ratelimit_remaining_requests",
    ]
    aggs = [Agg(c, f"arg_max({c}, start_time) FILTER (WHERE {c} IS NOT NULL)", None, "max") for c in cols]
    rows = _grouped(cur, rule, start, now, aggs)
    return [HeadroomSample(scope, *v) for scope, v in rows]


def samples_latency(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    start = now - timedelta(seconds=rule.params["window_s"])
    col = "ttfc_s" if rule.params["metric"] == "ttfc" else "duration_s"
    q = rule.params["percentile"] / 100.0
    aggs = [Agg("n", f"count({col})", None, "sum"), Agg("p", f"quantile_cont({col}, {q!r})", None, "max")]
    rows = _grouped(cur, rule, start, now, aggs)
    return [LatencySample(scope, int(v[0]), v[1]) for scope, v in rows]


def samples_capture(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    if not table_exists(cur, "cost_buckets"):
        return []  # the sync is not installed: no data
    p = rule.params
    today = now.astimezone(UTC).date()
    # Billing lags: only whole days at least lag_days old are compared.
    last = today - timedelta(days=p["lag_days"])
    first = last - timedelta(days=p["days"] - 1)
    by_project = "project" in rule.group_by
    scoped = rule.scope.get("project")
    tracked_sql = (
        f"SELECT {'project' if by_project else 'NULL'} AS p, sum(cost_usd) FROM calls "
        "WHERE day BETWEEN ? AND ?" + (" AND project = ?" if scoped else "") + " GROUP BY 1"
    )
    billed_sql = (
        f"SELECT {'project_id' if by_project else 'NULL'} AS p, sum(amount) FROM cost_buckets "
        "WHERE day BETWEEN ? AND ? AND coalesce(currency, 'usd') = 'usd'"
        + (" AND project_id = ?" if scoped else "")
        + " GROUP BY 1"
    )
    params: list[Any] = [first, last] + ([scoped] if scoped else [])
    tracked = {r[0]: _dec(r[1]) for r in cur.execute(tracked_sql, params).fetchall()}
    billed = {r[0]: _dec(r[1]) for r in cur.execute(billed_sql, params).fetchall()}
    out: list[Sample] = []
    for key, amount in billed.items():
        scope: Scope = tuple(sorted(({"project": key} if by_project else dict(rule.scope)).items()))
        out.append(CaptureSample(scope, tracked.get(key, Decimal(0)), amount))
    return out


def samples_sync(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    if not table_exists(cur, "sync_runs"):
        return [SyncSample(False, None, None, None, False)]
    last = cur.execute(
        "SELECT status, error FROM sync_runs WHERE status <> 'running' ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    ok = cur.execute("SELECT epoch_us(max(finished_at)) FROM sync_runs WHERE status = 'ok'").fetchone()
    return [
        SyncSample(
            True,
            last[0] if last else None,
            last[1] if last else None,
            ts(ok[0] if ok else None),
            last is not None,
        )
    ]


def samples(cur: duckdb.DuckDBPyConnection, rule: RuleConfig, now: datetime) -> list[Sample]:
    """What the rule's evaluator needs, read at ``now``."""
    kind = rule.kind
    if kind == "budget":
        return samples_budget(cur, rule, now)
    if kind == "spend_spike":
        return samples_spend_spike(cur, rule, now)
    if kind in _HITS:
        return _counts(cur, rule, now)
    if kind == "ratelimit_headroom":
        return samples_headroom(cur, rule, now)
    if kind == "latency":
        return samples_latency(cur, rule, now)
    if kind == "capture_rate":
        return samples_capture(cur, rule, now)
    if kind == "sync_failure":
        return samples_sync(cur, rule, now)
    raise ValueError(f"unknown rule kind {kind!r}")
