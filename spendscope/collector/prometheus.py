"""``GET /metrics``: stored totals and the collector's health in the Prometheus text format (0.0.4).

The call counters are the stored all-time totals by ``service``, ``model`` and ``project`` (the
API's keys), read exactly like ``/api/v1/spend``: the daily rollup for clean days and ``calls``
for dirty ones, in one read snapshot. A scrape therefore costs about one spend query, its numbers
equal the API's, and they survive restarts. Money is summed as ``Decimal``; only the sample value
is a float, as the format requires.

Labels are bounded: at most ``max_series`` label sets per family (default
:data:`DEFAULT_MAX_SERIES`). Past it, the groups with the least cost (then calls) are summed into
one series whose labels are all ``other``; for the rate-limit gauge, the rest keep their lowest
headroom in ``other``, so an alert on it still fires. prometheus-client writes the exposition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import duckdb
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from spendscope.collector import queries as q
from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext
from spendscope.collector.schema import TOKEN_FIELDS
from spendscope.collector.web import Endpoint, Params

__all__ = [
    "COMPONENT",
    "DEFAULT_MAX_SERIES",
    "LABELS",
    "OTHER",
    "Stored",
    "cap_groups",
    "cap_headroom",
    "families",
    "headroom",
    "read_stored",
    "render",
]

LABELS = ("service", "model", "project")
OTHER = "other"
DEFAULT_MAX_SERIES = 200
# /api/v1/ratelimits' default window: a model unused for a day has no current headroom.
HEADROOM_WINDOW = timedelta(hours=24)
# Every call's start time lies in this range (the API's own bounds for a time).
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))
_KINDS = {t: t.removesuffix("_tokens") for t in TOKEN_FIELDS}

Labels = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """The all-time totals of one label set."""

    labels: Labels
    calls: int
    errors: int
    tokens: Mapping[str, int]
    cost: Decimal | None  # None: nothing in the group is priced
    unpriced: int


@dataclass(slots=True)
class Stored:
    """What one scrape read from the store, in one snapshot."""

    groups: list[Group] = field(default_factory=list)
    headroom: list[tuple[Labels, float]] = field(default_factory=list)  # (model, project, kind), ratio
    firing: dict[str, int] = field(default_factory=dict)
    last_sync: float | None = None


def _label(v: Any) -> str:
    return "" if v is None else str(v)


def _group(row: Mapping[str, Any]) -> Group:
    return Group(
        tuple(_label(row[k]) for k in LABELS),
        int(row["calls"]),
        int(row["errors"]),
        {t: int(row[t] or 0) for t in TOKEN_FIELDS},
        None if row["cost_usd"] is None else Decimal(row["cost_usd"]),
        int(row["unpriced_calls"]),
    )


def cap_groups(groups: Sequence[Group], max_series: int) -> list[Group]:
    """At most ``max_series`` groups: the costliest (then busiest), and the rest summed into ``other``."""
    if len(groups) <= max_series:
        return list(groups)
    ranked = sorted(groups, key=lambda g: (-(g.cost or 0), -g.calls, g.labels))
    kept, rest = ranked[: max_series - 1], ranked[max_series - 1 :]
    priced = [g.cost for g in rest if g.cost is not None]
    other = Group(
        (OTHER,) * len(LABELS),
        sum(g.calls for g in rest),
        sum(g.errors for g in rest),
        {t: sum(g.tokens[t] for g in rest) for t in TOKEN_FIELDS},
        sum(priced, Decimal(0)) if priced else None,
        sum(g.unpriced for g in rest),
    )
    return [*kept, other]


def headroom(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Labels, float]]:
    """remaining ÷ limit per (model, project, kind) from ``/api/v1/ratelimits``' rows, in [0, 1]."""
    out: list[tuple[Labels, float]] = []
    for r in rows:
        for kind in ("requests", "tokens"):
            limit, remaining = r[f"limit_{kind}"], r[f"remaining_{kind}"]
            if limit and limit > 0 and remaining is not None:
                ratio = min(1.0, max(0.0, remaining / limit))
                out.append(((_label(r["model"]), _label(r["project"]), kind), ratio))
    return out


def cap_headroom(ratios: Sequence[tuple[Labels, float]], max_series: int) -> list[tuple[Labels, float]]:
    """At most ``max_series`` ratios: the lowest, and the rest as ``other`` per kind with their minimum."""
    if len(ratios) <= max_series:
        return list(ratios)
    ranked = sorted(ratios, key=lambda x: (x[1], x[0]))
    kinds = sorted({labels[2] for labels, _ in ranked})
    kept, rest = ranked[: max(0, max_series - len(kinds))], ranked[max(0, max_series - len(kinds)) :]
    worst: dict[str, float] = {}
    for (_, _, kind), ratio in rest:
        worst[kind] = min(ratio, worst.get(kind, ratio))
    return [*kept, *(((OTHER, OTHER, kind), ratio) for kind, ratio in sorted(worst.items()))]


