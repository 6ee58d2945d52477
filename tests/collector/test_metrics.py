"""GET /metrics: Prometheus text that parses, equals the API's totals, survives a restart, and is
behind the token; the series cap keeps sums exact."""

from __future__ import annotations

import calendar
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from spendscope.collector.prometheus import OTHER, Group, cap_groups, cap_headroom, headroom
from spendscope.collector.schema import TOKEN_FIELDS
from spendscope.fake_openai.server import FakeOpenAI
from tests.collector.helpers import CollectorProcess
from tests.collector.seed import seeded_collector

TOKEN = "metrics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALL_TIME = {"start": "1970-01-01T00:00:00Z", "end": "8999-12-31T00:00:00Z"}
KEYS = ("service", "model", "project")
CONFIG = """
[sync]
on_start = false
interval = "1d"

[alerts]
interval = "1s"

[[alerts.rules]]
name = "errors"
kind = "error_rate"
threshold_pct = 1
min_calls = 1
window = "7d"

[[alerts.rules]]
name = "budget-per-model"
kind = "budget"
period = "month"
amount_usd = "0.000001"
projected = false
group_by = ["model"]

[[alerts.rules]]
name = "never"
kind = "rate_429"
threshold_pct = 100
"""

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture(scope="module")
def secured(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    folder = Path(tmp_path_factory.mktemp("metrics"))
    with seeded_collector(folder, fake_openai_server, CONFIG, TOKEN) as proc:
        resp = httpx.post(f"{proc.url}/api/v1/sync", json={}, headers=AUTH, timeout=60)
        assert resp.status_code == 200, resp.text
        yield proc


def _get(proc: CollectorProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{proc.url}{path}", params=params, headers=AUTH, timeout=30)


def _scrape(proc: CollectorProcess, **params: Any) -> Samples:
    resp = _get(proc, "/metrics", **params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(resp.text):
        if family.name.startswith("spendscope_") and family.name != "spendscope_ratelimit_remaining":
            assert family.type in ("counter", "gauge"), family
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _labels(**kw: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, "" if v is None else str(v)) for k, v in kw.items()))


def _firing(proc: CollectorProcess) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in _get(proc, "/api/v1/alerts", state="firing").json()["rows"]:
        counts[row["rule"]] += 1
    return dict(counts)


def _wait_for_alerts(proc: CollectorProcess) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if {"errors", "budget-per-model"} <= set(_firing(proc)):
            return
        time.sleep(0.2)
    raise AssertionError(f"alerts did not fire: {_firing(proc)}")


def _assert_equal_to_the_api(proc: CollectorProcess, m: Samples) -> None:
    rows = _get(proc, "/api/v1/spend", group_by=",".join(KEYS), **ALL_TIME).json()["rows"]
    assert rows
    assert len(m["spendscope_calls_total"]) == len(rows)
    for r in rows:
        key = _labels(**{k: r[k] for k in KEYS})
        assert m["spendscope_calls_total"][key] == r["calls"]
        assert m["spendscope_errors_total"][key] == r["errors"]
        assert m["spendscope_unpriced_calls_total"][key] == r["unpriced_calls"]
        for t in TOKEN_FIELDS:
            kind = t.removesuffix("_tokens")
            tokens = _labels(**{k: r[k] for k in KEYS}, kind=kind)
            assert m["spendscope_tokens_total"][tokens] == r[t], (key, t)
        if r["cost_usd"] is None:
            assert key not in m["spendscope_cost_usd_total"]  # unpriced is not $0
        else:  # the shortest float text gives the decimal back: nothing was lost on the way
            assert Decimal(repr(m["spendscope_cost_usd_total"][key])) == Decimal(r["cost_usd"])
    # Per model, the series add up to the spend API's cost_usd over all time, exactly.
    by_model: dict[str, Decimal] = defaultdict(Decimal)
    for key, value in m["spendscope_cost_usd_total"].items():
        by_model[dict(key)["model"]] += Decimal(repr(value))
    spend = _get(proc, "/api/v1/spend", group_by="model", **ALL_TIME).json()
    for r in spend["rows"]:
        assert by_model[r["model"]] == Decimal(r["cost_usd"]), r["model"]
    assert sum(by_model.values()) == Decimal(spend["totals"]["cost_usd"])
    # Headroom: remaining / limit of the latest call per model and project, as the API picks it.
    limits = _get(proc, "/api/v1/ratelimits").json()["rows"]
    ratios = m["spendscope_ratelimit_remaining_ratio"]
    assert len(ratios) == 2 * len(limits)
    for r in limits:
        for kind in ("requests", "tokens"):
            key = _labels(model=r["model"], project=r["project"], kind=kind)
            assert ratios[key] == pytest.approx(r[f"remaining_{kind}"] / r[f"limit_{kind}"])
            assert 0 <= ratios[key] <= 1
    # Firing alerts per configured rule, 0 for a rule that is not firing.
    firing = _firing(proc)
    assert m["spendscope_alerts_firing"] == {
        _labels(rule=rule): firing.get(rule, 0) for rule in ("errors", "budget-per-model", "never")
    }
    # The last good sync is the stored run's finish (the listing rounds to the second).
    run = _get(proc, "/api/v1/sync/runs").json()["rows"][0]
    finished = calendar.timegm(time.strptime(run["finished_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(m["spendscope_sync_last_success_timestamp_seconds"][()] - finished) < 1


def test_metrics_need_the_token_when_one_is_set(secured: CollectorProcess) -> None:
    for path in ("/metrics", "/api/v1/openapi.json"):
        bare = httpx.get(f"{secured.url}{path}", timeout=30)
        assert bare.status_code == 401, path
        assert bare.headers["www-authenticate"] == 'Bearer realm="spendscope"'
        wrong = httpx.get(f"{secured.url}{path}", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401, path
    assert httpx.get(f"{secured.url}/healthz", timeout=30).status_code == 200


def test_metrics_equal_the_api_before_and_after_a_restart(secured: CollectorProcess) -> None:
    _wait_for_alerts(secured)
    before = _scrape(secured)
    _assert_equal_to_the_api(secured, before)
    # Collector health: the three OTLP requests of the seed, one rejected span, an empty queue.
    assert before["spendscope_ingest_requests_total"][()] == 3
    assert before["spendscope_rejected_spans_total"][()] == 1
    assert before["spendscope_refused_requests_total"][()] == 0
    assert before["spendscope_ingest_queue_spans"][()] == 0
    assert before["spendscope_ingest_queue_limit_spans"][()] > 0

    secured.terminate()
    secured.start()
    _wait_for_alerts(secured)
    after = _scrape(secured)
    _assert_equal_to_the_api(secured, after)
    stored = (
        "spendscope_calls_total",
        "spendscope_errors_total",
        "spendscope_cost_usd_total",
        "spendscope_tokens_total",
        "spendscope_unpriced_calls_total",
        "spendscope_sync_last_success_timestamp_seconds",
    )
    for name in stored:  # the stored totals survive the restart
        assert after[name] == before[name], name
    assert after["spendscope_ingest_requests_total"][()] == 0  # process counters start again


def test_the_series_cap_sums_the_rest_into_other(secured: CollectorProcess) -> None:
    full = _scrape(secured)
    capped = _scrape(secured, max_series=3)
    calls = capped["spendscope_calls_total"]
    assert len(calls) == 3
    other = _labels(service=OTHER, model=OTHER, project=OTHER)
    assert other in calls
    assert sum(calls.values()) == sum(full["spendscope_calls_total"].values())
    for kind in ("input", "output"):
        tokens = [v for k, v in capped["spendscope_tokens_total"].items() if ("kind", kind) in k]
        every = [v for k, v in full["spendscope_tokens_total"].items() if ("kind", kind) in k]
        assert len(tokens) == 3 and sum(tokens) == sum(every)
    total = Decimal(_get(secured, "/api/v1/spend", **ALL_TIME).json()["totals"]["cost_usd"])
    assert sum(Decimal(repr(v)) for v in capped["spendscope_cost_usd_total"].values()) == total
    # The kept series are the costliest; the headroom cap keeps the lowest ratio per kind in other.
    ratios = capped["spendscope_ratelimit_remaining_ratio"]
    assert len(ratios) == 3
    lowest = min(full["spendscope_ratelimit_remaining_ratio"].values())
    assert min(ratios.values()) == lowest
    resp = _get(secured, "/metrics", max_series=0)
    assert resp.status_code == 400 and resp.json()["error"].startswith("max_series: ")


# --- the pure parts ---------------------------------------------------------------------------------

_money = st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False)


@st.composite
def _groups(draw: st.DrawFn) -> list[Group]:
    n = draw(st.integers(0, 12))
    return [
        Group(
            (f"svc-{i % 3}", f"model-{i}", f"proj-{i % 4}"),
            draw(st.integers(0, 10**6)),
            draw(st.integers(0, 10**3)),
            {t: draw(st.integers(0, 10**9)) for t in TOKEN_FIELDS},
            draw(st.none() | _money),
            draw(st.integers(0, 10**3)),
        )
        for i in range(n)
    ]


@settings(max_examples=50, deadline=None)
@given(groups=_groups(), cap=st.integers(1, 15))
def test_capping_keeps_the_totals_exact(groups: list[Group], cap: int) -> None:
    capped = cap_groups(groups, cap)
    assert len(capped) == min(len(groups), cap)
    assert sum(g.calls for g in capped) == sum(g.calls for g in groups)
    assert sum(g.unpriced for g in capped) == sum(g.unpriced for g in groups)
    for t in TOKEN_FIELDS:
        assert sum(g.tokens[t] for g in capped) == sum(g.tokens[t] for g in groups)
    priced = [g.cost for g in groups if g.cost is not None]
    kept = [g.cost for g in capped if g.cost is not None]
    assert sum(kept, Decimal(0)) == sum(priced, Decimal(0))
    assert bool(kept) == bool(priced)  # unpriced stays unpriced, never $0
    if len(groups) > cap:
        assert capped[-1].labels == (OTHER, OTHER, OTHER)
        assert all(g in groups for g in capped[:-1])


def test_headroom_is_clamped_and_skips_what_has_no_limit() -> None:
    rows = [
        {
            "model": "m",
            "project": None,
            "limit_requests": 100,
            "remaining_requests": 150,  # a proxy can report more than the limit
            "limit_tokens": 0,
            "remaining_tokens": 0,
        },
        {
            "model": "n",
            "project": "p",
            "limit_requests": None,
            "remaining_requests": None,
            "limit_tokens": 1000,
            "remaining_tokens": -5,
        },
    ]
    assert headroom(rows) == [(("m", "", "requests"), 1.0), (("n", "p", "tokens"), 0.0)]
    many = [((f"m{i}", "", kind), i / 10) for i in range(10) for kind in ("requests", "tokens")]
    capped = cap_headroom(many, 5)
    assert len(capped) == 5
    assert capped[-2:] == [((OTHER, OTHER, "requests"), 0.2), ((OTHER, OTHER, "tokens"), 0.1)]
