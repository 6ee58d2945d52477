"""Prices from the bill, end to end: an instrumented app calls a model no price table knows and a
model whose bill is discounted; a real collector (decode workers on) syncs the fake's Usage and Costs
API. The unknown model's calls are priced at amount ÷ quantity with origin ``bill`` as soon as the
sync answers, later calls at ingest; the discounted model keeps its reviewed price and the drift is
shown and alerts once; nothing priced changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("duckdb")
pytest.importorskip("starlette")
pytest.importorskip("openai")

from spendscope.fake_openai import usage_api
from spendscope.fake_openai.server import FakeOpenAI
from spendscope.fake_openai.usage_buckets import cost_lines
from tests.alerts.helpers import Receiver, start_receiver
from tests.collector.helpers import CollectorProcess
from tests.sync.helpers import run_app

pytestmark = pytest.mark.slow

NEW = "gpt-9-preview"  # no price table knows it
MINI, MINI_SNAPSHOT = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
# The fake's bill: the new model at its own prices, gpt-4o-mini 10% below the reviewed input price.
NEW_PRICE = {"input": Decimal("1.10"), "output": Decimal("4.40")}
MINI_PRICE = {"input": Decimal("0.135"), "cached_input": Decimal("0.075"), "output": Decimal("0.60")}


def _window() -> dict[str, str]:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"start": (day - timedelta(days=1)).isoformat(), "end": (day + timedelta(days=2)).isoformat()}


def _calls(collector: CollectorProcess, service: str, expected: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = collector.get("/api/v1/calls", **_window(), limit="1000").json()["rows"]
        rows = [r for r in rows if r["service"] == service]
        if len(rows) >= expected:
            break
        time.sleep(0.2)
    assert len(rows) == expected, f"{service}: {len(rows)} of {expected} calls arrived"
    return rows


def _spend(collector: CollectorProcess, group_by: str) -> dict[Any, dict[str, Any]]:
    doc = collector.get("/api/v1/spend", **_window(), group_by=group_by).json()
    return {r[group_by]: r for r in doc["rows"]}


@pytest.fixture(scope="module")
def world(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    fake = fake_openai_server
    fake.reset()
    st = usage_api.reset(fake.ledger)
    st.prices = {NEW: NEW_PRICE, MINI_SNAPSHOT: MINI_PRICE, MINI: MINI_PRICE}
    receiver = start_receiver()
    tmp = Path(tmp_path_factory.mktemp("bill"))
    config = tmp / "spendscope.toml"
    config.write_text(
        "[collector]\ndecode_workers = 2\n"
        '[sync]\non_start = false\ninterval = "1d"\nbucket_width = "1h"\n'
        'endpoints = ["completions", "costs"]\n'
        '[alerts]\ninterval = "1s"\n'
        '[alerts.channels.hook]\ntype = "webhook"\nurl_env = "BILL_HOOK_URL"\n'
        '[[alerts.rules]]\nname = "drift"\nkind = "price_drift"\nthreshold_pct = 2\nchannels = ["hook"]\n'
    )
    env = {
        "OPENAI_ADMIN_KEY": fake.admin_key,
        "SPENDSCOPE_OPENAI_BASE_URL": fake.base_url,
        "BILL_HOOK_URL": f"{receiver.url}/ok/bill",
    }
    collector = CollectorProcess(tmp / "spendscope.duckdb", env=env, config=config).start()
    try:
        yield {"fake": fake, "collector": collector, "receiver": receiver}
    finally:
        try:
            collector.terminate()
        finally:
            collector.kill()
            receiver.close()
            usage_api.reset(fake.ledger)


def test_the_bill_prices_what_no_table_knows_and_reports_drift(world: dict[str, Any]) -> None:
    fake: FakeOpenAI = world["fake"]
    collector: CollectorProcess = world["collector"]
    receiver: Receiver = world["receiver"]
    run_app(fake, collector, NEW, 5, "new-model", fail=True)
    run_app(fake, collector, MINI, 4, "mini", fail=False)
    new_calls = _calls(collector, "new-model", 6)
    mini_before = {r["span_id"]: r for r in _calls(collector, "mini", 4)}

    # Before the bill is read: the new model's calls are unpriced, and its group says so: a failed
    # attempt costs 0, but beside 5 unpriced calls the group's cost is unknown, not $0.
    row = _spend(collector, "model")[NEW]
    assert (row["calls"], row["errors"], row["unpriced_calls"], row["cost_usd"]) == (6, 1, 5, None)
    assert {r["pricing_status"] for r in new_calls} == {"unpriced", "no_usage"}
    assert all(r["price_origin"] is None for r in new_calls)
    assert {r["price_origin"] for r in mini_before.values()} == {"reviewed"}

    r = httpx.post(f"{collector.url}/api/v1/sync", json={}, timeout=120)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["ok"] and doc["bill_prices"]["calls_priced"] == 5 and doc["bill_prices"]["models"] == 1

    # As soon as the sync answered: priced at exactly amount ÷ quantity, origin bill.
    billed = [x for x in fake.ledger.billed() if x.model == NEW]
    expected = sum(
        (amount for x in billed for _, amount, _, _ in cost_lines(x, {NEW: NEW_PRICE})), Decimal(0)
    )
    by_span = {x["span_id"]: x for x in _calls(collector, "new-model", 6)}
    priced = [x for x in by_span.values() if x["pricing_status"] == "priced"]
    assert len(priced) == 5
    for x in priced:
        own = (
            Decimal(x["input_tokens"]) * NEW_PRICE["input"]
            + Decimal(x["output_tokens"]) * NEW_PRICE["output"]
        ) / 10**6
        assert Decimal(x["cost_usd"]) == own
        assert x["price_origin"] == "bill" and x["price_id"].startswith(f"bill:{NEW}:")
    assert sum(Decimal(x["cost_usd"]) for x in priced) == expected
    failed = [x for x in by_span.values() if x["pricing_status"] == "no_usage"]
    assert len(failed) == 1 and failed[0]["cost_usd"] == "0" and failed[0]["price_origin"] is None
    row = _spend(collector, "model")[NEW]
    assert (Decimal(row["cost_usd"]), row["unpriced_calls"]) == (expected, 0)
    # The known model keeps its reviewed price: nothing priced changed.
    mini_after = {r["span_id"]: r for r in _calls(collector, "mini", 4)}
    assert mini_after == mini_before
    by_origin = _spend(collector, "price_origin")
    assert Decimal(by_origin["bill"]["cost_usd"]) == expected and by_origin["bill"]["calls"] == 5
    assert by_origin["reviewed"]["calls"] == 4

    # The drift: one object naming the model with both unit prices.
    drift = collector.get("/api/v1/prices/drift", **_window()).json()
    (d,) = drift["rows"]
    assert (d["model"], d["kind"], d["tier"], d["unit"]) == (MINI_SNAPSHOT, "input", "default", "per_mtok")
    assert (Decimal(d["bill_unit_price"]), Decimal(d["table_unit_price"])) == (
        Decimal("0.135"),
        Decimal("0.15"),
    )
    assert Decimal(d["drift"]) == Decimal("-0.1") and d["price_origin"] == "reviewed"
    assert d["price_id"].startswith("openai:gpt-4o-mini")
    assert collector.get("/api/v1/prices/drift", **_window(), threshold_pct="15").json()["rows"] == []
    bill = collector.get("/api/v1/prices/bill", **_window()).json()["rows"]
    assert {(x["model"], x["kind"], x["status"]) for x in bill} == {
        (NEW, "input", "prices"),
        (NEW, "output", "prices"),
        (MINI_SNAPSHOT, "input", "compared"),
        (MINI_SNAPSHOT, "output", "compared"),
    }
    prices = collector.get("/api/v1/prices").json()["rows"]
    (new_row,) = [x for x in prices if x["model"] == NEW]
    assert new_row["origin"] == "bill" and Decimal(new_row["input_per_mtok"]) == NEW_PRICE["input"]

    # The drift alert fires, once.
    receiver.wait_for(lambda got: any(x.body.get("event") == "firing" for x in got), timeout=20)
    time.sleep(3)  # several more evaluations
    firing = [x for x in receiver.got if x.body.get("event") == "firing"]
    assert len(firing) == 1 and firing[0].body["rule"] == "drift"
    assert MINI_SNAPSHOT in firing[0].body["message"] and "0.135" in firing[0].body["message"]

    # Calls made after the sync are priced from the bill at ingest (through the decode workers).
    run_app(fake, collector, NEW, 3, "new-model-later", fail=False)
    later = _calls(collector, "new-model-later", 3)
    assert {(x["pricing_status"], x["price_origin"]) for x in later} == {("priced", "bill")}

    # The dashboard's pricing page shows the drift and what the bill priced.
    _pricing_page_shows_the_bill(collector)

    # A second sync changes no price.
    before = _costs(collector)
    again = httpx.post(f"{collector.url}/api/v1/sync", json={}, timeout=120).json()
    assert again["ok"] and again["bill_prices"]["calls_priced"] == 0, again
    assert _costs(collector) == before


def _costs(collector: CollectorProcess) -> dict[str, tuple[str, str | None, str | None]]:
    rows = collector.get("/api/v1/calls", **_window(), limit="1000").json()["rows"]
    return {x["span_id"]: (x["pricing_status"], x["price_id"], x["cost_usd"]) for x in rows}


def _pricing_page_shows_the_bill(collector: CollectorProcess) -> None:
    streamlit_testing = pytest.importorskip("streamlit.testing.v1")
    from spendscope.dashboard.cli import APP_PATH

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPENDSCOPE_API", collector.url)
        mp.delenv("SPENDSCOPE_TOKEN", raising=False)
        at = streamlit_testing.AppTest.from_file(str(APP_PATH), default_timeout=30)
        at.run()
        at.switch_page("pricing.py").run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(str(w.value) for w in at.warning)
    assert "1 price(s) on the bill differ from the price table by more than 2%" in warnings
    infos = " ".join(str(i.value) for i in at.info)
    assert f"Priced from the bill (amount ÷ quantity of its line items): {NEW}." in infos
    frames = [f.value for f in at.dataframe]
    (drift,) = [f for f in frames if "drift_rate" in f.columns]
    assert list(drift["model"]) == [MINI_SNAPSHOT] and list(drift["drift_rate"]) == ["-10.0%"]
    assert list(drift["bill_unit_price"]) == ["0.135"] and list(drift["table_unit_price"]) == ["0.15"]
