"""Every page through Streamlit's AppTest against a real, seeded collector: shown numbers = the API's."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from spendscope.dashboard.cli import APP_PATH
from spendscope.dashboard.filters import Filters, default_range
from spendscope.dashboard.formatting import format_count, format_money, format_percent, format_seconds
from tests.dashboard.conftest import Collector, free_port

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _app(monkeypatch: pytest.MonkeyPatch, api: str, token: str | None) -> AppTest:
    monkeypatch.setenv("SPENDSCOPE_API", api)
    if token:
        monkeypatch.setenv("SPENDSCOPE_TOKEN", token)
    else:
        monkeypatch.delenv("SPENDSCOPE_TOKEN", raising=False)
    return AppTest.from_file(str(APP_PATH), default_timeout=30)


def _open(at: AppTest, page: str | None) -> AppTest:
    at.run()
    if page is not None:
        at.switch_page(f"{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, collector: Collector) -> AppTest:
    return _app(monkeypatch, collector.url, collector.token)


def _params() -> dict[str, str]:
    start, end = default_range(datetime.now(UTC).date())
    return {k: str(v) for k, v in Filters(start, end).params().items() if v is not None}


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("error", "warning", "info", "success", "markdown", "caption")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_overview_matches_summary(app: AppTest, collector: Collector) -> None:
    at = _open(app, None)
    api = collector.get("/api/v1/insights/summary", **_params())
    m = _metrics(at)
    assert m["Spend today (UTC)"] == format_money(api["today"]["cost_usd"])
    assert m["Month to date"] == format_money(api["month_to_date"]["cost_usd"])
    assert m["Projected month"] == format_money(api["projected_month_usd"])
    assert m["Spend in range"] == format_money(api["range"]["cost_usd"])
    assert m["Calls"] == format_count(len(collector.calls)) == format_count(api["range"]["calls"])
    assert m["Error rate"] == format_percent(Decimal(3) / Decimal(len(collector.calls)))
    assert m["Rate-limited (429)"] == "2"
    # The collector's own spend API agrees with the insights total.
    spend = collector.get("/api/v1/spend", **{k: v for k, v in _params().items() if k in ("start", "end")})
    assert m["Spend in range"] == format_money(spend["totals"]["cost_usd"])
    # Unpriced calls are flagged next to the totals.
    assert "2 unpriced call(s)" in _texts(at)
    assert len(at.get("arrow_vega_lite_chart")) >= 1 or len(at.get("vega_lite_chart")) >= 1


def test_spend_page_breakdown_savings_and_filters(app: AppTest, collector: Collector) -> None:
    at = _open(app, "spend")
    api = collector.get("/api/v1/insights/breakdown", by="model", **_params())
    core = collector.get(
        "/api/v1/spend", group_by="model", **{k: v for k, v in _params().items() if k in ("start", "end")}
    )
    assert _metrics(at)["Total spend"] == format_money(core["totals"]["cost_usd"])
    table = at.dataframe[0].value
    assert list(table["key"]) == [r["key"] for r in api["rows"]]
    assert list(table["cost_usd"]) == [format_money(r["cost_usd"]) for r in api["rows"]]
    assert "unpriced" in list(table["cost_usd"])  # the unknown model is never shown as $0
    by_model = {r["model"]: r for r in core["rows"]}
    for _, row in table.iterrows():
        assert row["calls"] == format_count(by_model[row["key"]]["calls"])
    sav = collector.get("/api/v1/insights/savings", **_params())["totals"]
    m = _metrics(at)
    assert m["Saved by prompt caching"] == format_money(sav["cache_savings_usd"]) != "$0.00"
    assert m["Saved by the Batch API"] == format_money(sav["batch_savings_usd"]) != "$0.00"

    # Break down by tag and by project.
    at.segmented_control(key="spend-by").set_value("tag").run()
    assert not at.exception
    assert list(at.dataframe[0].value["key"]) == ["team=blue"]
    at.segmented_control(key="spend-by").set_value("project").run()
    api_p = collector.get("/api/v1/insights/breakdown", by="project", **_params())
    assert list(at.dataframe[0].value["key"]) == [r["key"] for r in api_p["rows"]]

    # A sidebar filter narrows every number on the page.
    # (AppTest drops the sidebar's elements from its tree after switch_page: set the widget's state.)
    at.session_state["filter-model"] = ["gpt-4o"]
    at.run()
    assert not at.exception
    narrowed = collector.get("/api/v1/insights/breakdown", by="project", model="gpt-4o", **_params())
    assert list(at.dataframe[0].value["key"]) == ["proj_support"] == [r["key"] for r in narrowed["rows"]]
    assert _metrics(at)["Total spend"] == format_money(narrowed["rows"][0]["cost_usd"])


def test_reconciliation_page_matches_api(app: AppTest, collector: Collector) -> None:
    at = _open(app, "reconciliation")
    p = {k: v for k, v in _params().items() if k in ("start", "end")}
    api = collector.get("/api/v1/reconciliation", group_by="day", **p)
    m = _metrics(at)
    assert m["Tracked"] == format_money(api["totals"]["tracked_usd"])
    assert m["Billed"] == format_money(api["totals"]["billed_usd"], unpriced="—")
    assert m["Capture rate"] == format_percent(api["totals"]["capture_rate"])
    # Without an admin key there is no bill: the page says how to get one.
    assert "No billed spend" in _texts(at)
    assert list(at.dataframe[0].value["tracked_usd"]) == [format_money(r["tracked_usd"]) for r in api["rows"]]


def test_rate_limits_page(app: AppTest, collector: Collector) -> None:
    at = _open(app, "rate_limits")
    p = _params()
    api = collector.get(
        "/api/v1/insights/headroom", bucket=Filters(*default_range(datetime.now(UTC).date())).bucket, **p
    )
    table = at.dataframe[0].value
    assert list(table["model"]) == [r["model"] for r in api["rows"]]
    assert list(table["min_remaining_requests"]) == [
        format_count(r["min_remaining_requests"]) for r in api["rows"]
    ]
    assert list(table["rate_limited"]) == [format_count(r["rate_limited"]) for r in api["rows"]]
    latest = collector.get("/api/v1/ratelimits", since=p["start"])["rows"]
    assert len(at.dataframe[1].value) == len(latest)
    assert len(at.get("arrow_vega_lite_chart")) >= 3 or len(at.get("vega_lite_chart")) >= 3


def test_reliability_page(app: AppTest, collector: Collector) -> None:
    at = _open(app, "reliability")
    m = _metrics(at)
    assert m["Calls"] == format_count(len(collector.calls))
    assert m["Errors"] == "3"
    errors = collector.get("/api/v1/insights/errors", **_params())["rows"]
    t_err = at.dataframe[0].value
    assert (
        list(t_err["error_type"])
        == [r["error_type"] for r in errors]
        == ["rate_limit_exceeded", "server_error"]
    )
    assert list(t_err["errors"]) == ["2", "1"]
    lat_doc = collector.get("/api/v1/insights/latency", by="model", **_params())
    lat = lat_doc["rows"]
    histogram_note = any("latency histograms" in c.value for c in at.caption)
    assert histogram_note == bool(lat_doc["approximate"])  # the page says when percentiles are binned
    t_lat = at.dataframe[1].value
    assert list(t_lat["key"]) == [r["key"] for r in lat]
    assert list(t_lat["p95_s"]) == [format_seconds(r["p95_s"]) for r in lat]
    assert list(t_lat["ttfc_p50_s"]) == [format_seconds(r["ttfc_p50_s"]) for r in lat]


def test_alerts_page_shows_the_firing_alert(app: AppTest, collector: Collector) -> None:
    deadline = time.monotonic() + 20
    firing: list[dict] = []
    while time.monotonic() < deadline and not firing:
        firing = collector.get("/api/v1/alerts", state="firing")["rows"]
        time.sleep(0.3)
    assert [r["rule"] for r in firing] == ["errors"], "the seeded error rate should fire the rule"
    at = _open(app, "alerts")
    assert "1 alert(s) firing" in _texts(at)
    assert list(at.dataframe[0].value["rule"]) == ["errors"]
    assert list(at.dataframe[0].value["state"]) == ["firing"]


def test_pricing_page_lists_unpriced_models(app: AppTest, collector: Collector) -> None:
    at = _open(app, "pricing")
    unpriced = collector.get("/api/v1/insights/unpriced", **_params())["rows"]
    assert [r["model"] for r in unpriced] == ["mystery-model-9"]
    assert list(at.dataframe[0].value["model"]) == ["mystery-model-9"]
    assert "1 model(s) have calls with no price" in _texts(at)
    assert len(at.dataframe[1].value) > 10  # the bundled price table


def test_empty_range_explains_how_to_instrument(app: AppTest) -> None:
    at = _open(app, None)
    old = date(2020, 1, 1)
    at.sidebar.date_input(key="range").set_value((old, old + timedelta(days=2))).run()
    assert not at.exception
    assert "spendscope.instrument()" in _texts(at)


@pytest.mark.parametrize(
    "page", [None, "spend", "reconciliation", "rate_limits", "reliability", "alerts", "pricing"]
)
def test_collector_down_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    at = _open(_app(monkeypatch, f"http://127.0.0.1:{free_port()}", None), page)
    assert "Collector unreachable" in _texts(at)


def test_refused_token_is_a_message(monkeypatch: pytest.MonkeyPatch, collector: Collector) -> None:
    at = _open(_app(monkeypatch, collector.url, "wrong-token"), "spend")
    assert "Access refused" in _texts(at) and "SPENDSCOPE_TOKEN was refused" in _texts(at)
    at = _open(_app(monkeypatch, collector.url, None), None)
    assert "requires a token" in _texts(at)
