"""The /api/v1/insights/* endpoints against the seeded collector: exact values, filters, bad input."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.dashboard.conftest import Collector

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_breakdown_agrees_with_the_core_spend_api(collector: Collector) -> None:
    for by, core_key in (
        ("model", "model"),
        ("project", "project"),
        ("service", "service"),
        ("user", "user"),
    ):
        mine = collector.get("/api/v1/insights/breakdown", by=by)["rows"]
        core = collector.get("/api/v1/spend", group_by=core_key)["rows"]
        assert {r["key"]: (r["calls"], r["cost_usd"], r["unpriced_calls"]) for r in mine} == {
            r[core_key]: (r["calls"], r["cost_usd"], r["unpriced_calls"]) for r in core
        }


def test_tags_filters_and_unpriced(collector: Collector) -> None:
    tags = collector.get("/api/v1/insights/breakdown", by="tag")["rows"]
    assert [(r["key"], r["calls"]) for r in tags] == [("team=blue", 6)]
    narrowed = collector.get("/api/v1/insights/breakdown", by="model", project="proj_support,proj_labs")
    assert sorted(r["key"] for r in narrowed["rows"]) == ["gpt-4o", "mystery-model-9"]
    assert narrowed["filters"] == {"project": ["proj_support", "proj_labs"]}
    mystery = next(r for r in narrowed["rows"] if r["key"] == "mystery-model-9")
    assert mystery["cost_usd"] is None and mystery["unpriced_calls"] == 2
    unpriced = collector.get("/api/v1/insights/unpriced")["rows"]
    assert [(r["model"], r["calls"]) for r in unpriced] == [("mystery-model-9", 2)]


def test_summary_counts_and_projection(collector: Collector) -> None:
    s = collector.get("/api/v1/insights/summary")
    assert s["range"]["calls"] == len(collector.calls) == 14
    assert (s["range"]["errors"], s["range"]["rate_limited"], s["range"]["unpriced_calls"]) == (3, 2, 2)
    total = collector.get("/api/v1/spend")["totals"]["cost_usd"]
    assert s["range"]["cost_usd"] == total
    if (
        s["month_to_date"]["calls"] == 14
    ):  # all seeded calls fall in this month (not right after midnight on the 1st)
        assert Decimal(s["projected_month_usd"]) >= Decimal(s["month_to_date"]["cost_usd"])


def test_savings_are_priced_from_the_table(collector: Collector) -> None:
    sav = collector.get("/api/v1/insights/savings")
    rows = {r["model"]: r for r in sav["rows"]}
    prices = {
        r["model"]: r for r in collector.get("/api/v1/prices")["rows"] if r.get("tier") in (None, "default")
    }
    mini = prices.get("gpt-4o-mini")
    if mini and mini.get("cached_input_per_mtok"):
        per_tok = (Decimal(mini["input_per_mtok"]) - Decimal(mini["cached_input_per_mtok"])) / 1_000_000
        assert Decimal(rows["gpt-4o-mini"]["cache_savings_usd"]) == per_tok * 2400
    # The Batch API halves the price, so what one batch call saved equals what it cost.
    assert rows["gpt-4o"]["batch_calls"] == 1
    assert Decimal(rows["gpt-4o"]["batch_savings_usd"]) == Decimal(rows["gpt-4o"]["batch_cost_usd"]) > 0
    assert "mystery-model-9" not in rows


def test_reliability_endpoints(collector: Collector) -> None:
    errors = collector.get("/api/v1/insights/errors")["rows"]
    assert [(r["error_type"], r["status_code"], r["errors"]) for r in errors] == [
        ("rate_limit_exceeded", 429, 2),
        ("server_error", 500, 1),
    ]
    rate = collector.get("/api/v1/insights/error_rate", bucket="day")["rows"]
    assert sum(r["calls"] for r in rate) == 14 and sum(r["errors"] for r in rate) == 3
    # By model, percentiles come from the latency histograms: nearest rank, within 2.2% of that sample.
    approx = collector.get("/api/v1/insights/latency", by="model")
    assert approx["approximate"] is True
    lat = {r["key"]: r for r in approx["rows"]}
    # The three successful gpt-4o calls took 1, 2 and 3 s; the 500 is not counted.
    assert lat["gpt-4o"]["calls"] == 3 and lat["gpt-4o"]["p50_s"] == pytest.approx(2.0, rel=0.022)
    assert lat["gpt-4o-mini"]["ttfc_p50_s"] == pytest.approx(0.07, rel=0.022)  # 3rd of 0.05…0.10
    assert lat["gpt-4o"]["ttfc_p50_s"] is None
    exact = collector.get("/api/v1/insights/latency", by="model", exact="true")
    assert exact["approximate"] is False
    lat = {r["key"]: r for r in exact["rows"]}
    assert lat["gpt-4o"]["calls"] == 3 and lat["gpt-4o"]["p50_s"] == pytest.approx(2.0)
    assert lat["gpt-4o-mini"]["ttfc_p50_s"] == pytest.approx(0.075)
    # A filter the histograms cannot apply reads calls, exactly.
    by_user = collector.get("/api/v1/insights/latency", by="model", user="u-2")
    assert by_user["approximate"] is False
    assert [(r["key"], r["calls"], r["p50_s"]) for r in by_user["rows"]] == [
        ("gpt-4o", 3, pytest.approx(2.0))
    ]
    # Right after midnight UTC the seeded hour spans two day buckets: combine them per model.
    head = [
        r
        for r in collector.get("/api/v1/insights/headroom", bucket="day")["rows"]
        if r["model"] == "gpt-4o-mini"
    ]
    assert min(r["min_remaining_requests"] for r in head) == 0
    assert sum(r["rate_limited"] for r in head) == 2
    assert max(r["limit_requests"] for r in head) == 500


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("breakdown", {"by": "password"}),
        ("timeseries", {"bucket": "week"}),
        ("summary", {"start": "yesterday"}),
        ("summary", {"start": "2026-01-02T00:00:00"}),
        ("summary", {"start": "2026-01-02", "end": "2026-01-01"}),
    ],
)
def test_bad_input_is_400_with_a_message(collector: Collector, path: str, params: dict[str, str]) -> None:
    r = httpx.get(
        f"{collector.url}/api/v1/insights/{path}",
        params=params,
        headers={"Authorization": f"Bearer {collector.token}"},
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"]


def test_insights_require_the_token(collector: Collector) -> None:
    assert httpx.get(f"{collector.url}/api/v1/insights/summary", timeout=10).status_code == 401
