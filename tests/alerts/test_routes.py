"""The alerts HTTP routes in-process: contract shape, validation, test notifications, silences CRUD."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from spendscope.collector.alerts.engine import AlertEngine
from spendscope.collector.alerts.routes import ENDPOINTS
from spendscope.collector.config import Config
from spendscope.collector.context import CollectorContext
from spendscope.collector.store import Store
from spendscope.collector.web import routes
from spendscope.pricing import PriceTable

from .helpers import T0, Clock, add_call, config, open_store

TEXT = """
[alerts.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/unused"

[[alerts.rules]]
name = "quota"
kind = "insufficient_quota"
channels = ["hook"]
group_by = ["project"]

[[alerts.rules]]
name = "quiet"
kind = "unpriced_models"
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, AlertEngine, Clock, Store]]:
    store = open_store(tmp_path / "routes.duckdb")
    clock = Clock(T0)
    engine = AlertEngine(config(TEXT), store, clock)  # no worker: deliveries stay pending
    ctx = CollectorContext(Config(), store, PriceTable.default(), None, clock, alerts=engine)
    with TestClient(Starlette(routes=routes(ctx, ENDPOINTS))) as client:
        yield client, engine, clock, store
    store.close()


def test_alerts_contract_and_states(setup: tuple[TestClient, AlertEngine, Clock, Store]) -> None:
    client, engine, clock, store = setup
    add_call(store, T0 - timedelta(seconds=5), error_type="insufficient_quota", project="a")
    engine.tick()
    doc = client.get("/api/v1/alerts").json()
    assert list(doc) == ["rows"]
    [row] = doc["rows"]
    assert row["rule"] == "quota" and row["scope"] == {"project": "a"} and row["state"] == "firing"
    assert row["deliveries"] == {"delivered": 0, "pending": 1, "failed": 0, "last_error": None}
    assert row["started_at"] == T0.isoformat() and row["resolved_at"] is None
    assert row["last_notified_at"] == T0.isoformat() and row["value"] == 1.0 and row["threshold"] == 0.0
    assert client.get("/api/v1/alerts", params={"state": "resolved"}).json() == {"rows": []}
    clock.advance(minutes=16)
    engine.tick()
    [resolved] = client.get("/api/v1/alerts", params={"state": "resolved"}).json()["rows"]
    assert resolved["resolved_at"] == (T0 + timedelta(minutes=16)).isoformat()
    assert resolved["deliveries"]["pending"] == 2
    assert len(client.get("/api/v1/alerts", params={"state": "all"}).json()["rows"]) == 1
    assert client.get("/api/v1/alerts", params={"state": "nope"}).status_code == 400
    assert client.get("/api/v1/alerts/deliveries", params={"status": "nope"}).status_code == 400
    rows = client.get("/api/v1/alerts/deliveries", params={"status": "pending"}).json()["rows"]
    assert [r["event"] for r in rows] == ["resolved", "firing"]
    status = client.get("/api/v1/alerts/status").json()
    assert status["last_evaluated_at"] == (T0 + timedelta(minutes=16)).isoformat()


def test_test_notification(setup: tuple[TestClient, AlertEngine, Clock, Store]) -> None:
    client, *_ = setup
    r = client.post("/api/v1/alerts/quota/test")
    assert r.status_code == 200 and r.json()["channels"] == ["hook"] and r.json()["event"]["event"] == "test"
    assert client.post("/api/v1/alerts/ghost/test").status_code == 404
    assert client.post("/api/v1/alerts/quiet/test").status_code == 409
    rows = client.get("/api/v1/alerts/deliveries").json()["rows"]
    assert [(r["rule"], r["event"], r["status"]) for r in rows] == [("quota", "test", "pending")]


def test_silences_crud(setup: tuple[TestClient, AlertEngine, Clock, Store]) -> None:
    client, engine, clock, store = setup
    r = client.post(
        "/api/v1/alerts/silences", json={"rule": "quota", "scope_key": "project=a", "duration": "30m"}
    )
    assert r.status_code == 201
    sid = r.json()["silence_id"]
    assert r.json()["expires_at"] == (T0 + timedelta(minutes=30)).isoformat()
    assert client.post("/api/v1/alerts/silences", json={"rule": "ghost"}).status_code == 400
    assert (
        client.post("/api/v1/alerts/silences", json={"rule": "quota", "duration": "soon"}).status_code == 400
    )
    [s] = client.get("/api/v1/alerts/silences").json()["rows"]
    assert s["silence_id"] == sid and s["scope_key"] == "project=a"
    add_call(store, T0 - timedelta(seconds=5), error_type="insufficient_quota", project="a")
    add_call(store, T0 - timedelta(seconds=5), error_type="insufficient_quota", project="b")
    events = engine.tick().events
    assert [e.state.scope_key for e in events] == ["project=b"]  # only the silenced scope is quiet
    rows = {r["scope_key"]: r for r in client.get("/api/v1/alerts").json()["rows"]}
    assert rows["project=a"]["silenced"] is True and rows["project=b"]["silenced"] is False
    assert client.delete(f"/api/v1/alerts/silences/{sid}").json() == {"ok": True}
    assert client.delete(f"/api/v1/alerts/silences/{sid}").status_code == 404
    assert client.get("/api/v1/alerts/silences").json() == {"rows": []}
    clock.advance(minutes=1)
    assert [e.kind for e in engine.tick().events] == ["firing"]  # announced once the silence is gone


def test_silence_duration_has_the_config_syntax_and_bounds(
    setup: tuple[TestClient, AlertEngine, Clock, Store],
) -> None:
    client = setup[0]
    r = client.post("/api/v1/alerts/silences", json={"rule": "quiet", "duration": "1.5h"})
    assert r.status_code == 201 and r.json()["expires_at"] == (T0 + timedelta(minutes=90)).isoformat()
    # Out of bounds is a 400 naming the parameter, never a 500 from a date overflow.
    for bad in (1e30, -5, 0, float("nan"), "1e30", True, 10**400):
        body = json.dumps({"rule": "quiet", "duration": bad})  # NaN too, as Python's json reads it
        r = client.post("/api/v1/alerts/silences", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "duration: must" in r.json()["error"], (bad, r.text)