def read_stored(cur: duckdb.DuckDBPyConnection, now: datetime) -> Stored:
    """The totals, the latest headroom, the firing alerts and the last good sync, in one snapshot."""
    with q.snapshot(cur) as dirty:
        spend = q.fetch_dicts(cur, q.build_spend(*_ALL_TIME, LABELS, dirty))
        limits = q.fetch_dicts(cur, q.build_ratelimits(now - HEADROOM_WINDOW))
        firing = cur.execute(
            "SELECT rule, count(*) FROM alert_state WHERE state = 'firing' GROUP BY rule"
        ).fetchall()
        synced = cur.execute("SELECT max(epoch(finished_at)) FROM sync_runs WHERE status = 'ok'").fetchone()
    return Stored(
        [_group(r) for r in spend],
        headroom(limits),
        {str(rule): int(n) for rule, n in firing},
        float(synced[0]) if synced and synced[0] is not None else None,
    )


def _counter(name: str, doc: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def families(
    stored: Stored,
    max_series: int,
    *,
    rules: Iterable[str] = (),
    queue: int = 0,
    queue_limit: int = 0,
    requests: int = 0,
    refused: int = 0,
    rejected: int = 0,
    sync_configured: bool = False,
) -> list[Metric]:
    """The metric families of one scrape (pure: everything it shows is passed in)."""
    calls = _counter("spendscope_calls", "Stored calls (HTTP attempts), all time", LABELS)
    errors = _counter("spendscope_errors", "Stored calls that failed (status >= 400 or transport)", LABELS)
    cost = _counter("spendscope_cost_usd", "Cost of the stored priced calls in USD, all time", LABELS)
    tokens = _counter(
        "spendscope_tokens",
        "Tokens of the stored calls; input includes cached_input, output includes reasoning",
        (*LABELS, "kind"),
    )
    unpriced = _counter("spendscope_unpriced_calls", "Stored calls with no price (cost unknown)", LABELS)
    for g in cap_groups(stored.groups, max_series):
        calls.add_metric(g.labels, g.calls)
        errors.add_metric(g.labels, g.errors)
        if g.cost is not None:  # unpriced is not $0: no sample
            cost.add_metric(g.labels, float(g.cost))
        for t, kind in _KINDS.items():
            tokens.add_metric((*g.labels, kind), g.tokens[t])
        unpriced.add_metric(g.labels, g.unpriced)
    ratio = GaugeMetricFamily(
        "spendscope_ratelimit_remaining_ratio",
        "Remaining / limit from the latest call per model and project in the last 24 hours",
        labels=["model", "project", "kind"],
    )
    for labels, value in cap_headroom(stored.headroom, max_series):
        ratio.add_metric(labels, value)
    firing = GaugeMetricFamily("spendscope_alerts_firing", "Firing instances per alert rule", labels=["rule"])
    for rule in sorted(set(rules) | set(stored.firing)):
        firing.add_metric([rule], stored.firing.get(rule, 0))
    out: list[Metric] = [calls, errors, cost, tokens, unpriced, ratio, firing]
    out += [
        GaugeMetricFamily("spendscope_ingest_queue_spans", "Spans waiting to be committed", value=queue),
        GaugeMetricFamily(
            "spendscope_ingest_queue_limit_spans", "Spans the queue holds before refusing", value=queue_limit
        ),
        CounterMetricFamily(
            "spendscope_ingest_requests", "OTLP requests received since the collector started", value=requests
        ),
        CounterMetricFamily(
            "spendscope_refused_requests",
            "OTLP requests refused with 429/5xx (queue full, stopping) since the collector started",
            value=refused,
        ),
        CounterMetricFamily(
            "spendscope_rejected_spans",
            "GenAI spans that could not be normalized (kept in rejected_spans) since the collector started",
            value=rejected,
        ),
    ]
    if stored.last_sync is not None or sync_configured:
        out.append(
            GaugeMetricFamily(
                "spendscope_sync_last_success_timestamp_seconds",
                "When the last successful Usage/Costs sync finished (0: never)",
                value=stored.last_sync or 0,
            )
        )
    return out


class _Families:
    """What ``generate_latest`` reads: an object with ``collect()``."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def render(metrics: Sequence[Metric]) -> bytes:
    """The text exposition format 0.0.4, as prometheus-client writes it."""
    return generate_latest(_Families(metrics))


# --- HTTP ------------------------------------------------------------------------------------------


class MetricsParams(Params):
    max_series: Annotated[int, Field(ge=1, le=10_000)] = Field(
        DEFAULT_MAX_SERIES,
        description="label sets per family at most; past it the rest are summed as 'other'",
    )


def _scrape(ctx: CollectorContext, max_series: int) -> bytes:
    now = ctx.clock()
    stored = ctx.store.read(lambda cur: read_stored(cur, now))
    w, traces = ctx.writer, ctx.traces
    sync = ctx.sync
    metrics = families(
        stored,
        max_series,
        rules=[r.name for r in ctx.alerts.config.rules] if ctx.alerts else (),
        queue=w.pending_spans if w else 0,
        queue_limit=ctx.config.collector.max_queue_spans,
        requests=traces.requests if traces else 0,
        refused=traces.refused if traces else 0,
        rejected=w.rejected_committed if w else 0,
        sync_configured=bool(sync and sync.settings.configured),
    )
    return render(metrics)


async def metrics(ctx: CollectorContext, p: MetricsParams) -> Response:
    body = await run_in_threadpool(_scrape, ctx, p.max_series)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        MetricsParams,
        "Prometheus metrics: stored totals by service, model and project, headroom, alerts, ingest",
        response={"type": "string"},
        tag="operations",
        media_type="text/plain",
    ),
)

COMPONENT = Component("metrics", ENDPOINTS)
